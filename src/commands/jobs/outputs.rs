//! `comfydash jobs outputs ID -o DIR`: downloads every output the job lists and checks each
//! against the size and SHA-256 the daemon recorded, so a file on disk is exactly the one produced.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use comfydash_wire::client::Client;
use comfydash_wire::{JobOutput, JobStatus};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::cli::OutputsArgs;
use crate::commands::print_json;
use crate::exit::Exit;
use crate::progress;

/// Downloads the outputs into the directory and prints each file's path.
pub async fn run(client: &Client, args: &OutputsArgs, json: bool) -> anyhow::Result<Exit> {
    let job = client.job(&args.id).await?;
    if job.outputs.is_empty() {
        if job.status != JobStatus::Completed {
            bail!("job {} is {}; it has no outputs yet", args.id, job.status);
        }
        eprintln!("comfydash: job {} completed without outputs", args.id);
    }
    tokio::fs::create_dir_all(&args.dir)
        .await
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let names = file_names(&job.outputs);
    let mut saved = Vec::new();
    for (output, name) in job.outputs.iter().zip(names) {
        let path = args.dir.join(name);
        let fresh = fetch(client, &args.id, output, &path).await?;
        if !json {
            outln!("{}", path.display());
        }
        saved.push(json!({
            "index": output.index,
            "path": path,
            "size": output.size,
            "sha256": output.sha256,
            "content_type": output.content_type,
            "downloaded": fresh,
        }));
    }
    if json {
        print_json(&saved)?;
    }
    Ok(Exit::Success)
}

/// A safe local name per output: ComfyUI's base name, prefixed by the index where names repeat.
fn file_names(outputs: &[JobOutput]) -> Vec<String> {
    let base: Vec<String> = outputs
        .iter()
        .map(|o| {
            Path::new(&o.filename)
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| !n.starts_with('.'))
                .map(String::from)
                .unwrap_or_else(|| format!("output-{}", o.index))
        })
        .collect();
    let mut seen = HashSet::new();
    let repeated: HashSet<&String> = base.iter().filter(|n| !seen.insert(*n)).collect();
    base.iter()
        .zip(outputs)
        .map(|(n, o)| {
            if repeated.contains(n) {
                format!("{}-{n}", o.index)
            } else {
                n.clone()
            }
        })
        .collect()
}

/// Writes one output to `path` (through a `.part` file renamed once checked); false when an
/// identical file was already there.
async fn fetch(client: &Client, id: &str, output: &JobOutput, path: &Path) -> anyhow::Result<bool> {
    if let Ok(existing) = tokio::fs::read(path).await
        && matches(
            output,
            existing.len() as u64,
            &hex::encode(Sha256::digest(&existing)),
        )
    {
        return Ok(false);
    }
    let part = part_path(path);
    let result = write_part(client, id, output, &part).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    result?;
    tokio::fs::rename(&part, path)
        .await
        .with_context(|| format!("cannot move {} to {}", part.display(), path.display()))?;
    Ok(true)
}

async fn write_part(
    client: &Client,
    id: &str,
    output: &JobOutput,
    part: &Path,
) -> anyhow::Result<()> {
    let mut file = tokio::fs::File::create(part)
        .await
        .with_context(|| format!("cannot create {}", part.display()))?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    if let Some(inline) = &output.base64 {
        // The job carries the bytes already (output_base64): no download needed.
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(inline.as_bytes())
            .with_context(|| format!("output {}: inline content is not base64", output.index))?;
        hash.update(&bytes);
        size = bytes.len() as u64;
        file.write_all(&bytes).await?;
    } else {
        let mut download = client.output(id, output.index).await?;
        let bar = progress::bytes(output.size, &output.filename);
        while let Some(chunk) = download.chunk().await? {
            let chunk = chunk.as_ref();
            hash.update(chunk);
            size += chunk.len() as u64;
            file.write_all(chunk).await?;
            bar.set_position(size);
        }
        bar.finish_and_clear();
    }
    file.flush().await?;
    file.sync_all().await?;
    let sha = hex::encode(hash.finalize());
    if !matches(output, size, &sha) {
        bail!(
            "output {} ({}) does not match the job: got {size} bytes with SHA-256 {sha}, expected {} bytes with {}",
            output.index,
            output.filename,
            output.size,
            output.sha256
        );
    }
    Ok(())
}

fn matches(output: &JobOutput, size: u64, sha256: &str) -> bool {
    size == output.size && sha256.eq_ignore_ascii_case(&output.sha256)
}

fn part_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(index: u32, filename: &str) -> JobOutput {
        JobOutput {
            index,
            filename: filename.into(),
            content_type: "image/png".into(),
            size: 0,
            sha256: String::new(),
            base64: None,
        }
    }

    #[test]
    fn names_are_local_and_unique() {
        let names = file_names(&[
            out(0, "a.png"),
            out(1, "../../etc/passwd"),
            out(2, "a.png"),
            out(3, ".."),
            out(4, "sub/b.png"),
        ]);
        assert_eq!(names, ["0-a.png", "passwd", "2-a.png", "output-3", "b.png"]);
    }
}
