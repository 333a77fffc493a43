//! The comfydash operations console (`comfydash tui`): a k9s-style terminal view of one daemon.
//!
//! The shape follows ratatui's component template: `app::App` is the model, `App::update` turns
//! an `action::Action` into `action::Command`s without doing I/O, `ui::render` draws the model
//! without doing I/O, and `runtime` is the one task that turns keys, ticks and daemon events into
//! actions and runs the commands through the wire client (`daemon`).

mod action;
mod app;
mod config;
mod daemon;
mod jobs;
mod keys;
mod runtime;
mod terminal;
mod ui;
mod units;
mod update;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod update_tests;

use std::path::PathBuf;

pub use config::{Context, Setup};
pub use runtime::run_on;

/// How to reach the daemon.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--url`; default the daemon's default address or the chosen context's.
    pub url: Option<String>,
    /// `--api-key`; else `COMFYDASH_ADMIN_KEY`, else `<data-dir>/admin.key`.
    pub api_key: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--context`: a named daemon from the console's config file.
    pub context: Option<String>,
}

/// Why the console stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// Terminal I/O failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The console's config file could not be read.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// `--context` names a context the config file does not have.
    #[error("no context {name:?} in {path} (known: {known})")]
    UnknownContext {
        /// The name asked for.
        name: String,
        /// The config file looked in.
        path: PathBuf,
        /// The names it has.
        known: String,
    },
}

/// Runs the console until the operator quits.
pub async fn run(opts: Options) -> Result<(), TuiError> {
    let setup = Setup::from_options(&opts)?;
    let mut guard = terminal::Guard::enter()?;
    let input = crossterm::event::EventStream::new();
    run_on(guard.terminal(), setup.interactive(), input, |_| {}).await
}
