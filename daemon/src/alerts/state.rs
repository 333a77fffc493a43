//! The state machine, pure: findings move alerts pending → firing → resolved, then mutes
//! (silences, inhibitions) and the repeat interval decide what is announced.
//!
//! Announcements are driven by state, not by events: an alert is due when it is firing and its
//! `notified` state is not `firing` (or the repeat interval has passed), or resolved while its
//! `notified` state is still `firing`. Both are stored, so after a restart nothing is announced
//! twice and nothing announced is forgotten.

use std::collections::{BTreeMap, HashMap, HashSet};

use comfydash_wire::{AlertState, Silence};

use super::evaluate::{Finding, Verdict};
use super::rules::{Rule, RuleKind};
use super::silence;
use crate::store::alerts::{AlertWrite, StoredAlert};

/// What the engine knows about alerts between evaluations.
#[derive(Debug, Clone, Default)]
pub struct Book {
    /// Pending and firing alerts, by fingerprint.
    pub open: HashMap<String, StoredAlert>,
    /// Resolved alerts whose resolve is still to be announced (muted so far).
    pub closing: Vec<StoredAlert>,
}

/// How an alert appears in a message.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Newly firing.
    Firing,
    /// Still firing after the repeat interval.
    Repeat,
    /// Resolved.
    Resolved,
}

/// The result of applying one evaluation's findings.
#[derive(Debug, Default)]
pub struct Transition {
    /// Rows to write.
    pub writes: Vec<AlertWrite>,
    /// Fingerprints of inserted alerts, in the order of their inserts (to give them their ids).
    pub inserted: Vec<String>,
    /// Fingerprints (open) or ids (closing) whose state changed, for the event stream.
    pub changed: Vec<StoredAlert>,
}

/// `server_down{server="gpu0"}`.
pub fn fingerprint(rule: &str, labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{rule}{{{}}}", inner.join(","))
}

impl Book {
    /// Applies findings at `now`: new pending alerts, pending → firing after `for`, pending
    /// alerts that cleared are deleted, firing → resolved. `Unknown` changes nothing; an open
    /// alert no rule speaks of any more (rule disabled, server removed) resolves.
    pub fn transition(&mut self, findings: &[Finding], rules: &[Rule], now: i64) -> Transition {
        let mut t = Transition::default();
        let mut seen = HashSet::new();
        for f in findings {
            let Some(rule) = rules.iter().find(|r| r.kind == f.rule) else {
                continue;
            };
            let fp = fingerprint(f.rule.name(), &f.labels);
            seen.insert(fp.clone());
            match &f.verdict {
                Verdict::Unknown => {}
                Verdict::Inactive => self.clear(&fp, now, &mut t),
                Verdict::Active { summary, value } => {
                    let hold = rule.hold.as_millis() as i64;
                    match self.open.get_mut(&fp) {
                        None => {
                            let firing = hold == 0;
                            let a = StoredAlert {
                                id: 0,
                                fingerprint: fp.clone(),
                                rule: f.rule.name().into(),
                                labels: f.labels.clone(),
                                severity: rule.severity,
                                state: if firing {
                                    AlertState::Firing
                                } else {
                                    AlertState::Pending
                                },
                                summary: summary.clone(),
                                value: *value,
                                started_at: now,
                                fired_at: firing.then_some(now),
                                resolved_at: None,
                                notified: None,
                                last_notified_at: None,
                                muted: None,
                            };
                            t.writes.push(AlertWrite::Insert(a.clone()));
                            t.inserted.push(fp.clone());
                            t.changed.push(a.clone());
                            self.open.insert(fp, a);
                        }
                        Some(a) => {
                            let before = a.clone();
                            a.summary.clone_from(summary);
                            a.value = *value;
                            a.severity = rule.severity;
                            if a.state == AlertState::Pending && now - a.started_at >= hold {
                                a.state = AlertState::Firing;
                                a.fired_at = Some(now);
                                t.changed.push(a.clone());
                            }
                            if *a != before {
                                t.writes.push(AlertWrite::Update(a.clone()));
                            }
                        }
                    }
                }
            }
        }
        let orphans: Vec<String> = self
            .open
            .keys()
            .filter(|fp| !seen.contains(*fp))
            .cloned()
            .collect();
        for fp in orphans {
            self.clear(&fp, now, &mut t);
        }
        t
    }

