//! Built-in alerts: rules over the daemon's own state, a pending → firing → resolved state
//! machine kept in SQLite, and messages to Slack, Discord, Telegram and a generic JSON webhook.
//!
//! The engine loop, every `alerts.interval` (and at once after a silence changes):
//! - observes what `/api/health` reports (server statuses, counters, queue health, database
//!   writability) plus free space on the data dir's disk;
//! - evaluates every enabled rule and moves alerts along the state machine, in one transaction;
//! - announces: applies silences and inhibitions, then queues one message per channel holding
//!   everything due in this evaluation (one outage, one message), in the same transaction as the
//!   alerts' `notified` marks;
//! - prunes resolved alerts, finished deliveries and ended silences older than
//!   `retention.max_age`, hourly;
//! - stops on shutdown.
//!
//! One sender loop per channel drains that channel's queue oldest first, so a slow or broken
//! channel delays only its own messages; a message left queued by a crash or shutdown is sent
//! after the restart unless older than `alerts.max_age`.
//!
//! A reload with a changed `[alerts]` section stops these loops and starts a new generation
//! built from the new section; alert state lives in the store, so the new engine carries on
//! where the old one stopped, as after a restart.

pub mod config;
mod deliver;
mod discord;
mod disk;
pub mod evaluate;
mod fallback;
mod message;
pub mod rules;
pub mod silence;
mod slack;
pub mod state;
mod telegram;
mod webhook;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use comfydash_wire::{AlertDeliveryStatus, AlertEvent, AlertState, ChannelResult};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::AlertsConfig;
pub use deliver::Channel;

use crate::config::{Config, QueueConfig};
use crate::servers::Servers;
use crate::store::alerts::{DeliveryOutcome, NewDelivery};
use crate::store::{Store, now_ms};
use deliver::Sender;
use evaluate::{Evaluator, Observation};
use message::Message;
use rules::Rule;
use state::{Book, Change, Policy};

/// Why the alerts engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// The HTTP client for the channels could not be built.
    #[error("alerts HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Handle to the alerts engine; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    shared: Arc<Shared>,
}

struct Shared {
    current: RwLock<Generation>,
    events: broadcast::Sender<AlertEvent>,
    store: Store,
    servers: Servers,
    running: tokio::sync::Mutex<Running>,
}

/// The loops of the current generation, to stop them on reload.
#[derive(Default)]
struct Running {
    shutdown: Option<CancellationToken>,
    stop: Option<CancellationToken>,
    tasks: Vec<JoinHandle<()>>,
}

/// One configuration's engine: its channels, rules and loops.
#[derive(Clone)]
struct Generation {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    servers: Servers,
    cfg: AlertsConfig,
    queue: QueueConfig,
    data_dir: PathBuf,
    retention: Duration,
    channels: Vec<(Channel, Arc<Notify>)>,
    sender: Sender,
    events: broadcast::Sender<AlertEvent>,
    wake: Notify,
    /// The unrecorded database alert while it fires, for `GET /api/alerts`.
    unrecorded: std::sync::Mutex<Option<comfydash_wire::Alert>>,
}

/// The engine loop's memory between evaluations.
struct Engine {
    /// `None` until loaded, and again after a failed commit (reloaded from the store).
    book: Option<Book>,
    evaluator: Evaluator,
    last_prune: i64,
    /// The database-refuses-writes alert, which cannot be recorded.
    fallback: fallback::Fallback,
}

impl Alerts {
    /// The engine for `config`; nothing runs until [`Alerts::spawn`].
    pub fn new(config: &Config, store: Store, servers: Servers) -> Result<Alerts, AlertsError> {
        let (events, _) = broadcast::channel(256);
        let current = Generation::new(config, store.clone(), servers.clone(), events.clone())?;
        Ok(Alerts {
            shared: Arc::new(Shared {
                current: RwLock::new(current),
                events,
                store,
                servers,
                running: tokio::sync::Mutex::new(Running::default()),
            }),
        })
    }

    fn current(&self) -> Generation {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Alert state changes (pending, firing, resolved) as they are committed; for the event stream.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.shared.events.subscribe()
    }

    /// Names of the configured channels.
    pub fn channel_names(&self) -> Vec<String> {
        self.current().channel_names()
    }

