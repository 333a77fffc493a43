//! The input/, output/ and temp/ folders: ComfyUI's path rules, annotated names, SaveImage
//! counters and upload naming.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// One of ComfyUI's three file folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folder {
    /// `input/`: uploads and LoadImage sources.
    Input,
    /// `output/`: SaveImage results; persists.
    Output,
    /// `temp/`: PreviewImage results; wiped at every start.
    Temp,
}

impl Folder {
    /// Parses the `type` value used by /view and /upload/image.
    pub fn parse(s: &str) -> Option<Folder> {
        match s {
            "input" => Some(Folder::Input),
            "output" => Some(Folder::Output),
            "temp" => Some(Folder::Temp),
            _ => None,
        }
    }

    /// The wire name of the folder.
    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Input => "input",
            Folder::Output => "output",
            Folder::Temp => "temp",
        }
    }
}

/// The folders of one simulated ComfyUI installation, as absolute paths.
#[derive(Clone, Debug)]
pub struct Dirs {
    /// Root holding the other folders.
    pub root: PathBuf,
    /// `input/`.
    pub input: PathBuf,
    /// `output/`.
    pub output: PathBuf,
    /// `temp/`.
    pub temp: PathBuf,
    /// `models/checkpoints/`: extra names offered by CheckpointLoaderSimple.
    pub checkpoints: PathBuf,
}

impl Dirs {
    /// Creates (if needed) the folder layout under `root`.
    pub fn create(root: &Path) -> io::Result<Dirs> {
        std::fs::create_dir_all(root)?;
        let root = std::path::absolute(root)?;
        let dirs = Dirs {
            input: root.join("input"),
            output: root.join("output"),
            temp: root.join("temp"),
            checkpoints: root.join("models").join("checkpoints"),
            root,
        };
        for d in [&dirs.input, &dirs.output, &dirs.temp, &dirs.checkpoints] {
            std::fs::create_dir_all(d)?;
        }
        Ok(dirs)
    }

    /// The folder for a type.
    pub fn dir(&self, folder: Folder) -> &Path {
        match folder {
            Folder::Input => &self.input,
            Folder::Output => &self.output,
            Folder::Temp => &self.temp,
        }
    }

    /// Empties temp/, as ComfyUI does at every start.
    pub fn wipe_temp(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.temp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&self.temp)
    }

    /// Resolves a LoadImage-style name (`sub/x.png`, `x.png [output]`) to a path.
    pub fn annotated_path(&self, name: &str, default: Folder) -> PathBuf {
        let (name, folder) = split_annotation(name);
        self.dir(folder.unwrap_or(default)).join(name)
    }

    /// Top-level image files of input/, sorted: the LoadImage combo choices.
    pub fn input_images(&self) -> Vec<String> {
        let mut files: Vec<String> = list_files(&self.input)
            .into_iter()
            .filter(|f| content_type(f).starts_with("image/"))
            .collect();
        files.sort();
        files
    }
}

/// Names of the regular files directly inside `dir` (empty when it does not exist).
pub fn list_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Splits a `[output]`/`[input]`/`[temp]` suffix off a name, dropping one more character for
/// the space before it exactly like ComfyUI's slicing does.
pub fn split_annotation(name: &str) -> (String, Option<Folder>) {
    let suffixes = [
        ("[output]", Folder::Output),
        ("[input]", Folder::Input),
        ("[temp]", Folder::Temp),
    ];
    for (suffix, folder) in suffixes {
        if name.ends_with(suffix) {
            let keep = name.chars().count().saturating_sub(suffix.len() + 1);
            return (name.chars().take(keep).collect(), Some(folder));
        }
    }
    (name.to_string(), None)
}

/// Removes `.` and resolves `..` components without touching the disk (like `os.path.abspath`).
pub fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Whether `candidate` (joined like `os.path.join`, then normalized) stays inside `base`.
pub fn stays_within(base: &Path, candidate: &Path) -> bool {
    lexical_normalize(candidate).starts_with(base)
}

/// Python's `posixpath.normpath` on a relative or absolute string path.
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let absolute = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Python's `posixpath.split`: (dirname, basename) with trailing slashes of dirname removed.
pub fn split_dir(p: &str) -> (String, String) {
    match p.rfind('/') {
        Some(i) => {
            let head = &p[..=i];
            let trimmed = head.trim_end_matches('/');
            let head = if trimmed.is_empty() { head } else { trimmed };
            (head.to_string(), p[i + 1..].to_string())
        }
        None => (String::new(), p.to_string()),
    }
}

