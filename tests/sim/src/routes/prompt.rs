//! POST /prompt (submit: priority, validation, queueing) and GET /prompt.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{AppState, Trouble, json_response, parse_json, truthy};
use crate::pyfmt::py_str;
use crate::queue::Job;
use crate::validate::{self, cast};

/// GET /prompt: `{"exec_info": {"queue_remaining": N}}`.
pub async fn get_prompt(State(app): State<AppState>) -> Json<Value> {
    Json(app.process.queue_info())
}

/// POST /prompt.
pub async fn post_prompt(State(app): State<AppState>, body: Bytes) -> Result<Response, Trouble> {
    let body = parse_json(&body)?;
    let Value::Object(req) = &body else {
        return Err(Trouble);
    };
    let given = match req.get("number") {
        Some(v) => Some(
            cast::py_float(v)
                .map_err(|_| Trouble)?
                .as_f64()
                .unwrap_or(f64::NAN),
        ),
        None => None,
    };
    let front = req.get("front").is_some_and(truthy);
    // The counter advances before the prompt is even looked at, so rejected posts use it up too.
    let number = app.process.queue.lock().next_number(given, front);
    let Some(prompt) = req.get("prompt") else {
        let error = json!({"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}});
        return Ok((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "node_errors": {}})),
        )
            .into_response());
    };
    let prompt_id = match req.get("prompt_id") {
        Some(v) => py_str(v),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let dirs = app.host.dirs.clone();
    let (prompt_in, partial) = (
        prompt.clone(),
        req.get("partial_execution_targets").cloned(),
    );
    let verdict = tokio::task::spawn_blocking(move || {
        validate::validate_prompt(&prompt_in, partial.as_ref(), &dirs)
    })
    .await
    .map_err(|_| Trouble)?
    .map_err(|e| {
        tracing::warn!(error = %e, "prompt crashed the validator");
        Trouble
    })?;
    let mut extra_data = match req.get("extra_data") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(Trouble),
    };
    if let Some(client_id) = req.get("client_id") {
        extra_data.insert("client_id".into(), client_id.clone());
    }
    let accepted = match verdict {
        Ok(accepted) => accepted,
        Err(rejected) => {
            let body = json!({"error": rejected.error, "node_errors": rejected.node_errors});
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    };
    let response = json!({"prompt_id": prompt_id, "number": number.to_json(), "node_errors": accepted.node_errors});
    app.host.received.lock().push(body.clone());
    app.process.enqueue(Job {
        number,
        prompt_id,
        prompt: accepted.graph,
        extra_data,
        outputs: accepted.outputs,
        seq: 0,
    });
    Ok(json_response(StatusCode::OK, response.to_string()))
}
