//! Sending one message to one channel: the HTTP call, the channel's verdict on the answer, and
//! bounded retries (errors, 5xx, 429 with its `retry_after`).
//!
//! Channel URLs come from the operator's configuration, never from API callers, so they are sent
//! with a plain client rather than the outbound guard: like the ComfyUI servers, an alert receiver
//! may well be on a private network (a local relay, an internal chat bridge) and the guard's allow
//! list would then have to open that network to client-supplied webhook URLs too. Redirects are
//! not followed (a POST body must not wander), and no error text carries a URL: Slack and Discord
//! webhook URLs and the Telegram token are secrets.

use std::time::{Duration, Instant};

use comfydash_wire::{AlertDeliveryStatus, ChannelResult};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::config::AlertsConfig;
use super::message::Message;
use super::{discord, slack, telegram, webhook};
use crate::store::alerts::DeliveryOutcome;

const USER_AGENT: &str = concat!("comfydash/", env!("CARGO_PKG_VERSION"));
/// Most of an answer read; receivers only need to say yes or no.
const MAX_ANSWER: usize = 64 * 1024;

/// One HTTP request to make.
pub struct Attempt {
    /// Full URL (secret).
    pub url: String,
    /// JSON body.
    pub body: serde_json::Value,
}

/// A channel's answer.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body, at most 64 KiB.
    pub body: Vec<u8>,
}

/// What the channel's answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted.
    Sent,
    /// Try again, after `after` if the channel said.
    Retry {
        /// The channel's `retry_after`.
        after: Option<Duration>,
        /// What went wrong.
        reason: String,
    },
    /// Send the plain-text form instead (Telegram could not parse our HTML).
    Plain(String),
    /// Give up.
    Fail(String),
}

/// A configured channel.
#[derive(Debug, Clone)]
pub enum Channel {
    /// Slack incoming webhook.
    Slack(slack::Slack),
    /// Discord webhook.
    Discord(discord::Discord),
    /// Telegram bot.
    Telegram(telegram::Telegram),
    /// Generic JSON webhook.
    Webhook(webhook::Webhook),
}

impl Channel {
    /// Every channel the configuration sets, in a fixed order.
    pub fn from_config(cfg: &AlertsConfig) -> Vec<Channel> {
        let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let mut out = Vec::new();
        if let Some(url) = set(&cfg.slack_webhook_url) {
            out.push(Channel::Slack(slack::Slack { url }));
        }
        if let Some(url) = set(&cfg.discord_webhook_url) {
            out.push(Channel::Discord(discord::Discord { url }));
        }
        if let (Some(token), Some(chat_id)) =
            (set(&cfg.telegram_bot_token), set(&cfg.telegram_chat_id))
        {
            out.push(Channel::Telegram(telegram::Telegram {
                api: cfg.telegram_api_url.trim_end_matches('/').to_string(),
                token,
                chat_id,
            }));
        }
        if let Some(url) = set(&cfg.webhook_url) {
            out.push(Channel::Webhook(webhook::Webhook { url }));
        }
        out
    }

    /// `slack`, `discord`, `telegram` or `webhook`.
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Slack(_) => "slack",
            Channel::Discord(_) => "discord",
            Channel::Telegram(_) => "telegram",
            Channel::Webhook(_) => "webhook",
        }
    }

    fn attempt(&self, msg: &Message, plain: bool) -> Attempt {
        match self {
            Channel::Slack(c) => c.attempt(msg),
            Channel::Discord(c) => c.attempt(msg),
            Channel::Telegram(c) => c.attempt(msg, plain),
            Channel::Webhook(c) => c.attempt(msg),
        }
    }

    fn judge(&self, a: &Answer) -> Outcome {
        match self {
            Channel::Slack(_) => slack::judge(a),
            Channel::Discord(_) => discord::judge(a),
            Channel::Telegram(_) => telegram::judge(a),
            Channel::Webhook(_) => judge_status(a),
        }
    }
}

/// The verdict from the status alone: 2xx sent; 408, 429 and 5xx retried; other 4xx fail.
pub fn judge_status(a: &Answer) -> Outcome {
    match a.status {
        200..=299 => Outcome::Sent,
        408 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after_header(&a.headers),
            reason: format!("HTTP {}{}", a.status, snippet(&a.body)),
        },
        s => Outcome::Fail(format!("HTTP {s}{}", snippet(&a.body))),
    }
}

