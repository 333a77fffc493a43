//! The delivery loop. Its duties:
//! - start due events, oldest due first, while the global and per-host limits allow, so a slow
//!   or dead receiver only ever holds its own `per_host` slots;
//! - wake on new events (a store commit that raised `webhooks_total`), on operators'
//!   redelivery and replay, on each finished attempt, and at the next due retry (no polling);
//! - make each attempt: the body, a fresh timestamp and signature, the guarded POST, the
//!   verdict, and one write recording the attempt and the event's new state;
//! - prune finished events past `retention.max_age`.
//!
//! Which events are in flight is kept only in memory: an event stays `pending` in the store
//! until its attempt is recorded, so after a crash it is simply due again (at least once).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::retry::{Verdict, decide, judge_answer, judge_error};
use super::{Shared, payload};
use crate::store::{DueWebhook, StoreError, WebhookAttemptRecord, WebhookOutcome, now_ms};

/// Events being attempted. An event's id stays busy until its attempt is recorded (so it is
/// never picked up twice), but its slots are free as soon as the HTTP exchange ends, so the
/// limits bound requests in flight, not commits.
#[derive(Default)]
struct Flights {
    ids: HashSet<String>,
    hosts: HashMap<String, usize>,
    sending: usize,
}

impl Flights {
    fn on_host(&self, host: &str) -> usize {
        self.hosts.get(host).copied().unwrap_or(0)
    }

    fn start(&mut self, ev: &DueWebhook) {
        self.ids.insert(ev.id.clone());
        *self.hosts.entry(ev.host.clone()).or_default() += 1;
        self.sending += 1;
    }

    fn apply(&mut self, done: Done) {
        match done {
            Done::Sent(host) => {
                self.sending = self.sending.saturating_sub(1);
                if let Some(n) = self.hosts.get_mut(&host) {
                    *n -= 1;
                    if *n == 0 {
                        self.hosts.remove(&host);
                    }
                }
            }
            Done::Recorded(id) => {
                self.ids.remove(&id);
            }
        }
    }

    fn full_hosts(&self, per_host: usize) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, n)| **n >= per_host)
            .map(|(h, _)| h.clone())
            .collect()
    }
}

/// What a finished part of an attempt frees.
enum Done {
    /// The exchange with this host is over: its slots are free.
    Sent(String),
    /// The attempt of this event is committed: it may be picked up again.
    Recorded(String),
}

/// Runs until `shutdown`; attempts in flight then are abandoned and stay pending.
pub(super) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut commits = shared.store.watch();
    let mut seen_total = commits.borrow_and_update().get("webhooks_total");
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut flights = Flights::default();
    let mut ready = Ready::default();
    let mut timer: Option<i64> = None;
    let mut fill = true;
    let prune_every = shared.retention.interval.max(Duration::from_secs(1));
    let mut prune_at = tokio::time::Instant::now() + prune_every;
    loop {
        if fill {
            fill = false;
            timer = match start_due(&shared, &mut flights, &mut ready, &done_tx, &shutdown).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "webhooks: cannot read the outbox; trying again in 1 s");
                    Some(now_ms() + 1000)
                }
            };
        }
        let wake_at = timer.map(|at| {
            let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
            tokio::time::Instant::now() + wait
        });
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = done_rx.recv() => {
                flights.apply(done);
                while let Ok(done) = done_rx.try_recv() {
                    flights.apply(done);
                }
                fill = true;
            }
            _ = shared.wake.notified() => fill = true,
            r = commits.changed() => {
                if r.is_err() {
                    break;
                }
                let total = commits.borrow_and_update().get("webhooks_total");
                if total != seen_total {
                    seen_total = total;
                    fill = true;
                }
            }
            _ = sleep_until(wake_at) => fill = true,
            _ = tokio::time::sleep_until(prune_at) => {
                prune(&shared).await;
                prune_at = tokio::time::Instant::now() + prune_every;
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Due events read ahead of need, so most starts cost no query.
const READ_AHEAD: usize = 128;

/// Due events read but not started yet; their ids are busy.
#[derive(Default)]
struct Ready(VecDeque<DueWebhook>);

/// Starts every due event the limits allow, oldest due first; returns when to look again if
/// nothing else wakes the loop (`None`: a finishing attempt or a new event will).
async fn start_due(
    shared: &Arc<Shared>,
    flights: &mut Flights,
    ready: &mut Ready,
    done: &mpsc::UnboundedSender<Done>,
    shutdown: &CancellationToken,
) -> Result<Option<i64>, StoreError> {
    let (limit, per_host) = (shared.cfg.concurrency, shared.cfg.per_host);
    loop {
        let mut i = 0;
        while i < ready.0.len() && flights.sending < limit {
            if flights.on_host(&ready.0[i].host) < per_host {
                if let Some(ev) = ready.0.remove(i) {
                    flights.start(&ev);
                    spawn_attempt(shared.clone(), ev, done.clone(), shutdown.clone());
                }
            } else {
                i += 1;
            }
        }
        if flights.sending >= limit {
            return Ok(None);
        }
        // What is left waits for a full host: give it back, and look past those hosts.
        for ev in ready.0.drain(..) {
            flights.ids.remove(&ev.id);
        }
        let now = now_ms();
        let due = shared
            .store
            .due_webhooks(
                now,
                flights.ids.iter().cloned().collect(),
                flights.full_hosts(per_host),
                READ_AHEAD.max(limit * 2),
            )
            .await?;
        if due.is_empty() {
            // Everything due is in flight or waits for a full host, whose attempts wake us.
            return shared.store.next_webhook_due(now).await;
        }
        for ev in due {
            flights.ids.insert(ev.id.clone());
            ready.0.push_back(ev);
        }
    }
}

fn spawn_attempt(
    shared: Arc<Shared>,
    ev: DueWebhook,
    done: mpsc::UnboundedSender<Done>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = attempt(&shared, ev, &done) => {}
        }
    });
}