    /// The alert that could not be recorded (the database refusing writes), while it fires.
    pub fn unrecorded(&self) -> Option<comfydash_wire::Alert> {
        self.current()
            .inner
            .unrecorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-evaluates now (a silence was added or ended).
    pub fn wake(&self) {
        self.current().inner.wake.notify_one();
    }

    /// Sends a test message to every channel at once, each within `deadline`; records each result.
    pub async fn test(&self, deadline: Duration) -> Vec<ChannelResult> {
        self.current().test(deadline).await
    }

    /// Starts the engine loop and one sender loop per channel (nothing when `alerts.enabled` is off).
    pub async fn spawn(&self, shutdown: CancellationToken) {
        let mut running = self.shared.running.lock().await;
        running.shutdown = Some(shutdown.clone());
        let stop = shutdown.child_token();
        running.tasks = self.current().spawn(stop.clone());
        running.stop = Some(stop);
    }

    /// Applies a reloaded configuration: when `[alerts]` changed, the loops stop and a new
    /// generation starts. Returns what changed.
    pub async fn reload(&self, config: &Config) -> Result<Option<String>, AlertsError> {
        let mut running = self.shared.running.lock().await;
        let old = self.current();
        if old.inner.cfg == config.alerts {
            return Ok(None);
        }
        // Only `[alerts]` changes here: the rest applies at a restart, for alerts as for the
        // rest of the daemon (queue thresholds, retention, the data dir that disk rules watch).
        let mut config = config.clone();
        config.data_dir = old.inner.data_dir.clone();
        config.queue = old.inner.queue.clone();
        config.retention.max_age = old.inner.retention;
        let new = Generation::new(
            &config,
            self.shared.store.clone(),
            self.shared.servers.clone(),
            self.shared.events.clone(),
        )?;
        if let Some(stop) = running.stop.take() {
            stop.cancel();
        }
        // The old engine must have stopped before the new one commits transitions.
        for task in running.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner()) = new.clone();
        if let Some(shutdown) = running.shutdown.clone() {
            let stop = shutdown.child_token();
            running.tasks = new.spawn(stop.clone());
            running.stop = Some(stop);
        }
        let channels = new.channel_names();
        Ok(Some(if config.alerts.enabled {
            format!(
                "alerts configuration changed: {} channel(s){}{}",
                channels.len(),
                if channels.is_empty() { "" } else { ": " },
                channels.join(", ")
            )
        } else {
            "alerts configuration changed: alerts are off".into()
        }))
    }
}

impl Generation {
    fn new(
        config: &Config,
        store: Store,
        servers: Servers,
        events: broadcast::Sender<AlertEvent>,
    ) -> Result<Generation, AlertsError> {
        let cfg = config.alerts.clone();
        let channels = Channel::from_config(&cfg)
            .into_iter()
            .map(|c| (c, Arc::new(Notify::new())))
            .collect();
        Ok(Generation {
            inner: Arc::new(Inner {
                sender: Sender::new(&cfg)?,
                store,
                servers,
                cfg,
                queue: config.queue.clone(),
                data_dir: config.data_dir.clone(),
                retention: config.retention.max_age,
                channels,
                events,
                wake: Notify::new(),
                unrecorded: std::sync::Mutex::new(None),
            }),
        })
    }

    fn channel_names(&self) -> Vec<String> {
        self.inner
            .channels
            .iter()
            .map(|(c, _)| c.name().to_string())
            .collect()
    }

    async fn test(&self, deadline: Duration) -> Vec<ChannelResult> {
        let msg = Message::test(&self.inner.cfg.name);
        let json = serde_json::to_string(&msg).unwrap_or_default();
        let sends = self.inner.channels.iter().map(|(ch, _)| {
            let (msg, json) = (&msg, json.clone());
            async move {
                let outcome = tokio::time::timeout(deadline, self.inner.sender.deliver(ch, msg))
                    .await
                    .unwrap_or_else(|_| DeliveryOutcome {
                        status: AlertDeliveryStatus::Failed,
                        attempts: 0,
                        status_code: None,
                        error: Some(format!("no answer within {} ms", deadline.as_millis())),
                        latency_ms: None,
                    });
                let record = NewDelivery {
                    channel: ch.name().into(),
                    kind: "test".into(),
                    alert_ids: Vec::new(),
                    message: json,
                };
                if let Err(e) = self
                    .inner
                    .store
                    .alert_delivery_record(record, outcome.clone())
                    .await
                {
                    tracing::warn!(error = %e, "could not record an alert test");
                }
                deliver::result_of(ch.name(), &outcome)
            }
        });
        futures_util::future::join_all(sends).await
    }

