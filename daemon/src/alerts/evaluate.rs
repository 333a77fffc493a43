//! Evaluation: each rule's verdict on one observation of the daemon, with the memory rates and
//! the stall clock need between evaluations (a ring of counter samples).
//!
//! A verdict is `Active`, `Inactive` or `Unknown`. `Unknown` (a server not probed yet since a
//! restart, a rate window not filled yet) keeps an alert where it is, so a restart neither
//! resolves nor re-fires anything.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use comfydash_wire::{QueueHealth, ServerStatus};

use super::rules::{Rule, RuleKind};
use crate::config::QueueConfig;
use crate::store::Snapshot;

/// Free and total bytes of the data dir's file system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskSpace {
    /// Bytes an unprivileged process may still write.
    pub free: u64,
    /// Size of the file system.
    pub total: u64,
}

/// What one evaluation sees: the same sources as `/api/health`, plus free disk space.
pub struct Observation<'a> {
    /// Milliseconds since the epoch.
    pub now: i64,
    /// Every server's name and status.
    pub servers: Vec<(String, ServerStatus)>,
    /// Counters as of the last commit.
    pub snapshot: &'a Snapshot,
    /// Whether the database takes writes.
    pub db_writable: bool,
    /// Queue levels.
    pub queue: &'a QueueConfig,
    /// Free space, if it could be read.
    pub disk: Option<DiskSpace>,
}

/// A rule's judgement of one alert instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The condition holds.
    Active {
        /// What is wrong, for people.
        summary: String,
        /// The measured value.
        value: Option<f64>,
    },
    /// The condition does not hold.
    Inactive,
    /// Not enough data to say; the alert stays as it is.
    Unknown,
}

/// One instance's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The rule.
    pub rule: RuleKind,
    /// Labels identifying the instance.
    pub labels: BTreeMap<String, String>,
    /// Verdict.
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: i64,
    completed: u64,
    failed: u64,
    delivered: u64,
    hook_failed: u64,
}

/// Evaluates every enabled rule, keeping what rates and the stall clock need between evaluations.
pub struct Evaluator {
    rules: Vec<Rule>,
    ring: VecDeque<Sample>,
    started: i64,
    /// Last time a job finished or nothing was pending; `None` until first seen.
    progress_at: Option<i64>,
    finished: u64,
}

impl Evaluator {
    /// An evaluator for these rules, started at `now`.
    pub fn new(rules: Vec<Rule>, now: i64) -> Evaluator {
        Evaluator {
            rules,
            ring: VecDeque::new(),
            started: now,
            progress_at: None,
            finished: 0,
        }
    }

    /// The rules, defaults applied.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule of `kind`.
    pub fn rule(&self, kind: RuleKind) -> Option<&Rule> {
        self.rules.iter().find(|r| r.kind == kind)
    }

    /// Every enabled rule's findings for this observation.
    pub fn evaluate(&mut self, obs: &Observation) -> Vec<Finding> {
        self.record(obs);
        let mut out = Vec::new();
        for rule in self.rules.iter().filter(|r| r.enabled) {
            match rule.kind {
                RuleKind::ServerDown => per_server(&mut out, obs, rule.kind, ServerStatus::Down),
                RuleKind::ServerStuck => per_server(&mut out, obs, rule.kind, ServerStatus::Stuck),
                kind => out.push(Finding {
                    rule: kind,
                    labels: BTreeMap::new(),
                    verdict: self.judge(rule, obs),
                }),
            }
        }
        out
    }

