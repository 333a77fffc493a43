//! `/api/ping`, `/api/health` and the server status they report (camelCase, as the quick-start).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /api/ping`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ping {
    /// Always `"ok"`.
    pub status: String,
    /// When the daemon answered.
    pub timestamp: DateTime<Utc>,
}

/// Overall daemon health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Everything is up and the queue is not high.
    Healthy,
    /// A server is down, the database is not writable, or the queue is high.
    Degraded,
}

wire_names!(HealthStatus, "health status", {
    Healthy => "healthy",
    Degraded => "degraded",
});

/// `up` when at least one ComfyUI server is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum UpDown {
    /// Reachable and working.
    Up,
    /// Not reachable or not working.
    Down,
}

/// The state of one ComfyUI server as the daemon sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ServerStatus {
    /// Not probed yet.
    Unknown,
    /// Answering its probe.
    Up,
    /// Failed several probes in a row.
    Down,
    /// Finishing its in-flight jobs, taking nothing new.
    Draining,
    /// Turned off by an operator.
    Disabled,
    /// Busy without progress; marked by the watchdog.
    Stuck,
}

wire_names!(ServerStatus, "server status", {
    Unknown => "unknown",
    Up => "up",
    Down => "down",
    Draining => "draining",
    Disabled => "disabled",
    Stuck => "stuck",
});

impl ServerStatus {
    /// Whether the server counts as up for health.
    pub fn is_up(self) -> bool {
        matches!(self, ServerStatus::Up | ServerStatus::Draining)
    }
}

/// Queue health from the pending count, in the words of `/api/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueueHealth {
    /// Below the moderate threshold (default 10).
    Good,
    /// Below the high threshold (default 50).
    Moderate,
    /// At or above the high threshold.
    High,
}

wire_names!(QueueHealth, "queue health", {
    Good => "good",
    Moderate => "moderate",
    High => "high",
});

/// The same three levels in the words of `/api/telemetry`'s `queue.health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum QueueLevel {
    /// Same as [`QueueHealth::Good`].
    Healthy,
    /// Same as [`QueueHealth::Moderate`].
    Warning,
    /// Same as [`QueueHealth::High`].
    Critical,
}

impl From<QueueHealth> for QueueLevel {
    fn from(h: QueueHealth) -> Self {
        match h {
            QueueHealth::Good => QueueLevel::Healthy,
            QueueHealth::Moderate => QueueLevel::Warning,
            QueueHealth::High => QueueLevel::Critical,
        }
    }
}

/// `GET /api/health`: open, always 200, with no URLs, keys or raw error text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `healthy` or `degraded`.
    pub status: HealthStatus,
    /// When the answer was made.
    pub timestamp: DateTime<Utc>,
    /// Daemon version.
    pub version: String,
    /// Seconds since the daemon started.
    #[serde(rename = "uptimeSeconds")]
    pub uptime_seconds: u64,
    /// ComfyUI and database.
    pub services: Services,
    /// Job counts and queue health.
    pub statistics: Statistics,
}

/// The services health reports on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Services {
    /// ComfyUI servers.
    pub comfyui: ComfyUiService,
    /// The job store.
    pub database: DatabaseService,
}

/// ComfyUI as a whole and each server by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComfyUiService {
    /// `up` when at least one server is up.
    pub status: UpDown,
    /// Each configured server, by name.
    pub servers: Vec<ServerHealth>,
}

/// One ComfyUI server in health (names, never URLs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerHealth {
    /// Configured name.
    pub name: String,
    /// Current status.
    pub status: ServerStatus,
    /// Latency of the last successful probe.
    #[serde(rename = "latencyMs")]
    pub latency_ms: Option<u64>,
}

/// Whether the store accepts writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatabaseService {
    /// `up` when the last write check succeeded.
    pub status: UpDown,
}

/// Job counts in health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Statistics {
    /// Jobs waiting.
    pub pending: u64,
    /// Jobs running on ComfyUI.
    pub processing: u64,
    /// Jobs that ended well.
    pub completed: u64,
    /// Jobs that ended in failure.
    pub failed: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
    /// Whether the queue is paused.
    pub paused: bool,
    /// Level of the pending count.
    #[serde(rename = "queueHealth")]
    pub queue_health: QueueHealth,
}
