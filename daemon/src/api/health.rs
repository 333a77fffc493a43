//! Open endpoints: ping, health, liveness and readiness. All O(1): counters and probe results only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use comfydash_wire::{
    ComfyUiService, DatabaseService, Health, HealthStatus, Ping, QueueHealth, ServerStatus,
    Services, Statistics, UpDown,
};

use super::{AppState, queue::queue_health, uptime};

/// `GET /api/ping`.
#[utoipa::path(get, path = "/api/ping", tag = "health", responses((status = 200, description = "The daemon answers", body = Ping)))]
pub async fn ping() -> Json<Ping> {
    Json(Ping {
        status: "ok".into(),
        timestamp: chrono::Utc::now(),
    })
}

/// Builds the health answer from counters and probe results.
pub fn health_of(state: &State<AppState>) -> Health {
    let snap = state.store.snapshot();
    let servers = state.servers.health();
    let comfy_up = servers.iter().any(|s| s.status.is_up());
    let any_down = servers
        .iter()
        .any(|s| matches!(s.status, ServerStatus::Down | ServerStatus::Stuck));
    let db_up = state.store.is_writable();
    let pending = snap.get("pending");
    let qh = queue_health(pending, &state.config.queue);
    let degraded = any_down || !comfy_up || !db_up || qh == QueueHealth::High;
    Health {
        status: if degraded {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        },
        timestamp: chrono::Utc::now(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: uptime(state),
        services: Services {
            comfyui: ComfyUiService {
                status: if comfy_up { UpDown::Up } else { UpDown::Down },
                servers,
            },
            database: DatabaseService {
                status: if db_up { UpDown::Up } else { UpDown::Down },
            },
        },
        statistics: Statistics {
            pending,
            processing: snap.get("processing"),
            completed: snap.get("completed"),
            failed: snap.get("failed"),
            cancelled: snap.get("cancelled"),
            paused: snap.paused,
            queue_health: qh,
        },
    }
}

/// `GET /api/health`: always 200; `status` says healthy or degraded.
#[utoipa::path(get, path = "/api/health", tag = "health", responses((status = 200, description = "Always 200; `status` says healthy or degraded", body = Health)))]
pub async fn health(state: State<AppState>) -> Json<Health> {
    Json(health_of(&state))
}

/// `GET /livez`: the process answers.
#[utoipa::path(get, path = "/livez", tag = "health", responses((status = 200, description = "The process is alive")))]
pub async fn livez() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 503 unless the database is writable and a ComfyUI server is up.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "Database writable and a ComfyUI server up"), (status = 503, description = "Not ready")))]
pub async fn readyz(state: State<AppState>) -> impl IntoResponse {
    let db = state.store.is_writable();
    let comfy = state.servers.health().iter().any(|s| s.status.is_up());
    let body = Json(serde_json::json!({
        "status": if db && comfy { "ready" } else { "not_ready" },
        "database": db,
        "comfyui": comfy,
    }));
    let status = if db && comfy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}
