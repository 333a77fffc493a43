//! The jobs API: submit (validated, idempotent on `job_id`), list, read, cancel, retry, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use base64::Engine;
use comfydash_wire::ErrorBody;
use comfydash_wire::{
    Job, JobAccepted, JobEvents, JobPage, JobStatus, JobUpdate, Prompt, StreamEvent, SubmitJob,
    WorkflowInfo, WorkflowList,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{AdminKey, AnyKey, ApiError, ApiJson, ApiQuery, AppState, Authed, SubmitKey};
use crate::store::{JobQuery, NewJob, SortKey, StoreError};
use crate::templates::{self, TemplateError};

/// Longest text prompt, in bytes.
pub const MAX_PROMPT_TEXT: usize = 64 * 1024;

/// Checks a job id: 1-128 of `[A-Za-z0-9._:-]`.
pub fn validate_job_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_job_id",
            "job_id must be 1-128 characters of A-Z a-z 0-9 . _ : -",
        ))
    }
}

fn validate_graph(graph: &serde_json::Map<String, serde_json::Value>) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::bad_request("invalid_workflow", m));
    if graph.is_empty() {
        return bad("prompt graph has no nodes".into());
    }
    if graph.len() > 10_000 {
        return bad("prompt graph has more than 10000 nodes".into());
    }
    for (id, node) in graph {
        let Some(node) = node.as_object() else {
            return bad(format!(
                "node {id:?} must be an object with class_type and inputs"
            ));
        };
        match node.get("class_type") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => {}
            _ => return bad(format!("node {id:?} has no class_type string")),
        }
        match node.get("inputs") {
            None | Some(serde_json::Value::Object(_)) => {}
            Some(_) => return bad(format!("node {id:?}: inputs must be an object")),
        }
    }
    Ok(())
}

/// Decodes an inline image (optionally a `data:` URL) and checks that it looks like an image.
pub fn decode_image(b64: &str) -> Result<Vec<u8>, ApiError> {
    let raw = match b64.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => b64,
    };
    let cleaned: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_image",
                format!("input_image_base64 is not valid base64: {e}"),
            )
        })?;
    if image_kind(&bytes).is_none() {
        return Err(ApiError::bad_request(
            "invalid_image",
            "input_image_base64 is not a PNG, JPEG, WebP, GIF or BMP image",
        ));
    }
    Ok(bytes)
}

/// Recognises an image by its first bytes.
pub fn image_kind(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if b.starts_with(b"BM") && b.len() > 26 {
        Some("image/bmp")
    } else {
        None
    }
}

/// Checks that the job's graph (its template, or the graph sent) can be filled.
fn check_template(req: &SubmitJob, has_image: bool, state: &AppState) -> Result<(), ApiError> {
    let err = |e: TemplateError| match e {
        TemplateError::Unknown(_) => ApiError::bad_request("unknown_workflow", e.to_string()),
        _ => ApiError::bad_request("invalid_workflow", e.to_string()),
    };
    let params = req.params.as_ref();
    match &req.prompt {
        Prompt::Text(t) => {
            let templates = state.worker.templates();
            let (text, image) = state.worker.default_workflows();
            let tpl = templates
                .pick(req.workflow.as_deref(), has_image, (&text, &image))
                .map_err(err)?;
            templates::check(&tpl.graph, &tpl.name, Some(t), has_image, params).map_err(err)
        }
        Prompt::Graph(g) => {
            templates::check(g, "the prompt graph", None, has_image, params).map_err(err)
        }
    }
}

