//! What an attempt's result means: delivered, try again (when), or stop; the backoff schedule
//! with jitter and `Retry-After`.

use std::time::Duration;

use crate::config::WebhookConfig;
use crate::outbound::{OutboundError, Posted};
use crate::store::WebhookOutcome;

/// How one attempt ended, before the schedule is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// Worth another try; the receiver may have said when.
    Retry {
        /// From `Retry-After`.
        after: Option<Duration>,
    },
    /// Final: another try would get the same answer.
    Stop,
}

/// Judges an answer: 2xx delivered; 408, 429, 5xx retried; redirects and other statuses final.
pub fn judge_answer(p: &Posted, now: chrono::DateTime<chrono::Utc>) -> (Verdict, Option<String>) {
    match p.status {
        200..=299 => (Verdict::Delivered, None),
        408 | 429 | 500..=599 => {
            let after = p
                .headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now));
            (
                Verdict::Retry { after },
                Some(format!("HTTP {}: will retry", p.status)),
            )
        }
        300..=399 => (
            Verdict::Stop,
            Some(format!(
                "HTTP {}: redirects are not followed; configure the final URL",
                p.status
            )),
        ),
        410 => (
            Verdict::Stop,
            Some("HTTP 410: the receiver asked to stop".into()),
        ),
        s => (
            Verdict::Stop,
            Some(format!("HTTP {s}: not retried (only 408, 429 and 5xx are)")),
        ),
    }
}

/// Judges a request that got no answer: network trouble is retried; a refused URL is final.
pub fn judge_error(e: &OutboundError) -> Verdict {
    match e {
        OutboundError::Timeout { .. }
        | OutboundError::Connect { .. }
        | OutboundError::Http { .. }
        | OutboundError::TooLarge { .. }
        | OutboundError::Status { .. } => Verdict::Retry { after: None },
        OutboundError::Config { .. }
        | OutboundError::InvalidUrl { .. }
        | OutboundError::Scheme { .. }
        | OutboundError::Refused { .. }
        | OutboundError::InvalidHeader { .. }
        | OutboundError::TooManyRedirects { .. } => Verdict::Stop,
    }
}

/// `Retry-After` as seconds or an HTTP date; `None` when unreadable.
pub fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let ms = (at.timestamp_millis() - now.timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

/// The wait after the `n`th attempt of a round (0-based): the schedule's step (the last one
/// repeats) times a jitter in [0.8, 1.2), so receivers back from an outage are not hit in step.
pub fn backoff(schedule: &[Duration], n: u32, jitter: f64) -> Duration {
    let step = schedule
        .get(n as usize)
        .or(schedule.last())
        .copied()
        .unwrap_or(Duration::from_secs(5));
    step.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// Applies the schedule to a verdict: when to try again, or `Dead` once past `max_age`.
pub fn decide(
    verdict: &Verdict,
    cfg: &WebhookConfig,
    round_attempts: u32,
    round_started_ms: i64,
    now_ms: i64,
    jitter: f64,
) -> WebhookOutcome {
    match verdict {
        Verdict::Delivered => WebhookOutcome::Delivered,
        Verdict::Stop => WebhookOutcome::Failed,
        Verdict::Retry { after } => {
            let mut wait = backoff(&cfg.schedule, round_attempts, jitter);
            if let Some(a) = after {
                wait = wait.max((*a).min(cfg.max_retry_after));
            }
            let at = now_ms + wait.as_millis() as i64;
            if at > round_started_ms + cfg.max_age.as_millis() as i64 {
                WebhookOutcome::Dead
            } else {
                WebhookOutcome::RetryAt(at)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posted(status: u16, retry_after: Option<&str>) -> Posted {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(v) = retry_after {
            headers.insert(reqwest::header::RETRY_AFTER, v.parse().unwrap());
        }
        Posted {
            status,
            headers,
            body: Vec::new(),
            latency: Duration::ZERO,
        }
    }

    #[test]
    fn default_schedule_backs_off_then_repeats_the_last_step() {
        let s = WebhookConfig::default().schedule;
        let secs: Vec<u64> = (0..9).map(|n| backoff(&s, n, 0.5).as_secs()).collect();
        assert_eq!(secs, [5, 30, 120, 600, 1800, 3600, 10800, 10800, 10800]);
        assert_eq!(backoff(&s, 0, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(&s, 0, 1.0), Duration::from_secs(6));
    }

    #[test]
    fn default_schedule_dies_after_about_a_day() {
        let cfg = WebhookConfig::default();
        let (mut now, mut n) = (0i64, 0u32);
        let retry = Verdict::Retry { after: None };
        loop {
            match decide(&retry, &cfg, n, 0, now, 0.5) {
                WebhookOutcome::RetryAt(at) => {
                    now = at;
                    n += 1;
                }
                WebhookOutcome::Dead => break,
                other => panic!("{other:?}"),
            }
        }
        let hours = now as f64 / 3_600_000.0;
        assert!((21.0..24.0).contains(&hours), "last attempt at {hours} h");
        assert_eq!(n, 13, "13 retries after the first attempt");
    }

    #[test]
    fn statuses() {
        let now = chrono::Utc::now();
        let v = |s| judge_answer(&posted(s, None), now).0;
        assert_eq!(v(200), Verdict::Delivered);
        assert_eq!(v(204), Verdict::Delivered);
        for s in [408, 429, 500, 502, 503] {
            assert_eq!(v(s), Verdict::Retry { after: None }, "{s}");
        }
        for s in [301, 302, 400, 401, 404, 410, 422] {
            assert_eq!(v(s), Verdict::Stop, "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_date_and_cap() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            judge_answer(&posted(429, Some("120")), now).0,
            Verdict::Retry {
                after: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        let cfg = WebhookConfig::default();
        let huge = Verdict::Retry {
            after: Some(Duration::from_secs(86_400 * 7)),
        };
        assert_eq!(
            decide(&huge, &cfg, 0, 0, 0, 0.5),
            WebhookOutcome::RetryAt(3_600_000)
        );
        let short = Verdict::Retry {
            after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            decide(&short, &cfg, 0, 0, 0, 0.5),
            WebhookOutcome::RetryAt(5_000)
        );
    }

    #[test]
    fn refused_urls_stop_and_network_errors_retry() {
        let refused = OutboundError::Refused {
            host: "169.254.169.254".into(),
            reason: "is a metadata address".into(),
        };
        assert_eq!(judge_error(&refused), Verdict::Stop);
        let timeout = OutboundError::Timeout {
            after: Duration::from_secs(1),
        };
        assert_eq!(judge_error(&timeout), Verdict::Retry { after: None });
    }
}
