//! Turning a claimed job into the graph ComfyUI runs: template or raw graph, placeholders
//! filled, the input image fetched (through the outbound guard) and uploaded, output prefixes
//! pointed at a per-attempt folder.

use comfydash_wire::{JobError, Prompt};
use serde_json::{Map, Value};

use crate::api::image_kind;
use crate::comfyui::{ComfyClient, ComfyError};
use crate::outbound::{Limits, Outbound};
use crate::store::ClaimedJob;
use crate::templates::{FillValues, Templates, fill, rewrite_prefixes};

/// Why a job could not be prepared.
#[derive(Debug)]
pub enum PrepareError {
    /// The job itself is at fault: it fails with this error.
    Job(JobError),
    /// ComfyUI could not take the upload: try again (maybe elsewhere).
    Server(ComfyError),
}

fn job_err(code: &str, message: String) -> PrepareError {
    PrepareError::Job(JobError {
        code: code.into(),
        message,
        node: None,
    })
}

/// Everything `prepare` needs besides the job.
pub struct PrepareCtx<'a> {
    /// Templates.
    pub templates: &'a Templates,
    /// Default template names (text, image).
    pub defaults: (&'a str, &'a str),
    /// Guarded fetcher for image URLs.
    pub outbound: &'a Outbound,
    /// Limits for image downloads.
    pub limits: &'a Limits,
    /// The server it will run on.
    pub comfy: &'a ComfyClient,
}

/// Builds the graph for one attempt (`attempt` is the prompt id, used in file names).
pub async fn prepare(
    job: &ClaimedJob,
    attempt: &str,
    ctx: &PrepareCtx<'_>,
) -> Result<Value, PrepareError> {
    let req = &job.request;
    let image = match (&job.input_image, &req.input_image_url) {
        (Some(bytes), _) => Some(bytes.clone()),
        (None, Some(url)) => Some(download(url, ctx).await?),
        (None, None) => None,
    };
    let uploaded = match image {
        Some(bytes) => {
            let ext = match image_kind(&bytes) {
                Some("image/jpeg") => "jpg",
                Some("image/webp") => "webp",
                Some("image/gif") => "gif",
                Some("image/bmp") => "bmp",
                _ => "png",
            };
            let name = format!("{attempt}.{ext}");
            Some(
                ctx.comfy
                    .upload_image(bytes, &name, "comfydash")
                    .await
                    .map_err(PrepareError::Server)?,
            )
        }
        None => None,
    };
    let (graph, text): (Map<String, Value>, Option<&str>) = match &req.prompt {
        Prompt::Graph(g) => (g.clone(), None),
        Prompt::Text(t) => {
            let tpl = ctx
                .templates
                .pick(req.workflow.as_deref(), uploaded.is_some(), ctx.defaults)
                .map_err(|e| job_err("workflow_error", e.to_string()))?;
            (tpl.graph.clone(), Some(t.as_str()))
        }
    };
    let vals = FillValues {
        prompt: text,
        input_image: uploaded.as_deref(),
        params: req.params.as_ref(),
    };
    let mut filled = fill(&graph, &vals).map_err(|e| job_err("workflow_error", e.to_string()))?;
    rewrite_prefixes(&mut filled, attempt);
    Ok(Value::Object(filled))
}

async fn download(url: &str, ctx: &PrepareCtx<'_>) -> Result<Vec<u8>, PrepareError> {
    let fetched = ctx
        .outbound
        .fetch(url, ctx.limits)
        .await
        .map_err(|e| job_err("input_image_error", format!("input_image_url: {e}")))?;
    if image_kind(&fetched.body).is_none() {
        return Err(job_err(
            "input_image_error",
            "input_image_url did not return a PNG, JPEG, WebP, GIF or BMP image".into(),
        ));
    }
    Ok(fetched.body)
}
