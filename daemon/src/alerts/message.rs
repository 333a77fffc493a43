//! One message: what every channel says about one evaluation's announcements, in plain
//! pieces each channel formats and escapes its own way, and length limits applied without
//! cutting an escape sequence or a tag in half.

use comfydash_wire::{Alert, AlertNotification, Severity, Timestamp};
use serde::{Deserialize, Serialize};

use super::evaluate::human_duration;
use super::state::Change;

/// A message as queued for the channels (stored as JSON in the delivery queue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `alerts.name`.
    pub source: String,
    /// A test message, not about alerts.
    #[serde(default)]
    pub test: bool,
    /// Alerts and how each appears.
    pub items: Vec<(Alert, Change)>,
    /// When it was made.
    pub at: Timestamp,
}

/// One line of a message, unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Emoji marker.
    pub icon: &'static str,
    /// `CRITICAL`, `STILL FIRING`, `RESOLVED`, ...
    pub label: String,
    /// The alert's summary.
    pub text: String,
    /// When, how long.
    pub detail: String,
}

/// How a channel marks up a line: its escape and its bold and italic delimiters.
pub struct Markup {
    /// Escapes text for the channel.
    pub escape: fn(&str) -> String,
    /// Around the label.
    pub bold: (&'static str, &'static str),
    /// Around the detail.
    pub italic: (&'static str, &'static str),
}

impl Line {
    /// The line in a channel's markup: `icon label text (detail)`, or `icon text` without a label.
    pub fn render(&self, m: &Markup) -> String {
        let e = m.escape;
        if self.label.is_empty() {
            return format!("{} {}", self.icon, e(&self.text));
        }
        format!(
            "{} {}{}{} {} {}({}){}",
            self.icon,
            m.bold.0,
            e(&self.label),
            m.bold.1,
            e(&self.text),
            m.italic.0,
            e(&self.detail),
            m.italic.1
        )
    }
}

/// `& < >` escaped: all that Slack's mrkdwn and Telegram's HTML mode need.
pub fn escape_amp_lt_gt(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Message {
    /// A test message from `source`.
    pub fn test(source: &str) -> Message {
        Message {
            source: source.into(),
            test: true,
            items: Vec::new(),
            at: chrono::Utc::now(),
        }
    }

    /// `firing` when anything in it fires, `resolved` otherwise, or `test`.
    pub fn kind(&self) -> &'static str {
        if self.test {
            "test"
        } else if self.items.iter().any(|(_, c)| *c != Change::Resolved) {
            "firing"
        } else {
            "resolved"
        }
    }

    /// Highest severity among firing alerts; `info` for tests and resolves.
    pub fn severity(&self) -> Severity {
        self.items
            .iter()
            .filter(|(_, c)| *c != Change::Resolved)
            .map(|(a, _)| a.severity)
            .max()
            .unwrap_or(Severity::Info)
    }

    /// Ids of the alerts in it.
    pub fn alert_ids(&self) -> Vec<i64> {
        self.items.iter().map(|(a, _)| a.id).collect()
    }

    /// `comfydash: 2 firing, 1 resolved`.
    pub fn headline(&self) -> String {
        if self.test {
            return format!("{}: test message", self.source);
        }
        let count = |f: &dyn Fn(Change) -> bool| self.items.iter().filter(|(_, c)| f(*c)).count();
        let firing = count(&|c| c != Change::Resolved);
        let resolved = count(&|c| c == Change::Resolved);
        let mut parts = Vec::new();
        if firing > 0 {
            parts.push(format!("{firing} firing"));
        }
        if resolved > 0 {
            parts.push(format!("{resolved} resolved"));
        }
        format!("{}: {}", self.source, parts.join(", "))
    }

    /// One line per alert (a test message has one line of its own).
    pub fn lines(&self) -> Vec<Line> {
        if self.test {
            return vec![Line {
                icon: "🧪",
                label: "TEST".into(),
                text: "Alert channel works: this is a test message from comfydash.".into(),
                detail: format!("sent at {}", clock(self.at)),
            }];
        }
        self.items
            .iter()
            .map(|(a, change)| {
                let since = a.fired_at.unwrap_or(a.started_at);
                match change {
                    Change::Firing => Line {
                        icon: icon(a.severity),
                        label: a.severity.as_str().to_uppercase(),
                        text: a.summary.clone(),
                        detail: format!("since {}", clock(a.started_at)),
                    },
                    Change::Repeat => Line {
                        icon: "🔁",
                        label: format!("STILL FIRING ({})", a.severity.as_str()),
                        text: a.summary.clone(),
                        detail: format!("for {}", elapsed(a.started_at, self.at)),
                    },
                    Change::Resolved => Line {
                        icon: "✅",
                        label: "RESOLVED".into(),
                        text: a.summary.clone(),
                        detail: format!(
                            "after {}",
                            elapsed(since, a.resolved_at.unwrap_or(self.at))
                        ),
                    },
                }
            })
            .collect()
    }

    /// The plain-text form: headline, then one line per alert.
    pub fn plain_lines(&self) -> (String, Vec<String>) {
        let lines = self.lines().into_iter().map(|l| plain(&l)).collect();
        (self.headline(), lines)
    }

    /// The generic webhook's body.
    pub fn notification(&self) -> AlertNotification {
        let (head, lines) = self.plain_lines();
        AlertNotification {
            version: 1,
            source: self.source.clone(),
            status: self.kind().into(),
            severity: self.severity(),
            text: format!("{head}\n{}", lines.join("\n")),
            alerts: self.items.iter().map(|(a, _)| a.clone()).collect(),
            sent_at: self.at,
        }
    }
}