/// Validates a submit request and turns it into a row to store.
pub fn validate(mut req: SubmitJob, state: &AppState, actor: &str) -> Result<NewJob, ApiError> {
    validate_job_id(&req.job_id.0)?;
    let search_text = match &req.prompt {
        Prompt::Text(t) => {
            if t.trim().is_empty() {
                return Err(ApiError::bad_request("invalid_prompt", "prompt is empty"));
            }
            if t.len() > MAX_PROMPT_TEXT {
                return Err(ApiError::bad_request(
                    "invalid_prompt",
                    format!("prompt is longer than {MAX_PROMPT_TEXT} bytes"),
                ));
            }
            t.clone()
        }
        Prompt::Graph(g) => {
            validate_graph(g)?;
            serde_json::Value::Object(g.clone()).to_string()
        }
    };
    for (field, url) in [
        ("input_image_url", &req.input_image_url),
        ("webhook_url", &req.webhook_url),
    ] {
        if let Some(u) = url {
            state
                .outbound
                .check_url(u)
                .map_err(|e| ApiError::bad_request(e.code(), format!("{field}: {e}")))?;
        }
    }
    let input_image = match &req.input_image_base64 {
        Some(_) if req.input_image_url.is_some() => {
            return Err(ApiError::bad_request(
                "conflicting_fields",
                "send input_image_url or input_image_base64, not both",
            ));
        }
        Some(b) => Some(decode_image(b)?),
        None => None,
    };
    if req.params.as_ref().is_some_and(|p| !p.is_object()) {
        return Err(ApiError::bad_request(
            "invalid_params",
            "params must be an object",
        ));
    }
    if let Some(w) = &req.workflow {
        let ok = !w.is_empty()
            && w.len() <= 64
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(ApiError::bad_request(
                "invalid_workflow",
                "workflow must be a template name of 1-64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        if matches!(req.prompt, Prompt::Graph(_)) {
            return Err(ApiError::bad_request(
                "conflicting_fields",
                "workflow names a template for a text prompt; a graph prompt is used as it is",
            ));
        }
    }
    if req
        .priority
        .is_some_and(|p| !(-1_000_000..=1_000_000).contains(&p))
    {
        return Err(ApiError::bad_request(
            "invalid_priority",
            "priority must be between -1000000 and 1000000",
        ));
    }
    if req.timeout_s.is_some_and(|t| !(1..=86_400).contains(&t)) {
        return Err(ApiError::bad_request(
            "invalid_timeout",
            "timeout_s must be between 1 and 86400",
        ));
    }
    check_template(
        &req,
        input_image.is_some() || req.input_image_url.is_some(),
        state,
    )?;
    // serde_json's map is ordered by key, so serialising the typed request is its canonical form.
    let full = serde_json::to_string(&req)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    let request_hash = hex::encode(Sha256::digest(full.as_bytes()));
    req.input_image_base64 = None;
    let request = serde_json::to_string(&req)
        .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    Ok(NewJob {
        id: req.job_id.0.clone(),
        request,
        request_hash,
        input_image,
        search_text,
        priority: req.priority.unwrap_or(0),
        max_pending: state.config.queue.max_pending,
        actor: actor.to_string(),
    })
}

/// `POST /api/jobs`: 202 for a new job, 200 for the same request again, 409 for a different one.
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", security(("api_key" = []), ("bearer" = [])), request_body(content = SubmitJob, example = json!({"job_id": "lensia-123", "prompt": "a red bicycle at dawn", "webhook_url": "https://www.lensia.ai/api/jobs/webhook", "params": {"seed": 7}})), responses((status = 202, description = "Accepted", body = JobAccepted), (status = 200, description = "The same request again", body = JobAccepted), (status = 409, description = "Same job_id, different request", body = ErrorBody), (status = 413, description = "Body too large", body = ErrorBody), (status = 429, description = "Queue full (Retry-After)", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn submit(
    Authed(caller, _): Authed<SubmitKey>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SubmitJob>,
) -> Result<(StatusCode, HeaderMap, Json<JobAccepted>), ApiError> {
    let new = validate(req, &state, &caller.name)?;
    let out = state.store.submit(new).await.map_err(|e| match e {
        e @ StoreError::QueueFull { .. } => ApiError {
            retry_after: Some(state.config.queue.retry_after_s),
            ..ApiError::from(e)
        },
        e => ApiError::from(e),
    })?;
    if out.created {
        state
            .events
            .emit(StreamEvent::Job(JobUpdate::from(&out.job)));
        state.worker.wake();
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/jobs/{}", out.job.job_id)) {
        headers.insert(header::LOCATION, v);
    }
    let status = if out.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        headers,
        Json(JobAccepted {
            job_id: out.job.job_id,
            status: out.job.status,
            position: out.position,
            created_at: out.job.created_at,
        }),
    ))
}

