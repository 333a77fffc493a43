//! `comfydash-bench`: runs the benchmark scenarios against a real in-process daemon and prints
//! every figure beside a baseline measured in the same run. Nothing here asserts a timing.

mod cli;
mod cpu;
mod ctx;
mod daemon;
mod load;
mod machine;
mod report;
mod scenarios;
mod seed;
mod sim;
mod stats;
mod workload;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    if let Ok(filter) = std::env::var("BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    // The daemon gets the main runtime; the simulator and the load client get their own, so
    // their CPU time can be told apart from the daemon's (see `cpu`).
    let runtimes = ctx::Runtimes::new()?;
    let daemon_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("daemon")
        .enable_all()
        .build()?;
    let ctx = ctx::Ctx::new(&cli, &runtimes)?;
    let result = daemon_rt.block_on(scenarios::run_all(&cli, &ctx));
    drop(daemon_rt);
    drop(runtimes);
    result
}
