//! `comfydash daemon`: loads the configuration, binds, runs until SIGTERM or SIGINT.

use std::collections::HashMap;
use std::process::ExitCode;

use anyhow::Context;
use comfydash_daemon::config::{Config, Overrides};
use tracing_subscriber::EnvFilter;

use crate::cli::DaemonArgs;

/// Runs the daemon until a signal stops it; exit 0 after a clean stop.
pub async fn run(args: DaemonArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("COMFYDASH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let overrides = Overrides {
        listen: args.listen,
        comfyui_urls: args.comfyui_url,
        data_dir: args.data_dir,
        config: args.config,
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::load(&overrides, &env)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let daemon = comfydash_daemon::start(config, listener).await?;
    let token = daemon.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    daemon.wait().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
