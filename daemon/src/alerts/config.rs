//! The `[alerts]` configuration section: channels, timing, and each rule's overrides.
//!
//! Kept here rather than in `config.rs` because only the alerts engine reads it. Channel URLs and
//! the Telegram token are secrets (the token is in the URL path, Slack and Discord webhook URLs are
//! bearer capabilities), so they serialise masked: `comfydash config check` shows that they are set,
//! not what they are.

use std::collections::HashMap;
use std::time::Duration;

use comfydash_wire::Severity;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::duration;

/// Telegram's public Bot API.
pub const DEFAULT_TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Evaluate rules at all (the API still answers when off).
    pub enabled: bool,
    /// Who speaks in messages, to tell several daemons apart.
    pub name: String,
    /// Time between two evaluations of every rule.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// A firing alert is announced again after this long.
    #[serde(with = "duration")]
    pub repeat_interval: Duration,
    /// Send a message when an announced alert resolves.
    pub send_resolved: bool,
    /// Time limit of one HTTP attempt to a channel.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Further attempts after a failed one (errors, 5xx, 429).
    pub retries: u32,
    /// Wait before the first retry when the channel does not say; doubles each time.
    #[serde(with = "duration")]
    pub retry_backoff: Duration,
    /// Longest wait honoured from a 429's `retry_after`; a longer one gives up.
    #[serde(with = "duration")]
    pub retry_max_wait: Duration,
    /// A queued message older than this when its channel gets to it is dropped, not sent late.
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// Slack incoming webhook URL (env `COMFYDASH_SLACK_WEBHOOK_URL`).
    #[serde(serialize_with = "masked_url")]
    pub slack_webhook_url: Option<String>,
    /// Discord webhook URL (env `COMFYDASH_DISCORD_WEBHOOK_URL`).
    #[serde(serialize_with = "masked_url")]
    pub discord_webhook_url: Option<String>,
    /// Telegram bot token (env `COMFYDASH_TELEGRAM_BOT_TOKEN`).
    #[serde(serialize_with = "masked")]
    pub telegram_bot_token: Option<String>,
    /// Telegram chat id (env `COMFYDASH_TELEGRAM_CHAT_ID`).
    pub telegram_chat_id: Option<String>,
    /// Telegram Bot API base URL.
    pub telegram_api_url: String,
    /// Generic JSON webhook URL (env `COMFYDASH_ALERT_WEBHOOK_URL`).
    #[serde(serialize_with = "masked_url")]
    pub webhook_url: Option<String>,
    /// Per-rule overrides.
    pub rules: RulesConfig,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            name: "comfydash".into(),
            interval: Duration::from_secs(10),
            repeat_interval: Duration::from_secs(4 * 3600),
            send_resolved: true,
            timeout: Duration::from_secs(10),
            retries: 2,
            retry_backoff: Duration::from_secs(1),
            retry_max_wait: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            slack_webhook_url: None,
            discord_webhook_url: None,
            telegram_bot_token: None,
            telegram_chat_id: None,
            telegram_api_url: DEFAULT_TELEGRAM_API_URL.into(),
            webhook_url: None,
            rules: RulesConfig::default(),
        }
    }
}

/// `[alerts.rules.<name>]`: every field optional; unset ones take the rule's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleOverride {
    /// Evaluate this rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How long the condition must hold before the alert fires.
    #[serde(
        rename = "for",
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub hold: Option<Duration>,
    /// Severity of its alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The rule's threshold (pending jobs, failure %, free disk %).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Time window of rate rules; time without a finished job for `stuck`.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    /// Least number of events in the window before a rate is judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_events: Option<u64>,
}

/// `[alerts.rules]`: one table per rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// A ComfyUI server is down (one alert per server).
    pub server_down: RuleOverride,
    /// No ComfyUI server is up.
    pub all_servers_down: RuleOverride,
    /// `/api/health` says degraded.
    pub degraded: RuleOverride,
    /// Pending jobs at or above the threshold (default `queue.high_at`).
    pub queue_high: RuleOverride,
    /// Pending work and no job finished for `window`.
    pub stuck: RuleOverride,
    /// Failed jobs over the window, percent.
    pub job_failure_rate: RuleOverride,
    /// Failed webhook deliveries over the window, percent.
    pub webhook_failure_rate: RuleOverride,
    /// The watchdog marked a server stuck.
    pub server_stuck: RuleOverride,
    /// Free space on the data dir's disk below the threshold, percent.
    pub disk_low: RuleOverride,
}

impl AlertsConfig {
    /// Applies the channel variables from the environment (a non-empty value wins over the file).
    pub fn apply_env(&mut self, env: &HashMap<String, String>) {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let pairs: [(&str, &mut Option<String>); 5] = [
            ("COMFYDASH_SLACK_WEBHOOK_URL", &mut self.slack_webhook_url),
            (
                "COMFYDASH_DISCORD_WEBHOOK_URL",
                &mut self.discord_webhook_url,
            ),
            ("COMFYDASH_TELEGRAM_BOT_TOKEN", &mut self.telegram_bot_token),
            ("COMFYDASH_TELEGRAM_CHAT_ID", &mut self.telegram_chat_id),
            ("COMFYDASH_ALERT_WEBHOOK_URL", &mut self.webhook_url),
        ];
        for (key, slot) in pairs {
            if let Some(v) = get(key) {
                *slot = Some(v.to_string());
            }
        }
    }

