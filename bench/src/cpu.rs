//! CPU time of this process, split by who spent it. The daemon runs in-process, so its share is
//! the process total minus the simulator's and the load client's threads (named by their
//! runtimes) and the main thread (the harness). Read from `/proc` (Linux only), in clock ticks
//! of 10 ms: figures are meant for runs of seconds.

use std::time::Duration;

use anyhow::Context;

/// Thread-name prefix of the simulator's runtime.
pub const SIM_THREADS: &str = "bench-sim";
/// Thread-name prefix of the load client's runtime.
pub const CLIENT_THREADS: &str = "bench-client";

/// Milliseconds per `USER_HZ` tick, the unit of `/proc/*/stat` times (100 Hz on every Linux ABI).
const TICK_MS: u64 = 10;

/// CPU time (user + system) spent so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    /// The whole process, exited threads included.
    pub total: Duration,
    /// Simulator threads.
    pub sim: Duration,
    /// Load-client threads.
    pub client: Duration,
    /// The main thread, which runs the scenarios themselves.
    pub harness: Duration,
}

impl CpuTimes {
    /// What the daemon (everything else) spent.
    pub fn daemon(&self) -> Duration {
        self.total
            .saturating_sub(self.sim)
            .saturating_sub(self.client)
            .saturating_sub(self.harness)
    }

    /// Time spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            total: self.total.saturating_sub(earlier.total),
            sim: self.sim.saturating_sub(earlier.sim),
            client: self.client.saturating_sub(earlier.client),
            harness: self.harness.saturating_sub(earlier.harness),
        }
    }
}

/// Reads `(comm, utime + stime)` from a `stat` file.
fn stat(path: &str) -> anyhow::Result<(String, Duration)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The name is in parentheses and may itself contain spaces or parentheses.
    let open = text.find('(').context("no '(' in stat")?;
    let close = text.rfind(')').context("no ')' in stat")?;
    let comm = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // After the name: state(3) ... utime(14) stime(15), numbered as in proc(5).
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("short stat line")?
            .parse::<u64>()
            .context("bad stat field")
    };
    let t = ticks(11)? + ticks(12)?;
    Ok((comm, Duration::from_millis(t * TICK_MS)))
}

/// Samples the process and its threads now.
pub fn now() -> anyhow::Result<CpuTimes> {
    let (_, total) = stat("/proc/self/stat")?;
    let pid = std::process::id().to_string();
    let mut out = CpuTimes {
        total,
        ..CpuTimes::default()
    };
    for entry in std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")? {
        let tid = entry?.file_name().to_string_lossy().into_owned();
        // A thread may exit between the listing and the read.
        let Ok((comm, t)) = stat(&format!("/proc/self/task/{tid}/stat")) else {
            continue;
        };
        if tid == pid {
            out.harness += t;
        } else if comm.starts_with(SIM_THREADS) {
            out.sim += t;
        } else if comm.starts_with(CLIENT_THREADS) {
            out.client += t;
        }
    }
    Ok(out)
}

/// CPU time of the calling thread so far.
pub fn this_thread() -> anyhow::Result<Duration> {
    Ok(stat("/proc/thread-self/stat")?.1)
}
