//! The comfydash daemon: HTTP API, durable SQLite job queue, ComfyUI probing and pruning.
//!
//! [`start`] takes an already-bound listener, so tests bind port 0 and the binary binds the
//! configured address; everything else is built from the [`config::Config`].

pub mod alerts;
pub mod api;
pub mod auth;
pub mod comfyui;
pub mod config;
pub mod events;
pub mod metrics;
pub mod outbound;
pub mod pruner;
pub mod reload;
pub mod servers;
pub mod stats;
pub mod store;
pub mod systemd;
pub mod templates;
pub mod webhook;
pub mod worker;

use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::auth::{Keys, Role};
use crate::config::{Config, KeyConfig};
use crate::servers::Servers;
use crate::store::{Store, StoreOptions};
pub use comfydash_wire::ReloadReport;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The admin key file could not be written.
    #[error("cannot create admin key at {path}: {source}")]
    AdminKey {
        /// Path.
        path: std::path::PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The outbound allow list is invalid.
    #[error(transparent)]
    Outbound(#[from] outbound::OutboundError),
    /// Webhook signing could not be set up.
    #[error(transparent)]
    Webhook(#[from] webhook::WebhookError),
    /// The alerts engine could not be built.
    #[error(transparent)]
    Alerts(#[from] alerts::AlertsError),
    /// The listener has no address.
    #[error("listener: {0}")]
    Listener(std::io::Error),
}

/// A running daemon.
pub struct Daemon {
    /// Address it listens on.
    pub addr: std::net::SocketAddr,
    /// The admin key (configured or generated).
    pub admin_key: String,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    state: AppState,
}

impl Daemon {
    /// Asks the daemon to stop: no new connections, requests in flight finish.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token that stops the daemon when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the daemon has stopped and its store is closed.
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A handle that applies re-read configurations while the daemon runs.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            state: self.state.clone(),
        }
    }

    /// Where the configuration is re-read from on SIGHUP and `POST /api/config/reload` (the
    /// binary's flags, environment and file); without one the endpoint answers 409.
    pub fn set_config_source(&self, source: reload::ConfigSource) {
        self.state.reload.set_source(source);
    }

    /// Stops and waits.
    pub async fn stop(self) {
        self.shutdown();
        self.wait().await;
    }
}

/// Applies a re-read configuration to a running daemon (SIGHUP, `POST /api/config/reload`).
#[derive(Clone)]
pub struct Reloader {
    state: AppState,
}

impl Reloader {
    /// Applies `new` without dropping work (see [`reload::apply`]).
    pub async fn reload(&self, new: &Config) -> ReloadReport {
        reload::apply(&self.state, new.clone()).await
    }

    /// Re-reads the configuration from its source and applies it.
    pub async fn reload_from_source(&self) -> Result<ReloadReport, reload::ReloadError> {
        reload::from_source(&self.state).await
    }
}

/// Opens the store, starts the background loops and serves HTTP on `listener`.
pub async fn start(mut config: Config, listener: TcpListener) -> Result<Daemon, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::AdminKey {
        path: config.data_dir.clone(),
        source,
    })?;
    let admin_key = match config.keys.iter().find(|k| k.role == Role::Admin) {
        Some(k) => k.key.clone(),
        None => {
            let path = config.admin_key_path();
            let (key, created) =
                auth::load_or_create_admin_key(&path).map_err(|source| StartError::AdminKey {
                    path: path.clone(),
                    source,
                })?;
            if created {
                tracing::info!(path = %path.display(), "generated an admin key");
            } else {
                tracing::info!(path = %path.display(), "using the admin key from the data dir");
            }
            config.keys.push(KeyConfig {
                name: "admin".into(),
                role: Role::Admin,
                key: key.clone(),
            });
            key
        }
    };
    let store = Store::open(&config.db_path(), StoreOptions::from(&config.store))?;
    let comfy_urls: Vec<String> = config.servers.iter().map(|s| s.url.clone()).collect();
    let outbound = outbound::OutboundPolicy::new(&config.outbound.allow, &comfy_urls)?;
    // Installed before anything can end a job, so no terminal transition misses its event.
    let webhooks = webhook::Webhooks::new(
        &config,
        addr,
        store.clone(),
        outbound::Outbound::new(outbound.clone())?,
    )?;
    store.set_terminal_hook(webhooks.terminal_hook());
    let shutdown = CancellationToken::new();
    let bus = events::Bus::new(
        config.events.ring,
        config.events.per_subscriber,
        config.events.progress_interval,
    );
    let servers = Servers::new(&config.servers, bus.clone());
    pruner::spawn(
        store.clone(),
        config.retention.clone(),
        config.data_dir.clone(),
        shutdown.clone(),
    );
    spawn_write_check(store.clone(), config.probe.interval, shutdown.clone());
    spawn_queue_events(
        store.clone(),
        bus.clone(),
        config.queue.clone(),
        shutdown.clone(),
    );
    let fetcher = outbound::Outbound::new(outbound.clone())?;
    let metrics = Arc::new(metrics::Metrics::new());
    let worker = worker::Worker::new(
        &config,
        store.clone(),
        bus.clone(),
        servers.clone(),
        fetcher,
        metrics.clone(),
        shutdown.clone(),
    );
    worker.start().await;
    let sampler = stats::Sampler::new(config.stats.interval, config.stats.window);
    sampler.spawn(store.clone(), shutdown.clone());
    webhooks.spawn(shutdown.clone());
    let alerts = alerts::Alerts::new(&config, store.clone(), servers.clone())?;
    spawn_alert_events(&alerts, bus.clone(), shutdown.clone());
    alerts.spawn(shutdown.clone()).await;
    let state = AppState {
        keys: Arc::new(Keys::new(&config.keys)),
        config: Arc::new(config),
        store: store.clone(),
        servers,
        outbound: Arc::new(outbound),
        started: Instant::now(),
        events: bus,
        sampler,
        worker,
        metrics,
        shutdown: shutdown.clone(),
        webhooks,
        alerts,
        reload: Arc::new(reload::ReloadHook::new(admin_key.clone())),
    };
    let grace = state.config.http.shutdown_grace;
    let state_store = state.store.clone();
    let app = api::router(state.clone());
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        let graceful = token.clone();
        // Without TCP_NODELAY, streamed output files stall ~40 ms on delayed ACKs (measured).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            graceful.cancelled().await;
        });
        // Graceful shutdown waits for every connection; bound it so a stuck client cannot hold us.
        let bounded = async {
            token.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            r = server => if let Err(e) = r { tracing::error!(error = %e, "server error") },
            _ = bounded => tracing::warn!("shutdown grace period over; closing remaining connections"),
        }
        systemd::notify("STOPPING=1");
        let closing = store.clone();
        let _ = tokio::task::spawn_blocking(move || closing.close()).await;
        tracing::info!("daemon stopped");
    });
    systemd::spawn_watchdog(state_store, shutdown.clone());
    systemd::notify("READY=1");
    tracing::info!(%addr, "comfydash daemon listening");
    Ok(Daemon {
        addr,
        admin_key,
        shutdown,
        task,
        state,
    })
}

