//! The webhook outbox: one event per terminal job with a webhook, written in the transaction of
//! the job's end, and every delivery attempt. Counters `webhooks_*` move in the same
//! transactions: each event is counted once, under its current outcome
//! (`total = pending + delivered + failed`, dead events counted as failed).

use comfydash_wire::{JobId, WebhookAttempt, WebhookEvent, WebhookEventType, WebhookStatus};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Store, StoreError, bump, now_ms};

/// An event to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    /// The `webhook-id`.
    pub id: String,
    /// The job it reports.
    pub job_id: String,
    /// Where it goes.
    pub url: String,
    /// `host:port` of the URL, the key of the per-host limit.
    pub host: String,
    /// Event type.
    pub kind: WebhookEventType,
    /// The JSON body, outputs not inlined.
    pub payload: String,
    /// Fill each output's `base64` from its file at send time.
    pub inline_outputs: bool,
    /// Creation time (ms); the first attempt is due then.
    pub at_ms: i64,
}

/// An event due for an attempt.
#[derive(Debug, Clone)]
pub struct DueWebhook {
    /// The `webhook-id`.
    pub id: String,
    /// The job it reports.
    pub job_id: String,
    /// Where it goes.
    pub url: String,
    /// Per-host limit key.
    pub host: String,
    /// The JSON body, outputs not inlined.
    pub payload: String,
    /// Fill outputs' `base64` at send time.
    pub inline_outputs: bool,
    /// Changes when an operator redelivers or replays; an attempt's result only moves the state
    /// of the generation it was made for.
    pub generation: i64,
    /// Attempts since the event was created, redelivered or replayed.
    pub round_attempts: u32,
    /// When that round began (ms): the schedule and `max_age` count from here.
    pub round_started_ms: i64,
    /// When the attempt was due (ms).
    pub due_ms: i64,
}

/// What an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// 2xx.
    Delivered,
    /// Try again at this time (ms).
    RetryAt(i64),
    /// Stop: the receiver or the outbound rules said no.
    Failed,
    /// Stop: retried until `max_age`.
    Dead,
}

/// One finished attempt to record.
#[derive(Debug, Clone)]
pub struct WebhookAttemptRecord {
    /// The event.
    pub event_id: String,
    /// The generation it was made for.
    pub generation: i64,
    /// When it was sent (ms).
    pub at_ms: i64,
    /// HTTP status, if any answer came.
    pub status_code: Option<u16>,
    /// Milliseconds to the end of the answer.
    pub latency_ms: Option<u64>,
    /// First bytes of the answer.
    pub response_head: Option<String>,
    /// What went wrong.
    pub error: Option<String>,
    /// The decision.
    pub outcome: WebhookOutcome,
}

/// Filters of `GET /api/webhooks`.
#[derive(Debug, Clone, Default)]
pub struct WebhookQuery {
    /// Only these states (empty = all).
    pub statuses: Vec<WebhookStatus>,
    /// Only this job's events.
    pub job_id: Option<String>,
    /// Most events.
    pub limit: usize,
}

/// Writes a new pending event; run inside the transaction of the job's terminal transition.
pub fn enqueue(conn: &Connection, ev: &NewWebhookEvent) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_events(id, job_id, url, host, type, payload, inline_outputs, status, \
         round_started_at, next_attempt_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8, ?8, ?8)",
    )?
    .execute(params![
        ev.id,
        ev.job_id,
        ev.url,
        ev.host,
        ev.kind.as_str(),
        ev.payload,
        ev.inline_outputs,
        ev.at_ms
    ])?;
    bump(conn, &[("webhooks_total", 1), ("webhooks_pending", 1)])
}

fn parse<T: std::str::FromStr<Err = String>>(idx: usize, s: &str) -> rusqlite::Result<T> {
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })
}

fn ts(ms: i64) -> comfydash_wire::Timestamp {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The counter an event in `status` is counted under.
fn counter(status: WebhookStatus) -> &'static str {
    match status {
        WebhookStatus::Pending => "webhooks_pending",
        WebhookStatus::Delivered => "webhooks_delivered",
        WebhookStatus::Failed | WebhookStatus::Dead => "webhooks_failed",
    }
}

const EVENT_COLUMNS: &str = "id, job_id, url, type, status, attempts, next_attempt_at, created_at, \
    updated_at, delivered_at, last_status_code, last_error";

fn row_to_event(r: &Row) -> rusqlite::Result<WebhookEvent> {
    let status: WebhookStatus = parse(4, &r.get::<_, String>(4)?)?;
    let next: i64 = r.get(6)?;
    Ok(WebhookEvent {
        id: r.get(0)?,
        job_id: JobId(r.get(1)?),
        url: r.get(2)?,
        kind: parse(3, &r.get::<_, String>(3)?)?,
        status,
        attempt_count: r.get(5)?,
        next_attempt_at: (status == WebhookStatus::Pending).then(|| ts(next)),
        created_at: ts(r.get(7)?),
        updated_at: ts(r.get(8)?),
        delivered_at: r.get::<_, Option<i64>>(9)?.map(ts),
        last_status_code: r.get(10)?,
        last_error: r.get(11)?,
        attempts: Vec::new(),
    })
}

