//! ComfyUI servers: their configuration and probed status.
//!
//! The prober loop, one task per server:
//! - `GET /system_stats` every `probe.interval`, limited by `probe.timeout`;
//! - marks a server up on success (with latency and VRAM), down after
//!   `probe.failures_before_down` consecutive failures;
//! - stops on shutdown, or when its server is removed from the configuration and has drained.
//!
//! Entries are never deleted, so a server's index stays valid for its pipeline; a server
//! removed on reload is `Removing` (shown as draining) until its pipeline has nothing left, then
//! `Gone` (hidden).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use comfydash_wire::{ServerHealth, ServerStatus, ServerUpdate, StreamEvent};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::config::{ProbeConfig, ServerConfig};
use crate::events::Bus;

/// What the daemon knows about one server.
#[derive(Debug, Clone)]
pub struct ServerState {
    /// Configured name.
    pub name: String,
    /// Base URL (never shown in open endpoints).
    pub url: String,
    /// Current status: the operator's mode over the probed health.
    pub status: ServerStatus,
    /// Probed health: unknown, up or down.
    pub health: ServerStatus,
    /// What the operator set.
    pub mode: Mode,
    /// Marked by the watchdog: busy without progress.
    pub stuck: bool,
    /// Last successful probe's latency.
    pub latency_ms: Option<u64>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Device name from `/system_stats`.
    pub device: Option<String>,
    /// VRAM in bytes (total, free).
    pub vram: Option<(u64, u64)>,
    /// ComfyUI version.
    pub version: Option<String>,
    /// Last successful probe.
    pub last_ok: Option<Instant>,
    /// Jobs submitted to it and not finished.
    pub in_flight: u32,
    /// Shell command the watchdog runs to restart it.
    pub restart_command: Option<String>,
    /// Whether it is configured, being removed, or gone.
    pub lifecycle: Lifecycle,
    /// Its place in the configuration, for listings (kept by a removed server while it drains).
    pub rank: usize,
}

/// Where a server is between configuration reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// In the configuration.
    Live,
    /// Removed from the configuration; finishing its in-flight jobs, taking nothing new.
    Removing,
    /// Removed and drained: hidden, its probe and pipeline stopped.
    Gone,
}

/// What an operator wants from a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Takes work.
    Active,
    /// Finishes what it has, takes nothing new.
    Draining,
    /// Takes nothing; shown as disabled.
    Disabled,
}

impl Mode {
    /// The name stored in settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Draining => "draining",
            Mode::Disabled => "disabled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Active, Mode::Draining, Mode::Disabled]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

impl ServerState {
    fn derive(&mut self) {
        self.status = match (self.mode, self.health) {
            (_, ServerStatus::Up) if self.lifecycle != Lifecycle::Live => ServerStatus::Draining,
            (Mode::Disabled, _) => ServerStatus::Disabled,
            (_, ServerStatus::Up) if self.stuck => ServerStatus::Stuck,
            (_, ServerStatus::Up) if self.mode == Mode::Draining => ServerStatus::Draining,
            (_, h) => h,
        };
    }
}

/// The shared registry of servers.
#[derive(Clone)]
pub struct Servers {
    inner: Arc<RwLock<Vec<ServerState>>>,
    bus: Bus,
}

#[derive(Deserialize)]
struct SystemStats {
    #[serde(default)]
    system: SystemInfo,
    #[serde(default)]
    devices: Vec<Device>,
}

#[derive(Deserialize, Default)]
struct SystemInfo {
    comfyui_version: Option<String>,
}

#[derive(Deserialize)]
struct Device {
    name: Option<String>,
    vram_total: Option<u64>,
    vram_free: Option<u64>,
}

impl Servers {
    /// Servers from configuration, all `unknown` until probed.
    pub fn new(config: &[ServerConfig], bus: Bus) -> Self {
        let servers = Servers {
            inner: Arc::new(RwLock::new(Vec::new())),
            bus,
        };
        for s in config {
            servers.add(s);
        }
        servers
    }

