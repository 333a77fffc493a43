//! `/api/servers` and `/api/stats/history`: what the console's overview and servers screens show.

use axum::Json;
use axum::extract::State;
use comfydash_wire::{ServerInfo, ServerList, StatsHistory};

use super::{AnyKey, AppState, Authed};

/// `GET /api/servers`.
pub async fn list(_: Authed<AnyKey>, State(state): State<AppState>) -> Json<ServerList> {
    Json(ServerList {
        servers: state
            .servers
            .all()
            .into_iter()
            .map(|s| ServerInfo {
                name: s.name,
                url: s.url,
                status: s.status,
                latency_ms: s.latency_ms,
                device: s.device,
                vram_total: s.vram.map(|v| v.0),
                vram_free: s.vram.map(|v| v.1),
                version: s.version,
                in_flight: s.in_flight,
                consecutive_failures: s.consecutive_failures,
            })
            .collect(),
    })
}

/// `GET /api/stats/history`.
pub async fn history(_: Authed<AnyKey>, State(state): State<AppState>) -> Json<StatsHistory> {
    Json(state.sampler.history())
}