/// Fills each event's attempts, oldest first.
fn with_attempts(c: &Connection, events: &mut [WebhookEvent]) -> Result<(), StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT at, status_code, latency_ms, response_head, error FROM webhook_attempts \
         WHERE event_id = ?1 ORDER BY id",
    )?;
    for ev in events {
        let rows = stmt.query_map([&ev.id], |r| {
            Ok(WebhookAttempt {
                at: ts(r.get(0)?),
                status_code: r.get(1)?,
                latency_ms: r.get::<_, Option<i64>>(2)?.map(|v| v.max(0) as u64),
                response: r.get(3)?,
                error: r.get(4)?,
            })
        })?;
        ev.attempts = rows.collect::<Result<_, _>>()?;
    }
    Ok(())
}

fn load_event(c: &Connection, id: &str) -> Result<WebhookEvent, StoreError> {
    let mut ev = c
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE id = ?1"
        ))?
        .query_row([id], row_to_event)
        .optional()?
        .ok_or_else(|| StoreError::Corrupt(format!("webhook event {id} vanished")))?;
    with_attempts(c, std::slice::from_mut(&mut ev))?;
    Ok(ev)
}

impl Store {
    /// Puts an event in the outbox outside a job transition (benchmarks, tools).
    pub async fn enqueue_webhook(&self, ev: NewWebhookEvent) -> Result<(), StoreError> {
        self.write(move |c| enqueue(c, &ev)).await
    }

