//! How the CLI and the console find the daemon and a key: flag, then environment, then the
//! admin key file the daemon generated in its data dir.

use std::path::{Path, PathBuf};

/// The daemon's default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8190";

/// Where the key came from (shown to operators; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--api-key`.
    Flag,
    /// `COMFYDASH_ADMIN_KEY`.
    Env,
    /// `<data-dir>/admin.key`.
    File(PathBuf),
    /// None found.
    None,
}

/// The daemon's data dir: `--data-dir`, `COMFYDASH_DATA_DIR`, or the platform default.
pub fn data_dir(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("COMFYDASH_DATA_DIR").map(PathBuf::from))
        .or_else(|| {
            directories::ProjectDirs::from("", "", "comfydash").map(|d| d.data_dir().to_path_buf())
        })
}

/// The key to use: `--api-key`, `COMFYDASH_ADMIN_KEY`, or `<data-dir>/admin.key`.
pub fn resolve_key(
    flag: Option<&str>,
    data_dir_flag: Option<&Path>,
) -> (Option<String>, KeySource) {
    if let Some(k) = flag.filter(|k| !k.is_empty()) {
        return (Some(k.to_string()), KeySource::Flag);
    }
    if let Ok(k) = std::env::var("COMFYDASH_ADMIN_KEY")
        && !k.is_empty()
    {
        return (Some(k), KeySource::Env);
    }
    if let Some(dir) = data_dir(data_dir_flag) {
        let path = dir.join("admin.key");
        if let Ok(k) = std::fs::read_to_string(&path) {
            let k = k.trim().to_string();
            if !k.is_empty() {
                return (Some(k), KeySource::File(path));
            }
        }
    }
    (None, KeySource::None)
}
