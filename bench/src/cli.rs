//! Command-line options.

use std::path::PathBuf;

use clap::Parser;

/// `cargo run --release -p comfydash-bench -- [--quick] [--only NAME] [--json FILE]`
#[derive(Debug, Parser)]
#[command(about = "Benchmarks of the comfydash daemon, each beside an in-run baseline")]
pub struct Cli {
    /// Smaller sizes so the whole run takes about a minute (what a CI smoke test runs).
    #[arg(long)]
    pub quick: bool,
    /// Run only these scenarios (repeat the flag or separate names with commas).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Folder for the temporary data dirs (default: the system temp dir); put it on the disk
    /// you care about, since commits wait for fsync.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,
}
