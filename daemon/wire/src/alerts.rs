//! Built-in alerts: alerts and their history (`GET /api/alerts`), silences, channel tests and
//! the body of the generic JSON webhook channel.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How bad an alert is; also picks the Discord embed colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information.
    Info,
    /// Needs attention soon.
    Warning,
    /// Needs attention now.
    Critical,
}

wire_names!(Severity, "severity", {
    Info => "info",
    Warning => "warning",
    Critical => "critical",
});

/// Where an alert is in its life: `pending` (condition true, `for` not over yet), `firing`, `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds; waiting for the rule's `for` duration.
    Pending,
    /// The condition has held for `for`; notified.
    Firing,
    /// The condition no longer holds.
    Resolved,
}

wire_names!(AlertState, "alert state", {
    Pending => "pending",
    Firing => "firing",
    Resolved => "resolved",
});

/// One alert: a rule's condition for one set of labels (e.g. `server_down{server="gpu0"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// Stable id.
    pub id: i64,
    /// Rule name (`server_down`, `all_servers_down`, `degraded`, `queue_high`, `stuck`,
    /// `job_failure_rate`, `webhook_failure_rate`, `server_stuck`, `disk_low`, and
    /// `database_unwritable`, which is sent without a record and has id 0).
    pub rule: String,
    /// Labels, e.g. `{"server": "gpu0"}`; empty for daemon-wide rules.
    pub labels: BTreeMap<String, String>,
    /// Severity from the rule's configuration.
    pub severity: Severity,
    /// State.
    pub state: AlertState,
    /// What is wrong, for people (latest evaluation while active).
    pub summary: String,
    /// The measured value (pending jobs, failure %, free %), when the rule has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When the condition was first seen.
    pub started_at: DateTime<Utc>,
    /// When it started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<DateTime<Utc>>,
    /// When it resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// When a notification about it was last queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Why its notifications are held back: `silenced:<silence id>` or `inhibited:<rule>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<String>,
}

/// Outcome of one notification to one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertDeliveryStatus {
    /// Waiting for its channel.
    Queued,
    /// Accepted by the channel.
    Sent,
    /// Every attempt failed.
    Failed,
    /// Not sent: too old when its channel got to it, or the channel is no longer configured.
    Dropped,
}

wire_names!(AlertDeliveryStatus, "delivery status", {
    Queued => "queued",
    Sent => "sent",
    Failed => "failed",
    Dropped => "dropped",
});

/// One notification to one channel (`slack`, `discord`, `telegram`, `webhook`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertDelivery {
    /// Stable id.
    pub id: i64,
    /// When it was queued.
    pub at: DateTime<Utc>,
    /// Channel name.
    pub channel: String,
    /// `firing`, `resolved` (the message's headline) or `test`.
    pub kind: String,
    /// Alerts in the message.
    pub alert_ids: Vec<i64>,
    /// Outcome.
    pub status: AlertDeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Duration of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

/// `GET /api/alerts`: open alerts, recent history, silences in force and recent deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertList {
    /// Pending and firing alerts, oldest first.
    pub active: Vec<Alert>,
    /// Resolved alerts, newest first (`?limit=`, default 50).
    pub history: Vec<Alert>,
    /// Silences in force.
    pub silences: Vec<Silence>,
    /// Configured channels.
    pub channels: Vec<String>,
    /// Most recent notifications, newest first.
    pub deliveries: Vec<AlertDelivery>,
}

/// A silence: while in force, alerts it matches send no notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Silence {
    /// Stable id.
    pub id: String,
    /// Rule matched (`*` or absent: any rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Labels matched, all of them, by equality (e.g. `{"server": "gpu0"}`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Why.
    pub comment: String,
    /// Key name that created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
    /// Whether it is in force now.
    pub active: bool,
}

/// `POST /api/alerts/silences`: needs `rule` or `labels`, and `duration` or `ends_at`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// Rule to match; `*` matches every rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Labels to match by equality.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How long, with a unit: `"30m"`, `"2h"`, `"1d"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Or until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Why (shown in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `GET /api/alerts/silences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SilenceList {
    /// In force, plus expired ones with `?expired=true`; newest first.
    pub silences: Vec<Silence>,
}

/// The result of sending to one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelResult {
    /// Channel name.
    pub channel: String,
    /// Whether the channel accepted the message.
    pub ok: bool,
    /// Attempts made (retries after errors and 429s included).
    pub attempts: u32,
    /// HTTP status of the last answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Duration of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

/// `POST /api/alerts/test`: one result per configured channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertTestResult {
    /// In channel order: slack, discord, telegram, webhook.
    pub results: Vec<ChannelResult>,
}

/// What happened to an alert, for the live event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertEvent {
    /// The alert after the change (`state` says what changed).
    pub alert: Alert,
}

/// Body the generic webhook channel posts (`alerts.webhook_url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertNotification {
    /// Format version, `1`.
    pub version: u32,
    /// `alerts.name`: which daemon speaks.
    pub source: String,
    /// `firing` when any alert in it is firing, else `resolved`; `test` for a test message.
    pub status: String,
    /// Highest severity among the firing alerts (`info` for tests and resolves).
    pub severity: Severity,
    /// The message as plain text.
    pub text: String,
    /// Alerts in this message: newly firing, still firing (repeat) and resolved.
    pub alerts: Vec<Alert>,
    /// When it was made.
    pub sent_at: DateTime<Utc>,
}