/// Query of `GET /api/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    since: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// Parses an RFC 3339 time or milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("since must be an RFC 3339 time or milliseconds, not {s:?}"),
            )
        })
}

/// `GET /api/jobs?status=&since=&q=&sort=&limit=&cursor=`.
#[utoipa::path(get, path = "/api/jobs", operation_id = "list_jobs", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(("status" = Option<String>, Query, description = "Comma-separated states"), ("since" = Option<String>, Query, description = "Created at or after (RFC 3339 or ms)"), ("q" = Option<String>, Query, description = "Text in id or prompt"), ("sort" = Option<String>, Query, description = "created_at, updated_at or priority; prefix - for descending (default -created_at)"), ("limit" = Option<usize>, Query, description = "1-500, default 50"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")), responses((status = 200, body = JobPage), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn list(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let statuses = match q.status.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|p| p.trim().parse::<JobStatus>())
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::bad_request("invalid_query", e))?,
    };
    let (sort, desc) = match q.sort.as_deref().unwrap_or("-created_at") {
        "created_at" => (SortKey::CreatedAt, false),
        "-created_at" => (SortKey::CreatedAt, true),
        "updated_at" => (SortKey::UpdatedAt, false),
        "-updated_at" => (SortKey::UpdatedAt, true),
        "priority" => (SortKey::Priority, false),
        "-priority" => (SortKey::Priority, true),
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "sort {other:?} is not one of created_at, updated_at, priority (prefix - for descending)"
                ),
            ));
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1-500",
        ));
    }
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(crate::store::parse_cursor(c).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "cursor is not one this daemon gave out")
        })?),
    };
    let text = q.q.filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.len() > 256) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "q is longer than 256 bytes",
        ));
    }
    let query = JobQuery {
        statuses,
        since_ms: q.since.as_deref().map(parse_time).transpose()?,
        text,
        sort,
        desc,
        limit,
        after,
    };
    Ok(Json(state.store.jobs(query).await?))
}

fn checked_id(id: &str) -> Result<&str, ApiError> {
    validate_job_id(id).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "job_not_found",
            format!("no job with id {id:?}"),
        )
    })?;
    Ok(id)
}

/// `GET /api/jobs/{id}`.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Job id")), responses((status = 200, body = Job), (status = 404, body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn get_job(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let mut job = state.store.job(checked_id(&id)?).await?;
    if job.status == JobStatus::Processing {
        job.progress = state.worker.progress_of(&id);
    }
    if job.output_base64 {
        inline_outputs(&mut job, state.worker.data_dir()).await;
    }
    Ok(Json(job))
}

/// Fills `base64` of each output from its file (for jobs that asked for inline outputs).
pub async fn inline_outputs(job: &mut Job, data_dir: &std::path::Path) {
    for o in &mut job.outputs {
        let path = crate::worker::output_path(data_dir, &job.job_id.0, o.index, &o.filename);
        if let Ok(bytes) = tokio::fs::read(&path).await {
            o.base64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
}

/// `GET /api/jobs/{id}/outputs/{index}`: one output file.
#[utoipa::path(get, path = "/api/jobs/{id}/outputs/{index}", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Job id"), ("index" = u32, Path, description = "Output index")), responses((status = 200, description = "The file, with its content type"), (status = 404, body = ErrorBody), (status = 410, description = "File no longer on disk", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn output(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    Path((id, index)): Path<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    let job = state.store.job(checked_id(&id)?).await?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "output_not_found",
            format!("job {id:?} has no output {index:?}"),
        )
    };
    let n: u32 = index.parse().map_err(|_| not_found())?;
    let out = job
        .outputs
        .iter()
        .find(|o| o.index == n)
        .ok_or_else(not_found)?;
    let path = crate::worker::output_path(state.worker.data_dir(), &id, n, &out.filename);
    let file = tokio::fs::File::open(&path).await.map_err(|_| {
        ApiError::new(
            StatusCode::GONE,
            "output_gone",
            format!("output {n} of job {id:?} is no longer on disk"),
        )
    })?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let headers = [
        (header::CONTENT_TYPE, out.content_type.clone()),
        (header::CONTENT_LENGTH, out.size.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", out.filename.replace('"', "")),
        ),
        (header::ETAG, format!("\"{}\"", out.sha256)),
    ];
    Ok(axum::response::IntoResponse::into_response((headers, body)))
}

