//! Command-line arguments: parsed once here, then handed to the command that runs them.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// comfydash: a job daemon and operations console in front of ComfyUI.
#[derive(Debug, Parser)]
#[command(name = "comfydash", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP API, job queue, ComfyUI worker.
    Daemon(DaemonArgs),
}

/// `comfydash daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address to listen on [default: 127.0.0.1:8190].
    #[arg(long, env = "COMFYDASH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// ComfyUI base URL; repeat (or comma-separate) for several servers [default: http://127.0.0.1:8188].
    #[arg(long = "comfyui-url", env = "COMFYUI_URL", value_delimiter = ',')]
    pub comfyui_url: Vec<String>,
    /// Where the database, admin key and outputs live [default: the platform data dir].
    #[arg(long, env = "COMFYDASH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (TOML) [default: <config dir>/config.toml when it exists].
    #[arg(long, env = "COMFYDASH_CONFIG")]
    pub config: Option<PathBuf>,
}