    /// Checks what serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, url) in [
            ("alerts.slack_webhook_url", &self.slack_webhook_url),
            ("alerts.discord_webhook_url", &self.discord_webhook_url),
            ("alerts.webhook_url", &self.webhook_url),
            (
                "alerts.telegram_api_url",
                &Some(self.telegram_api_url.clone()),
            ),
        ] {
            if let Some(u) = url.as_deref().filter(|u| !u.is_empty()) {
                check_url(key, u)?;
            }
        }
        let token = self.telegram_bot_token.as_deref().unwrap_or("");
        let chat = self.telegram_chat_id.as_deref().unwrap_or("");
        if token.is_empty() != chat.is_empty() {
            return Err(
                "alerts.telegram_bot_token and alerts.telegram_chat_id go together: set both or neither"
                    .into(),
            );
        }
        if token.contains(['/', '?', '#']) || token.chars().any(char::is_whitespace) {
            return Err("alerts.telegram_bot_token is not a bot token".into());
        }
        if self.interval.is_zero() || self.timeout.is_zero() {
            return Err("alerts.interval and alerts.timeout must be above zero".into());
        }
        if self.retries > 10 {
            return Err("alerts.retries must be at most 10".into());
        }
        let r = &self.rules;
        for (name, o, max) in [
            ("queue_high", &r.queue_high, f64::MAX),
            ("job_failure_rate", &r.job_failure_rate, 100.0),
            ("webhook_failure_rate", &r.webhook_failure_rate, 100.0),
            ("disk_low", &r.disk_low, 100.0),
        ] {
            if let Some(t) = o.threshold
                && !(t > 0.0 && t <= max)
            {
                return Err(format!(
                    "alerts.rules.{name}.threshold must be above 0 and at most {max}"
                ));
            }
        }
        for (name, o) in [
            ("stuck", &r.stuck),
            ("job_failure_rate", &r.job_failure_rate),
            ("webhook_failure_rate", &r.webhook_failure_rate),
        ] {
            if o.window.is_some_and(|w| w.is_zero()) {
                return Err(format!("alerts.rules.{name}.window must be above zero"));
            }
        }
        Ok(())
    }
}

fn check_url(key: &str, raw: &str) -> Result<(), String> {
    let u = url::Url::parse(raw).map_err(|e| format!("{key}: not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{key}: must be http or https"));
    }
    Ok(())
}

/// A URL shown as scheme and host only: the path and query of a webhook URL are its secret.
fn masked_url<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v.as_deref().map(url::Url::parse) {
        None => s.serialize_none(),
        Some(Ok(u)) => s.serialize_some(&format!(
            "{}://{}/***",
            u.scheme(),
            u.host_str().unwrap_or("")
        )),
        Some(Err(_)) => s.serialize_some("***"),
    }
}

fn masked<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        None => s.serialize_none(),
        Some(_) => s.serialize_some("***"),
    }
}

/// Serde for optional durations (milliseconds or strings with a unit).
mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_rule_tables_and_env() {
        let c: AlertsConfig = toml::from_str(
            "interval = \"5s\"\n[rules.server_down]\nfor = \"1m\"\n[rules.disk_low]\nthreshold = 5\nseverity = \"critical\"\n",
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.rules.server_down.hold, Some(Duration::from_secs(60)));
        assert_eq!(c.rules.server_down.severity, None);
        assert_eq!(c.rules.disk_low.severity, Some(Severity::Critical));
        let mut c = c;
        let env: HashMap<String, String> = [
            ("COMFYDASH_TELEGRAM_BOT_TOKEN", "123:abc"),
            ("COMFYDASH_TELEGRAM_CHAT_ID", "-100"),
            (
                "COMFYDASH_SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/secret",
            ),
        ]
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
        c.apply_env(&env);
        c.validate().unwrap();
        let shown = serde_json::to_value(&c).unwrap();
        assert_eq!(shown["slack_webhook_url"], "https://hooks.slack.com/***");
        assert_eq!(shown["telegram_bot_token"], "***");
        c.telegram_chat_id = None;
        assert!(c.validate().is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |t: &str| toml::from_str::<AlertsConfig>(t).map_err(|e| e.to_string());
        assert!(bad("[rules.server_dwn]\nfor = 1").is_err());
        let c: AlertsConfig = toml::from_str("[rules.job_failure_rate]\nthreshold = 150").unwrap();
        assert!(c.validate().is_err());
        let c: AlertsConfig = toml::from_str("slack_webhook_url = \"ftp://x\"").unwrap();
        assert!(c.validate().is_err());
    }
}
