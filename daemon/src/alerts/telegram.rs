//! Telegram `sendMessage` with HTML parse mode: `& < >` escaped, at most 4096 characters, and
//! the plain-text form (no parse mode) when Telegram answers 400 about the entities.

use serde_json::{Value, json};

use super::deliver::{Answer, Attempt, Outcome, judge_status, secs, snippet};
use super::message::{Line, Markup, Message, escape_amp_lt_gt as escape, fit, plain};

/// Telegram's limit on a message's text.
pub const LIMIT: usize = 4096;

/// A Telegram bot and the chat it writes to.
#[derive(Debug, Clone)]
pub struct Telegram {
    /// Bot API base URL, no trailing slash.
    pub api: String,
    /// Bot token (secret; part of the URL path).
    pub token: String,
    /// Chat id or `@channel`.
    pub chat_id: String,
}

const MARKUP: Markup = Markup {
    escape,
    bold: ("<b>", "</b>"),
    italic: ("<i>", "</i>"),
};

fn render(l: &Line) -> String {
    l.render(&MARKUP)
}

impl Telegram {
    /// The request for `msg`: HTML, or plain text after Telegram refused the HTML.
    pub fn attempt(&self, msg: &Message, plain_text: bool) -> Attempt {
        let lines = msg.lines();
        let mut body = if plain_text {
            json!({ "chat_id": self.chat_id, "text": fit(msg.headline(), &lines, LIMIT, &plain) })
        } else {
            let head = format!("<b>{}</b>", escape(&msg.headline()));
            json!({
                "chat_id": self.chat_id,
                "text": fit(head, &lines, LIMIT, &render),
                "parse_mode": "HTML",
            })
        };
        body["disable_web_page_preview"] = Value::Bool(true);
        Attempt {
            url: format!("{}/bot{}/sendMessage", self.api, self.token),
            body,
        }
    }
}

/// `{"ok":true}` sent; 429 waits `parameters.retry_after`; a 400 about entities falls back to plain text.
pub fn judge(a: &Answer) -> Outcome {
    let body: Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let description = body["description"].as_str().unwrap_or("").to_string();
    match a.status {
        200..=299 if body["ok"] == Value::Bool(true) => Outcome::Sent,
        200..=299 => Outcome::Fail(format!("Telegram did not answer ok{}", snippet(&a.body))),
        429 => Outcome::Retry {
            after: body["parameters"]["retry_after"].as_f64().and_then(secs),
            reason: format!("HTTP 429: {description}"),
        },
        400 if description.to_ascii_lowercase().contains("entit") => {
            Outcome::Plain(format!("HTTP 400: {description}"))
        }
        _ => match judge_status(a) {
            Outcome::Retry { after, .. } => Outcome::Retry {
                after,
                reason: format!("HTTP {}: {description}", a.status),
            },
            _ => Outcome::Fail(format!("HTTP {}: {description}", a.status)),
        },
    }
}