/// Where SaveImage writes: the folder, the file stem, the first counter and the reported subfolder.
#[derive(Debug)]
pub struct SaveTarget {
    /// Absolute folder the files go to.
    pub folder: PathBuf,
    /// File name stem before `_NNNNN_.png`.
    pub stem: String,
    /// Counter of the first image.
    pub counter: u64,
    /// Subfolder as reported in outputs.
    pub subfolder: String,
}

/// Resolves a `filename_prefix` like ComfyUI's `get_save_image_path`; `Err` carries the
/// exception message for a prefix that escapes `base`.
pub fn save_target(
    base: &Path,
    prefix: &str,
    width: usize,
    height: usize,
) -> Result<SaveTarget, String> {
    let prefix = if prefix.contains('%') {
        expand_prefix_vars(prefix, width, height)
    } else {
        prefix.to_string()
    };
    let norm = normpath(&prefix);
    let (subfolder, stem) = split_dir(&norm);
    let folder = if subfolder.starts_with('/') {
        PathBuf::from(&subfolder)
    } else {
        base.join(&subfolder)
    };
    if !stays_within(base, &folder) {
        let abs = lexical_normalize(&folder);
        return Err(format!(
            "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: {}\n         output_dir: {}",
            abs.display(),
            base.display()
        ));
    }
    let prefix_len = split_dir(&prefix).1.chars().count();
    let existing = list_files(&folder);
    if existing.is_empty() && !folder.is_dir() {
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
    }
    let counter = existing
        .iter()
        .filter_map(|f| counter_of(f, prefix_len, &stem))
        .max()
        .map_or(1, |c| c + 1);
    Ok(SaveTarget {
        folder,
        stem,
        counter,
        subfolder,
    })
}

/// ComfyUI's `map_filename` + filter: the counter of a file named `<stem>_<digits>...`.
fn counter_of(file: &str, prefix_len: usize, stem: &str) -> Option<u64> {
    let chars: Vec<char> = file.chars().collect();
    let cut = (prefix_len + 1).min(chars.len());
    let head: String = chars[..cut].iter().collect();
    if head.strip_suffix('_')? != stem {
        return None;
    }
    let rest: String = chars[cut..].iter().collect();
    let digits = rest.split('_').next().unwrap_or("");
    Some(digits.trim().parse::<u64>().unwrap_or(0))
}

/// Expands `%width%`, `%height%`, `%year%`… in a prefix (UTC stands in for local time).
pub fn expand_prefix_vars(prefix: &str, width: usize, height: usize) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    prefix
        .replace("%width%", &width.to_string())
        .replace("%height%", &height.to_string())
        .replace("%year%", &y.to_string())
        .replace("%month%", &format!("{mo:02}"))
        .replace("%day%", &format!("{d:02}"))
        .replace("%hour%", &format!("{:02}", rem / 3600))
        .replace("%minute%", &format!("{:02}", rem / 60 % 60))
        .replace("%second%", &format!("{:02}", rem % 60))
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Picks the stored name for an upload without `overwrite`: an existing file with identical
/// content keeps its name (and `true` says nothing must be written); otherwise `stem (N).ext`.
pub fn upload_name(folder: &Path, filename: &str, content: &[u8]) -> io::Result<(String, bool)> {
    let (stem, ext) = split_ext(filename);
    let mut name = filename.to_string();
    let mut i = 1;
    loop {
        let path = folder.join(&name);
        if !path.exists() {
            return Ok((name, false));
        }
        if std::fs::read(&path).is_ok_and(|existing| existing == content) {
            return Ok((name, true));
        }
        name = format!("{stem} ({i}){ext}");
        i += 1;
    }
}

/// Python's `os.path.splitext` on a file name.
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if name[..i].chars().any(|c| c != '.') => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Content type guessed from the extension, like Python's `mimetypes`.
pub fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "flac" => "audio/flac",
        "json" => "application/json",
        "txt" => "text/plain",
        "html" | "htm" => "text/html",
        "js" => "text/javascript",
        "css" => "text/css",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_path_rules() {
        assert_eq!(normpath("smoke/inverted"), "smoke/inverted");
        assert_eq!(normpath("a/../../x"), "../x");
        assert_eq!(normpath("/tmp//x/"), "/tmp/x");
        assert_eq!(
            split_dir("smoke/inverted"),
            ("smoke".into(), "inverted".into())
        );
        assert_eq!(
            split_annotation("x.png [output]"),
            ("x.png".into(), Some(Folder::Output))
        );
        assert_eq!(split_ext("in.png"), ("in", ".png"));
        assert_eq!(split_ext(".hidden"), (".hidden", ""));
        assert_eq!(
            counter_of("smoke_empty_00007_.png", 11, "smoke_empty"),
            Some(7)
        );
        assert_eq!(
            counter_of("smoke_other_00007_.png", 11, "smoke_empty"),
            None
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }
}
