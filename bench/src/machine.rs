//! The machine a run was measured on, so figures are never read without it.

use std::path::Path;

use serde::Serialize;

/// What the figures depend on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs this process may use (`nproc`).
    pub cpus: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `MemTotal` from `/proc/meminfo`, in GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// Folder holding the data dirs, and its file system type and device.
    pub data_dir: String,
    /// `/proc/loadavg` when the run started: other work on the machine skews every figure.
    pub load_average: String,
    /// Whether this is an optimised build.
    pub release_build: bool,
}

impl Machine {
    /// Reads what it can; unknown fields stay `?`.
    pub fn detect(data_dir: &Path) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "?".into());
        let memory_gib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / (1024.0 * 1024.0))
            .unwrap_or(f64::NAN);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            memory_gib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            data_dir: format!(
                "{} ({})",
                data_dir.display(),
                mount_of(data_dir, &read("/proc/mounts"))
            ),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            release_build: !cfg!(debug_assertions),
        }
    }
}

/// File system type and device of the longest mount point containing `path`.
fn mount_of(path: &Path, mounts: &str) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| (f[0], f[1], f[2]))
        })
        .filter(|(_, point, _)| path.starts_with(point))
        .max_by_key(|(_, point, _)| point.len())
        .map(|(dev, _, fs)| format!("{fs} on {dev}"))
        .unwrap_or_else(|| "file system unknown".into())
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "- CPUs (nproc): {} × {}", self.cpus, self.cpu_model)?;
        writeln!(f, "- memory: {:.1} GiB", self.memory_gib)?;
        writeln!(f, "- kernel: {}", self.kernel)?;
        writeln!(f, "- data dirs: {}", self.data_dir)?;
        writeln!(
            f,
            "- load average at start (1, 5, 15 min): {}",
            self.load_average
        )?;
        if !self.release_build {
            writeln!(
                f,
                "- **debug build: run with --release for meaningful figures**"
            )?;
        }
        Ok(())
    }
}