    fn clear(&mut self, fp: &str, now: i64, t: &mut Transition) {
        let Some(mut a) = self.open.remove(fp) else {
            return;
        };
        if a.state == AlertState::Pending {
            t.writes.push(AlertWrite::Delete(a.id));
            return;
        }
        a.state = AlertState::Resolved;
        a.resolved_at = Some(now);
        t.writes.push(AlertWrite::Update(a.clone()));
        t.changed.push(a.clone());
        if a.notified == Some(AlertState::Firing) {
            self.closing.push(a);
        }
    }

    /// Gives inserted alerts the ids the store chose.
    pub fn set_ids(&mut self, t: &mut Transition, ids: &[i64]) {
        for (fp, id) in t.inserted.iter().zip(ids) {
            if let Some(a) = self.open.get_mut(fp) {
                a.id = *id;
            }
            for c in t
                .changed
                .iter_mut()
                .filter(|c| &c.fingerprint == fp && c.id == 0)
            {
                c.id = *id;
            }
        }
    }

    /// Decides what to announce at `now`; updates `notified`, `last_notified_at` and `muted`.
    pub fn announce(&mut self, silences: &[Silence], policy: &Policy, now: i64) -> Announcement {
        let active_rules: HashSet<String> = self.open.values().map(|a| a.rule.clone()).collect();
        let mute_of = |a: &StoredAlert| -> Option<String> {
            if let Some(s) = silences.iter().find(|s| s.active && silence::matches(s, a)) {
                return Some(format!("silenced:{}", s.id));
            }
            let kind = RuleKind::parse(&a.rule)?;
            kind.inhibited_by()
                .iter()
                .find(|src| active_rules.contains(src.name()))
                .map(|src| format!("inhibited:{}", src.name()))
        };
        let mut out = Announcement::default();
        let open_mutes: Vec<(String, Option<String>)> = self
            .open
            .iter()
            .map(|(fp, a)| (fp.clone(), mute_of(a)))
            .collect();
        for (fp, muted) in open_mutes {
            let Some(a) = self.open.get_mut(&fp) else {
                continue;
            };
            let before = a.clone();
            a.muted = muted;
            if a.state == AlertState::Firing && a.muted.is_none() {
                let change = if a.notified != Some(AlertState::Firing) {
                    Some(Change::Firing)
                } else if a
                    .last_notified_at
                    .is_some_and(|t| now - t >= policy.repeat_ms)
                {
                    Some(Change::Repeat)
                } else {
                    None
                };
                if let Some(change) = change {
                    a.notified = Some(AlertState::Firing);
                    a.last_notified_at = Some(now);
                    out.items.push((a.clone(), change));
                }
            }
            if *a != before {
                out.writes.push(AlertWrite::Update(a.clone()));
            }
        }
        let mut still = Vec::new();
        for mut a in std::mem::take(&mut self.closing) {
            let muted = mute_of(&a);
            if muted.is_some() {
                if a.muted != muted {
                    a.muted = muted;
                    out.writes.push(AlertWrite::Update(a.clone()));
                }
                still.push(a);
                continue;
            }
            a.muted = None;
            a.notified = Some(AlertState::Resolved);
            if policy.send_resolved {
                a.last_notified_at = Some(now);
                out.items.push((a.clone(), Change::Resolved));
            }
            out.writes.push(AlertWrite::Update(a));
        }
        self.closing = still;
        out.items.sort_by(|(a, ca), (b, cb)| {
            ca.cmp(cb)
                .then(b.severity.cmp(&a.severity))
                .then(rank(&a.rule).cmp(&rank(&b.rule)))
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        out
    }
}

fn rank(rule: &str) -> usize {
    RuleKind::ALL
        .iter()
        .position(|k| k.name() == rule)
        .unwrap_or(usize::MAX)
}

/// Announcement settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Repeat interval, milliseconds.
    pub repeat_ms: i64,
    /// Announce resolves.
    pub send_resolved: bool,
}

/// What one evaluation announces: one message per channel when `items` is not empty.
#[derive(Debug, Default)]
pub struct Announcement {
    /// Alerts in the message, firing first, then repeats, then resolves.
    pub items: Vec<(StoredAlert, Change)>,
    /// Rows to write (notified, muted).
    pub writes: Vec<AlertWrite>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::config::RulesConfig;
    use crate::config::QueueConfig;

    fn rules() -> Vec<Rule> {
        let mut cfg = RulesConfig::default();
        cfg.server_down.hold = Some(std::time::Duration::from_millis(100));
        cfg.all_servers_down.hold = Some(std::time::Duration::from_millis(100));
        Rule::all(&cfg, &QueueConfig::default())
    }

