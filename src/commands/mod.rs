//! The commands: one file each, every daemon call through the wire crate's typed client.

mod alerts;
mod config;
mod health;
mod jobs;
mod ping;
mod queue;
mod servers;
mod submit;
mod tui;
mod webhooks;

use comfydash_wire::client::Client;
use comfydash_wire::connect::resolve_key;
use serde::Serialize;

use crate::cli::{Command, ConfigCommand, Remote};
use crate::exit::Exit;

/// Runs one command; the error, if any, decides the exit code (see [`crate::exit`]).
pub async fn run(command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Daemon(args) => crate::daemon::run(args).await.map(|()| Exit::Success),
        Command::Tui(args) => tui::run(args).await,
        Command::Config(ConfigCommand::Check(args)) => config::check(&args),
        Command::Config(ConfigCommand::Reload(args)) => config::reload(&args.remote).await,
        Command::Ping(remote) => ping::run(&remote).await,
        Command::Health(remote) => health::run(&remote).await,
        Command::Submit(args) => submit::run(args).await,
        Command::Jobs(args) => jobs::run(args).await,
        Command::Queue(args) => queue::run(&args.remote, args.command).await,
        Command::Servers(args) => servers::run(&args.remote, args.command).await,
        Command::Alerts(args) => alerts::run(args).await,
        Command::Webhooks(args) => webhooks::run(args).await,
    }
}

/// A client for the daemon `remote` names, with the key from `--api-key`, `COMFYDASH_ADMIN_KEY`
/// or the daemon's `admin.key`, in that order.
fn client(remote: &Remote) -> Client {
    let (key, _) = resolve_key(remote.api_key.as_deref(), remote.data_dir.as_deref());
    Client::new(&remote.url, key)
}

/// Prints a value as indented JSON.
fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