    /// Adds a configured server (`unknown` until probed); returns its index.
    pub fn add(&self, s: &ServerConfig) -> usize {
        let mut all = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let rank = all.len();
        all.push(ServerState {
            name: s.name.clone(),
            url: s.url.clone(),
            status: ServerStatus::Unknown,
            health: ServerStatus::Unknown,
            mode: Mode::Active,
            stuck: false,
            latency_ms: None,
            consecutive_failures: 0,
            device: None,
            vram: None,
            version: None,
            last_ok: None,
            in_flight: 0,
            restart_command: s.restart_command.clone(),
            lifecycle: Lifecycle::Live,
            rank,
        });
        all.len() - 1
    }

    /// Sets where server `idx` comes in listings (its place in a reloaded configuration).
    pub fn set_rank(&self, idx: usize, rank: usize) {
        if let Some(s) = self
            .inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(idx)
        {
            s.rank = rank;
        }
    }

    /// A copy of every shown server's state: configured ones, and removed ones still draining
    /// (unless a configured server has taken over the name).
    pub fn all(&self) -> Vec<ServerState> {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        shown_in_order(&all).into_iter().cloned().collect()
    }

    /// Every entry, including removed ones; indexes match pipelines'.
    pub fn entries(&self) -> Vec<ServerState> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The state of server `idx`, shown or not.
    pub fn get(&self, idx: usize) -> Option<ServerState> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(idx)
            .cloned()
    }

    /// Names and statuses for `/api/health`.
    pub fn health(&self) -> Vec<ServerHealth> {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        shown_in_order(&all)
            .into_iter()
            .map(|s| ServerHealth {
                name: s.name.clone(),
                status: s.status,
                latency_ms: s.latency_ms,
            })
            .collect()
    }

    /// Changes one server and tells event-stream subscribers.
    fn update(&self, idx: usize, f: impl FnOnce(&mut ServerState)) {
        let update = {
            let mut all = self.inner.write().unwrap_or_else(|e| e.into_inner());
            let Some(s) = all.get_mut(idx) else { return };
            f(s);
            s.derive();
            // A consumer would list a gone server again; the reload's resync event removes it.
            if s.lifecycle == Lifecycle::Gone {
                return;
            }
            ServerUpdate {
                name: s.name.clone(),
                status: s.status,
                latency_ms: s.latency_ms,
                device: s.device.clone(),
                vram_total: s.vram.map(|v| v.0),
                vram_free: s.vram.map(|v| v.1),
                in_flight: s.in_flight,
            }
        };
        self.bus.emit(StreamEvent::Server(update));
    }

    /// The status of server `idx`.
    pub fn status(&self, idx: usize) -> ServerStatus {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(idx)
            .map(|s| s.status)
            .unwrap_or(ServerStatus::Unknown)
    }