/// Checks that the database still takes writes, so health notices a full or broken disk.
fn spawn_write_check(store: Store, every: std::time::Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            if !store.check_writable().await {
                tracing::error!("database is not writable");
            }
        }
    });
}

/// Emits a `queue` event whenever a commit changes the pending or processing count or the pause,
/// and a `webhooks` event whenever the webhook delivery counts change.
fn spawn_queue_events(
    store: Store,
    bus: events::Bus,
    cfg: config::QueueConfig,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut rx = store.watch();
        let (mut last, mut last_hooks) = (None, None);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = rx.changed() => if r.is_err() { break },
            }
            let snap = rx.borrow_and_update().clone();
            let key = (snap.get("pending"), snap.get("processing"), snap.paused);
            if last != Some(key) {
                last = Some(key);
                bus.emit(comfydash_wire::StreamEvent::Queue(api::queue_state(
                    &snap, &cfg,
                )));
            }
            let hooks = api::webhooks_telemetry(&snap);
            if last_hooks.as_ref() != Some(&hooks) {
                last_hooks = Some(hooks.clone());
                bus.emit(comfydash_wire::StreamEvent::Webhooks(hooks));
            }
        }
    });
}

/// Forwards built-in alert changes into the event stream.
fn spawn_alert_events(alerts: &alerts::Alerts, bus: events::Bus, shutdown: CancellationToken) {
    let mut rx = alerts.subscribe();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => break,
                ev = rx.recv() => ev,
            };
            match ev {
                Ok(ev) => bus.emit(comfydash_wire::StreamEvent::Alert(ev)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