/// One attempt: frees its slots when the exchange ends, and its event once recorded.
async fn attempt(shared: &Shared, ev: DueWebhook, done: &mpsc::UnboundedSender<Done>) {
    let body = payload::body(&ev.payload, ev.inline_outputs, &shared.data_dir).await;
    let sent = chrono::Utc::now();
    let started = Instant::now();
    let timestamp = sent.timestamp();
    let (verdict, status_code, head, error) = match shared.signer().sign(&ev.id, timestamp, &body) {
        Err(e) => (Verdict::Stop, None, None, Some(e.to_string())),
        Ok(signature) => {
            let headers = [
                ("content-type", "application/json".to_string()),
                ("webhook-id", ev.id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ]
            .map(|(k, v)| (k.to_string(), v));
            match shared
                .outbound
                .post(&ev.url, &headers, body, &shared.limits)
                .await
            {
                Ok(p) => {
                    let (verdict, error) = judge_answer(&p, chrono::Utc::now());
                    let head =
                        (!p.body.is_empty()).then(|| String::from_utf8_lossy(&p.body).into_owned());
                    (verdict, Some(p.status), head, error)
                }
                Err(e) => (judge_error(&e), None, None, Some(e.to_string())),
            }
        }
    };
    let _ = done.send(Done::Sent(ev.host.clone()));
    let latency_ms = started.elapsed().as_millis() as u64;
    let outcome = decide(
        &verdict,
        &shared.cfg,
        ev.round_attempts,
        ev.round_started_ms,
        now_ms(),
        rand::random(),
    );
    match outcome {
        WebhookOutcome::Delivered | WebhookOutcome::RetryAt(_) => {
            tracing::debug!(event = %ev.id, job = %ev.job_id, ?outcome, status = ?status_code, "webhook attempt");
        }
        WebhookOutcome::Failed | WebhookOutcome::Dead => {
            tracing::warn!(event = %ev.id, job = %ev.job_id, ?outcome, status = ?status_code, error = ?error, "webhook given up");
        }
    }
    let record = WebhookAttemptRecord {
        event_id: ev.id.clone(),
        generation: ev.generation,
        at_ms: sent.timestamp_millis(),
        status_code,
        latency_ms: Some(latency_ms),
        response_head: head,
        error,
        outcome,
    };
    if let Err(e) = shared.store.record_webhook_attempt(record).await {
        // Not recorded: the event is still pending and due, so it is sent again (at least once).
        tracing::error!(event = %ev.id, error = %e, "webhooks: cannot record an attempt");
    }
    let _ = done.send(Done::Recorded(ev.id));
}

/// Deletes finished events older than the job retention, batch by batch.
async fn prune(shared: &Shared) {
    let r = &shared.retention;
    if r.max_age.is_zero() {
        return;
    }
    let before = now_ms() - r.max_age.as_millis() as i64;
    loop {
        match shared.store.prune_webhooks(before, r.batch).await {
            Ok(n) if n == r.batch => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: pruning failed");
                break;
            }
        }
    }
}
