//! HTTP calls to one ComfyUI server, each with a timeout. ComfyUI has no auth and answers some
//! errors as plain text, so every answer is checked for status and shape here.

use std::time::Duration;

use serde_json::{Value, json};

use super::protocol::{Outcome, parse_history, summarize_validation};

/// Why a call to ComfyUI failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ComfyError {
    /// Could not connect, or the connection broke: the server is (maybe temporarily) gone.
    #[error("ComfyUI unreachable: {0}")]
    Unreachable(String),
    /// The call timed out.
    #[error("ComfyUI did not answer in time")]
    Timeout,
    /// `/prompt` rejected the graph (400): ComfyUI's message and the first failing node.
    #[error("{message}")]
    Invalid {
        /// Summary of `error` and `node_errors`.
        message: String,
        /// First node with an error.
        node: Option<String>,
    },
    /// Any other unexpected status or body.
    #[error("ComfyUI answered {status}: {body}")]
    Unexpected {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
}

impl ComfyError {
    fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            ComfyError::Timeout
        } else {
            ComfyError::Unreachable(e.to_string())
        }
    }

    /// Whether retrying on this or another server may help.
    pub fn is_transient(&self) -> bool {
        matches!(self, ComfyError::Unreachable(_) | ComfyError::Timeout)
            || matches!(self, ComfyError::Unexpected { status, .. } if *status >= 500)
    }
}

/// Result of `POST /prompt`.
#[derive(Debug, Clone)]
pub struct Queued {
    /// Nodes that failed validation while the rest was queued (partial acceptance).
    pub partial_errors: Option<String>,
}

/// What `/queue` says about a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePlace {
    /// Executing now.
    Running,
    /// Waiting.
    Pending,
    /// In neither list.
    Absent,
}

/// A client for one server.
#[derive(Debug, Clone)]
pub struct ComfyClient {
    http: reqwest::Client,
    base: String,
}

impl ComfyClient {
    /// A client for `base` with the given per-call timeout.
    pub fn new(base: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .no_proxy()
            .build()
            .unwrap_or_default();
        ComfyClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api{}", self.base, path)
    }

    async fn read(resp: reqwest::Response) -> Result<(u16, Vec<u8>), ComfyError> {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(ComfyError::from_reqwest)?;
        Ok((status, body.to_vec()))
    }

    fn unexpected(status: u16, body: &[u8]) -> ComfyError {
        ComfyError::Unexpected {
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        }
    }

    /// `POST /prompt` with our own `prompt_id` and `client_id`.
    pub async fn queue_prompt(
        &self,
        graph: &Value,
        prompt_id: &str,
        client_id: &str,
    ) -> Result<Queued, ComfyError> {
        let body = json!({"prompt": graph, "prompt_id": prompt_id, "client_id": client_id});
        let resp = self
            .http
            .post(self.url("/prompt"))
            .json(&body)
            .send()
            .await
            .map_err(ComfyError::from_reqwest)?;
        let (status, bytes) = Self::read(resp).await?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        match (status, parsed) {
            (200, Some(v)) => {
                let partial = v
                    .get("node_errors")
                    .and_then(Value::as_object)
                    .filter(|m| !m.is_empty())
                    .map(|_| summarize_validation(&v).0);
                Ok(Queued {
                    partial_errors: partial,
                })
            }
            (400, Some(v)) => {
                let (message, node) = summarize_validation(&v);
                Err(ComfyError::Invalid { message, node })
            }
            _ => Err(Self::unexpected(status, &bytes)),
        }
    }

    /// `GET /history/{id}`: the outcome once the prompt is finished.
    pub async fn history(&self, prompt_id: &str) -> Result<Option<Outcome>, ComfyError> {
        let v = self.get_json(&format!("/history/{prompt_id}")).await?;
        Ok(parse_history(&v, prompt_id))
    }

    /// `GET` of a JSON answer; anything but a 200 with JSON is an error.
    async fn get_json(&self, path: &str) -> Result<Value, ComfyError> {
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(ComfyError::from_reqwest)?;
        let (status, bytes) = Self::read(resp).await?;
        match (status, serde_json::from_slice(&bytes)) {
            (200, Ok(v)) => Ok(v),
            _ => Err(Self::unexpected(status, &bytes)),
        }
    }

