//! `comfydash alerts list`: active alerts, silences in force, recently resolved alerts, channels.

use comfydash_wire::client::Client;
use comfydash_wire::{Alert, AlertList, Silence};

use super::matcher;
use crate::commands::print_json;
use crate::exit::Exit;
use crate::table::{Table, clip};

/// Prints `GET /api/alerts` with `limit` resolved alerts.
pub async fn run(client: &Client, limit: usize, json: bool) -> anyhow::Result<Exit> {
    let list = client.alerts(Some(limit)).await?;
    if json {
        print_json(&list)?;
    } else {
        out!("{}", describe(&list));
    }
    Ok(Exit::Success)
}

fn describe(l: &AlertList) -> String {
    let mut out = String::new();
    if l.active.is_empty() {
        out.push_str("no active alerts\n");
    } else {
        out.push_str(&alerts(&l.active, false));
    }
    if !l.silences.is_empty() {
        out.push('\n');
        out.push_str(&silences(&l.silences));
    }
    if !l.history.is_empty() {
        out.push_str("\nresolved:\n");
        out.push_str(&alerts(&l.history, true));
    }
    out.push('\n');
    if l.channels.is_empty() {
        out.push_str("channels: none configured (alerts are only listed here)\n");
    } else {
        out.push_str(&format!("channels: {}\n", l.channels.join(", ")));
    }
    out
}

/// A table of alerts; resolved ones show when they ended instead of why they are muted.
fn alerts(alerts: &[Alert], resolved: bool) -> String {
    let last = if resolved { "RESOLVED" } else { "MUTED" };
    let mut t = Table::new(&["STATE", "SEVERITY", "ALERT", "SINCE", last, "SUMMARY"]);
    for a in alerts {
        let since = a.fired_at.unwrap_or(a.started_at);
        let last = if resolved {
            a.resolved_at.map(time)
        } else {
            a.muted.clone()
        };
        t.row(vec![
            a.state.to_string(),
            a.severity.to_string(),
            matcher(Some(&a.rule), &a.labels),
            time(since),
            last.unwrap_or_else(|| "-".into()),
            clip(&a.summary, 80),
        ]);
    }
    t.render()
}

/// A table of silences.
pub fn silences(silences: &[Silence]) -> String {
    let mut t = Table::new(&["SILENCE", "MATCHES", "ENDS", "BY", "COMMENT"]);
    for s in silences {
        let ends = if s.active {
            time(s.ends_at)
        } else {
            format!("{} (ended)", time(s.ends_at))
        };
        t.row(vec![
            s.id.clone(),
            matcher(s.rule.as_deref(), &s.labels),
            ends,
            s.created_by.clone(),
            clip(&s.comment, 60),
        ]);
    }
    t.render()
}

fn time(t: comfydash_wire::Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
