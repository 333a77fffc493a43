//! `GET /api/openapi.json`: the OpenAPI 3 document, generated from the handlers' annotations and
//! the wire types, so it cannot drift from the code (a golden-file test shows every change).

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{alerts, config, events, health, jobs, queue, servers, telemetry, webhooks};

/// Both ways to send a key: `X-API-Key` and `Authorization: Bearer`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key: DASHBOARD_API_KEY (submit), COMFYDASH_ADMIN_KEY or admin.key (admin), or a configured read key",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The same keys as a bearer token (what Prometheus sends)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "comfydash",
        description = "Job daemon in front of ComfyUI. Every error is `{\"error\":{\"code\",\"message\"}}` with a 4xx status (5xx only when the daemon itself is in trouble). Field names are camelCase in health and telemetry (the Lensia quick-start), snake_case in the jobs API.",
        license(name = "MIT")
    ),
    paths(
        health::ping,
        health::health,
        health::livez,
        health::readyz,
        telemetry::get_telemetry,
        telemetry::post_telemetry,
        telemetry::external_history,
        jobs::submit,
        jobs::list,
        jobs::get_job,
        jobs::job_events,
        jobs::output,
        jobs::cancel,
        jobs::retry,
        jobs::delete_job,
        jobs::workflows,
        queue::status,
        queue::pause,
        queue::resume,
        servers::list,
        servers::action,
        servers::history,
        config::reload,
        events::stream,
        webhooks::list,
        webhooks::redeliver,
        webhooks::replay,
        alerts::list,
        alerts::test,
        alerts::silences,
        alerts::add_silence,
        alerts::end_silence,
        super::metrics,
        openapi_json,
    ),
    components(schemas(comfydash_wire::ErrorBody, comfydash_wire::StreamEvent)),
    modifiers(&Security),
    tags(
        (name = "health", description = "Open endpoints for monitors"),
        (name = "jobs", description = "Submitting and steering jobs"),
        (name = "queue", description = "Pause and resume"),
        (name = "config", description = "Reloading the daemon's configuration"),
        (name = "telemetry", description = "Figures for the Lensia backend and external sources"),
        (name = "servers", description = "ComfyUI servers"),
        (name = "events", description = "Live event stream"),
        (name = "webhooks", description = "Webhook deliveries: inspect, redeliver, replay"),
        (name = "alerts", description = "Built-in alerts, channels and silences"),
        (name = "metrics", description = "Prometheus"),
    )
)]
pub struct ApiDoc;

/// `GET /api/openapi.json` (open: it holds no secrets).
#[utoipa::path(get, path = "/api/openapi.json", tag = "health", responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
