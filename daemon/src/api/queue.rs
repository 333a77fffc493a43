//! The queue: status, pause and resume (persisted, so a pause survives restarts).

use axum::Json;
use axum::extract::State;
use comfydash_wire::ErrorBody;
use comfydash_wire::{QueueHealth, QueueState};

use super::{AdminKey, AnyKey, ApiError, AppState, Authed};
use crate::config::QueueConfig;
use crate::store::Snapshot;

/// Queue health from the pending count.
pub fn queue_health(pending: u64, cfg: &QueueConfig) -> QueueHealth {
    if pending >= cfg.high_at {
        QueueHealth::High
    } else if pending >= cfg.moderate_at {
        QueueHealth::Moderate
    } else {
        QueueHealth::Good
    }
}

/// The queue as counters show it.
pub fn queue_state(snap: &Snapshot, cfg: &QueueConfig) -> QueueState {
    let (pending, processing) = (snap.get("pending"), snap.get("processing"));
    QueueState {
        paused: snap.paused,
        pending,
        processing,
        size: pending + processing,
        health: queue_health(pending, cfg),
        max_pending: cfg.max_pending,
    }
}

fn state_of(state: &AppState) -> QueueState {
    queue_state(&state.store.snapshot(), &state.config.queue)
}

/// `GET /api/queue`.
#[utoipa::path(get, path = "/api/queue", operation_id = "queue_status", tag = "queue", security(("api_key" = []), ("bearer" = [])), responses((status = 200, body = QueueState), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn status(_: Authed<AnyKey>, State(state): State<AppState>) -> Json<QueueState> {
    Json(state_of(&state))
}

/// `POST /api/queue/pause`.
#[utoipa::path(post, path = "/api/queue/pause", tag = "queue", security(("api_key" = []), ("bearer" = [])), responses((status = 200, body = QueueState), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn pause(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
) -> Result<Json<QueueState>, ApiError> {
    if state.store.set_paused(true).await? {
        tracing::info!(actor = %caller.name, "queue paused");
    }
    state.worker.wake();
    Ok(Json(state_of(&state)))
}

/// `POST /api/queue/resume`.
#[utoipa::path(post, path = "/api/queue/resume", tag = "queue", security(("api_key" = []), ("bearer" = [])), responses((status = 200, body = QueueState), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn resume(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
) -> Result<Json<QueueState>, ApiError> {
    if state.store.set_paused(false).await? {
        tracing::info!(actor = %caller.name, "queue resumed");
    }
    state.worker.wake();
    Ok(Json(state_of(&state)))
}