/// `GET /api/workflows`: templates with their placeholders.
#[utoipa::path(get, path = "/api/workflows", tag = "jobs", security(("api_key" = []), ("bearer" = [])), responses((status = 200, body = WorkflowList), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn workflows(_: Authed<AnyKey>, State(state): State<AppState>) -> Json<WorkflowList> {
    let t = state.worker.templates();
    let (text, image) = state.worker.default_workflows();
    Json(WorkflowList {
        workflows: t
            .by_name
            .values()
            .map(|w| WorkflowInfo {
                name: w.name.clone(),
                placeholders: w.placeholders.clone(),
                takes_image: w.takes_image(),
                default_for: if w.name == text {
                    Some("text".into())
                } else if w.name == image {
                    Some("image".into())
                } else {
                    None
                },
                classes: w.classes(),
                source: w.source.clone(),
            })
            .collect(),
        warnings: state.worker.template_warnings(),
    })
}

/// `GET /api/jobs/{id}/events`.
#[utoipa::path(get, path = "/api/jobs/{id}/events", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Job id")), responses((status = 200, body = JobEvents), (status = 404, body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn job_events(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobEvents>, ApiError> {
    let events = state.store.job_events(checked_id(&id)?).await?;
    Ok(Json(JobEvents { events }))
}

/// `POST /api/jobs/{id}/cancel`: a pending job ends at once (200); a running one is stopped by the worker (202).
#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Job id")), responses((status = 200, description = "Cancelled", body = Job), (status = 202, description = "Running: the worker stops it", body = Job), (status = 404, body = ErrorBody), (status = 409, description = "Already ended", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn cancel(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let job = state.store.cancel(checked_id(&id)?, &caller.name).await?;
    if job.status == JobStatus::Processing {
        state.worker.request_cancel(&id);
    }
    state.events.emit(StreamEvent::Job(JobUpdate::from(&job)));
    let status = if job.status == JobStatus::Cancelled {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(job)))
}

/// `POST /api/jobs/{id}/retry`: a failed or cancelled job runs again as a new attempt.
#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Job id")), responses((status = 200, body = Job), (status = 404, body = ErrorBody), (status = 409, description = "Not failed or cancelled", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn retry(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let job = state.store.retry(checked_id(&id)?, &caller.name).await?;
    state.events.emit(StreamEvent::Job(JobUpdate::from(&job)));
    state.worker.wake();
    Ok(Json(job))
}

/// `DELETE /api/jobs/{id}`: terminal jobs only, with their files.
#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs", security(("api_key" = []), ("bearer" = [])), params(("id" = String, Path, description = "Job id")), responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody), (status = 409, description = "Not ended yet", body = ErrorBody), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn delete_job(
    Authed(caller, _): Authed<AdminKey>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = checked_id(&id)?;
    state.store.delete(id).await?;
    let dir = state.config.data_dir.join("outputs").join(id);
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(job = id, error = %e, "could not remove job files");
    }
    tracing::info!(job = id, actor = %caller.name, "job deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Validators take any input without panicking, and accept exactly the documented ids.
        #[test]
        fn validators_never_panic(id in "\\PC{0,140}", b64 in "\\PC{0,200}", graph in "\\PC{0,200}") {
            let ok = validate_job_id(&id).is_ok();
            let expected = (1..=128).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b));
            prop_assert_eq!(ok, expected);
            let _ = decode_image(&b64);
            if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&graph) {
                let _ = validate_graph(&m);
            }
            let _ = serde_json::from_str::<SubmitJob>(&graph);
            let _ = parse_time(&id);
        }
    }
}
