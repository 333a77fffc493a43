//! The one alert the store cannot carry: the store itself refusing writes (disk full, a
//! read-only file system, a lock another process holds). Every other alert is recorded before
//! it is announced; this one cannot be, so it goes straight to every channel, is kept only in
//! memory, and is repeated at most once per `repeat_interval` while it lasts. When writes work
//! again a resolve follows, and alerting is back to the recorded path.

use std::collections::BTreeMap;

use comfydash_wire::{Alert, AlertState, Severity};

use super::state::Change;

/// Rule name of the unrecorded alert.
pub const RULE: &str = "database_unwritable";

/// Whether the database refuses writes, as seen by successive evaluations.
#[derive(Debug, Default)]
pub struct Fallback {
    /// First evaluation that saw the database refuse writes.
    since: Option<i64>,
    /// When the firing message last went out.
    announced: Option<i64>,
}

impl Fallback {
    /// What to announce now, if anything, and how. A single refused commit is not an outage:
    /// the refusal must be seen by two evaluations in a row before it fires.
    pub fn step(
        &mut self,
        writable: bool,
        now: i64,
        repeat_ms: i64,
        send_resolved: bool,
    ) -> Option<(Change, Alert)> {
        if writable {
            let change = self
                .announced
                .is_some()
                .then_some(Change::Resolved)
                .filter(|_| send_resolved);
            let out = change.map(|c| (c, self.alert(c, now)));
            *self = Fallback::default();
            return out;
        }
        let change = match (self.since, self.announced) {
            (None, _) => {
                self.since = Some(now);
                return None;
            }
            (Some(_), None) => Change::Firing,
            (Some(_), Some(t)) if now - t >= repeat_ms => Change::Repeat,
            (Some(_), Some(_)) => return None,
        };
        self.announced = Some(now);
        Some((change, self.alert(change, now)))
    }

    /// The alert as messages and the event stream show it (id 0: it has no row).
    fn alert(&self, change: Change, now: i64) -> Alert {
        let ts = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let resolved = change == Change::Resolved;
        Alert {
            id: 0,
            rule: RULE.into(),
            labels: BTreeMap::new(),
            severity: Severity::Critical,
            state: if resolved {
                AlertState::Resolved
            } else {
                AlertState::Firing
            },
            summary: if resolved {
                "The database takes writes again".into()
            } else {
                "The database refuses writes (disk full, read-only, or locked by another \
                 process): jobs cannot be accepted or finished, and this alert cannot be recorded"
                    .into()
            },
            value: None,
            started_at: ts(self.since.unwrap_or(now)),
            fired_at: Some(ts(self.announced.unwrap_or(now))),
            resolved_at: resolved.then(|| ts(now)),
            last_notified_at: Some(ts(now)),
            muted: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_on_the_second_refusal_repeats_then_resolves_once() {
        let mut f = Fallback::default();
        let repeat = 1_000;
        let mut step = |writable, now, resolved| {
            f.step(writable, now, repeat, resolved)
                .map(|(c, a)| (c, a.state, a.started_at.timestamp_millis()))
        };
        assert_eq!(step(false, 0, true), None, "one refusal is not an outage");
        assert_eq!(
            step(false, 100, true),
            Some((Change::Firing, AlertState::Firing, 0))
        );
        assert_eq!(step(false, 600, true), None);
        assert_eq!(
            step(false, 1_100, true),
            Some((Change::Repeat, AlertState::Firing, 0))
        );
        assert_eq!(
            step(true, 1_200, true),
            Some((Change::Resolved, AlertState::Resolved, 0))
        );
        assert_eq!(step(true, 1_300, true), None);
        // A blip that never fired resolves nothing.
        assert_eq!(step(false, 2_000, true), None);
        assert_eq!(step(true, 2_100, true), None);
        // Without send_resolved, the end is silent.
        step(false, 3_000, false);
        assert_eq!(step(false, 3_100, false).map(|s| s.0), Some(Change::Firing));
        assert_eq!(step(true, 3_200, false), None);
    }
}
