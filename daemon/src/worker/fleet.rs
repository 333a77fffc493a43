//! The servers the worker runs on, at start and when a reload changes the list.
//!
//! Each server entry gets a stop token (a child of shutdown) shared by its prober, socket and
//! pipeline. Servers are matched by name across reloads:
//! - a new name gets a prober and a pipeline;
//! - a missing name is drained: it takes nothing new, finishes its in-flight prompts, then its
//!   pipeline cancels the token and the entry is hidden;
//! - a known name with a new URL drains the old address while a new entry takes the name;
//! - a changed restart command applies in place.

use std::sync::Arc;

use comfydash_wire::{Resync, StreamEvent};
use tokio::sync::Notify;

use super::{Worker, pipeline};
use crate::config::ServerConfig;
use crate::servers::{Lifecycle, Mode};

impl Worker {
    /// Starts every configured server: its mode from before a restart, then a prober and a
    /// pipeline that adopts the jobs a previous run left on it. Jobs left processing on a
    /// server that is no longer configured go back to the queue first.
    pub async fn start(&self) {
        let entries = self.shared.servers.entries();
        self.requeue_orphans(&entries).await;
        for (idx, s) in entries.iter().enumerate() {
            self.restore_mode(idx, &s.name).await;
            self.start_server(idx, true);
        }
    }

    /// Applies a reloaded server list without dropping work; returns one line per change.
    /// Callers run one at a time (the reload module serialises reloads).
    pub async fn apply_servers(&self, new: &[ServerConfig]) -> Vec<String> {
        let servers = &self.shared.servers;
        let entries = servers.entries();
        let live = |name: &str| {
            entries
                .iter()
                .position(|s| s.name == name && s.lifecycle == Lifecycle::Live)
        };
        let mut changes = Vec::new();
        for (idx, s) in entries.iter().enumerate() {
            if s.lifecycle == Lifecycle::Live && !new.iter().any(|n| n.name == s.name) {
                servers.set_lifecycle(idx, Lifecycle::Removing);
                changes.push(format!(
                    "server {} removed: it takes nothing new and stops after its {} in-flight job(s)",
                    s.name, s.in_flight
                ));
            }
        }
        for (rank, n) in new.iter().enumerate() {
            match live(&n.name) {
                Some(idx) if entries[idx].url == n.url => {
                    servers.set_rank(idx, rank);
                    if entries[idx].restart_command != n.restart_command {
                        servers.set_restart_command(idx, n.restart_command.clone());
                        changes.push(format!("server {}: restart command changed", n.name));
                    }
                }
                Some(idx) => {
                    servers.set_lifecycle(idx, Lifecycle::Removing);
                    let added = servers.add(n);
                    servers.set_rank(added, rank);
                    servers.set_mode(added, entries[idx].mode);
                    self.start_server(added, false);
                    changes.push(format!(
                        "server {}: URL changed; the old address finishes its {} in-flight job(s)",
                        n.name, entries[idx].in_flight
                    ));
                }
                None => {
                    let draining = entries.iter().position(|s| {
                        s.name == n.name && s.url == n.url && s.lifecycle == Lifecycle::Removing
                    });
                    if let Some(idx) = draining.filter(|&idx| servers.revive(idx)) {
                        servers.set_rank(idx, rank);
                        servers.set_restart_command(idx, n.restart_command.clone());
                        changes.push(format!("server {} is back before it had drained", n.name));
                        continue;
                    }
                    let added = servers.add(n);
                    servers.set_rank(added, rank);
                    self.restore_mode(added, &n.name).await;
                    self.start_server(added, false);
                    changes.push(format!("server {} added", n.name));
                }
            }
        }
        if !changes.is_empty() {
            self.shared.bus.emit(StreamEvent::Resync(Resync {
                reason: "server list changed".into(),
            }));
            self.shared.wake_all();
        }
        changes
    }

    /// Starts the prober and pipeline of server entry `idx`.
    fn start_server(&self, idx: usize, adopt: bool) {
        let shared = &self.shared;
        let Some(state) = shared.servers.get(idx) else {
            return;
        };
        {
            let mut wakes = shared.wakes.write().unwrap_or_else(|e| e.into_inner());
            while wakes.len() <= idx {
                wakes.push(Arc::new(Notify::new()));
            }
        }
        let stop = shared.shutdown.child_token();
        shared
            .servers
            .spawn_prober(idx, &shared.probe, stop.clone());
        let p = pipeline::Pipeline::new(shared.clone(), idx, &state, adopt);
        tokio::spawn(p.run(stop));
    }

    /// Applies the operator's mode kept in settings (drain and disable survive restarts).
    async fn restore_mode(&self, idx: usize, name: &str) {
        let key = format!("server_mode:{name}");
        if let Ok(Some(mode)) = self.shared.store.setting(&key).await
            && let Some(mode) = Mode::parse(&mode)
            && mode != Mode::Active
        {
            tracing::info!(server = %name, mode = mode.as_str(), "server mode kept from before");
            self.shared.servers.set_mode(idx, mode);
        }
    }

    /// Requeues jobs a previous run left processing on servers that are no longer configured:
    /// nothing else would ever look at them.
    async fn requeue_orphans(&self, entries: &[crate::servers::ServerState]) {
        let Ok(in_flight) = self.shared.store.in_flight().await else {
            return;
        };
        for j in in_flight {
            let known = j
                .server
                .as_deref()
                .is_some_and(|name| entries.iter().any(|s| s.name == name));
            if known {
                continue;
            }
            let why = format!(
                "server {} is no longer configured",
                j.server.as_deref().unwrap_or("(none)")
            );
            match self.shared.store.requeue(&j.id, &why).await {
                Ok(Some(_)) => tracing::warn!(job = %j.id, reason = %why, "job requeued"),
                Ok(None) => {}
                Err(e) => tracing::error!(job = %j.id, error = %e, "requeue failed"),
            }
        }
    }
}
