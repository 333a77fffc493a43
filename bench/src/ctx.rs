//! What every scenario gets: the size of the run, where data dirs go, and the runtimes that the
//! simulator and the load client run on (apart from the daemon's, so CPU time can be split).

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use tokio::runtime::{Handle, Runtime};

use crate::cli::Cli;
use crate::cpu;

/// The simulator's and the load client's runtimes; owned by `main`, dropped outside async code.
pub struct Runtimes {
    sim: Runtime,
    client: Runtime,
}

impl Runtimes {
    /// Builds both, with thread names that `cpu` recognises.
    pub fn new() -> anyhow::Result<Runtimes> {
        let build = |name: &str, workers: usize| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name(name)
                // Threads that exit take their CPU time out of the per-thread view.
                .thread_keep_alive(Duration::from_secs(3600))
                .enable_all()
                .build()
                .with_context(|| format!("building the {name} runtime"))
        };
        Ok(Runtimes {
            sim: build(cpu::SIM_THREADS, 1)?,
            client: build(cpu::CLIENT_THREADS, 2)?,
        })
    }
}

/// Shared by every scenario.
pub struct Ctx {
    /// Smaller sizes (`--quick`).
    pub quick: bool,
    /// Parent folder of the temporary data dirs.
    pub dir: PathBuf,
    sim: Handle,
    client: Handle,
}

impl Ctx {
    /// A context using `runtimes`.
    pub fn new(cli: &Cli, runtimes: &Runtimes) -> anyhow::Result<Ctx> {
        let dir = cli.dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Ctx {
            quick: cli.quick,
            dir,
            sim: runtimes.sim.handle().clone(),
            client: runtimes.client.handle().clone(),
        })
    }

    /// `full` normally, `quick` with `--quick`.
    pub fn size<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }

    /// A fresh temporary folder, removed when dropped.
    pub fn tempdir(&self, prefix: &str) -> anyhow::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.dir)
            .with_context(|| format!("creating a temp dir in {}", self.dir.display()))
    }

    /// Runs `f` on the load client's runtime.
    pub async fn on_client<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = anyhow::Result<T>> + Send + 'static,
    {
        self.client.spawn(f).await.context("client task panicked")?
    }

    /// Runs `f` on the simulator's runtime.
    pub async fn on_sim<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: Future<Output = anyhow::Result<T>> + Send + 'static,
    {
        self.sim.spawn(f).await.context("simulator task panicked")?
    }
}
