//! The live event stream, `GET /api/events` (Server-Sent Events).
//!
//! Contract: each SSE message has `event:` set to one of `job`, `queue`, `server`, `telemetry`,
//! `alert`, `webhooks`, `resync`, an `id:` that increases by one per event, and `data:` holding the JSON below.
//! A client that reconnects with `Last-Event-ID` receives every event it missed while they are
//! still in the daemon's ring; otherwise it receives `resync` first and should refetch state over
//! HTTP. A reader too slow to keep up also gets `resync`. Comment lines (`:`) are keep-alives.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{JobError, JobId, JobStatus, Progress, QueueState, ServerStatus};

/// One event of the stream, tagged by its SSE event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "event", content = "data", rename_all = "lowercase")]
pub enum StreamEvent {
    /// A job changed state or made progress.
    Job(JobUpdate),
    /// Queue counts or pause changed.
    Queue(QueueState),
    /// A ComfyUI server changed.
    Server(ServerUpdate),
    /// An external source reported metrics.
    Telemetry(TelemetryUpdate),
    /// A built-in alert became pending, fired or resolved.
    Alert(crate::AlertEvent),
    /// Webhook delivery counts changed (the same figures as telemetry's `webhooks`).
    Webhooks(crate::WebhooksTelemetry),
    /// Events were missed: refetch state over HTTP.
    Resync(Resync),
}

impl StreamEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::Job(_) => "job",
            StreamEvent::Queue(_) => "queue",
            StreamEvent::Server(_) => "server",
            StreamEvent::Telemetry(_) => "telemetry",
            StreamEvent::Alert(_) => "alert",
            StreamEvent::Webhooks(_) => "webhooks",
            StreamEvent::Resync(_) => "resync",
        }
    }

    /// The event's data as JSON.
    pub fn data_json(&self) -> String {
        let v = match self {
            StreamEvent::Job(x) => serde_json::to_string(x),
            StreamEvent::Queue(x) => serde_json::to_string(x),
            StreamEvent::Server(x) => serde_json::to_string(x),
            StreamEvent::Telemetry(x) => serde_json::to_string(x),
            StreamEvent::Alert(x) => serde_json::to_string(x),
            StreamEvent::Webhooks(x) => serde_json::to_string(x),
            StreamEvent::Resync(x) => serde_json::to_string(x),
        };
        v.unwrap_or_else(|_| "{}".into())
    }

    /// Rebuilds an event from its SSE name and data.
    pub fn parse(name: &str, data: &str) -> Result<StreamEvent, serde_json::Error> {
        Ok(match name {
            "job" => StreamEvent::Job(serde_json::from_str(data)?),
            "queue" => StreamEvent::Queue(serde_json::from_str(data)?),
            "server" => StreamEvent::Server(serde_json::from_str(data)?),
            "telemetry" => StreamEvent::Telemetry(serde_json::from_str(data)?),
            "alert" => StreamEvent::Alert(serde_json::from_str(data)?),
            "webhooks" => StreamEvent::Webhooks(serde_json::from_str(data)?),
            _ => StreamEvent::Resync(serde_json::from_str(data).unwrap_or(Resync {
                reason: format!("unknown event {name}"),
            })),
        })
    }
}

/// `job`: the job's new state, attempt, progress and server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobUpdate {
    /// The job.
    pub job_id: JobId,
    /// Its status now.
    pub status: JobStatus,
    /// Attempt number.
    pub attempt: u32,
    /// Progress while processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Server it runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// When.
    pub at: DateTime<Utc>,
}

/// `server`: a ComfyUI server's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerUpdate {
    /// Name.
    pub name: String,
    /// Status.
    pub status: ServerStatus,
    /// Last probe latency.
    pub latency_ms: Option<u64>,
    /// Device name.
    pub device: Option<String>,
    /// VRAM total, bytes.
    pub vram_total: Option<u64>,
    /// VRAM free, bytes.
    pub vram_free: Option<u64>,
    /// Jobs submitted to it and not finished.
    pub in_flight: u32,
}

/// `telemetry`: an external report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TelemetryUpdate {
    /// Source.
    pub source: String,
    /// Values.
    pub metrics: BTreeMap<String, f64>,
    /// When measured.
    pub timestamp: DateTime<Utc>,
}

/// `resync`: why the client must refetch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resync {
    /// `gap` (Last-Event-ID older than the ring), `lagged` (reader too slow), `restart`.
    pub reason: String,
}

impl From<&crate::Job> for JobUpdate {
    fn from(j: &crate::Job) -> Self {
        JobUpdate {
            job_id: j.job_id.clone(),
            status: j.status,
            attempt: j.attempt,
            progress: j.progress.clone(),
            server: j.server.clone(),
            error: j.error.clone(),
            at: j.updated_at,
        }
    }
}
