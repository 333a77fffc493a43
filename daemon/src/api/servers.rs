//! `/api/servers` and `/api/stats/history`: what the console's overview and servers screens show.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use comfydash_wire::ErrorBody;
use comfydash_wire::{ServerInfo, ServerList, StatsHistory};

use super::{AdminKey, AnyKey, ApiError, AppState, Authed};
use crate::servers::{Mode, ServerState};

fn info(s: ServerState) -> ServerInfo {
    ServerInfo {
        name: s.name,
        url: s.url,
        status: s.status,
        latency_ms: s.latency_ms,
        device: s.device,
        vram_total: s.vram.map(|v| v.0),
        vram_free: s.vram.map(|v| v.1),
        version: s.version,
        in_flight: s.in_flight,
        consecutive_failures: s.consecutive_failures,
    }
}

/// `POST /api/servers/{name}/{action}`: `drain`, `enable`, `disable` (persisted) or `free`.
#[utoipa::path(post, path = "/api/servers/{name}/{action}", operation_id = "server_action", tag = "servers", security(("api_key" = []), ("bearer" = [])), params(("name" = String, Path, description = "Server name"), ("action" = String, Path, description = "drain, enable, disable or free")), responses((status = 200, body = ServerInfo), (status = 404, body = ErrorBody), (status = 502, description = "ComfyUI refused /free", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn action(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<ServerInfo>, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "server_not_found",
            format!("no server named {name:?}"),
        )
    };
    let idx = state.servers.index_of(&name).ok_or_else(not_found)?;
    let mode = match action.as_str() {
        "drain" => Mode::Draining,
        "disable" => Mode::Disabled,
        "enable" => Mode::Active,
        "free" => {
            let url = state.servers.get(idx).map(|s| s.url).unwrap_or_default();
            crate::comfyui::ComfyClient::new(&url, state.config.worker.comfyui_timeout)
                .free()
                .await
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_GATEWAY,
                        "comfyui_error",
                        format!("server {name}: {e}"),
                    )
                })?;
            tracing::info!(server = %name, actor = %caller.name, "asked ComfyUI to free memory");
            let s = state.servers.get(idx).ok_or_else(not_found)?;
            return Ok(Json(info(s)));
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("unknown server action {other:?}: drain, enable, disable or free"),
            ));
        }
    };
    state
        .store
        .set_setting(&format!("server_mode:{name}"), mode.as_str())
        .await?;
    let s = state.servers.set_mode(idx, mode).ok_or_else(not_found)?;
    tracing::info!(server = %name, mode = mode.as_str(), actor = %caller.name, "server mode changed");
    state.worker.wake();
    Ok(Json(info(s)))
}

/// `GET /api/servers`.
#[utoipa::path(get, path = "/api/servers", operation_id = "list_servers", tag = "servers", security(("api_key" = []), ("bearer" = [])), responses((status = 200, body = ServerList), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn list(_: Authed<AnyKey>, State(state): State<AppState>) -> Json<ServerList> {
    Json(ServerList {
        servers: state.servers.all().into_iter().map(info).collect(),
    })
}

/// `GET /api/stats/history`.
#[utoipa::path(get, path = "/api/stats/history", operation_id = "stats_history", tag = "servers", security(("api_key" = []), ("bearer" = [])), responses((status = 200, body = StatsHistory), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn history(_: Authed<AnyKey>, State(state): State<AppState>) -> Json<StatsHistory> {
    Json(state.sampler.history())
}
