//! `comfydash daemon`: loads the configuration, binds, runs until SIGTERM or SIGINT.

use std::collections::HashMap;

use anyhow::Context;
use comfydash_daemon::config::{Config, ConfigError, Overrides};
use tracing_subscriber::EnvFilter;

use crate::cli::DaemonArgs;

/// Runs the daemon until a signal stops it.
pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("COMFYDASH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = load_config(&args)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let daemon = comfydash_daemon::start(config, listener).await?;
    let source_args = args.clone();
    daemon.set_config_source(std::sync::Arc::new(move || {
        load_config(&source_args).map_err(|e| e.to_string())
    }));
    spawn_reload_on_hangup(daemon.reloader());
    let token = daemon.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        token.cancel();
    });
    daemon.wait().await;
    Ok(())
}

/// The effective configuration: flags and environment over the config file over defaults.
pub fn load_config(args: &DaemonArgs) -> Result<Config, ConfigError> {
    let overrides = Overrides {
        listen: args.listen,
        comfyui_urls: args.comfyui_url.clone(),
        data_dir: args.data_dir.clone(),
        config: args.config.clone(),
        webhook_secrets: args.webhook_secret.clone(),
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    Config::load(&overrides, &env)
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

/// On SIGHUP, loads the configuration again and applies what can change live (keys, templates,
/// outbound allow list, servers, webhook secrets, alerts).
#[cfg(unix)]
fn spawn_reload_on_hangup(reloader: comfydash_daemon::Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match reloader.reload_from_source().await {
                Ok(report) => {
                    for change in report.applied {
                        tracing::info!("{change}");
                    }
                    for warning in report.warnings {
                        tracing::warn!("{warning}");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reload failed; keeping the running configuration")
                }
            }
        }
    });
}

#[cfg(not(unix))]
fn spawn_reload_on_hangup(_: comfydash_daemon::Reloader) {}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