    fn record(&mut self, obs: &Observation) {
        let s = obs.snapshot;
        let sample = Sample {
            at: obs.now,
            completed: s.get("completed"),
            failed: s.get("failed"),
            delivered: s.get("webhooks_delivered"),
            hook_failed: s.get("webhooks_failed"),
        };
        self.ring.push_back(sample);
        let keep = self
            .rules
            .iter()
            .filter(|r| {
                matches!(
                    r.kind,
                    RuleKind::JobFailureRate | RuleKind::WebhookFailureRate
                )
            })
            .map(|r| r.window.as_millis() as i64)
            .max()
            .unwrap_or(0);
        // Keep one sample at or before the longest window's start, so the window is covered.
        while self.ring.len() > 2 && self.ring[1].at <= obs.now - keep {
            self.ring.pop_front();
        }
        let finished = sample.completed + sample.failed + s.get("cancelled");
        if self.progress_at.is_none() || finished != self.finished || s.get("pending") == 0 {
            self.progress_at = Some(obs.now);
        }
        self.finished = finished;
    }

    fn judge(&self, rule: &Rule, obs: &Observation) -> Verdict {
        match rule.kind {
            RuleKind::AllServersDown => all_down(obs),
            RuleKind::Degraded => degraded(obs),
            RuleKind::QueueHigh => {
                let pending = obs.snapshot.get("pending");
                if pending as f64 >= rule.threshold {
                    Verdict::Active {
                        summary: format!(
                            "Queue is high: {pending} jobs pending (threshold {})",
                            rule.threshold
                        ),
                        value: Some(pending as f64),
                    }
                } else {
                    Verdict::Inactive
                }
            }
            RuleKind::Stuck => self.stuck(rule, obs),
            RuleKind::JobFailureRate => {
                self.rate(rule, obs.now, "Job", |s| (s.completed, s.failed))
            }
            RuleKind::WebhookFailureRate => {
                self.rate(rule, obs.now, "Webhook", |s| (s.delivered, s.hook_failed))
            }
            RuleKind::DiskLow => disk_low(rule, obs),
            RuleKind::ServerDown | RuleKind::ServerStuck => Verdict::Unknown,
        }
    }

    fn stuck(&self, rule: &Rule, obs: &Observation) -> Verdict {
        let pending = obs.snapshot.get("pending");
        let window = rule.window.as_millis() as i64;
        let since = self.progress_at.unwrap_or(obs.now);
        // A paused queue holds work on purpose.
        if pending > 0 && !obs.snapshot.paused && obs.now - since >= window {
            return Verdict::Active {
                summary: format!(
                    "Queue is stuck: {pending} jobs pending and none finished for {}",
                    human_duration(Duration::from_millis((obs.now - since) as u64))
                ),
                value: Some(pending as f64),
            };
        }
        // Since a restart the clock only knows how long this run has watched.
        if pending > 0 && !obs.snapshot.paused && obs.now - self.started < window {
            Verdict::Unknown
        } else {
            Verdict::Inactive
        }
    }

    fn rate(
        &self,
        rule: &Rule,
        now: i64,
        what: &str,
        pick: impl Fn(&Sample) -> (u64, u64),
    ) -> Verdict {
        let (Some(last), Some(first)) = (self.ring.back(), self.ring.front()) else {
            return Verdict::Unknown;
        };
        let start = now - rule.window.as_millis() as i64;
        let base = self.ring.iter().rev().find(|s| s.at <= start);
        let covered = base.is_some();
        let base = base.unwrap_or(first);
        let (ok1, bad1) = pick(last);
        let (ok0, bad0) = pick(base);
        let (ok, bad) = (ok1.saturating_sub(ok0), bad1.saturating_sub(bad0));
        let events = ok + bad;
        if events < rule.min_events.max(1) {
            return if covered {
                Verdict::Inactive
            } else {
                Verdict::Unknown
            };
        }
        let pct = bad as f64 * 100.0 / events as f64;
        if pct >= rule.threshold {
            Verdict::Active {
                summary: format!(
                    "{what} failure rate {pct:.0}% over {} ({bad} of {events} failed)",
                    human_duration(rule.window)
                ),
                value: Some((pct * 10.0).round() / 10.0),
            }
        } else {
            Verdict::Inactive
        }
    }
}

