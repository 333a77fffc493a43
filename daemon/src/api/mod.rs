//! The HTTP API: routes, shared state, authentication and the one error type.

mod alerts;
mod config;
mod error;
mod events;
mod health;
mod jobs;
mod openapi;
mod queue;
mod servers;
mod telemetry;
mod webhooks;

use comfydash_wire::ErrorBody;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;

pub use error::ApiError;
pub use jobs::image_kind;
pub use openapi::ApiDoc;
pub use queue::{queue_health, queue_state};
pub use telemetry::{rate, webhooks_telemetry};

use crate::auth::{Caller, Keys, Role};
use crate::config::Config;
use crate::outbound::OutboundPolicy;
use crate::servers::Servers;
use crate::store::Store;

/// Everything a handler needs; a cheap clone of handles.
#[derive(Clone)]
pub struct AppState {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// Job store.
    pub store: Store,
    /// Accepted API keys.
    pub keys: Arc<Keys>,
    /// ComfyUI servers and their probed status.
    pub servers: Servers,
    /// Rules for client-supplied URLs.
    pub outbound: Arc<OutboundPolicy>,
    /// When the daemon started.
    pub started: Instant,
    /// Live events.
    pub events: crate::events::Bus,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Runs jobs on ComfyUI.
    pub worker: crate::worker::Worker,
    /// Queue history for charts.
    pub sampler: crate::stats::Sampler,
    /// Cancelled when the daemon shuts down (closes event streams).
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Webhook delivery.
    pub webhooks: crate::webhook::Webhooks,
    /// Built-in alerts.
    pub alerts: crate::alerts::Alerts,
    /// Re-reading the configuration (SIGHUP, `POST /api/config/reload`).
    pub reload: Arc<crate::reload::ReloadHook>,
}

/// Every route of the daemon.
pub fn router(state: AppState) -> Router {
    let timeout = state.config.http.request_timeout;
    let max_body = state.config.http.max_body_bytes;
    Router::new()
        .route("/api/ping", get(health::ping))
        .route("/api/health", get(health::health))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route(
            "/api/telemetry",
            get(telemetry::get_telemetry).post(telemetry::post_telemetry),
        )
        .route("/api/telemetry/external", get(telemetry::external_history))
        .route("/api/jobs", post(jobs::submit).get(jobs::list))
        .route(
            "/api/jobs/{id}",
            get(jobs::get_job).delete(jobs::delete_job),
        )
        .route("/api/jobs/{id}/events", get(jobs::job_events))
        .route("/api/jobs/{id}/cancel", post(jobs::cancel))
        .route("/api/jobs/{id}/retry", post(jobs::retry))
        .route("/api/jobs/{id}/outputs/{index}", get(jobs::output))
        .route(
            "/api/jobs/{id}/webhook/redeliver",
            post(webhooks::redeliver),
        )
        .route("/api/webhooks", get(webhooks::list))
        .route("/api/webhooks/replay", post(webhooks::replay))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/test", post(alerts::test))
        .route(
            "/api/alerts/silences",
            get(alerts::silences).post(alerts::add_silence),
        )
        .route("/api/alerts/silences/{id}", delete(alerts::end_silence))
        .route("/api/workflows", get(jobs::workflows))
        .route("/api/queue", get(queue::status))
        .route("/api/queue/pause", post(queue::pause))
        .route("/api/queue/resume", post(queue::resume))
        .route("/api/servers", get(servers::list))
        .route("/api/servers/{name}/{action}", post(servers::action))
        .route("/api/stats/history", get(servers::history))
        .route("/api/config/reload", post(config::reload))
        // Everything above is bounded in time; the event stream below is long-lived by design.
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            with_timeout(req, next, timeout)
        }))
        .route("/api/events", get(events::stream))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(protocol_header))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .with_state(state)
}

async fn with_timeout(req: Request, next: Next, limit: std::time::Duration) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "request_timeout",
            format!("the request took longer than {} ms", limit.as_millis()),
        )),
    }
}

/// Counts every request by route template (never the raw path: ids would explode cardinality).
async fn count_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .http_request(&route, &method, resp.status().as_u16(), started.elapsed());
    resp
}

/// `GET /metrics`: any key, or none when `metrics.open` is set for a private scraper.
#[utoipa::path(get, path = "/metrics", tag = "metrics", security((), ("api_key" = []), ("bearer" = [])), responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"), (status = 401, body = ErrorBody)))]
async fn metrics(State(state): State<AppState>, parts: Parts) -> Result<Response, ApiError> {
    if !state.config.metrics.open {
        let mut parts = parts;
        Authed::<AnyKey>::from_request_parts(&mut parts, &state).await?;
    }
    let external = state.store.telemetry_latest().await?;
    let body = state.metrics.render(
        &state.store.snapshot(),
        &state.servers,
        &state.config.queue,
        &external,
    );
    Ok(axum::response::IntoResponse::into_response((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )))
}

async fn protocol_header(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        comfydash_wire::PROTOCOL_HEADER,
        HeaderValue::from(comfydash_wire::PROTOCOL_VERSION),
    );
    resp
}

/// Roles a route can require.
pub trait Need: Send + Sync {
    /// The least role allowed.
    const ROLE: Role;
}

/// Any valid key.
pub struct AnyKey;
impl Need for AnyKey {
    const ROLE: Role = Role::Read;
}
/// A submit or admin key.
pub struct SubmitKey;
impl Need for SubmitKey {
    const ROLE: Role = Role::Submit;
}
/// An admin key.
pub struct AdminKey;
impl Need for AdminKey {
    const ROLE: Role = Role::Admin;
}

/// The authenticated caller, with at least role `N::ROLE`.
pub struct Authed<N: Need>(pub Caller, std::marker::PhantomData<N>);

/// The key presented as `X-API-Key` or `Authorization: Bearer`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(k) = parts.headers.get("x-api-key") {
        return k.to_str().ok();
    }
    let auth = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl<N: Need> FromRequestParts<AppState> for Authed<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented_key(parts).ok_or_else(|| {
            ApiError::unauthorized("missing API key: send X-API-Key or Authorization: Bearer")
        })?;
        let caller = state
            .keys
            .authenticate(key)
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        if caller.role < N::ROLE {
            return Err(ApiError::forbidden(format!(
                "key {:?} has role {}; this needs {}",
                caller.name,
                caller.role,
                N::ROLE
            )));
        }
        Ok(Authed(caller, std::marker::PhantomData))
    }
}

/// A JSON body read whatever its content type; every failure becomes an [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            let status = rej.status();
            if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "payload_too_large", "request body is too large")
            } else {
                ApiError::new(status, "invalid_body", rej.body_text())
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_json",
                "request body is empty; send a JSON object",
            ));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => ApiError::bad_request("invalid_request", e.to_string()),
                _ => ApiError::bad_request("invalid_json", format!("malformed JSON: {e}")),
            }
        })
    }
}

/// Query string parsing whose failures become [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(ApiQuery)
            .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))
    }
}

/// Seconds since start.
fn uptime(state: &State<AppState>) -> u64 {
    state.started.elapsed().as_secs()
}