    /// Index of the shown server called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        all.iter().position(|s| s.name == name && shown(&all, s))
    }

    /// Index of the configured (live) server called `name`.
    pub fn live_index_of(&self, name: &str) -> Option<usize> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .position(|s| s.name == name && s.lifecycle == Lifecycle::Live)
    }

    /// Sets the operator's mode of server `idx`; returns its state after.
    pub fn set_mode(&self, idx: usize, mode: Mode) -> Option<ServerState> {
        self.update(idx, |s| s.mode = mode);
        self.get(idx)
    }

    /// Moves server `idx` through its lifecycle (reload, drained).
    pub fn set_lifecycle(&self, idx: usize, lifecycle: Lifecycle) {
        self.update(idx, |s| s.lifecycle = lifecycle);
    }

    /// Sets the restart command of server `idx` (changed on reload).
    pub fn set_restart_command(&self, idx: usize, cmd: Option<String>) {
        self.update(idx, |s| s.restart_command = cmd);
    }

    /// Hides server `idx` if it is still being removed (a reload may have taken it back).
    pub fn retire(&self, idx: usize) -> bool {
        self.move_lifecycle(idx, Lifecycle::Removing, Lifecycle::Gone)
    }

    /// Takes server `idx` back into the configuration if it has not finished draining yet.
    pub fn revive(&self, idx: usize) -> bool {
        let revived = self.move_lifecycle(idx, Lifecycle::Removing, Lifecycle::Live);
        if revived {
            self.update(idx, |_| {});
        }
        revived
    }

    /// Moves server `idx` from `from` to `to` in one step; false when it was not in `from`.
    fn move_lifecycle(&self, idx: usize, from: Lifecycle, to: Lifecycle) -> bool {
        let mut all = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match all.get_mut(idx) {
            Some(s) if s.lifecycle == from => {
                s.lifecycle = to;
                true
            }
            _ => false,
        }
    }

    /// Whether server `idx` is still configured.
    pub fn is_live(&self, idx: usize) -> bool {
        self.get(idx)
            .is_some_and(|s| s.lifecycle == Lifecycle::Live)
    }

    /// Marks server `idx` stuck or recovered.
    pub fn set_stuck(&self, idx: usize, stuck: bool) {
        self.update(idx, |s| s.stuck = stuck);
    }

    /// Probed health of server `idx` (unknown, up or down), whatever the mode.
    pub fn health_of(&self, idx: usize) -> ServerStatus {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(idx)
            .map(|s| s.health)
            .unwrap_or(ServerStatus::Unknown)
    }

    /// Records how many jobs server `idx` has in flight.
    pub fn set_in_flight(&self, idx: usize, n: u32) {
        let changed = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(idx)
            .is_some_and(|s| s.in_flight != n);
        if changed {
            self.update(idx, |s| s.in_flight = n);
        }
    }

    /// Starts the probe loop of server `idx`; it ends when `stop` is cancelled.
    pub fn spawn_prober(&self, idx: usize, cfg: &ProbeConfig, stop: CancellationToken) {
        let Some(s) = self.get(idx) else { return };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .no_proxy()
            .build()
            .unwrap_or_default();
        let (servers, cfg) = (self.clone(), cfg.clone());
        tokio::spawn(async move {
            let url = format!("{}/system_stats", s.url);
            loop {
                let started = Instant::now();
                let result = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = probe(&http, &url) => r,
                };
                servers.record(idx, result, started.elapsed(), &cfg);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(cfg.interval) => {}
                }
            }
        });
    }

    /// Applies one probe result.
    fn record(
        &self,
        idx: usize,
        result: Result<SystemStats, String>,
        latency: Duration,
        cfg: &ProbeConfig,
    ) {
        self.update(idx, |s| match result {
            Ok(stats) => {
                if s.health != ServerStatus::Up {
                    tracing::info!(server = %s.name, "ComfyUI server is up");
                }
                s.health = ServerStatus::Up;
                s.consecutive_failures = 0;
                s.latency_ms = Some(latency.as_millis() as u64);
                s.last_ok = Some(Instant::now());
                s.version = stats.system.comfyui_version;
                if let Some(d) = stats.devices.into_iter().next() {
                    s.device = d.name;
                    s.vram = d.vram_total.zip(d.vram_free);
                }
            }
            Err(e) => {
                s.consecutive_failures += 1;
                if s.consecutive_failures >= cfg.failures_before_down
                    && s.health != ServerStatus::Down
                {
                    tracing::warn!(server = %s.name, error = %e, "ComfyUI server is down");
                    s.health = ServerStatus::Down;
                }
            }
        });
    }
}

/// The listed servers, in configuration order.
fn shown_in_order(all: &[ServerState]) -> Vec<&ServerState> {
    let mut v: Vec<&ServerState> = all.iter().filter(|s| shown(all, s)).collect();
    v.sort_by_key(|s| s.rank);
    v
}

/// Whether `s` is listed: live, or removing while no live server has its name.
fn shown(all: &[ServerState], s: &ServerState) -> bool {
    match s.lifecycle {
        Lifecycle::Live => true,
        Lifecycle::Removing => !all
            .iter()
            .any(|o| o.name == s.name && o.lifecycle == Lifecycle::Live),
        Lifecycle::Gone => false,
    }
}

async fn probe(http: &reqwest::Client, url: &str) -> Result<SystemStats, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    resp.json::<SystemStats>().await.map_err(|e| e.to_string())
}