fn per_server(out: &mut Vec<Finding>, obs: &Observation, kind: RuleKind, bad: ServerStatus) {
    for (name, status) in &obs.servers {
        let verdict = match *status {
            s if s == bad => Verdict::Active {
                summary: match bad {
                    ServerStatus::Stuck => {
                        format!("ComfyUI server {name} is stuck (busy without progress)")
                    }
                    _ => format!("ComfyUI server {name} is down"),
                },
                value: None,
            },
            ServerStatus::Unknown => Verdict::Unknown,
            _ => Verdict::Inactive,
        };
        out.push(Finding {
            rule: kind,
            labels: BTreeMap::from([("server".to_string(), name.clone())]),
            verdict,
        });
    }
}

fn all_down(obs: &Observation) -> Verdict {
    // Disabled servers were turned off on purpose; they neither count as down nor as up.
    let watched: Vec<_> = obs
        .servers
        .iter()
        .filter(|(_, s)| *s != ServerStatus::Disabled)
        .collect();
    if watched.iter().any(|(_, s)| s.is_up()) || watched.is_empty() {
        return Verdict::Inactive;
    }
    if watched.iter().any(|(_, s)| *s == ServerStatus::Unknown) {
        return Verdict::Unknown;
    }
    let names: Vec<&str> = watched.iter().map(|(n, _)| n.as_str()).collect();
    Verdict::Active {
        summary: format!("All ComfyUI servers are down: {}", names.join(", ")),
        value: Some(names.len() as f64),
    }
}

fn degraded(obs: &Observation) -> Verdict {
    let mut why = Vec::new();
    let down: Vec<&str> = obs
        .servers
        .iter()
        .filter(|(_, s)| matches!(s, ServerStatus::Down | ServerStatus::Stuck))
        .map(|(n, _)| n.as_str())
        .collect();
    if !down.is_empty() {
        why.push(format!("ComfyUI down: {}", down.join(", ")));
    }
    let unknown = obs.servers.iter().any(|(_, s)| *s == ServerStatus::Unknown);
    if !unknown && !obs.servers.iter().any(|(_, s)| s.is_up()) && down.is_empty() {
        why.push("no ComfyUI server is up".into());
    }
    if !obs.db_writable {
        why.push("database not writable".into());
    }
    let pending = obs.snapshot.get("pending");
    if crate::api::queue_health(pending, obs.queue) == QueueHealth::High {
        why.push(format!("queue high ({pending} pending)"));
    }
    if !why.is_empty() {
        Verdict::Active {
            summary: format!("comfydash is degraded: {}", why.join("; ")),
            value: None,
        }
    } else if unknown {
        Verdict::Unknown
    } else {
        Verdict::Inactive
    }
}

fn disk_low(rule: &Rule, obs: &Observation) -> Verdict {
    let Some(d) = obs.disk.filter(|d| d.total > 0) else {
        return Verdict::Unknown;
    };
    let pct = d.free as f64 * 100.0 / d.total as f64;
    if pct < rule.threshold {
        Verdict::Active {
            summary: format!(
                "Disk space low on the data dir: {pct:.1}% free ({} of {})",
                human_bytes(d.free),
                human_bytes(d.total)
            ),
            value: Some((pct * 10.0).round() / 10.0),
        }
    } else {
        Verdict::Inactive
    }
}

