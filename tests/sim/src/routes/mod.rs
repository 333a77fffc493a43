//! The HTTP surface: ComfyUI's routes (each also under `/api`), its origin check and error
//! bodies, the unresponsive-mode gate, and the `/sim/` control routes.

mod control;
mod files;
mod history;
mod prompt;
mod queue;
mod system;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::host::Host;
use crate::process::Process;
use crate::ws;

/// aiohttp's client_max_size as ComfyUI sets it (`--max-upload-size` 100 MB).
const MAX_BODY: usize = 100 * 1024 * 1024;

/// What every handler sees: the host, the process this router serves, and the token that
/// ends this listening generation's WebSockets.
#[derive(Clone)]
pub struct AppState {
    /// Survives restarts.
    pub host: Arc<Host>,
    /// The process being served.
    pub process: Arc<Process>,
    /// Cancelled when connections are dropped (refuse/restart).
    pub stop: CancellationToken,
}

/// An unhandled exception in a ComfyUI handler: aiohttp's plain-text 500.
#[derive(Debug, thiserror::Error)]
#[error("server got itself in trouble")]
pub struct Trouble;

impl IntoResponse for Trouble {
    fn into_response(self) -> Response {
        let body = "500 Internal Server Error\n\nServer got itself in trouble";
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// `await request.json()`: malformed or empty bodies raise.
pub fn parse_json(body: &Bytes) -> Result<Value, Trouble> {
    serde_json::from_slice(body).map_err(|_| Trouble)
}

/// Python truthiness of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// A JSON response the way aiohttp's `json_response` sends it.
pub fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn comfy_routes() -> Router<AppState> {
    Router::new()
        .route("/ws", get(ws_route))
        .route("/prompt", get(prompt::get_prompt).post(prompt::post_prompt))
        .route("/queue", get(queue::get_queue).post(queue::post_queue))
        .route("/interrupt", post(queue::post_interrupt))
        .route(
            "/history",
            get(history::get_history).post(history::post_history),
        )
        .route("/history/{prompt_id}", get(history::get_history_item))
        .route("/view", get(files::view))
        .route("/upload/image", post(files::upload_image))
        .route("/system_stats", get(system::system_stats))
        .route("/object_info", get(system::object_info))
        .route("/object_info/{node_class}", get(system::object_info_class))
        .route("/free", post(system::free))
        .route("/features", get(system::features))
        .route("/embeddings", get(system::empty_list))
        .route("/extensions", get(system::empty_list))
}

/// The whole router for one process and listening generation.
pub fn router(state: AppState) -> Router {
    let comfy = comfy_routes();
    Router::new()
        .merge(comfy.clone())
        .nest("/api", comfy)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            unresponsive_gate,
        ))
        .merge(control::routes())
        .layer(middleware::from_fn(origin_check))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn ws_route(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client_id = q.get("clientId").filter(|s| !s.is_empty()).cloned();
    upgrade.on_upgrade(move |socket| ws::session(app.process, socket, client_id, app.stop))
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404: Not Found",
    )
        .into_response()
}

/// Unresponsive mode: the request is read but never answered (until the connection drops).
async fn unresponsive_gate(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if app.host.knobs.unresponsive() {
        std::future::pending::<()>().await;
    }
    next.run(req).await
}

/// ComfyUI's origin_only_middleware: 403 (empty) when a loopback Host and the Origin differ.
async fn origin_check(req: Request, next: Next) -> Response {
    if origin_mismatch(req.headers()) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if req.method() == Method::OPTIONS {
        return StatusCode::OK.into_response();
    }
    next.run(req).await
}

fn origin_mismatch(headers: &HeaderMap) -> bool {
    let (Some(host), Some(origin)) = (headers.get(header::HOST), headers.get(header::ORIGIN))
    else {
        return false;
    };
    let host = String::from_utf8_lossy(host.as_bytes()).to_lowercase();
    let origin = String::from_utf8_lossy(origin.as_bytes()).to_lowercase();
    let netloc = origin
        .split_once("//")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    let (host_name, host_port) = split_host_port(&host);
    let (origin_name, origin_port) = split_host_port(netloc);
    let loopback = host_name == "localhost"
        || host_name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    // Like ComfyUI: compare without ports when either side has none.
    let host_cmp = if origin_port.is_none() {
        host_name
    } else {
        host.as_str()
    };
    let origin_cmp = if host_port.is_none() {
        origin_name
    } else {
        netloc
    };
    loopback && !host_cmp.is_empty() && !origin_cmp.is_empty() && host_cmp != origin_cmp
}

/// Splits `name:port` / `[v6]:port` into the bare host name and the port.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        let (name, tail) = rest.split_once(']').unwrap_or((rest, ""));
        return (name, tail.strip_prefix(':'));
    }
    match s.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, Some(port))
        }
        _ => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().expect("host"));
        h.insert(header::ORIGIN, origin.parse().expect("origin"));
        h
    }

    #[test]
    fn origin_rules() {
        assert!(origin_mismatch(&headers(
            "127.0.0.1:8188",
            "http://evil.example"
        )));
        assert!(!origin_mismatch(&headers(
            "127.0.0.1:8188",
            "http://127.0.0.1:8188"
        )));
        assert!(!origin_mismatch(&headers(
            "127.0.0.1:8188",
            "http://127.0.0.1"
        )));
        assert!(!origin_mismatch(&headers(
            "example.com",
            "http://evil.example"
        )));
        assert!(origin_mismatch(&headers(
            "localhost:8188",
            "http://localhost:9999"
        )));
    }
}
