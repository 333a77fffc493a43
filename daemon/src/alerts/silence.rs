//! Silences: checking a new one, and which silence (if any) mutes an alert.

use std::time::Duration;

use comfydash_wire::{NewSilence, Silence, Timestamp};

use super::rules::RuleKind;
use crate::store::alerts::StoredAlert;

/// Longest silence accepted.
const MAX_SILENCE: Duration = Duration::from_secs(366 * 86_400);
/// Longest comment kept.
const MAX_COMMENT: usize = 1000;

/// Why a new silence was refused (each message names the field).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct InvalidSilence(pub String);

/// Checks `new` and builds the silence it asks for, created by `actor` at `now`.
pub fn build(new: NewSilence, actor: &str, now: Timestamp) -> Result<Silence, InvalidSilence> {
    let bad = |m: &str| Err(InvalidSilence(m.into()));
    let rule = new
        .rule
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if let Some(r) = &rule
        && r != "*"
        && RuleKind::parse(r).is_none()
    {
        let names: Vec<&str> = RuleKind::ALL.iter().map(|k| k.name()).collect();
        return Err(InvalidSilence(format!(
            "rule {r:?} is unknown; use one of {} or \"*\"",
            names.join(", ")
        )));
    }
    if rule.is_none() && new.labels.is_empty() {
        return bad("a silence needs a rule (\"*\" for every rule) or labels to match");
    }
    if new.labels.keys().any(|k| k.trim().is_empty()) {
        return bad("label names must not be empty");
    }
    let ends_at = match (&new.duration, new.ends_at) {
        (Some(_), Some(_)) => return bad("give duration or ends_at, not both"),
        (None, None) => return bad("a silence needs a duration (\"2h\") or ends_at"),
        (None, Some(t)) => t,
        (Some(d), None) => {
            let d = d.trim();
            if d.chars().all(|c| c.is_ascii_digit()) {
                return bad("duration needs a unit: \"30m\", \"2h\", \"1d\"");
            }
            let d = crate::config::parse_duration(d).map_err(InvalidSilence)?;
            if d > MAX_SILENCE {
                return bad("duration is longer than a year");
            }
            now + chrono::Duration::milliseconds(d.as_millis() as i64)
        }
    };
    if ends_at <= now {
        return bad("the silence would end before it starts");
    }
    if ends_at - now > chrono::Duration::seconds(MAX_SILENCE.as_secs() as i64) {
        return bad("ends_at is more than a year away");
    }
    let comment = new.comment.unwrap_or_default();
    if comment.chars().count() > MAX_COMMENT {
        return bad("comment is longer than 1000 characters");
    }
    Ok(Silence {
        id: uuid::Uuid::new_v4().to_string(),
        rule: rule.filter(|r| r != "*"),
        labels: new.labels,
        comment,
        created_by: actor.to_string(),
        created_at: now,
        ends_at,
        active: true,
    })
}

/// Whether `s` matches `alert`: its rule (if any) and every one of its labels.
pub fn matches(s: &Silence, alert: &StoredAlert) -> bool {
    s.rule.as_deref().is_none_or(|r| r == alert.rule)
        && s.labels.iter().all(|(k, v)| alert.labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(rule: &str, server: &str) -> StoredAlert {
        StoredAlert {
            id: 1,
            fingerprint: String::new(),
            rule: rule.into(),
            labels: BTreeMap::from([("server".to_string(), server.to_string())]),
            severity: comfydash_wire::Severity::Warning,
            state: comfydash_wire::AlertState::Firing,
            summary: String::new(),
            value: None,
            started_at: 0,
            fired_at: None,
            resolved_at: None,
            notified: None,
            last_notified_at: None,
            muted: None,
        }
    }

    #[test]
    fn build_and_match() {
        let now = chrono::Utc::now();
        let s = build(
            NewSilence {
                labels: BTreeMap::from([("server".to_string(), "gpu0".to_string())]),
                duration: Some("2h".into()),
                ..Default::default()
            },
            "ops",
            now,
        )
        .unwrap();
        assert!(matches(&s, &alert("server_down", "gpu0")));
        assert!(matches(&s, &alert("server_stuck", "gpu0")));
        assert!(!matches(&s, &alert("server_down", "gpu1")));
        let everything = NewSilence {
            rule: Some("*".into()),
            duration: Some("1h".into()),
            ..Default::default()
        };
        assert!(matches(
            &build(everything, "ops", now).unwrap(),
            &alert("disk_low", "x")
        ));
        for bad in [
            NewSilence {
                duration: Some("1h".into()),
                ..Default::default()
            },
            NewSilence {
                rule: Some("server_dwn".into()),
                duration: Some("1h".into()),
                ..Default::default()
            },
            NewSilence {
                rule: Some("*".into()),
                duration: Some("60".into()),
                ..Default::default()
            },
            NewSilence {
                rule: Some("*".into()),
                ..Default::default()
            },
        ] {
            assert!(build(bad, "ops", now).is_err());
        }
    }
}
