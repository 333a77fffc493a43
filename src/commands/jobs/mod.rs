//! `comfydash jobs ...`: one file per subcommand, named like the daemon's route.

mod cancel;
mod delete;
mod events;
mod list;
mod outputs;
mod retry;
mod show;
pub mod wait;

use super::client;
use crate::cli::{JobsArgs, JobsCommand};
use crate::exit::Exit;

/// Runs one `jobs` subcommand.
pub async fn run(args: JobsArgs) -> anyhow::Result<Exit> {
    let client = client(&args.remote);
    let json = args.remote.json;
    match args.command {
        JobsCommand::List(a) => list::run(&client, &a, json).await,
        JobsCommand::Show(a) => show::run(&client, &a.id, json).await,
        JobsCommand::Events(a) => events::run(&client, &a.id, json).await,
        JobsCommand::Cancel(a) => cancel::run(&client, &a.id, json).await,
        JobsCommand::Retry(a) => retry::run(&client, &a.id, json).await,
        JobsCommand::Delete(a) => delete::run(&client, &a.id, json).await,
        JobsCommand::Wait(a) => wait::run(&client, &a, json).await,
        JobsCommand::Outputs(a) => outputs::run(&client, &a, json).await,
    }
}
