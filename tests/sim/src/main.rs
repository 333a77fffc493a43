//! `comfydash-sim`: runs the ComfyUI simulator until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use comfydash_sim::{Sim, SimConfig};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A ComfyUI simulator for tests and laptops without a GPU"
)]
struct Opts {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8188)]
    port: u16,
    /// Total run time of a job, in milliseconds.
    #[arg(long, default_value_t = 20)]
    exec_time_ms: u64,
    /// Chance (0..1) that a job fails at run time.
    #[arg(long, default_value_t = 0.0)]
    failure_rate: f64,
    /// Folder holding input/, output/ and temp/ (default: a fresh temporary folder).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seed for failures and temp names.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// History entries kept.
    #[arg(long, default_value_t = 10_000)]
    history_cap: usize,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let opts = Opts::parse();
    let config = SimConfig {
        exec_time: Duration::from_millis(opts.exec_time_ms),
        failure_rate: opts.failure_rate,
        seed: opts.seed,
        history_cap: opts.history_cap,
        data_dir: opts.data_dir,
        ..SimConfig::default()
    };
    let sim = Sim::start_on(config, SocketAddr::new(opts.listen, opts.port)).await?;
    println!("{}", sim.url());
    tracing::info!(url = %sim.url(), output = %sim.output_dir().display(), "comfydash-sim ready");
    shutdown_signal().await;
    let temp = sim.temp_dir();
    sim.shutdown().await;
    // ComfyUI also cleans temp/ on a clean exit.
    let _ = std::fs::remove_dir_all(temp);
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
