//! `/sim/` routes (not part of ComfyUI) so another process, e.g. a soak test, can steer the
//! simulator: change knobs, restart it, read counters. They answer even in unresponsive mode.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;

/// Lets the response leave before connections are dropped.
const GRACE: Duration = Duration::from_millis(20);

/// The control routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sim/config", get(get_config).post(post_config))
        .route("/sim/restart", post(restart))
        .route("/sim/stats", get(stats))
}

/// Body of POST /sim/config; absent fields are left alone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    exec_time_ms: Option<u64>,
    failure_rate: Option<f64>,
    hang: Option<bool>,
    unresponsive: Option<bool>,
    /// Refuse connections for this long, then listen again on the same port.
    refuse_for_ms: Option<u64>,
}

fn config(app: &AppState) -> Value {
    let k = &app.host.knobs;
    json!({
        "exec_time_ms": k.exec_time().as_millis() as u64,
        "failure_rate": k.failure_rate(),
        "hang": k.hang(),
        "unresponsive": k.unresponsive(),
    })
}

async fn get_config(State(app): State<AppState>) -> Json<Value> {
    Json(config(&app))
}

async fn post_config(State(app): State<AppState>, body: axum::body::Bytes) -> Response {
    let change: ConfigChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let knobs = &app.host.knobs;
    if let Some(ms) = change.exec_time_ms {
        knobs.set_exec_time(Duration::from_millis(ms));
    }
    if let Some(r) = change.failure_rate {
        knobs.set_failure_rate(r);
    }
    if let Some(h) = change.hang {
        knobs.set_hang(h);
    }
    if let Some(u) = change.unresponsive {
        knobs.set_unresponsive(u);
    }
    if let Some(ms) = change.refuse_for_ms {
        let host = app.host.clone();
        tokio::spawn(async move {
            tokio::time::sleep(GRACE).await;
            host.set_refuse_connections(true);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            host.set_refuse_connections(false);
        });
    }
    Json(config(&app)).into_response()
}

async fn restart(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    let host = app.host.clone();
    tokio::spawn(async move {
        tokio::time::sleep(GRACE).await;
        host.restart().await;
    });
    (StatusCode::ACCEPTED, Json(json!({"restarting": true})))
}

async fn stats(State(app): State<AppState>) -> Json<Value> {
    let host = &app.host;
    let process = host.process();
    let (pending, running) = {
        let q = process.queue.lock();
        (q.pending_len(), q.remaining() - q.pending_len())
    };
    Json(json!({
        "history_len": process.history.lock().len(),
        "executed_count": host.executed.load(std::sync::atomic::Ordering::SeqCst),
        "ws_clients": process.sockets.registered(),
        "ws_connections": process.sockets.open(),
        "queue_pending": pending,
        "queue_running": running,
        "received_prompts": host.received.lock().len(),
        "config": config(&app),
    }))
}
