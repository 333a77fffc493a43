//! `/api/telemetry`: the Lensia backend's figures (O(1): counters), and external sources' reports.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use comfydash_wire::ErrorBody;
use comfydash_wire::{
    ByStatus, ExternalHistory, JobsTelemetry, Performance, QueueTelemetry, StreamEvent, Telemetry,
    TelemetryAccepted, TelemetryReport, TelemetryUpdate, WebhooksTelemetry,
};
use serde::Deserialize;

use super::{
    AnyKey, ApiError, ApiJson, ApiQuery, AppState, Authed, SubmitKey, queue::queue_health, uptime,
};
use crate::store::now_ms;

/// completed / (completed + failed) in percent; 100 when there is nothing to count.
pub fn rate(good: u64, bad: u64) -> f64 {
    if good + bad == 0 {
        100.0
    } else {
        (good as f64 * 10000.0 / (good + bad) as f64).round() / 100.0
    }
}

/// The value at quantile `q` of `sorted` (nearest rank), 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// Webhook delivery counts, as telemetry and the event stream show them.
pub fn webhooks_telemetry(snap: &crate::store::Snapshot) -> WebhooksTelemetry {
    let (delivered, failed) = (snap.get("webhooks_delivered"), snap.get("webhooks_failed"));
    WebhooksTelemetry {
        total: snap.get("webhooks_total"),
        delivered,
        failed,
        pending: snap.get("webhooks_pending"),
        success_rate: rate(delivered, failed),
    }
}

/// `GET /api/telemetry`.
#[utoipa::path(get, path = "/api/telemetry", tag = "telemetry", security(("api_key" = []), ("bearer" = [])), responses((status = 200, body = Telemetry), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn get_telemetry(
    _: Authed<AnyKey>,
    state: State<AppState>,
) -> Result<Json<Telemetry>, ApiError> {
    let snap = state.store.snapshot();
    let by_status = ByStatus {
        pending: snap.get("pending"),
        processing: snap.get("processing"),
        completed: snap.get("completed"),
        failed: snap.get("failed"),
        cancelled: snap.get("cancelled"),
    };
    let mut recent = snap.recent_processing_ms.clone();
    recent.sort_unstable();
    let count = snap.get("processing_ms_count");
    let average = if count == 0 {
        0.0
    } else {
        (snap.get("processing_ms_sum") as f64 / count as f64 * 10.0).round() / 10.0
    };
    let external = state.store.telemetry_latest().await?;
    Ok(Json(Telemetry {
        jobs: JobsTelemetry {
            total: snap.get("total"),
            by_status,
            performance: Performance {
                success_rate: rate(by_status.completed, by_status.failed),
                average_processing_time: average,
                p50_processing_time: quantile(&recent, 0.5),
                p95_processing_time: quantile(&recent, 0.95),
            },
        },
        webhooks: webhooks_telemetry(&snap),
        queue: QueueTelemetry {
            size: by_status.pending + by_status.processing,
            health: queue_health(by_status.pending, &state.config.queue).into(),
            paused: snap.paused,
        },
        uptime_seconds: uptime(&state),
        version: env!("CARGO_PKG_VERSION").into(),
        timestamp: chrono::Utc::now(),
        external,
    }))
}

fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `POST /api/telemetry`: stores a report from an external source.
#[utoipa::path(post, path = "/api/telemetry", tag = "telemetry", security(("api_key" = []), ("bearer" = [])), request_body(content = TelemetryReport, example = json!({"source": "test", "metrics": {"test": 1}})), responses((status = 202, body = TelemetryAccepted), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn post_telemetry(
    _: Authed<SubmitKey>,
    State(state): State<AppState>,
    ApiJson(report): ApiJson<TelemetryReport>,
) -> Result<(StatusCode, Json<TelemetryAccepted>), ApiError> {
    if !valid_name(&report.source, 64) {
        return Err(ApiError::bad_request(
            "invalid_source",
            "source must be 1-64 characters of A-Z a-z 0-9 . _ : -",
        ));
    }
    if report.metrics.is_empty() || report.metrics.len() > 100 {
        return Err(ApiError::bad_request(
            "invalid_metrics",
            "metrics must hold 1-100 name: number pairs",
        ));
    }
    for (name, v) in &report.metrics {
        if !valid_name(name, 128) {
            return Err(ApiError::bad_request(
                "invalid_metrics",
                format!("metric name {name:?} must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
            ));
        }
        if !v.is_finite() {
            return Err(ApiError::bad_request(
                "invalid_metrics",
                format!("metric {name:?} must be a finite number"),
            ));
        }
    }
    if let Some(tags) = &report.tags {
        let size: usize = tags.iter().map(|(k, v)| k.len() + v.len()).sum();
        if tags.len() > 32 || size > 4096 {
            return Err(ApiError::bad_request(
                "invalid_tags",
                "tags must be at most 32 pairs and 4 KiB",
            ));
        }
    }
    let at = report
        .timestamp
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(now_ms);
    let update = StreamEvent::Telemetry(TelemetryUpdate {
        source: report.source.clone(),
        metrics: report.metrics.clone(),
        timestamp: chrono::DateTime::from_timestamp_millis(at).unwrap_or_default(),
    });
    let id = state.store.add_telemetry(report, at).await?;
    state.events.emit(update);
    Ok((
        StatusCode::ACCEPTED,
        Json(TelemetryAccepted {
            id,
            status: "accepted".into(),
        }),
    ))
}

/// Query of `GET /api/telemetry/external`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    source: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/telemetry/external?source=&since=&limit=`.
#[utoipa::path(get, path = "/api/telemetry/external", tag = "telemetry", security(("api_key" = []), ("bearer" = [])), params(("source" = Option<String>, Query, description = "One source"), ("since" = Option<String>, Query, description = "RFC 3339 or ms"), ("limit" = Option<usize>, Query, description = "1-10000, default 1000")), responses((status = 200, body = ExternalHistory), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn external_history(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<ExternalHistory>, ApiError> {
    let since = q
        .since
        .as_deref()
        .map(super::jobs::parse_time)
        .transpose()?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let points = state
        .store
        .telemetry_history(q.source, since, limit)
        .await?;
    Ok(Json(ExternalHistory { points }))
}
