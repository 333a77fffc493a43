//! Discord webhooks: a short `content` line and one embed per severity (plus one for resolves),
//! coloured as the quick-start's clients did (info 3447003, warning 16776960, critical 16711680).
//! Discord's limits: content 2000 characters, embed title 256, description 4096, all embeds 6000.

use comfydash_wire::Severity;
use serde_json::{Value, json};

use super::deliver::{Answer, Attempt, Outcome, judge_status, retry_after_header, secs, snippet};
use super::message::{Line, Markup, Message, fit, width};
use super::state::Change;

const CONTENT_LIMIT: usize = 2000;
const DESCRIPTION_LIMIT: usize = 4096;
const EMBEDS_LIMIT: usize = 6000;
/// Green, for resolves.
pub const RESOLVED_COLOUR: u32 = 3_066_993;

/// A Discord webhook.
#[derive(Debug, Clone)]
pub struct Discord {
    /// The webhook URL (secret).
    pub url: String,
}

/// The embed colour of a severity.
pub fn colour(s: Severity) -> u32 {
    match s {
        Severity::Info => 3_447_003,
        Severity::Warning => 16_776_960,
        Severity::Critical => 16_711_680,
    }
}

/// Backslash before Discord's inline markdown characters, so names cannot format the message or
/// make links (lines never start with a name, so `>` and `#` need no escape).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const MARKUP: Markup = Markup {
    escape,
    bold: ("**", "**"),
    italic: ("*", "*"),
};

fn render(l: &Line) -> String {
    l.render(&MARKUP)
}

impl Discord {
    /// The request for `msg`.
    pub fn attempt(&self, msg: &Message) -> Attempt {
        let lines = msg.lines();
        // Groups: firing alerts by severity, worst first, then resolves; a test is one info group.
        let mut groups: Vec<(String, u32, Vec<Line>)> = Vec::new();
        if msg.test {
            groups.push(("Test message".into(), colour(Severity::Info), lines));
        } else {
            for sev in [Severity::Critical, Severity::Warning, Severity::Info] {
                let g: Vec<Line> = msg
                    .items
                    .iter()
                    .zip(&lines)
                    .filter(|((a, c), _)| *c != Change::Resolved && a.severity == sev)
                    .map(|(_, l)| l.clone())
                    .collect();
                if !g.is_empty() {
                    let title = format!("{} — {} firing", sev.as_str().to_uppercase(), g.len());
                    groups.push((title, colour(sev), g));
                }
            }
            let r: Vec<Line> = msg
                .items
                .iter()
                .zip(&lines)
                .filter(|((_, c), _)| *c == Change::Resolved)
                .map(|(_, l)| l.clone())
                .collect();
            if !r.is_empty() {
                groups.push((format!("Resolved — {}", r.len()), RESOLVED_COLOUR, r));
            }
        }
        let titles: usize = groups.iter().map(|(t, _, _)| width(t)).sum();
        let share = EMBEDS_LIMIT.saturating_sub(titles) / groups.len().max(1);
        let embeds: Vec<Value> = groups
            .iter()
            .map(|(title, colour, lines)| {
                json!({
                    "title": title,
                    "description": fit(String::new(), lines, share.min(DESCRIPTION_LIMIT), &render).trim_start(),
                    "color": colour,
                    "timestamp": msg.at.to_rfc3339(),
                })
            })
            .collect();
        let content = fit(
            format!("**{}**", escape(&msg.headline())),
            &[],
            CONTENT_LIMIT,
            &render,
        );
        Attempt {
            url: self.url.clone(),
            body: json!({
                "content": content,
                "embeds": embeds,
                // Names in alerts must never ping anyone.
                "allowed_mentions": {"parse": []},
            }),
        }
    }
}

/// 2xx sent; a 429 carries `retry_after` (seconds, fractional) in its JSON body.
pub fn judge(a: &Answer) -> Outcome {
    if a.status == 429 {
        let body: Value = serde_json::from_slice(&a.body).unwrap_or_default();
        let after = body["retry_after"]
            .as_f64()
            .and_then(secs)
            .or_else(|| retry_after_header(&a.headers));
        return Outcome::Retry {
            after,
            reason: format!("HTTP 429{}", snippet(&a.body)),
        };
    }
    judge_status(a)
}
