//! ComfyUI's messages, parsed without I/O: WebSocket events and `/history` entries
//! (see `shared/comfyui-protocol.md` §2-§3).

use serde_json::Value;

/// A WebSocket text frame we act on.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// Queue length changed (broadcast).
    Status {
        /// Pending + running.
        queue_remaining: Option<u64>,
    },
    /// A prompt started executing.
    ExecutionStart {
        /// Prompt.
        prompt_id: String,
        /// Server time, ms.
        timestamp: Option<i64>,
    },
    /// A node started; `node: None` means the prompt is finished (history is written).
    Executing {
        /// Node id, or none when done.
        node: Option<String>,
        /// Prompt (absent on the reconnect replay).
        prompt_id: Option<String>,
    },
    /// Progress of a node.
    Progress {
        /// Prompt.
        prompt_id: Option<String>,
        /// Node.
        node: Option<String>,
        /// Steps done.
        value: u64,
        /// Steps in all.
        max: u64,
    },
    /// Terminal message (success, error or interrupt); the prompt's `executing: null` follows.
    Ended {
        /// Prompt.
        prompt_id: String,
    },
    /// Anything else.
    Other,
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(String::from)
}

/// Parses one text frame; unknown or malformed frames are `Other`, never an error.
pub fn parse_ws(text: &str) -> WsEvent {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return WsEvent::Other;
    };
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    match v.get("type").and_then(Value::as_str) {
        Some("status") => WsEvent::Status {
            queue_remaining: data
                .pointer("/status/exec_info/queue_remaining")
                .and_then(Value::as_u64),
        },
        Some("execution_start") => match str_field(&data, "prompt_id") {
            Some(prompt_id) => WsEvent::ExecutionStart {
                prompt_id,
                timestamp: data.get("timestamp").and_then(Value::as_i64),
            },
            None => WsEvent::Other,
        },
        Some("executing") => WsEvent::Executing {
            node: str_field(&data, "node"),
            prompt_id: str_field(&data, "prompt_id"),
        },
        Some("progress") => WsEvent::Progress {
            prompt_id: str_field(&data, "prompt_id"),
            node: str_field(&data, "node"),
            value: data.get("value").and_then(Value::as_u64).unwrap_or(0),
            max: data.get("max").and_then(Value::as_u64).unwrap_or(0),
        },
        Some("execution_success" | "execution_error" | "execution_interrupted") => {
            match str_field(&data, "prompt_id") {
                Some(prompt_id) => WsEvent::Ended { prompt_id },
                None => WsEvent::Other,
            }
        }
        _ => WsEvent::Other,
    }
}

/// A file a prompt produced, as named in history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Node that produced it.
    pub node: String,
    /// File name.
    pub filename: String,
    /// Subfolder.
    pub subfolder: String,
    /// `output`, `temp` or `input`.
    pub kind: String,
}

/// How a prompt ended, from its history entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Finished; its files.
    Success {
        /// Output files.
        files: Vec<OutputFile>,
        /// Execution start, server ms.
        started_ms: Option<i64>,
    },
    /// A node raised.
    Error {
        /// Node id.
        node: Option<String>,
        /// Node class.
        node_type: Option<String>,
        /// Exception type and message.
        message: String,
        /// Execution start, server ms.
        started_ms: Option<i64>,
    },
    /// Interrupted.
    Interrupted {
        /// Execution start, server ms.
        started_ms: Option<i64>,
    },
}

