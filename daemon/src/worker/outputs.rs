//! Job output files: fetched from ComfyUI's `/view` into the data dir, with size, type and checksum.

use std::path::{Path, PathBuf};

use comfydash_wire::JobOutput;
use sha2::{Digest, Sha256};

use crate::comfyui::{ComfyClient, ComfyError, OutputFile};

/// Where output `index` of a job is kept.
pub fn output_path(data_dir: &Path, job_id: &str, index: u32, filename: &str) -> PathBuf {
    data_dir
        .join("outputs")
        .join(job_id)
        .join(format!("{index}-{}", safe_name(filename)))
}

/// A file name with only safe characters (ComfyUI names come from node code, not from us).
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_start_matches('.') {
        "" => "output".into(),
        s => s.chars().take(128).collect(),
    }
}

/// MIME type from a file name, for when ComfyUI sends none.
pub fn content_type_of(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// Why outputs could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// ComfyUI did not hand the file over.
    #[error("fetching {file}: {source}")]
    Fetch {
        /// File.
        file: String,
        /// Cause.
        source: ComfyError,
    },
    /// The file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

impl CollectError {
    /// Whether trying again later may work.
    pub fn is_transient(&self) -> bool {
        match self {
            CollectError::Fetch { source, .. } => source.is_transient(),
            CollectError::Write { .. } => false,
        }
    }
}

/// Downloads every file into the job's folder; written to a temporary name and renamed, so a
/// crash never leaves a half file under the final name.
pub async fn collect(
    comfy: &ComfyClient,
    data_dir: &Path,
    job_id: &str,
    files: &[OutputFile],
) -> Result<Vec<JobOutput>, CollectError> {
    let mut out = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        let index = i as u32;
        let (bytes, ct) = comfy
            .view(&f.filename, &f.subfolder, &f.kind)
            .await
            .map_err(|source| CollectError::Fetch {
                file: f.filename.clone(),
                source,
            })?;
        let path = output_path(data_dir, job_id, index, &f.filename);
        let write = |source| CollectError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(write)?;
        }
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, &bytes).await.map_err(write)?;
        tokio::fs::rename(&tmp, &path).await.map_err(write)?;
        let content_type = ct
            .filter(|c| !c.is_empty() && c != "application/octet-stream")
            .unwrap_or_else(|| content_type_of(&f.filename).to_string());
        out.push(JobOutput {
            index,
            filename: f.filename.clone(),
            content_type,
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            base64: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("a b?.png"), "a_b_.png");
        assert_eq!(safe_name(".."), "output");
        let p = output_path(Path::new("/d"), "job", 2, "x.png");
        assert_eq!(p, PathBuf::from("/d/outputs/job/2-x.png"));
    }
}
