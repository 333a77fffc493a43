//! ComfyUI servers and the queue's recent history, as the console shows them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ServerStatus;

/// One ComfyUI server, `GET /api/servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerInfo {
    /// Configured name.
    pub name: String,
    /// Base URL (only shown to keyed callers).
    pub url: String,
    /// Status.
    pub status: ServerStatus,
    /// Last successful probe's latency.
    pub latency_ms: Option<u64>,
    /// Device name from `/system_stats`.
    pub device: Option<String>,
    /// VRAM total, bytes.
    pub vram_total: Option<u64>,
    /// VRAM free, bytes.
    pub vram_free: Option<u64>,
    /// ComfyUI version.
    pub version: Option<String>,
    /// Jobs submitted to it and not finished.
    pub in_flight: u32,
    /// Failed probes since the last success.
    pub consecutive_failures: u32,
}

/// `GET /api/servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerList {
    /// In configuration order.
    pub servers: Vec<ServerInfo>,
}

/// One sample of the queue, taken at a fixed interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsSample {
    /// When.
    pub at: DateTime<Utc>,
    /// Pending jobs.
    pub pending: u64,
    /// Processing jobs.
    pub processing: u64,
    /// Completed jobs, cumulative.
    pub completed: u64,
    /// Failed jobs, cumulative.
    pub failed: u64,
    /// Cancelled jobs, cumulative.
    pub cancelled: u64,
}

/// `GET /api/stats/history`: samples of the last hour (by default), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsHistory {
    /// Seconds between samples.
    pub interval_s: f64,
    /// Samples, oldest first.
    pub samples: Vec<StatsSample>,
}

/// A workflow template, `GET /api/workflows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkflowInfo {
    /// Name to pass as `workflow`.
    pub name: String,
    /// Placeholders it fills (`prompt`, `input_image`, `params.seed`, ...).
    pub placeholders: Vec<String>,
    /// Whether it takes an input image.
    pub takes_image: bool,
    /// `text` or `image` when it is the default for such jobs.
    pub default_for: Option<String>,
    /// Node classes it uses.
    pub classes: Vec<String>,
    /// `builtin` or the file it came from.
    pub source: String,
}

/// `GET /api/workflows`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkflowList {
    /// Templates by name.
    pub workflows: Vec<WorkflowInfo>,
    /// Problems found loading or checking them (e.g. node classes a server does not have).
    pub warnings: Vec<String>,
}
