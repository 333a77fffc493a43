//! The webhook outbox for operators: list events with their attempts, redeliver a job's event,
//! replay dead (or failed) events.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use comfydash_wire::{ErrorBody, WebhookEvent, WebhookList, WebhookReplay, WebhookStatus};
use serde::Deserialize;

use super::jobs::{parse_time, validate_job_id};
use super::{AdminKey, AnyKey, ApiError, ApiQuery, AppState, Authed};
use crate::store::WebhookQuery;

/// Query of `GET /api/webhooks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    job_id: Option<String>,
    limit: Option<usize>,
}

/// Query of `POST /api/webhooks/replay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    since: Option<String>,
    status: Option<String>,
}

fn statuses(s: Option<&str>) -> Result<Vec<WebhookStatus>, ApiError> {
    match s {
        None | Some("") => Ok(Vec::new()),
        Some(s) => s
            .split(',')
            .map(|p| p.trim().parse::<WebhookStatus>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request("invalid_query", e)),
    }
}

/// `GET /api/webhooks?status=&job_id=&limit=`: events, newest first, with their attempts.
#[utoipa::path(get, path = "/api/webhooks", operation_id = "list_webhooks", tag = "webhooks", security(("api_key" = []), ("bearer" = [])), params(("status" = Option<String>, Query, description = "Comma-separated: pending, delivered, failed, dead"), ("job_id" = Option<String>, Query, description = "Only this job's events"), ("limit" = Option<usize>, Query, description = "1-500, default 50")), responses((status = 200, body = WebhookList), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn list(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<WebhookList>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1-500",
        ));
    }
    let job_id = q.job_id.filter(|j| !j.is_empty());
    if let Some(j) = &job_id {
        validate_job_id(j)?;
    }
    let query = WebhookQuery {
        statuses: statuses(q.status.as_deref())?,
        job_id,
        limit,
    };
    Ok(Json(WebhookList {
        events: state.store.webhooks(query).await?,
    }))
}

/// `POST /api/jobs/{id}/webhook/redeliver`: the job's latest event again, same id, due now (202).
#[utoipa::path(post, path = "/api/jobs/{id}/webhook/redeliver", tag = "webhooks", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Job id")), responses((status = 202, description = "Queued for delivery now", body = WebhookEvent), (status = 404, description = "No such job (job_not_found) or no event for it (webhook_not_found)", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn redeliver(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<WebhookEvent>), ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "job_not_found",
            format!("no job with id {id:?}"),
        )
    };
    validate_job_id(&id).map_err(|_| not_found())?;
    let Some(event) = state.store.redeliver_webhook(&id).await? else {
        // Events outlive deleted jobs, so the job is only looked up to explain a miss.
        state.store.job(&id).await?;
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "webhook_not_found",
            format!("job {id:?} has no webhook event: no webhook_url, or it has not ended"),
        ));
    };
    state.webhooks.wake();
    tracing::info!(job = %id, event = %event.id, actor = %caller.name, "webhook redelivery requested");
    Ok((StatusCode::ACCEPTED, Json(event)))
}

/// `POST /api/webhooks/replay?since=&status=`: dead (default) or failed events created since a
/// time back to pending.
#[utoipa::path(post, path = "/api/webhooks/replay", tag = "webhooks", security(("api_key" = []), ("bearer" = [])), params(("since" = String, Query, description = "Events created at or after this time (RFC 3339 or ms)"), ("status" = Option<String>, Query, description = "dead (default), failed, or dead,failed")), responses((status = 200, body = WebhookReplay), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn replay(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReplayQuery>,
) -> Result<Json<WebhookReplay>, ApiError> {
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                "since is required: replay events created at or after this RFC 3339 time",
            )
        })?;
    let since_ms = parse_time(since)?;
    let mut wanted = statuses(q.status.as_deref())?;
    if wanted.is_empty() {
        wanted.push(WebhookStatus::Dead);
    }
    if wanted.contains(&WebhookStatus::Pending) || wanted.contains(&WebhookStatus::Delivered) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "replay takes status dead and/or failed; use redeliver for one delivered event",
        ));
    }
    let replayed = state.store.replay_webhooks(since_ms, wanted).await?;
    if replayed > 0 {
        state.webhooks.wake();
    }
    tracing::info!(replayed, since, actor = %caller.name, "webhook replay");
    Ok(Json(WebhookReplay { replayed }))
}
