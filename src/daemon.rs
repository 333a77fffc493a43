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
    // Handlers go in before the port answers: a SIGTERM or SIGHUP sent as soon as the daemon
    // is reachable must not meet the default action (exit by signal).
    let signals = Signals::install()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let daemon = comfydash_daemon::start(config, listener).await?;
    let source_args = args.clone();
    daemon.set_config_source(std::sync::Arc::new(move || {
        load_config(&source_args).map_err(|e| e.to_string())
    }));
    signals.spawn(daemon.reloader(), daemon.shutdown_token());
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

/// The signals the daemon handles, registered up front.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind| signal(kind).context("cannot install a signal handler");
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            hup: install(SignalKind::hangup())?,
        })
    }

    /// SIGTERM and SIGINT stop the daemon; SIGHUP reloads the configuration and applies what
    /// can change live (keys, templates, outbound allow list, servers, webhook secrets, alerts).
    fn spawn(
        self,
        reloader: comfydash_daemon::Reloader,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = self;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutting down");
            shutdown.cancel();
        });
        tokio::spawn(async move {
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
}

/// Ctrl-C stops the daemon (no SIGHUP off Unix).
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals)
    }

    fn spawn(self, _: comfydash_daemon::Reloader, shutdown: tokio_util::sync::CancellationToken) {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        });
    }
}