    fn down(servers: &[(&str, bool)]) -> Vec<Finding> {
        let mut out: Vec<Finding> = servers
            .iter()
            .map(|(n, d)| Finding {
                rule: RuleKind::ServerDown,
                labels: BTreeMap::from([("server".to_string(), n.to_string())]),
                verdict: if *d {
                    Verdict::Active {
                        summary: format!("{n} down"),
                        value: None,
                    }
                } else {
                    Verdict::Inactive
                },
            })
            .collect();
        let all = servers.iter().all(|(_, d)| *d);
        out.push(Finding {
            rule: RuleKind::AllServersDown,
            labels: BTreeMap::new(),
            verdict: if all {
                Verdict::Active {
                    summary: "all down".into(),
                    value: None,
                }
            } else {
                Verdict::Inactive
            },
        });
        out
    }

    const POLICY: Policy = Policy {
        repeat_ms: 1000,
        send_resolved: true,
    };

    fn step(b: &mut Book, f: &[Finding], now: i64) -> Vec<(String, Change)> {
        let mut t = b.transition(f, &rules(), now);
        let ids: Vec<i64> = (0..t.inserted.len() as i64)
            .map(|i| now * 100 + i + 1)
            .collect();
        b.set_ids(&mut t, &ids);
        b.announce(&[], &POLICY, now)
            .items
            .into_iter()
            .map(|(a, c)| (a.rule, c))
            .collect()
    }

    #[test]
    fn pending_firing_repeat_resolved() {
        let mut b = Book::default();
        assert!(step(&mut b, &down(&[("a", true), ("b", false)]), 0).is_empty());
        assert!(step(&mut b, &down(&[("a", true), ("b", false)]), 50).is_empty());
        assert_eq!(
            step(&mut b, &down(&[("a", true), ("b", false)]), 100),
            [("server_down".into(), Change::Firing)]
        );
        assert!(step(&mut b, &down(&[("a", true), ("b", false)]), 500).is_empty());
        assert_eq!(
            step(&mut b, &down(&[("a", true), ("b", false)]), 1100),
            [("server_down".into(), Change::Repeat)]
        );
        assert_eq!(
            step(&mut b, &down(&[("a", false), ("b", false)]), 1200),
            [("server_down".into(), Change::Resolved)]
        );
        assert!(b.open.is_empty() && b.closing.is_empty());
    }

    #[test]
    fn a_pending_alert_that_clears_is_forgotten() {
        let mut b = Book::default();
        step(&mut b, &down(&[("a", true), ("b", false)]), 0);
        let t = b.transition(&down(&[("a", false), ("b", false)]), &rules(), 50);
        assert!(matches!(t.writes[..], [AlertWrite::Delete(_)]));
        assert!(b.open.is_empty());
    }

    #[test]
    fn all_down_inhibits_per_server_alerts_even_while_pending() {
        let mut b = Book::default();
        // a goes down first; b follows before a's `for` is over.
        step(&mut b, &down(&[("a", true), ("b", false)]), 0);
        assert!(step(&mut b, &down(&[("a", true), ("b", true)]), 60).is_empty());
        // a's server_down is firing but all_servers_down is pending: a stays muted.
        assert!(step(&mut b, &down(&[("a", true), ("b", true)]), 120).is_empty());
        assert_eq!(
            step(&mut b, &down(&[("a", true), ("b", true)]), 160),
            [("all_servers_down".into(), Change::Firing)]
        );
        // Recovery: only what was announced resolves.
        assert_eq!(
            step(&mut b, &down(&[("a", false), ("b", false)]), 300),
            [("all_servers_down".into(), Change::Resolved)]
        );
    }

    #[test]
    fn silences_hold_messages_until_they_end() {
        let mut b = Book::default();
        let now = chrono::Utc::now();
        let s = silence::build(
            comfydash_wire::NewSilence {
                rule: Some("*".into()),
                duration: Some("1h".into()),
                ..Default::default()
            },
            "ops",
            now,
        )
        .unwrap();
        let f = down(&[("a", true)]);
        b.transition(&f, &rules(), 0);
        b.transition(&f, &rules(), 200);
        assert!(
            b.announce(std::slice::from_ref(&s), &POLICY, 200)
                .items
                .is_empty()
        );
        assert!(b.open.values().all(|a| {
            a.muted
                .as_deref()
                .is_some_and(|m| m.starts_with("silenced:"))
        }));
        let items = b.announce(&[], &POLICY, 300).items;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0.rule, "all_servers_down");
    }
}