fn icon(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "🚨",
        Severity::Warning => "⚠️",
        Severity::Info => "ℹ️",
    }
}

fn clock(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn elapsed(from: Timestamp, to: Timestamp) -> String {
    human_duration((to - from).to_std().unwrap_or_default())
}

/// Length as the chat services count it (UTF-16 code units: an emoji counts two).
pub fn width(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Joins `head` (already rendered) and the rendered `lines` with newlines within `limit` (as
/// [`width`] counts). Lines that do not fit are dropped and counted in a `… and N more` line; a
/// single line too long has its text cut before rendering, so an escape or a tag is never cut.
pub fn fit(head: String, lines: &[Line], limit: usize, render: &dyn Fn(&Line) -> String) -> String {
    let more = |n: usize| Line {
        icon: "…",
        label: String::new(),
        text: format!("and {n} more"),
        detail: String::new(),
    };
    let mut out = head;
    for (i, line) in lines.iter().enumerate() {
        let rendered = render(line);
        let left = lines.len() - i - 1;
        let reserve = if left > 0 {
            1 + width(&render(&more(left)))
        } else {
            0
        };
        if width(&out) + 1 + width(&rendered) + reserve <= limit {
            out.push('\n');
            out.push_str(&rendered);
            continue;
        }
        // What is left: as much of this line as fits, then the count of the rest.
        let room = limit.saturating_sub(width(&out) + 1 + reserve);
        let mut dropped = lines.len() - i;
        if let Some(part) = cut(line, room, render) {
            out.push('\n');
            out.push_str(&part);
            dropped -= 1;
        }
        if dropped > 0 {
            let note = render(&more(dropped));
            if width(&out) + 1 + width(&note) <= limit {
                out.push('\n');
                out.push_str(&note);
            }
        }
        break;
    }
    out
}

/// `line` rendered with the longest prefix of its text (plus `…`) that fits in `limit`.
pub fn cut(line: &Line, limit: usize, render: &dyn Fn(&Line) -> String) -> Option<String> {
    let chars: Vec<char> = line.text.chars().collect();
    let with = |n: usize| {
        let mut l = line.clone();
        l.text = chars[..n].iter().collect::<String>() + "…";
        render(&l)
    };
    if width(&with(0)) > limit {
        return None;
    }
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if width(&with(mid)) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(with(lo))
}

/// A plain-text rendering of a line.
pub fn plain(l: &Line) -> String {
    match (l.label.is_empty(), l.detail.is_empty()) {
        (true, _) => format!("{} {}", l.icon, l.text),
        (false, true) => format!("{} {} {}", l.icon, l.label, l.text),
        (false, false) => format!("{} {} {} ({})", l.icon, l.label, l.text, l.detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    #[test]
    fn fit_drops_lines_and_never_cuts_an_escape() {
        let html = |l: &Line| format!("<b>{}</b> {}", esc(&l.label), esc(&l.text));
        let lines: Vec<Line> = (0..100)
            .map(|i| Line {
                icon: "",
                label: "X".into(),
                text: format!("line {i} <&>"),
                detail: String::new(),
            })
            .collect();
        let out = fit("head".into(), &lines, 200, &html);
        assert!(width(&out) <= 200);
        assert!(out.ends_with("more"), "{out}");
        let long = vec![Line {
            icon: "",
            label: "X".into(),
            text: "&".repeat(500),
            detail: String::new(),
        }];
        let out = fit("head".into(), &long, 100, &html);
        assert!(width(&out) <= 100 && width(&out) > 90, "{out}");
        assert!(out.ends_with("&amp;…"), "{out}");
    }
}