    /// Starts the engine loop and one sender loop per channel, until `shutdown`.
    fn spawn(&self, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        if !self.inner.cfg.enabled {
            tracing::info!("alerts are disabled");
            return Vec::new();
        }
        let mut tasks = Vec::new();
        for idx in 0..self.inner.channels.len() {
            let (me, stop) = (self.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move { me.drain(idx, stop).await }));
        }
        let me = self.clone();
        tasks.push(tokio::spawn(async move { me.run(shutdown).await }));
        tasks
    }

    async fn run(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        let keep = self.channel_names();
        if let Err(e) = inner.store.alert_deliveries_drop_others(keep).await {
            tracing::warn!(error = %e, "could not drop messages of removed alert channels");
        }
        let rules = Rule::all(&inner.cfg.rules, &inner.queue);
        let mut engine = Engine {
            book: None,
            evaluator: Evaluator::new(rules, now_ms()),
            last_prune: 0,
            fallback: fallback::Fallback::default(),
        };
        loop {
            let evaluated = self.evaluate(&mut engine).await;
            // The store closes during shutdown; what fails then is not worth a log line.
            if shutdown.is_cancelled() {
                break;
            }
            if let Err(e) = evaluated {
                tracing::error!(error = %e, "alert evaluation failed; state is reloaded next time");
                engine.book = None;
            }
            self.unrecorded(&mut engine);
            self.prune(&mut engine, &shutdown).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(inner.cfg.interval) => {}
                _ = inner.wake.notified() => {}
            }
        }
    }

    /// One evaluation: observe, transition, announce.
    async fn evaluate(&self, engine: &mut Engine) -> Result<(), crate::store::StoreError> {
        let inner = &self.inner;
        if engine.book.is_none() {
            engine.book = Some(self.load().await?);
        }
        let now = now_ms();
        let snapshot = inner.store.snapshot();
        let dir = inner.data_dir.clone();
        let disk = tokio::task::spawn_blocking(move || disk::space(&dir))
            .await
            .ok()
            .flatten();
        let obs = Observation {
            now,
            servers: inner
                .servers
                .all()
                .into_iter()
                .map(|s| (s.name, s.status))
                .collect(),
            snapshot: &snapshot,
            db_writable: inner.store.is_writable(),
            queue: &inner.queue,
            disk,
        };
        let findings = engine.evaluator.evaluate(&obs);
        let Some(book) = engine.book.as_mut() else {
            return Ok(());
        };
        let mut t = book.transition(&findings, engine.evaluator.rules(), now);
        if !t.writes.is_empty() {
            let ids = inner
                .store
                .alerts_commit(std::mem::take(&mut t.writes), Vec::new(), now)
                .await?;
            book.set_ids(&mut t, &ids);
        }
        for a in &t.changed {
            tracing::info!(alert = %a.fingerprint, state = %a.state, "alert {}", a.state);
            let _ = inner.events.send(AlertEvent { alert: a.to_wire() });
        }
        self.announce(book, now).await
    }

    /// Queues one message per channel with everything due, in the transaction that marks it announced.
    async fn announce(&self, book: &mut Book, now: i64) -> Result<(), crate::store::StoreError> {
        let inner = &self.inner;
        let silences = inner.store.silences(now, false).await?;
        let policy = Policy {
            repeat_ms: inner.cfg.repeat_interval.as_millis() as i64,
            send_resolved: inner.cfg.send_resolved,
        };
        let a = book.announce(&silences, &policy, now);
        if a.writes.is_empty() {
            return Ok(());
        }
        let mut deliveries = Vec::new();
        if !a.items.is_empty() {
            let msg = Message {
                source: inner.cfg.name.clone(),
                test: false,
                items: a.items.iter().map(|(al, c)| (al.to_wire(), *c)).collect(),
                at: chrono::DateTime::from_timestamp_millis(now).unwrap_or_default(),
            };
            let json = serde_json::to_string(&msg).unwrap_or_default();
            tracing::info!(message = %msg.headline(), channels = inner.channels.len(), "alert message");
            for (ch, _) in &inner.channels {
                deliveries.push(NewDelivery {
                    channel: ch.name().into(),
                    kind: msg.kind().into(),
                    alert_ids: msg.alert_ids(),
                    message: json.clone(),
                });
            }
        }
        inner.store.alerts_commit(a.writes, deliveries, now).await?;
        if !a.items.is_empty() {
            for (_, wake) in &inner.channels {
                wake.notify_one();
            }
        }
        Ok(())
    }

    /// Announces the database refusing writes straight to every channel, without a record
    /// (see [`fallback`]); each send runs on its own, bounded by the channel's timeout and retries.
    fn unrecorded(&self, engine: &mut Engine) {
        let inner = &self.inner;
        let now = now_ms();
        let repeat_ms = inner.cfg.repeat_interval.as_millis() as i64;
        let writable = inner.store.is_writable();
        let Some((change, alert)) =
            engine
                .fallback
                .step(writable, now, repeat_ms, inner.cfg.send_resolved)
        else {
            return;
        };
        let _ = inner.events.send(AlertEvent {
            alert: alert.clone(),
        });
        *inner.unrecorded.lock().unwrap_or_else(|e| e.into_inner()) =
            (change != Change::Resolved).then(|| alert.clone());
        let msg = Message {
            source: inner.cfg.name.clone(),
            test: false,
            items: vec![(alert, change)],
            at: chrono::DateTime::from_timestamp_millis(now).unwrap_or_default(),
        };
        tracing::error!(message = %msg.headline(), channels = inner.channels.len(), "alert message sent without a record");
        for idx in 0..inner.channels.len() {
            let (me, msg) = (self.clone(), msg.clone());
            tokio::spawn(async move {
                let ch = &me.inner.channels[idx].0;
                let outcome = me.inner.sender.deliver(ch, &msg).await;
                if outcome.status != AlertDeliveryStatus::Sent {
                    tracing::error!(channel = ch.name(), error = ?outcome.error, "unrecorded alert message not delivered");
                }
            });
        }
    }

    /// The book as stored: open alerts, and resolved ones whose resolve is still to be announced.
    async fn load(&self) -> Result<Book, crate::store::StoreError> {
        let mut book = Book::default();
        for a in self.inner.store.alerts_open().await? {
            if a.state == AlertState::Resolved {
                book.closing.push(a);
            } else {
                book.open.insert(a.fingerprint.clone(), a);
            }
        }
        Ok(book)
    }

    /// Deletes old history, at most hourly.
    async fn prune(&self, engine: &mut Engine, shutdown: &CancellationToken) {
        let now = now_ms();
        let keep = self.inner.retention;
        if keep.is_zero() || now - engine.last_prune < 3_600_000 {
            return;
        }
        engine.last_prune = now;
        let pruned = self
            .inner
            .store
            .alerts_prune(now - keep.as_millis() as i64)
            .await;
        if let Err(e) = pruned
            && !shutdown.is_cancelled()
        {
            tracing::warn!(error = %e, "could not prune alert history");
        }
    }

    /// The sender loop of channel `idx`: sends its queued messages oldest first, records each outcome.
    async fn drain(self, idx: usize, shutdown: CancellationToken) {
        let inner = &self.inner;
        let (ch, wake) = &inner.channels[idx];
        let max_age = inner.cfg.max_age.as_millis() as i64;
        loop {
            match inner.store.alert_delivery_next(ch.name()).await {
                Ok(Some(q)) => {
                    let outcome = match serde_json::from_str::<Message>(&q.message) {
                        _ if now_ms() - q.created_at > max_age => {
                            dropped("older than alerts.max_age")
                        }
                        Err(_) => dropped("unreadable message"),
                        Ok(msg) => tokio::select! {
                            _ = shutdown.cancelled() => return,
                            o = inner.sender.deliver(ch, &msg) => o,
                        },
                    };
                    if outcome.status != AlertDeliveryStatus::Sent {
                        tracing::warn!(channel = ch.name(), error = ?outcome.error, "alert message not delivered");
                    }
                    if let Err(e) = inner.store.alert_delivery_done(q.id, outcome).await {
                        tracing::warn!(channel = ch.name(), error = %e, "could not record an alert delivery");
                    } else {
                        continue;
                    }
                }
                Ok(None) => {}
                Err(_) if shutdown.is_cancelled() => return,
                Err(e) => tracing::warn!(channel = ch.name(), error = %e, "alert queue unreadable"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
                // A safety net: a wake-up is never lost, but a failed store call is retried.
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }
}

fn dropped(why: &str) -> DeliveryOutcome {
    DeliveryOutcome {
        status: AlertDeliveryStatus::Dropped,
        attempts: 0,
        status_code: None,
        error: Some(why.into()),
        latency_ms: None,
    }
}
