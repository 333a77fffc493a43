//! GET /system_stats, /object_info[/{cls}], /features, the empty listing routes, and POST /free.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AppState, Trouble, parse_json, truthy};
use crate::nodes::{NodeClass, object_info_all};
use crate::process::FreeRequest;
use crate::ws::server_features;

/// The ComfyUI version the simulator imitates (the one the protocol notes were checked against).
pub const COMFYUI_VERSION: &str = "0.3.64";

/// (total, available) RAM in bytes from /proc/meminfo, or plausible constants elsewhere.
fn ram() -> (u64, u64) {
    let parse = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    match (parse(&text, "MemTotal:"), parse(&text, "MemAvailable:")) {
        (Some(total), Some(free)) => (total, free),
        _ => (34_359_738_368, 25_769_803_776),
    }
}

/// GET /system_stats: one device, whose free memory drops while a job runs.
pub async fn system_stats(State(app): State<AppState>) -> Json<Value> {
    let (ram_total, ram_free) = ram();
    let host = &app.host;
    let busy = app.process.queue.lock().remaining() > 0;
    let total = host.vram_total;
    let used = total / 16 + if busy { total / 3 } else { 0 };
    let free = total.saturating_sub(used);
    let cpu = host.device_name.starts_with("cpu");
    let port = host.addr().port().to_string();
    Json(json!({
        "system": {
            "os": "posix",
            "ram_total": ram_total,
            "ram_free": ram_free,
            "comfyui_version": COMFYUI_VERSION,
            "required_frontend_version": "1.27.10",
            "installed_templates_version": "0.1.95",
            "required_templates_version": "0.1.95",
            "python_version": "3.11.7 (main, Dec  8 2023, 18:56:58) [GCC 11.4.0]",
            "pytorch_version": "2.8.0+cu128",
            "embedded_python": false,
            "argv": ["main.py", "--listen", "127.0.0.1", "--port", port],
        },
        "devices": [{
            "name": host.device_name,
            "type": if cpu { "cpu" } else { "cuda" },
            "index": if cpu { Value::Null } else { json!(0) },
            "vram_total": total,
            "vram_free": free,
            "torch_vram_total": total,
            "torch_vram_free": free,
        }],
    }))
}

/// GET /object_info.
pub async fn object_info(State(app): State<AppState>) -> Json<Value> {
    Json(object_info_all(&app.host.dirs))
}

/// GET /object_info/{cls}: `{cls: info}`, or `{}` for an unknown class.
pub async fn object_info_class(
    State(app): State<AppState>,
    Path(class): Path<String>,
) -> Json<Value> {
    match NodeClass::from_name(&class) {
        Some(c) => Json(json!({ class: c.object_info(&app.host.dirs) })),
        None => Json(json!({})),
    }
}

/// GET /features.
pub async fn features() -> Json<Value> {
    Json(server_features())
}

/// GET /embeddings and /extensions: nothing installed.
pub async fn empty_list() -> Json<Value> {
    Json(json!([]))
}

/// POST /free: flags applied by the worker between jobs; `free_memory` clears the cache.
pub async fn free(State(app): State<AppState>, body: Bytes) -> Result<StatusCode, Trouble> {
    let body = parse_json(&body)?;
    let Value::Object(req) = body else {
        return Err(Trouble);
    };
    let flag = |k: &str| req.get(k).is_some_and(truthy);
    app.process.request_free(FreeRequest {
        unload_models: flag("unload_models"),
        free_memory: flag("free_memory"),
    });
    Ok(StatusCode::OK)
}
