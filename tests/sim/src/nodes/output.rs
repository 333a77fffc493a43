//! Output nodes: SaveImage (output/), PreviewImage (temp/) and SaveImageWebsocket (binary ws frames only).

use serde_json::{Value, json};

use super::{Args, NodeError, NodeRun, RunContext};
use crate::files::{Folder, save_target};
use crate::png_io;
use crate::pyfmt::json_dumps;

/// SaveImage: `output/<subfolder>/<prefix>_NNNNN_.png`, counter after the highest existing one.
pub fn save_image(args: &Args, ctx: &RunContext<'_>) -> Result<NodeRun, NodeError> {
    let prefix = args.string("filename_prefix")?;
    save(args, ctx, Folder::Output, &prefix)
}

/// PreviewImage: like SaveImage into temp/ with the prefix `ComfyUI_temp_<5 letters>`.
pub fn preview_image(args: &Args, ctx: &RunContext<'_>) -> Result<NodeRun, NodeError> {
    let prefix = format!("ComfyUI_temp_{}", ctx.temp_tag);
    save(args, ctx, Folder::Temp, &prefix)
}

fn save(
    args: &Args,
    ctx: &RunContext<'_>,
    folder: Folder,
    prefix: &str,
) -> Result<NodeRun, NodeError> {
    let images = args.image("images")?;
    let base = ctx.dirs.dir(folder);
    let target = save_target(base, prefix, images.width, images.height)
        .map_err(|m| NodeError::new("Exception", m))?;
    let metadata = metadata(ctx);
    let mut results = Vec::new();
    for index in 0..images.batch {
        let stem = target.stem.replace("%batch_num%", &index.to_string());
        let file = format!("{stem}_{:05}_.png", target.counter + index as u64);
        let png = png_io::encode_rgb(
            images.width,
            images.height,
            &images.frame_rgb8(index),
            &metadata,
        )
        .map_err(|e| NodeError::new("OSError", e.to_string()))?;
        std::fs::write(target.folder.join(&file), png)
            .map_err(|e| NodeError::new("OSError", e.to_string()))?;
        results.push(
            json!({"filename": file, "subfolder": target.subfolder, "type": folder.as_str()}),
        );
    }
    Ok(NodeRun {
        ui: Some(json!({ "images": results })),
        ..NodeRun::default()
    })
}

/// The PNG text chunks SaveImage writes: `prompt` and each `extra_pnginfo` entry.
fn metadata(ctx: &RunContext<'_>) -> Vec<(String, String)> {
    let mut text = vec![("prompt".to_string(), json_dumps(ctx.prompt))];
    if let Some(Value::Object(extra)) = ctx.extra_pnginfo {
        text.extend(extra.iter().map(|(k, v)| (k.clone(), json_dumps(v))));
    }
    text
}

/// SaveImageWebsocket: one PNG per image, sent as binary frames; no UI output, nothing on disk.
pub fn save_websocket(args: &Args) -> Result<NodeRun, NodeError> {
    let images = args.image("images")?;
    let previews = (0..images.batch)
        .map(|i| png_io::encode_rgb(images.width, images.height, &images.frame_rgb8(i), &[]))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NodeError::new("OSError", e.to_string()))?;
    Ok(NodeRun {
        previews,
        ..NodeRun::default()
    })
}
