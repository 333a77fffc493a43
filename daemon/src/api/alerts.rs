//! Alerts: the list (active, history, silences, deliveries), channel tests, and silences.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use comfydash_wire::{AlertList, AlertTestResult, ErrorBody, NewSilence, Silence, SilenceList};
use serde::Deserialize;

use super::{AdminKey, AnyKey, ApiError, ApiJson, ApiQuery, AppState, Authed};
use crate::alerts::silence;
use crate::store::now_ms;

/// Most resolved alerts one answer lists.
const MAX_HISTORY: usize = 500;
/// Recent deliveries listed.
const DELIVERIES: usize = 20;

/// `GET /api/alerts` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Resolved alerts listed, newest first (default 50, at most 500).
    limit: Option<usize>,
}

/// `GET /api/alerts`.
#[utoipa::path(get, path = "/api/alerts", operation_id = "list_alerts", tag = "alerts", security(("api_key" = []), ("bearer" = [])), params(("limit" = Option<usize>, Query, description = "Resolved alerts listed (default 50, at most 500)")), responses((status = 200, body = AlertList), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn list(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<AlertList>, ApiError> {
    let limit = q.limit.unwrap_or(50).min(MAX_HISTORY);
    let (mut active, history) = state.store.alerts_list(limit).await?;
    // The database alert has no row: it is listed from memory while it fires.
    active.extend(state.alerts.unrecorded());
    let silences = state.store.silences(now_ms(), false).await?;
    let deliveries = state.store.alert_deliveries(DELIVERIES).await?;
    Ok(Json(AlertList {
        active,
        history,
        silences,
        channels: state.alerts.channel_names(),
        deliveries,
    }))
}

/// `POST /api/alerts/test`: a test message to every channel; one result each.
#[utoipa::path(post, path = "/api/alerts/test", operation_id = "test_alert_channels", tag = "alerts", security(("api_key" = []), ("bearer" = [])), responses((status = 200, description = "One result per channel", body = AlertTestResult), (status = 409, description = "No channel configured", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn test(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
) -> Result<Json<AlertTestResult>, ApiError> {
    if state.alerts.channel_names().is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_alert_channels",
            "no alert channel is configured: set alerts.slack_webhook_url, alerts.discord_webhook_url, \
             alerts.telegram_bot_token with alerts.telegram_chat_id, or alerts.webhook_url",
        ));
    }
    // Answer before the request's own time limit, whatever the channels do.
    let deadline = state.config.http.request_timeout.mul_f32(0.8);
    let results = state.alerts.test(deadline).await;
    tracing::info!(actor = %caller.name, ok = results.iter().filter(|r| r.ok).count(), of = results.len(), "alert test sent");
    Ok(Json(AlertTestResult { results }))
}

/// `GET /api/alerts/silences` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceQuery {
    /// Include silences that have ended.
    #[serde(default)]
    expired: bool,
}

/// `GET /api/alerts/silences`.
#[utoipa::path(get, path = "/api/alerts/silences", operation_id = "list_silences", tag = "alerts", security(("api_key" = []), ("bearer" = [])), params(("expired" = Option<bool>, Query, description = "Include ended silences")), responses((status = 200, body = SilenceList), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn silences(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SilenceQuery>,
) -> Result<Json<SilenceList>, ApiError> {
    let silences = state.store.silences(now_ms(), q.expired).await?;
    Ok(Json(SilenceList { silences }))
}

/// `POST /api/alerts/silences` → 201 with the silence.
#[utoipa::path(post, path = "/api/alerts/silences", operation_id = "add_silence", tag = "alerts", security(("api_key" = []), ("bearer" = [])), request_body(content = NewSilence, example = json!({"rule": "server_down", "labels": {"server": "gpu0"}, "duration": "2h", "comment": "driver update"})), responses((status = 201, body = Silence), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn add_silence(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewSilence>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let s = silence::build(new, &caller.name, chrono::Utc::now())
        .map_err(|e| ApiError::bad_request("invalid_silence", e.to_string()))?;
    state.store.silence_add(s.clone()).await?;
    tracing::info!(actor = %caller.name, id = %s.id, rule = ?s.rule, labels = ?s.labels, until = %s.ends_at, "silence added");
    state.alerts.wake();
    Ok((StatusCode::CREATED, Json(s)))
}

/// `DELETE /api/alerts/silences/{id}`: ends it now (it stays listed as expired) → 204.
#[utoipa::path(delete, path = "/api/alerts/silences/{id}", operation_id = "end_silence", tag = "alerts", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Silence id")), responses((status = 204, description = "Ended"), (status = 404, description = "No such silence in force", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn end_silence(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.silence_expire(&id, now_ms()).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "silence_not_found",
            format!("no silence in force with id {id:?}"),
        ));
    }
    tracing::info!(actor = %caller.name, %id, "silence ended");
    state.alerts.wake();
    Ok(StatusCode::NO_CONTENT)
}
