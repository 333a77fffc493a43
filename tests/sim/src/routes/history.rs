//! GET /history (paged, insertion order), GET /history/{id} and POST /history (clear/delete).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{AppState, Trouble, json_response, parse_json, truthy};
use crate::validate::cast::py_int;

/// Python `int(query_value)`.
fn query_int(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, Trouble> {
    match q.get(key) {
        None => Ok(None),
        Some(s) => py_int(&json!(s))
            .ok()
            .and_then(|v| v.as_i64())
            .map(Some)
            .ok_or(Trouble),
    }
}

/// GET /history[?max_items=N][&offset=K].
pub async fn get_history(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Trouble> {
    let max_items = query_int(&q, "max_items")?;
    let offset = query_int(&q, "offset")?;
    let body = app.process.history.lock().page_json(max_items, offset);
    Ok(json_response(StatusCode::OK, body))
}

/// GET /history/{id}: `{id: entry}`, or `{}` when unknown.
pub async fn get_history_item(
    State(app): State<AppState>,
    Path(prompt_id): Path<String>,
) -> Response {
    let entry = app.process.history.lock().get(&prompt_id).cloned();
    let body = match entry {
        Some(entry) => {
            let mut map = serde_json::Map::new();
            map.insert(prompt_id, entry);
            Value::Object(map)
        }
        None => json!({}),
    };
    json_response(StatusCode::OK, body.to_string())
}

/// POST /history: `{"clear": true}` and/or `{"delete": [ids]}`; output files stay.
pub async fn post_history(State(app): State<AppState>, body: Bytes) -> Result<StatusCode, Trouble> {
    let body = parse_json(&body)?;
    let Value::Object(req) = body else {
        return Ok(StatusCode::OK);
    };
    let mut history = app.process.history.lock();
    if req.get("clear").is_some_and(truthy) {
        history.clear();
    }
    match req.get("delete") {
        None => {}
        Some(Value::Array(ids)) => ids
            .iter()
            .filter_map(Value::as_str)
            .for_each(|id| history.delete(id)),
        Some(Value::String(s)) => s.chars().for_each(|c| history.delete(&c.to_string())),
        Some(_) => return Err(Trouble),
    }
    Ok(StatusCode::OK)
}