/// Reads `/history/{id}`'s answer; `None` while the prompt is not in history.
pub fn parse_history(body: &Value, prompt_id: &str) -> Option<Outcome> {
    let entry = body.get(prompt_id)?;
    let status = entry.get("status");
    let messages = status
        .and_then(|s| s.get("messages"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| {
        messages.iter().find_map(|m| {
            let arr = m.as_array()?;
            (arr.first()?.as_str()? == name).then(|| arr.get(1).cloned().unwrap_or(Value::Null))
        })
    };
    let started_ms =
        find("execution_start").and_then(|d| d.get("timestamp").and_then(Value::as_i64));
    if let Some(d) = find("execution_interrupted") {
        let _ = d;
        return Some(Outcome::Interrupted { started_ms });
    }
    if let Some(d) = find("execution_error") {
        let ty = str_field(&d, "exception_type").unwrap_or_default();
        let msg = str_field(&d, "exception_message").unwrap_or_default();
        return Some(Outcome::Error {
            node: str_field(&d, "node_id"),
            node_type: str_field(&d, "node_type"),
            message: if ty.is_empty() {
                msg
            } else {
                format!("{ty}: {}", msg.trim())
            },
            started_ms,
        });
    }
    let completed = status
        .and_then(|s| s.get("completed"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let status_str = status
        .and_then(|s| s.get("status_str"))
        .and_then(Value::as_str);
    if !completed && status_str == Some("error") {
        return Some(Outcome::Error {
            node: None,
            node_type: None,
            message: "ComfyUI reported an error without details".into(),
            started_ms,
        });
    }
    let mut files = Vec::new();
    if let Some(outputs) = entry.get("outputs").and_then(Value::as_object) {
        for (node, ui) in outputs {
            let Some(ui) = ui.as_object() else { continue };
            for (key, items) in ui {
                if key == "animated" || key == "text" {
                    continue;
                }
                for item in items.as_array().into_iter().flatten() {
                    if let Some(filename) = str_field(item, "filename") {
                        files.push(OutputFile {
                            node: node.clone(),
                            filename,
                            subfolder: str_field(item, "subfolder").unwrap_or_default(),
                            kind: str_field(item, "type").unwrap_or_else(|| "output".into()),
                        });
                    }
                }
            }
        }
    }
    Some(Outcome::Success { files, started_ms })
}

/// A short human summary of a `/prompt` 400 body: the error message and each node's errors.
pub fn summarize_validation(body: &Value) -> (String, Option<String>) {
    let mut msg = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("prompt rejected")
        .to_string();
    let mut first_node = None;
    if let Some(nodes) = body.get("node_errors").and_then(Value::as_object) {
        for (node, e) in nodes {
            first_node.get_or_insert_with(|| node.clone());
            let class = e.get("class_type").and_then(Value::as_str).unwrap_or("?");
            for err in e
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let m = err.get("message").and_then(Value::as_str).unwrap_or("");
                let d = err.get("details").and_then(Value::as_str).unwrap_or("");
                msg.push_str(&format!("; node {node} ({class}): {m}"));
                if !d.is_empty() {
                    msg.push_str(&format!(" [{d}]"));
                }
            }
        }
    }
    if msg.len() > 2000 {
        msg.truncate(2000);
    }
    (msg, first_node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ws_frames() {
        assert_eq!(
            parse_ws(r#"{"type":"executing","data":{"node":null,"prompt_id":"p"}}"#),
            WsEvent::Executing {
                node: None,
                prompt_id: Some("p".into())
            }
        );
        assert_eq!(
            parse_ws(
                r#"{"type":"progress","data":{"value":3,"max":20,"prompt_id":"p","node":"3"}}"#
            ),
            WsEvent::Progress {
                prompt_id: Some("p".into()),
                node: Some("3".into()),
                value: 3,
                max: 20
            }
        );
        assert_eq!(parse_ws("not json"), WsEvent::Other);
        assert_eq!(
            parse_ws(r#"{"type":"execution_start","data":{}}"#),
            WsEvent::Other
        );
    }

    #[test]
    fn history_outcomes() {
        let ok = json!({"p": {"outputs": {"2": {"images": [{"filename": "a_00001_.png", "subfolder": "x", "type": "output"}], "animated": [false]}},
            "status": {"status_str": "success", "completed": true, "messages": [["execution_start", {"prompt_id": "p", "timestamp": 5}]]}}});
        assert_eq!(
            parse_history(&ok, "p"),
            Some(Outcome::Success {
                files: vec![OutputFile {
                    node: "2".into(),
                    filename: "a_00001_.png".into(),
                    subfolder: "x".into(),
                    kind: "output".into()
                }],
                started_ms: Some(5)
            })
        );
        assert_eq!(parse_history(&json!({}), "p"), None);
        let err = json!({"p": {"outputs": {}, "status": {"status_str": "error", "completed": false, "messages": [
            ["execution_error", {"node_id": "1", "node_type": "LoadImage", "exception_type": "PIL.UnidentifiedImageError", "exception_message": "cannot identify\n"}]]}}});
        match parse_history(&err, "p").unwrap() {
            Outcome::Error { node, message, .. } => {
                assert_eq!(node.as_deref(), Some("1"));
                assert_eq!(message, "PIL.UnidentifiedImageError: cannot identify");
            }
            o => panic!("{o:?}"),
        }
        let int = json!({"p": {"outputs": {}, "status": {"status_str": "error", "completed": false, "messages": [["execution_interrupted", {}]]}}});
        assert!(matches!(
            parse_history(&int, "p"),
            Some(Outcome::Interrupted { .. })
        ));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text frame parses to something, never a panic.
        #[test]
        fn ws_frames_never_panic(text in "\\PC{0,200}") {
            let _ = parse_ws(&text);
        }

        /// Frames with the right type but arbitrary data never panic either.
        #[test]
        fn typed_frames_never_panic(kind in "(status|executing|progress|execution_start|execution_error|execution_success)",
                                    data in "\\PC{0,80}") {
            let _ = parse_ws(&format!("{{\"type\":\"{kind}\",\"data\":{data}}}"));
            let _ = parse_ws(&format!("{{\"type\":\"{kind}\",\"data\":{{\"prompt_id\":{data}}}}}"));
        }

        /// History bodies of any shape never panic.
        #[test]
        fn history_never_panics(body in "\\PC{0,200}") {
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                let _ = parse_history(&v, "p");
                let _ = summarize_validation(&v);
            }
            let wrapped = format!("{{\"p\":{{\"status\":{body},\"outputs\":{body}}}}}");
            if let Ok(v) = serde_json::from_str::<Value>(&wrapped) {
                let _ = parse_history(&v, "p");
            }
        }
    }
}