    /// Pending events due by `now_ms`, oldest due first, leaving out events in `busy` and
    /// events for hosts in `full_hosts` (so a backlog for one slow host never hides the others).
    pub async fn due_webhooks(
        &self,
        now_ms: i64,
        busy: Vec<String>,
        full_hosts: Vec<String>,
        limit: usize,
    ) -> Result<Vec<DueWebhook>, StoreError> {
        self.read(move |c| {
            let busy = serde_json::to_string(&busy).unwrap_or_else(|_| "[]".into());
            let full = serde_json::to_string(&full_hosts).unwrap_or_else(|_| "[]".into());
            let mut stmt = c.prepare_cached(
                "SELECT id, job_id, url, host, payload, inline_outputs, generation, round_attempts, \
                 round_started_at, next_attempt_at FROM webhook_events \
                 WHERE status = 'pending' AND next_attempt_at <= ?1 \
                 AND id NOT IN (SELECT value FROM json_each(?2)) \
                 AND host NOT IN (SELECT value FROM json_each(?3)) \
                 ORDER BY next_attempt_at LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![now_ms, busy, full, limit as i64], |r| {
                Ok(DueWebhook {
                    id: r.get(0)?,
                    job_id: r.get(1)?,
                    url: r.get(2)?,
                    host: r.get(3)?,
                    payload: r.get(4)?,
                    inline_outputs: r.get(5)?,
                    generation: r.get(6)?,
                    round_attempts: r.get(7)?,
                    round_started_ms: r.get(8)?,
                    due_ms: r.get(9)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// When the next pending event not yet due by `now_ms` falls due.
    pub async fn next_webhook_due(&self, now_ms: i64) -> Result<Option<i64>, StoreError> {
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT MIN(next_attempt_at) FROM webhook_events \
                 WHERE status = 'pending' AND next_attempt_at > ?1",
            )?
            .query_row([now_ms], |r| r.get(0))?)
        })
        .await
    }

    /// Records an attempt and, if the event was not redelivered meanwhile, its decision.
    pub async fn record_webhook_attempt(&self, a: WebhookAttemptRecord) -> Result<(), StoreError> {
        self.write(move |c| {
            let now = now_ms();
            c.prepare_cached(
                "INSERT INTO webhook_attempts(event_id, at, status_code, latency_ms, response_head, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                a.event_id,
                a.at_ms,
                a.status_code,
                a.latency_ms.map(|v| v as i64),
                a.response_head,
                a.error
            ])?;
            c.prepare_cached(
                "UPDATE webhook_events SET attempts = attempts + 1, updated_at = ?2, \
                 last_status_code = ?3, last_error = ?4 WHERE id = ?1",
            )?
            .execute(params![a.event_id, now, a.status_code, a.error])?;
            let (status, next, delivered_at) = match a.outcome {
                WebhookOutcome::Delivered => (WebhookStatus::Delivered, now, Some(now)),
                WebhookOutcome::RetryAt(at) => (WebhookStatus::Pending, at, None),
                WebhookOutcome::Failed => (WebhookStatus::Failed, now, None),
                WebhookOutcome::Dead => (WebhookStatus::Dead, now, None),
            };
            let moved = c
                .prepare_cached(
                    "UPDATE webhook_events SET status = ?3, next_attempt_at = ?4, delivered_at = ?5, \
                     round_attempts = round_attempts + 1 \
                     WHERE id = ?1 AND generation = ?2 AND status = 'pending'",
                )?
                .execute(params![a.event_id, a.generation, status.as_str(), next, delivered_at])?;
            if moved == 1 && status != WebhookStatus::Pending {
                bump(c, &[("webhooks_pending", -1), (counter(status), 1)])?;
            }
            // Each attempt also goes into the job's own log, so the console and `jobs events`
            // show deliveries beside the state changes.
            let job: Option<String> = c
                .prepare_cached(
                    "SELECT e.job_id FROM webhook_events e JOIN jobs j ON j.id = e.job_id WHERE e.id = ?1",
                )?
                .query_row([&a.event_id], |r| r.get(0))
                .optional()?;
            if let Some(job) = job {
                let detail = serde_json::json!({
                    "webhook_id": a.event_id,
                    "status_code": a.status_code,
                    "latency_ms": a.latency_ms,
                    "error": a.error,
                    "outcome": status.as_str(),
                });
                super::jobs::event(c, &job, "webhook_attempt", None, None, "webhook", Some(&detail))?;
            }
            Ok(())
        })
        .await
    }

    /// Sends a job's latest event again, with the same id, whatever its state; `None` when the
    /// job has no event.
    pub async fn redeliver_webhook(
        &self,
        job_id: &str,
    ) -> Result<Option<WebhookEvent>, StoreError> {
        let job_id = job_id.to_string();
        self.write(move |c| {
            let found: Option<(String, String)> = c
                .prepare_cached(
                    "SELECT id, status FROM webhook_events WHERE job_id = ?1 ORDER BY seq DESC LIMIT 1",
                )?
                .query_row([&job_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((id, status)) = found else {
                return Ok(None);
            };
            let status: WebhookStatus = parse(1, &status)?;
            restart_round(c, &id)?;
            bump(c, &[(counter(status), -1), ("webhooks_pending", 1)])?;
            Ok(Some(load_event(c, &id)?))
        })
        .await
    }

    /// Puts every event in `statuses` created at or after `since_ms` back to pending; returns how many.
    pub async fn replay_webhooks(
        &self,
        since_ms: i64,
        statuses: Vec<WebhookStatus>,
    ) -> Result<u64, StoreError> {
        self.write(move |c| {
            let mut total = 0u64;
            for status in statuses {
                if status == WebhookStatus::Pending {
                    continue;
                }
                let ids: Vec<String> = c
                    .prepare_cached(
                        "SELECT id FROM webhook_events WHERE status = ?1 AND created_at >= ?2",
                    )?
                    .query_map(params![status.as_str(), since_ms], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for id in &ids {
                    restart_round(c, id)?;
                }
                let n = ids.len() as i64;
                bump(c, &[(counter(status), -n), ("webhooks_pending", n)])?;
                total += n as u64;
            }
            Ok(total)
        })
        .await
    }

    /// Events matching `q`, newest first, with their attempts.
    pub async fn webhooks(&self, q: WebhookQuery) -> Result<Vec<WebhookEvent>, StoreError> {
        self.read(move |c| {
            let statuses: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
            let statuses = serde_json::to_string(&statuses).unwrap_or_else(|_| "[]".into());
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM webhook_events \
                 WHERE (?1 = '[]' OR status IN (SELECT value FROM json_each(?1))) \
                 AND (?2 IS NULL OR job_id = ?2) ORDER BY seq DESC LIMIT ?3"
            ))?;
            let mut events: Vec<WebhookEvent> = stmt
                .query_map(params![statuses, q.job_id, q.limit as i64], row_to_event)?
                .collect::<Result<_, _>>()?;
            with_attempts(c, &mut events)?;
            Ok(events)
        })
        .await
    }

    /// Deletes up to `batch` finished events (and their attempts) created before `before_ms`;
    /// counters keep them.
    pub async fn prune_webhooks(&self, before_ms: i64, batch: usize) -> Result<usize, StoreError> {
        self.write(move |c| {
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT id FROM webhook_events WHERE created_at < ?1 AND status != 'pending' \
                     ORDER BY created_at LIMIT ?2",
                )?
                .query_map(params![before_ms, batch as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                c.execute("DELETE FROM webhook_attempts WHERE event_id = ?1", [id])?;
                c.execute("DELETE FROM webhook_events WHERE id = ?1", [id])?;
            }
            Ok(ids.len())
        })
        .await
    }
}

/// Makes an event pending and due now, as a new round of the schedule and a new generation.
fn restart_round(c: &Connection, id: &str) -> Result<(), StoreError> {
    let now = now_ms();
    c.prepare_cached(
        "UPDATE webhook_events SET status = 'pending', next_attempt_at = ?2, round_attempts = 0, \
         round_started_at = ?2, generation = generation + 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}
