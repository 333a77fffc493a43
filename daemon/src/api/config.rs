//! `POST /api/config/reload`: the daemon re-reads its own configuration, as on SIGHUP, and says
//! what changed; an operator gets the answer (or the file's error) instead of a log line.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use comfydash_wire::{ErrorBody, ReloadReport};

use super::{AdminKey, ApiError, AppState, Authed};
use crate::reload::{self, ReloadError};

/// `POST /api/config/reload`.
#[utoipa::path(post, path = "/api/config/reload", operation_id = "reload_config", tag = "config", security(("api_key" = []), ("bearer" = [])), responses((status = 200, description = "Applied; the running configuration now follows the file", body = ReloadReport), (status = 409, description = "Started without a configuration source", body = ErrorBody), (status = 422, description = "The configuration does not load; the running one is kept", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn reload(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
) -> Result<Json<ReloadReport>, ApiError> {
    tracing::info!(actor = %caller.name, "configuration reload requested");
    match reload::from_source(&state).await {
        Ok(report) => Ok(Json(report)),
        Err(e @ ReloadError::Unavailable) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "reload_unavailable",
            e.to_string(),
        )),
        Err(e @ ReloadError::Invalid(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "config_invalid",
            format!("the configuration does not load; the running one is kept: {e}"),
        )),
    }
}
