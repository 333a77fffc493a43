//! Synchronous prompt validation, reproducing ComfyUI's `validate_prompt`: which nodes are
//! outputs, which outputs validate, and the exact `error`/`node_errors` bodies, quirks included.

pub mod cast;
mod inputs;

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::files::Dirs;
use crate::nodes::NodeClass;
use crate::pyfmt::py_str;

/// A prompt that passed: the graph as normalised by validation (casts applied), the outputs to
/// run, and the errors of outputs that were dropped.
#[derive(Debug)]
pub struct Accepted {
    /// The graph with literal values cast by validation, as ComfyUI stores and runs it.
    pub graph: Map<String, Value>,
    /// Output nodes that validated.
    pub outputs: Vec<String>,
    /// Errors of the outputs that did not validate (may be `{}`).
    pub node_errors: Value,
}

/// A prompt rejected with HTTP 400.
#[derive(Debug)]
pub struct Rejected {
    /// The `error` object.
    pub error: Value,
    /// The `node_errors` object.
    pub node_errors: Value,
}

/// A graph so malformed that ComfyUI's validator itself raises, which the server turns into a 500.
#[derive(Debug, thiserror::Error)]
#[error("validator crashed: {0}")]
pub struct Crash(pub String);

/// One node's validation result, as kept in the `validated` memo.
#[derive(Clone, Debug)]
struct NodeResult {
    valid: bool,
    reasons: Vec<Value>,
}

fn top_error(kind: &str, message: &str, details: &str) -> Value {
    json!({"type": kind, "message": message, "details": details, "extra_info": {}})
}

fn rejected(error: Value) -> Result<Result<Accepted, Rejected>, Crash> {
    Ok(Err(Rejected {
        error,
        node_errors: json!({}),
    }))
}

/// Validates the `prompt` of a POST /prompt body; `partial` is `partial_execution_targets`.
pub fn validate_prompt(
    prompt: &Value,
    partial: Option<&Value>,
    dirs: &Dirs,
) -> Result<Result<Accepted, Rejected>, Crash> {
    let Value::Object(graph) = prompt else {
        return Err(Crash("prompt is not an object".into()));
    };
    let mut outputs = Vec::new();
    for (id, node) in graph {
        let Value::Object(node) = node else {
            return Err(Crash(format!("node {id} is not an object")));
        };
        let Some(class_type) = node.get("class_type") else {
            return rejected(top_error(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                &format!("Node ID '#{id}'"),
            ));
        };
        if matches!(class_type, Value::Array(_) | Value::Object(_)) {
            return Err(Crash("unhashable class_type".into()));
        }
        let Some(class) = class_type.as_str().and_then(NodeClass::from_name) else {
            return rejected(top_error(
                "invalid_prompt",
                &format!(
                    "Cannot execute because node {} does not exist.",
                    py_str(class_type)
                ),
                &format!("Node ID '#{id}'"),
            ));
        };
        if class.is_output() && targeted(partial, id)? {
            outputs.push(id.clone());
        }
    }
    if outputs.is_empty() {
        return rejected(top_error("prompt_no_outputs", "Prompt has no outputs", ""));
    }
    // ComfyUI iterates a set here; a stable natural order keeps runs reproducible.
    outputs.sort_by_key(|id| (id.parse::<u64>().ok(), id.clone()));

    let mut v = inputs::Validator::new(graph.clone(), dirs);
    let mut good = Vec::new();
    let mut failed: Vec<(String, Vec<Value>)> = Vec::new();
    let mut node_errors: IndexMap<String, (Vec<Value>, Vec<String>, String)> = IndexMap::new();
    for o in &outputs {
        let (valid, reasons) = match v.validate_node(o) {
            Ok(r) => (r.valid, r.reasons),
            Err(ex) => {
                let reasons = vec![ex.as_validation_error()];
                v.record(
                    o,
                    NodeResult {
                        valid: false,
                        reasons: reasons.clone(),
                    },
                );
                (false, reasons)
            }
        };
        if valid {
            good.push(o.clone());
            continue;
        }
        failed.push((o.clone(), reasons));
        // Every invalid node validated so far gets this output appended, even one that does not
        // feed it: ComfyUI loops over the whole memo after each failed output.
        for (node_id, r) in v.memo() {
            if r.valid || r.reasons.is_empty() {
                continue;
            }
            let entry = node_errors
                .entry(node_id.clone())
                .or_insert_with(|| (r.reasons.clone(), Vec::new(), v.class_name(node_id)));
            entry.1.push(o.clone());
        }
    }
    let node_errors: Map<String, Value> = node_errors
        .into_iter()
        .map(|(id, (errors, deps, class))| {
            (
                id,
                json!({"errors": errors, "dependent_outputs": deps, "class_type": class}),
            )
        })
        .collect();
    if good.is_empty() {
        let details: Vec<String> = failed
            .iter()
            .flat_map(|(_, reasons)| reasons.iter())
            .map(|r| format!("{}: {}", py_str(&r["message"]), py_str(&r["details"])))
            .collect();
        let error = top_error(
            "prompt_outputs_failed_validation",
            "Prompt outputs failed validation",
            &details.join("\n"),
        );
        return Ok(Err(Rejected {
            error,
            node_errors: Value::Object(node_errors),
        }));
    }
    Ok(Ok(Accepted {
        graph: v.into_graph(),
        outputs: good,
        node_errors: Value::Object(node_errors),
    }))
}

/// Python's `x in partial_execution_targets` for the value types a client might send.
fn targeted(partial: Option<&Value>, id: &str) -> Result<bool, Crash> {
    match partial {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Array(ids)) => Ok(ids.iter().any(|v| v.as_str() == Some(id))),
        Some(Value::String(s)) => Ok(s.contains(id)),
        Some(Value::Object(m)) => Ok(m.contains_key(id)),
        Some(_) => Err(Crash("partial_execution_targets is not iterable".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> (Dirs, std::path::PathBuf) {
        let root = std::env::temp_dir().join(format!("sim-validate-{}", uuid::Uuid::new_v4()));
        (Dirs::create(&root).expect("dirs"), root)
    }

    #[test]
    fn observed_width_zero_body() {
        let (dirs, root) = dirs();
        let prompt = json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
        });
        let rejected = validate_prompt(&prompt, None, &dirs)
            .expect("no crash")
            .expect_err("rejected");
        assert_eq!(
            rejected.error,
            json!({"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}})
        );
        assert_eq!(
            rejected.node_errors,
            json!({"1": {"errors": [{"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1", "details": "width",
                "extra_info": {"input_name": "width", "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}], "received_value": 0}}],
                "dependent_outputs": ["2"], "class_type": "EmptyImage"}})
        );
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn casts_are_kept_in_the_graph() {
        let (dirs, root) = dirs();
        let prompt = json!({
            "1": {"class_type": "EmptyImage", "inputs": {"width": "8", "height": 8.9, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": 5}}
        });
        let ok = validate_prompt(&prompt, None, &dirs)
            .expect("no crash")
            .expect("accepted");
        assert_eq!(ok.graph["1"]["inputs"]["width"], json!(8));
        assert_eq!(ok.graph["1"]["inputs"]["height"], json!(8));
        assert_eq!(ok.graph["2"]["inputs"]["filename_prefix"], json!("5"));
        std::fs::remove_dir_all(root).ok();
    }
}