/// `2h 5m`, `3m 10s`, `45s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn human_bytes(b: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if b as f64 >= GIB {
        format!("{:.1} GiB", b as f64 / GIB)
    } else {
        format!("{:.0} MiB", b as f64 / 1024.0 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::config::RulesConfig;
    use std::collections::HashMap;

    fn snap(pairs: &[(&str, i64)]) -> Snapshot {
        Snapshot {
            counters: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<HashMap<_, _>>(),
            ..Snapshot::default()
        }
    }

    fn obs<'a>(
        now: i64,
        s: &'a Snapshot,
        q: &'a QueueConfig,
        servers: &[ServerStatus],
    ) -> Observation<'a> {
        Observation {
            now,
            servers: servers
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("gpu{i}"), *s))
                .collect(),
            snapshot: s,
            db_writable: true,
            queue: q,
            disk: Some(DiskSpace {
                free: 50,
                total: 100,
            }),
        }
    }

    fn verdict(f: &[Finding], kind: RuleKind) -> &Verdict {
        &f.iter().find(|x| x.rule == kind).unwrap().verdict
    }

    #[test]
    fn unknown_servers_keep_alerts_where_they_are() {
        let q = QueueConfig::default();
        let mut e = Evaluator::new(Rule::all(&RulesConfig::default(), &q), 0);
        let s = snap(&[]);
        let f = e.evaluate(&obs(
            0,
            &s,
            &q,
            &[ServerStatus::Unknown, ServerStatus::Down],
        ));
        assert_eq!(verdict(&f, RuleKind::AllServersDown), &Verdict::Unknown);
        assert_eq!(verdict(&f, RuleKind::ServerDown), &Verdict::Unknown);
        let f = e.evaluate(&obs(1, &s, &q, &[ServerStatus::Down, ServerStatus::Down]));
        assert!(matches!(
            verdict(&f, RuleKind::AllServersDown),
            Verdict::Active { .. }
        ));
        let f = e.evaluate(&obs(2, &s, &q, &[ServerStatus::Up, ServerStatus::Down]));
        assert_eq!(verdict(&f, RuleKind::AllServersDown), &Verdict::Inactive);
        assert!(matches!(
            verdict(&f, RuleKind::Degraded),
            Verdict::Active { .. }
        ));
    }

    #[test]
    fn failure_rate_uses_the_window_delta() {
        let q = QueueConfig::default();
        let mut rules = RulesConfig::default();
        rules.job_failure_rate.window = Some(Duration::from_secs(10));
        let mut e = Evaluator::new(Rule::all(&rules, &q), 0);
        let up = [ServerStatus::Up];
        // 100 failures long ago must not count once they leave the window.
        let s = snap(&[("failed", 100)]);
        e.evaluate(&obs(0, &s, &q, &up));
        let s = snap(&[("failed", 100), ("completed", 2)]);
        let f = e.evaluate(&obs(5_000, &s, &q, &up));
        assert_eq!(verdict(&f, RuleKind::JobFailureRate), &Verdict::Unknown);
        let s = snap(&[("failed", 104), ("completed", 4)]);
        let f = e.evaluate(&obs(11_000, &s, &q, &up));
        // Window start is 1 000: the base is the sample at 0 (failed 100, completed 0).
        assert!(
            matches!(verdict(&f, RuleKind::JobFailureRate), Verdict::Active { value: Some(v), .. } if *v == 50.0)
        );
        let s = snap(&[("failed", 104), ("completed", 40)]);
        let f = e.evaluate(&obs(30_000, &s, &q, &up));
        assert_eq!(verdict(&f, RuleKind::JobFailureRate), &Verdict::Inactive);
    }

    #[test]
    fn stuck_needs_pending_work_and_no_progress() {
        let q = QueueConfig::default();
        let mut rules = RulesConfig::default();
        rules.stuck.window = Some(Duration::from_secs(60));
        let mut e = Evaluator::new(Rule::all(&rules, &q), 0);
        let up = [ServerStatus::Up];
        let s = snap(&[("pending", 3)]);
        let f = e.evaluate(&obs(0, &s, &q, &up));
        assert_eq!(verdict(&f, RuleKind::Stuck), &Verdict::Unknown);
        let f = e.evaluate(&obs(61_000, &s, &q, &up));
        assert!(matches!(
            verdict(&f, RuleKind::Stuck),
            Verdict::Active { .. }
        ));
        let s = snap(&[("pending", 3), ("completed", 1)]);
        let f = e.evaluate(&obs(62_000, &s, &q, &up));
        assert_eq!(verdict(&f, RuleKind::Stuck), &Verdict::Inactive);
    }
}
