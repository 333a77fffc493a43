//! The rules: their names, defaults (`for`, severity, threshold, window) with the configured
//! overrides applied, and which rules inhibit which.

use std::time::Duration;

use comfydash_wire::Severity;

use super::config::{RuleOverride, RulesConfig};
use crate::config::QueueConfig;

/// Every rule, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    /// One ComfyUI server is down.
    ServerDown,
    /// No ComfyUI server can work.
    AllServersDown,
    /// Health says degraded.
    Degraded,
    /// Too many pending jobs.
    QueueHigh,
    /// Pending work, nothing finishing.
    Stuck,
    /// Too many failed jobs in the window.
    JobFailureRate,
    /// Too many failed webhook deliveries in the window.
    WebhookFailureRate,
    /// The watchdog marked a server stuck.
    ServerStuck,
    /// Little free space where the database lives.
    DiskLow,
}

impl RuleKind {
    /// Every rule, in the order messages list them.
    pub const ALL: [RuleKind; 9] = [
        RuleKind::AllServersDown,
        RuleKind::ServerDown,
        RuleKind::ServerStuck,
        RuleKind::Stuck,
        RuleKind::QueueHigh,
        RuleKind::JobFailureRate,
        RuleKind::WebhookFailureRate,
        RuleKind::DiskLow,
        RuleKind::Degraded,
    ];

    /// The name used in config, the API and silences.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::ServerDown => "server_down",
            RuleKind::AllServersDown => "all_servers_down",
            RuleKind::Degraded => "degraded",
            RuleKind::QueueHigh => "queue_high",
            RuleKind::Stuck => "stuck",
            RuleKind::JobFailureRate => "job_failure_rate",
            RuleKind::WebhookFailureRate => "webhook_failure_rate",
            RuleKind::ServerStuck => "server_stuck",
            RuleKind::DiskLow => "disk_low",
        }
    }

    /// The rule called `name`.
    pub fn parse(name: &str) -> Option<RuleKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Rules whose active alerts mute this one's notifications: the bigger outage speaks alone.
    pub fn inhibited_by(self) -> &'static [RuleKind] {
        use RuleKind::*;
        match self {
            ServerDown | ServerStuck | Stuck => &[AllServersDown],
            Degraded => &[AllServersDown, ServerDown, ServerStuck, QueueHigh],
            _ => &[],
        }
    }

    fn override_of(self, r: &RulesConfig) -> &RuleOverride {
        match self {
            RuleKind::ServerDown => &r.server_down,
            RuleKind::AllServersDown => &r.all_servers_down,
            RuleKind::Degraded => &r.degraded,
            RuleKind::QueueHigh => &r.queue_high,
            RuleKind::Stuck => &r.stuck,
            RuleKind::JobFailureRate => &r.job_failure_rate,
            RuleKind::WebhookFailureRate => &r.webhook_failure_rate,
            RuleKind::ServerStuck => &r.server_stuck,
            RuleKind::DiskLow => &r.disk_low,
        }
    }
}

/// A rule with its configuration applied over its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Which.
    pub kind: RuleKind,
    /// Evaluated at all.
    pub enabled: bool,
    /// `for`: how long the condition must hold before firing.
    pub hold: Duration,
    /// Severity of its alerts.
    pub severity: Severity,
    /// Threshold (meaning per rule).
    pub threshold: f64,
    /// Window (rates) or stall time (`stuck`).
    pub window: Duration,
    /// Least events in the window for a rate to count.
    pub min_events: u64,
}

impl Rule {
    /// Defaults of every rule with the configured overrides applied.
    pub fn all(cfg: &RulesConfig, queue: &QueueConfig) -> Vec<Rule> {
        let secs = Duration::from_secs;
        RuleKind::ALL
            .into_iter()
            .map(|kind| {
                use RuleKind::*;
                let (hold, severity, threshold, window) = match kind {
                    ServerDown => (secs(30), Severity::Warning, 0.0, secs(0)),
                    AllServersDown => (secs(30), Severity::Critical, 0.0, secs(0)),
                    Degraded => (secs(120), Severity::Warning, 0.0, secs(0)),
                    QueueHigh => (secs(300), Severity::Warning, queue.high_at as f64, secs(0)),
                    Stuck => (secs(0), Severity::Critical, 0.0, secs(15 * 60)),
                    JobFailureRate => (secs(0), Severity::Warning, 50.0, secs(15 * 60)),
                    WebhookFailureRate => (secs(0), Severity::Warning, 50.0, secs(15 * 60)),
                    ServerStuck => (secs(0), Severity::Warning, 0.0, secs(0)),
                    DiskLow => (secs(60), Severity::Warning, 10.0, secs(0)),
                };
                let o = kind.override_of(cfg);
                Rule {
                    kind,
                    enabled: o.enabled.unwrap_or(true),
                    hold: o.hold.unwrap_or(hold),
                    severity: o.severity.unwrap_or(severity),
                    threshold: o.threshold.unwrap_or(threshold),
                    window: o.window.unwrap_or(window),
                    min_events: o.min_events.unwrap_or(5),
                }
            })
            .collect()
    }
}
