//! GET /view (download with ComfyUI's path rules) and POST /upload/image (naming on conflict).

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, Trouble};
use crate::files::{Folder, content_type, normpath, split_annotation, stays_within, upload_name};
use crate::png_io;

/// GET /view?filename=&subfolder=&type=[&channel=].
pub async fn view(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(filename) = q.get("filename") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (name, annotated) = split_annotation(filename);
    if name.is_empty() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if name.starts_with('/') || name.contains("..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let folder = match annotated {
        Some(f) => f,
        None => match Folder::parse(q.get("type").map_or("output", String::as_str)) {
            Some(f) => f,
            None => return StatusCode::BAD_REQUEST.into_response(),
        },
    };
    let base = app.host.dirs.dir(folder).to_path_buf();
    let mut dir = base.clone();
    if let Some(sub) = q.get("subfolder") {
        dir = base.join(sub);
        if !stays_within(&base, &dir) {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    let basename = name.rsplit('/').next().unwrap_or(&name).to_string();
    let path = dir.join(&basename);
    if !path.is_file() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let disposition = format!("filename=\"{basename}\"");
    match q.get("channel").map(String::as_str) {
        None | Some("rgba") => {
            let Ok(bytes) = tokio::fs::read(&path).await else {
                return StatusCode::NOT_FOUND.into_response();
            };
            let mut ty = content_type(&basename);
            // ComfyUI forces these to download rather than render.
            if matches!(ty, "text/html" | "text/javascript" | "text/css") {
                ty = "application/octet-stream";
            }
            (
                [
                    (header::CONTENT_TYPE, ty),
                    (header::CONTENT_DISPOSITION, disposition.as_str()),
                ],
                bytes,
            )
                .into_response()
        }
        Some(channel @ ("rgb" | "a")) => match channel_png(path, channel == "a").await {
            Some(png) => (
                [
                    (header::CONTENT_TYPE, "image/png"),
                    (header::CONTENT_DISPOSITION, disposition.as_str()),
                ],
                png,
            )
                .into_response(),
            None => Trouble.into_response(),
        },
        Some(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `channel=rgb`: the image without alpha; `channel=a`: an RGBA image carrying only the alpha.
async fn channel_png(path: PathBuf, alpha_only: bool) -> Option<Vec<u8>> {
    let bytes = tokio::fs::read(&path).await.ok()?;
    let img = png_io::decode(&bytes).ok()?;
    if !alpha_only {
        return png_io::encode_rgb(img.width, img.height, &img.rgb, &[]).ok();
    }
    let alpha = img
        .alpha
        .unwrap_or_else(|| vec![255; img.width * img.height]);
    let rgba: Vec<u8> = alpha.iter().flat_map(|&a| [0, 0, 0, a]).collect();
    png_io::encode_rgba(img.width, img.height, &rgba).ok()
}

/// The fields of an upload form.
#[derive(Default)]
struct UploadForm {
    image: Option<(String, Vec<u8>)>,
    overwrite: Option<String>,
    kind: Option<String>,
    subfolder: Option<String>,
}

async fn read_form(mut multipart: Multipart) -> Result<UploadForm, Trouble> {
    let mut form = UploadForm::default();
    while let Some(field) = multipart.next_field().await.map_err(|_| Trouble)? {
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        let data = field.bytes().await.map_err(|_| Trouble)?;
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "image" => form.image = file_name.map(|f| (f, data.to_vec())),
            "overwrite" => form.overwrite = Some(text()),
            "type" => form.kind = Some(text()),
            "subfolder" => form.subfolder = Some(text()),
            _ => {}
        }
    }
    Ok(form)
}

/// POST /upload/image (multipart: image, overwrite, type, subfolder).
pub async fn upload_image(
    State(app): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Trouble> {
    // aiohttp reads a non-multipart body as an empty form.
    let form = match multipart {
        Ok(m) => read_form(m).await?,
        Err(_) => UploadForm::default(),
    };
    let folder = match form.kind.as_deref() {
        None => Folder::Input,
        Some(kind) => Folder::parse(kind).ok_or(Trouble)?,
    };
    let Some((filename, content)) = form.image.filter(|(f, _)| !f.is_empty()) else {
        return Ok(StatusCode::BAD_REQUEST.into_response());
    };
    let subfolder = form.subfolder.unwrap_or_default();
    let base = app.host.dirs.dir(folder).to_path_buf();
    let target_dir = base.join(normpath(&subfolder));
    if !stays_within(&base, &target_dir.join(&filename)) {
        return Ok(StatusCode::BAD_REQUEST.into_response());
    }
    let overwrite = matches!(form.overwrite.as_deref(), Some("true" | "1"));
    let stored = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        std::fs::create_dir_all(&target_dir)?;
        let (name, duplicate) = if overwrite {
            (filename, false)
        } else {
            upload_name(&target_dir, &filename, &content)?
        };
        if !duplicate {
            std::fs::write(target_dir.join(&name), &content)?;
        }
        Ok(name)
    })
    .await
    .map_err(|_| Trouble)?
    .map_err(|_| Trouble)?;
    Ok(
        Json(json!({"name": stored, "subfolder": subfolder, "type": folder.as_str()}))
            .into_response(),
    )
}