    /// Where a prompt is in `/queue`.
    pub async fn queue_place(&self, prompt_id: &str) -> Result<QueuePlace, ComfyError> {
        let v = self.get_json("/queue").await?;
        let has = |list: &str| {
            v.get(list).and_then(Value::as_array).is_some_and(|items| {
                items
                    .iter()
                    .any(|it| it.get(1).and_then(Value::as_str) == Some(prompt_id))
            })
        };
        Ok(if has("queue_running") {
            QueuePlace::Running
        } else if has("queue_pending") {
            QueuePlace::Pending
        } else {
            QueuePlace::Absent
        })
    }

    /// How many prompts `/queue` shows running.
    pub async fn running_count(&self) -> Result<usize, ComfyError> {
        let v = self.get_json("/queue").await?;
        Ok(v.get("queue_running")
            .and_then(Value::as_array)
            .map_or(0, Vec::len))
    }

    /// `POST /queue {"delete": [id]}`: removes a waiting prompt (never the running one).
    pub async fn delete_queued(&self, prompt_id: &str) -> Result<(), ComfyError> {
        self.post_empty("/queue", json!({"delete": [prompt_id]}))
            .await
    }

    /// `POST /interrupt {"prompt_id"}`: stops the prompt only if it is the one running.
    pub async fn interrupt(&self, prompt_id: &str) -> Result<(), ComfyError> {
        self.post_empty("/interrupt", json!({"prompt_id": prompt_id}))
            .await
    }

    /// `POST /free`: unload models and free memory.
    pub async fn free(&self) -> Result<(), ComfyError> {
        self.post_empty("/free", json!({"unload_models": true, "free_memory": true}))
            .await
    }

    async fn post_empty(&self, path: &str, body: Value) -> Result<(), ComfyError> {
        let resp = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .map_err(ComfyError::from_reqwest)?;
        let (status, bytes) = Self::read(resp).await?;
        if status == 200 {
            Ok(())
        } else {
            Err(Self::unexpected(status, &bytes))
        }
    }

    /// `POST /upload/image` (multipart) into `subfolder`; returns the name to use in LoadImage.
    pub async fn upload_image(
        &self,
        bytes: Vec<u8>,
        filename: &str,
        subfolder: &str,
    ) -> Result<String, ComfyError> {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string());
        let form = reqwest::multipart::Form::new()
            .part("image", part)
            .text("type", "input")
            .text("subfolder", subfolder.to_string())
            .text("overwrite", "true");
        let resp = self
            .http
            .post(self.url("/upload/image"))
            .multipart(form)
            .send()
            .await
            .map_err(ComfyError::from_reqwest)?;
        let (status, body) = Self::read(resp).await?;
        let v: Value = match (status, serde_json::from_slice(&body)) {
            (200, Ok(v)) => v,
            _ => return Err(Self::unexpected(status, &body)),
        };
        let name = v.get("name").and_then(Value::as_str).unwrap_or(filename);
        let sub = v.get("subfolder").and_then(Value::as_str).unwrap_or("");
        Ok(if sub.is_empty() {
            name.to_string()
        } else {
            format!("{sub}/{name}")
        })
    }

    /// `GET /view`: one output file.
    pub async fn view(
        &self,
        filename: &str,
        subfolder: &str,
        kind: &str,
    ) -> Result<(Vec<u8>, Option<String>), ComfyError> {
        let resp = self
            .http
            .get(self.url("/view"))
            .query(&[
                ("filename", filename),
                ("subfolder", subfolder),
                ("type", kind),
            ])
            .send()
            .await
            .map_err(ComfyError::from_reqwest)?;
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let (status, body) = Self::read(resp).await?;
        if status != 200 {
            return Err(Self::unexpected(status, &body));
        }
        Ok((body, ct))
    }

    /// `GET /object_info`: node class → spec.
    pub async fn object_info(&self) -> Result<Value, ComfyError> {
        self.get_json("/object_info").await
    }
}
