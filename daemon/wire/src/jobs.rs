//! The jobs API (snake_case, as `job_id` and `webhook_url` in the quick-start) and the queue.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::QueueHealth;

/// A client-chosen job id: a string, or an integer stored as its decimal string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(JobId(s)),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(JobId(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "job_id must be a string or an integer, not {}",
                kind_of(&other)
            ))),
        }
    }
}

/// What to generate: a text prompt that fills a workflow template, or an API-format ComfyUI graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Prompt {
    /// Fills `{{prompt}}` in a template.
    Text(String),
    /// The bare graph (`{"<node id>": {"class_type", "inputs"}}`), not a whole `/prompt` body.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    Graph(Map<String, Value>),
}

impl<'de> Deserialize<'de> for Prompt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Prompt::Text(s)),
            Value::Object(m) => Ok(Prompt::Graph(m)),
            other => Err(serde::de::Error::custom(format!(
                "prompt must be a string or an API-format graph object, not {}",
                kind_of(&other)
            ))),
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `POST /api/jobs`. `null` means absent for every optional field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// Client-chosen id, 1-128 of `[A-Za-z0-9._:-]`; submitting is idempotent on it.
    pub job_id: JobId,
    /// Text prompt or graph.
    pub prompt: Prompt,
    /// Image fetched by the daemon (http/https, outbound rules apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_image_url: Option<String>,
    /// Image sent inline, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_image_base64: Option<String>,
    /// Where the terminal event is posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Free-form values for `{{params.x}}` placeholders, echoed in webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub params: Option<Value>,
    /// Template name for a text prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// Higher runs first; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Execution time limit in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    /// Put outputs inline (base64) in the job and its webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_base64: Option<bool>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting in the daemon's queue.
    Pending,
    /// Submitted to a ComfyUI server.
    Processing,
    /// Ended with its outputs.
    Completed,
    /// Ended without outputs; will not be retried automatically.
    Failed,
    /// Cancelled by an operator or client.
    Cancelled,
}

wire_names!(JobStatus, "status", {
    Pending => "pending",
    Processing => "processing",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// `202` (new) or `200` (same request again) answer to [`SubmitJob`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobAccepted {
    /// The job's id.
    pub job_id: JobId,
    /// Current status (`pending` for a new job).
    pub status: JobStatus,
    /// Pending jobs that run before this one (0 = next); null once it left the queue.
    pub position: Option<u64>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
}

/// Execution progress reported by ComfyUI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    /// Steps done.
    pub value: u64,
    /// Steps in all.
    pub max: u64,
    /// Node reporting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Why a job failed, with ComfyUI's own words where it gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobError {
    /// Stable code, e.g. `validation_error`, `execution_error`, `timeout`.
    pub code: String,
    /// What happened.
    pub message: String,
    /// Node id where it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One file a job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobOutput {
    /// Position in the job's outputs; `GET /api/jobs/{id}/outputs/{index}`.
    pub index: u32,
    /// File name as ComfyUI wrote it.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Inline content when the job asked for `output_base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// Time spent waiting and running, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timings {
    /// Accepted → execution start.
    pub queued_ms: Option<u64>,
    /// Execution start → end.
    pub processing_ms: Option<u64>,
}

/// A job as `GET /api/jobs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    /// Client-chosen id.
    pub job_id: JobId,
    /// Where it is.
    pub status: JobStatus,
    /// Text or graph as submitted.
    pub prompt: Prompt,
    /// Template for a text prompt.
    pub workflow: Option<String>,
    /// Free-form parameters as submitted.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub params: Option<Value>,
    /// Higher runs first.
    pub priority: i64,
    /// 1 for the first run; manual retries add one.
    pub attempt: u32,
    /// Image URL as submitted.
    pub input_image_url: Option<String>,
    /// Whether an inline image was sent.
    pub has_input_image: bool,
    /// Webhook URL as submitted.
    pub webhook_url: Option<String>,
    /// Execution time limit.
    pub timeout_s: Option<u64>,
    /// Outputs inline.
    pub output_base64: bool,
    /// An operator asked to cancel while it was running.
    pub cancel_requested: bool,
    /// ComfyUI server it runs or ran on.
    pub server: Option<String>,
    /// Latest progress while processing.
    pub progress: Option<Progress>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// Files it produced.
    pub outputs: Vec<JobOutput>,
    /// Wait and run times.
    pub timings: Timings,
    /// Accepted.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Execution started (latest attempt).
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// `GET /api/jobs`: one page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobPage {
    /// Jobs in the requested order.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// One line of a job's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobEvent {
    /// Increasing id.
    pub id: u64,
    /// The job.
    pub job_id: JobId,
    /// When.
    pub at: DateTime<Utc>,
    /// What: `submitted`, `state`, `cancel_requested`, `progress`, ...
    pub kind: String,
    /// State before, for state changes.
    pub from: Option<JobStatus>,
    /// State after, for state changes.
    pub to: Option<JobStatus>,
    /// Key name or daemon part that caused it.
    pub actor: String,
    /// Free-form detail.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub detail: Option<Value>,
}

/// `GET /api/jobs/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobEvents {
    /// Oldest first.
    pub events: Vec<JobEvent>,
}

/// `GET /api/queue` and the answer to pause and resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueState {
    /// No new job starts while paused.
    pub paused: bool,
    /// Jobs waiting.
    pub pending: u64,
    /// Jobs running.
    pub processing: u64,
    /// pending + processing.
    pub size: u64,
    /// Level of the pending count.
    pub health: QueueHealth,
    /// Above this many pending jobs, submits get 429.
    pub max_pending: u64,
}
