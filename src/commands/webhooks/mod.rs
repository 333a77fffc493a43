//! `comfydash webhooks ...`: one file per subcommand, named like the daemon's route.

mod list;
mod redeliver;
mod replay;

use super::client;
use crate::cli::{WebhooksArgs, WebhooksCommand};
use crate::exit::Exit;

/// Runs one `webhooks` subcommand.
pub async fn run(args: WebhooksArgs) -> anyhow::Result<Exit> {
    let client = client(&args.remote);
    let json = args.remote.json;
    match args.command {
        WebhooksCommand::List(a) => list::run(&client, a, json).await,
        WebhooksCommand::Redeliver(a) => redeliver::run(&client, &a.id, json).await,
        WebhooksCommand::Replay(a) => replay::run(&client, &a, json).await,
    }
}
