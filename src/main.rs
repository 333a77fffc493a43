//! `comfydash`: the daemon, the console and the scripting CLI in one binary.

#[macro_use]
mod output;

mod cli;
mod commands;
mod daemon;
mod exit;
mod progress;
mod table;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("comfydash: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("comfydash: {}", exit::describe(&e));
            exit::of(&e).into()
        }
    }
}
