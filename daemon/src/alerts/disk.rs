//! Free space of the file system holding the data dir (`statvfs` through rustix, no unsafe code).

use std::path::Path;

use super::evaluate::DiskSpace;

/// Free (for unprivileged writers) and total bytes, or `None` where it cannot be read.
#[cfg(unix)]
pub fn space(path: &Path) -> Option<DiskSpace> {
    let s = rustix::fs::statvfs(path).ok()?;
    // The fields are 64-bit on Linux but narrower on some other systems.
    #[allow(clippy::unnecessary_cast)]
    let (avail, blocks, frsize) = (s.f_bavail as u64, s.f_blocks as u64, s.f_frsize as u64);
    Some(DiskSpace {
        free: avail.saturating_mul(frsize),
        total: blocks.saturating_mul(frsize),
    })
}

/// Not measured on this platform: the `disk_low` rule stays unknown.
#[cfg(not(unix))]
pub fn space(_path: &Path) -> Option<DiskSpace> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    #[test]
    fn reads_the_temp_dir() {
        let d = super::space(&std::env::temp_dir()).unwrap();
        assert!(d.total > 0 && d.free <= d.total);
    }
}
