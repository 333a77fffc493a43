//! Webhooks: the body posted to a job's `webhook_url`, and the operators' API over the outbox
//! (`GET /api/webhooks`, `POST /api/jobs/{id}/webhook/redeliver`, `POST /api/webhooks/replay`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::{JobError, JobId, JobStatus, Timings};

/// What happened: the job's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WebhookEventType {
    /// The job completed with its outputs.
    #[serde(rename = "job.completed")]
    JobCompleted,
    /// The job failed and will not be retried automatically.
    #[serde(rename = "job.failed")]
    JobFailed,
    /// The job was cancelled.
    #[serde(rename = "job.cancelled")]
    JobCancelled,
}

impl WebhookEventType {
    /// The event type for a terminal status; `None` for pending and processing.
    pub fn for_status(status: JobStatus) -> Option<Self> {
        match status {
            JobStatus::Completed => Some(Self::JobCompleted),
            JobStatus::Failed => Some(Self::JobFailed),
            JobStatus::Cancelled => Some(Self::JobCancelled),
            JobStatus::Pending | JobStatus::Processing => None,
        }
    }
}

wire_names!(WebhookEventType, "webhook event type", {
    JobCompleted => "job.completed",
    JobFailed => "job.failed",
    JobCancelled => "job.cancelled",
});

/// The JSON body posted to a job's `webhook_url` (Standard Webhooks: `type`, `timestamp`, `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookPayload {
    /// `job.completed`, `job.failed` or `job.cancelled`.
    #[serde(rename = "type")]
    pub kind: WebhookEventType,
    /// When the job ended and the event was created; the same on every delivery.
    pub timestamp: DateTime<Utc>,
    /// The job.
    pub data: WebhookJob,
}

/// `data` of a [`WebhookPayload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookJob {
    /// Client-chosen id.
    pub job_id: JobId,
    /// Final state.
    pub status: JobStatus,
    /// Files produced (empty unless completed).
    pub outputs: Vec<WebhookOutput>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// Wait and run times.
    pub timings: Timings,
    /// Runs of the job: 1, plus one per manual retry.
    pub attempts: u32,
    /// Parameters as submitted.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub params: Option<Value>,
    /// Accepted.
    pub created_at: DateTime<Utc>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One output file in a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookOutput {
    /// Position in the job's outputs.
    pub index: u32,
    /// Absolute URL of `GET /api/jobs/{id}/outputs/{index}` (needs a read key).
    pub url: String,
    /// File name as ComfyUI wrote it.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// The content, when the job set `output_base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// Where an event's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Stopped for good: a 4xx (not 408/429), a redirect, or a URL the outbound rules refuse.
    Failed,
    /// Retried until `webhooks.max_age` without success.
    Dead,
}

wire_names!(WebhookStatus, "webhook status", {
    Pending => "pending",
    Delivered => "delivered",
    Failed => "failed",
    Dead => "dead",
});

/// One delivery attempt as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookAttempt {
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// HTTP status of the answer; null when there was none.
    pub status_code: Option<u16>,
    /// From sending to the end of the answer read, in milliseconds; null when nothing came back.
    pub latency_ms: Option<u64>,
    /// The first bytes of the answer (`webhooks.max_response_bytes`), lossily as text.
    pub response: Option<String>,
    /// What went wrong: connection, timeout, refused URL, or the status's meaning.
    pub error: Option<String>,
}

/// One event of the outbox with its attempts (`GET /api/webhooks`, redeliver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEvent {
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub id: String,
    /// The job it reports.
    pub job_id: JobId,
    /// Where it is posted.
    pub url: String,
    /// `job.completed`, `job.failed` or `job.cancelled`.
    #[serde(rename = "type")]
    pub kind: WebhookEventType,
    /// Delivery state.
    pub status: WebhookStatus,
    /// Attempts made, redeliveries included.
    pub attempt_count: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the event was created (the job's end).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When a 2xx was received.
    pub delivered_at: Option<DateTime<Utc>>,
    /// HTTP status of the last attempt.
    pub last_status_code: Option<u16>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<WebhookAttempt>,
}

/// `GET /api/webhooks?status=&job_id=&limit=`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookList {
    /// Matching events, newest first.
    pub events: Vec<WebhookEvent>,
}

/// `POST /api/webhooks/replay?since=&status=`: how many events went back to pending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookReplay {
    /// Events put back to pending.
    pub replayed: u64,
}
