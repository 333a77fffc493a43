//! Slack incoming webhooks: `{"text": ...}` in Slack's mrkdwn; Slack answers `200 ok` in plain
//! text, and anything else (even a 200 with another body) is a failure.

use serde_json::json;

use super::deliver::{Answer, Attempt, Outcome, judge_status, snippet};
use super::message::{Line, Markup, Message, escape_amp_lt_gt as escape, fit};

/// Slack accepts far more, but a longer alert message is unreadable.
const LIMIT: usize = 4000;

/// A Slack incoming webhook.
#[derive(Debug, Clone)]
pub struct Slack {
    /// The webhook URL (secret).
    pub url: String,
}

const MARKUP: Markup = Markup {
    escape,
    bold: ("*", "*"),
    italic: ("_", "_"),
};

fn render(l: &Line) -> String {
    l.render(&MARKUP)
}

impl Slack {
    /// The request for `msg`.
    pub fn attempt(&self, msg: &Message) -> Attempt {
        let head = format!("*{}*", escape(&msg.headline()));
        Attempt {
            url: self.url.clone(),
            body: json!({ "text": fit(head, &msg.lines(), LIMIT, &render) }),
        }
    }
}

/// `200 ok` is the only success.
pub fn judge(a: &Answer) -> Outcome {
    match judge_status(a) {
        Outcome::Sent => {
            let body = String::from_utf8_lossy(&a.body);
            let body = body.trim();
            // Workflow webhooks answer JSON `{"ok":true}`; incoming webhooks answer `ok`.
            let json_ok = serde_json::from_str::<serde_json::Value>(body)
                .is_ok_and(|v| v["ok"] == serde_json::Value::Bool(true));
            if body == "ok" || json_ok {
                Outcome::Sent
            } else {
                Outcome::Fail(format!("Slack did not answer ok{}", snippet(&a.body)))
            }
        }
        other => other,
    }
}
