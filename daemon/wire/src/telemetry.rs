//! `/api/telemetry`: the figures the Lensia backend records, and external sources' metrics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::QueueLevel;

/// `GET /api/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Telemetry {
    /// Job counts and performance.
    pub jobs: JobsTelemetry,
    /// Webhook delivery counts.
    pub webhooks: WebhooksTelemetry,
    /// Queue size and level.
    pub queue: QueueTelemetry,
    /// Seconds since the daemon started.
    #[serde(rename = "uptimeSeconds")]
    pub uptime_seconds: u64,
    /// Daemon version.
    pub version: String,
    /// When the answer was made.
    pub timestamp: DateTime<Utc>,
    /// Latest value of each metric, by source then metric name.
    pub external: BTreeMap<String, BTreeMap<String, ExternalValue>>,
}

/// `jobs` in telemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobsTelemetry {
    /// Every job ever accepted, pruned ones included.
    pub total: u64,
    /// Jobs by current state; the parts sum to `total`.
    #[serde(rename = "byStatus")]
    pub by_status: ByStatus,
    /// Success rate and processing times.
    pub performance: Performance,
}

/// Job counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ByStatus {
    /// Waiting.
    pub pending: u64,
    /// Running.
    pub processing: u64,
    /// Ended well.
    pub completed: u64,
    /// Ended in failure.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
}

/// Success rate (percent) and processing times (milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Performance {
    /// completed / (completed + failed) × 100; 100 when nothing has ended.
    #[serde(rename = "successRate")]
    pub success_rate: f64,
    /// Mean processing time over all completed jobs.
    #[serde(rename = "averageProcessingTime")]
    pub average_processing_time: f64,
    /// Median over the most recent completed jobs.
    #[serde(rename = "p50ProcessingTime")]
    pub p50_processing_time: f64,
    /// 95th percentile over the most recent completed jobs.
    #[serde(rename = "p95ProcessingTime")]
    pub p95_processing_time: f64,
}

/// `webhooks` in telemetry, counted in events (one per terminal job with a webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhooksTelemetry {
    /// Events ever created.
    pub total: u64,
    /// Events delivered.
    pub delivered: u64,
    /// Events given up on.
    pub failed: u64,
    /// Events still being tried.
    pub pending: u64,
    /// delivered / (delivered + failed) × 100; 100 when nothing has ended.
    #[serde(rename = "successRate")]
    pub success_rate: f64,
}

/// `queue` in telemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueTelemetry {
    /// pending + processing.
    pub size: u64,
    /// Level of the pending count.
    pub health: QueueLevel,
    /// Whether the queue is paused.
    pub paused: bool,
}

/// Latest value of one external metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExternalValue {
    /// The value.
    pub value: f64,
    /// When the source said it was measured.
    pub timestamp: DateTime<Utc>,
}

/// `POST /api/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TelemetryReport {
    /// Who reports (1-64 of `[A-Za-z0-9._:-]`).
    pub source: String,
    /// Metric name → value (finite numbers).
    pub metrics: BTreeMap<String, f64>,
    /// When measured; defaults to the time received.
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// Free-form labels kept with the history.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `202` answer to [`TelemetryReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TelemetryAccepted {
    /// Id of the stored report.
    pub id: u64,
    /// Always `"accepted"`.
    pub status: String,
}

/// `GET /api/telemetry/external`: stored reports, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExternalHistory {
    /// The points.
    pub points: Vec<ExternalPoint>,
}

/// One stored value of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExternalPoint {
    /// Id of the report it came in.
    pub id: u64,
    /// Reporting source.
    pub source: String,
    /// Metric name.
    pub metric: String,
    /// Value.
    pub value: f64,
    /// When measured.
    pub timestamp: DateTime<Utc>,
    /// Labels sent with the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}