/// `Retry-After` in seconds (an HTTP date is ignored: the backoff applies instead).
pub fn retry_after_header(h: &HeaderMap) -> Option<Duration> {
    let v = h
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()?;
    secs(v)
}

/// A non-negative number of seconds as a duration.
pub fn secs(v: f64) -> Option<Duration> {
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v.min(86_400.0)))
}

/// `: <first 200 characters of the body>` when there is a body.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let cut: String = text.chars().take(200).collect();
    format!(": {cut}")
}

/// Sends messages to channels with bounded retries.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    max_wait: Duration,
}

impl Sender {
    /// A sender with the configured time limits and retries.
    pub fn new(cfg: &AlertsConfig) -> Result<Sender, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .build()?;
        Ok(Sender {
            http,
            timeout: cfg.timeout,
            retries: cfg.retries,
            backoff: cfg.retry_backoff,
            max_wait: cfg.retry_max_wait,
        })
    }

    /// Sends `msg` to `ch`: retries errors, 5xx and 429s up to `alerts.retries` times, honouring
    /// `retry_after` up to `alerts.retry_max_wait`; Telegram's plain-text fallback is one more try.
    pub async fn deliver(&self, ch: &Channel, msg: &Message) -> DeliveryOutcome {
        let mut plain = false;
        let mut attempts = 0;
        let mut retries = 0;
        let mut last = DeliveryOutcome {
            status: AlertDeliveryStatus::Failed,
            attempts: 0,
            status_code: None,
            error: None,
            latency_ms: None,
        };
        loop {
            attempts += 1;
            let attempt = ch.attempt(msg, plain);
            let started = Instant::now();
            let result = self.post(&attempt).await;
            last.attempts = attempts;
            last.latency_ms = Some(started.elapsed().as_millis() as u64);
            let outcome = match result {
                Ok(answer) => {
                    last.status_code = Some(answer.status);
                    ch.judge(&answer)
                }
                Err(e) => {
                    last.status_code = None;
                    Outcome::Retry {
                        after: None,
                        reason: e,
                    }
                }
            };
            let (after, reason) = match outcome {
                Outcome::Sent => {
                    last.status = AlertDeliveryStatus::Sent;
                    last.error = None;
                    return last;
                }
                Outcome::Fail(reason) => {
                    last.error = Some(reason);
                    return last;
                }
                Outcome::Plain(reason) if !plain => {
                    tracing::warn!(channel = ch.name(), %reason, "sending the plain-text form instead");
                    plain = true;
                    continue;
                }
                Outcome::Plain(reason) => {
                    last.error = Some(reason);
                    return last;
                }
                Outcome::Retry { after, reason } => (after, reason),
            };
            last.error = Some(reason);
            if retries >= self.retries {
                return last;
            }
            retries += 1;
            let wait =
                after.unwrap_or_else(|| self.backoff.saturating_mul(1 << (retries - 1).min(16)));
            if wait > self.max_wait {
                last.error = Some(format!(
                    "{}; asked to wait {} s, more than alerts.retry_max_wait",
                    last.error.unwrap_or_default(),
                    wait.as_secs()
                ));
                return last;
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn post(&self, a: &Attempt) -> Result<Answer, String> {
        let exchange = async {
            let mut resp = self
                .http
                .post(&a.url)
                .json(&a.body)
                .send()
                .await
                .map_err(describe)?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(describe)? {
                let room = MAX_ANSWER - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() == MAX_ANSWER {
                    break;
                }
            }
            Ok(Answer {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {} ms", self.timeout.as_millis())))
    }
}

/// The error's causes without its URL (which holds the channel's secret).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// The API's view of an outcome.
pub fn result_of(channel: &str, o: &DeliveryOutcome) -> ChannelResult {
    ChannelResult {
        channel: channel.into(),
        ok: o.status == AlertDeliveryStatus::Sent,
        attempts: o.attempts,
        status_code: o.status_code,
        error: o.error.clone(),
        latency_ms: o.latency_ms,
    }
}
