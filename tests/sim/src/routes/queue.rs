//! GET/POST /queue (inspect, clear, delete pending jobs) and POST /interrupt.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AppState, Trouble, parse_json, truthy};

/// GET /queue: running and pending jobs as 5-element tuples, pending in heap order.
pub async fn get_queue(State(app): State<AppState>) -> Json<Value> {
    Json(app.process.queue.lock().snapshot())
}

/// POST /queue: `{"clear": true}` and/or `{"delete": [ids]}`; never touches the running job.
pub async fn post_queue(State(app): State<AppState>, body: Bytes) -> Result<StatusCode, Trouble> {
    let body = parse_json(&body)?;
    let Value::Object(req) = body else {
        return Ok(StatusCode::OK);
    };
    if req.get("clear").is_some_and(truthy) {
        app.process.queue.lock().clear();
        app.process.broadcast_status();
    }
    let ids: Vec<Value> = match req.get("delete") {
        None => Vec::new(),
        Some(Value::Array(ids)) => ids.clone(),
        Some(Value::String(s)) => s.chars().map(|c| json!(c.to_string())).collect(),
        Some(Value::Object(m)) => m.keys().map(|k| json!(k)).collect(),
        Some(_) => return Err(Trouble),
    };
    for id in ids {
        let removed = id
            .as_str()
            .is_some_and(|id| app.process.queue.lock().delete(id));
        if removed {
            app.process.broadcast_status();
        }
    }
    Ok(StatusCode::OK)
}

/// POST /interrupt: targeted (only if that job is running) or global; an empty body is fine.
pub async fn post_interrupt(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<StatusCode, Trouble> {
    let req = serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| json!({}));
    let Value::Object(req) = req else {
        return Err(Trouble);
    };
    match req.get("prompt_id").filter(|v| truthy(v)) {
        Some(target) => {
            let running = target
                .as_str()
                .is_some_and(|id| app.process.queue.lock().is_running(id));
            if running {
                app.process.request_interrupt();
            }
        }
        None => app.process.request_interrupt(),
    }
    Ok(StatusCode::OK)
}
