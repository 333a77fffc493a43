//! `comfydash alerts ...`: one file per subcommand, named like the daemon's route.

mod list;
mod silence;
mod silences;
mod test;
mod unsilence;

use std::collections::BTreeMap;

use super::client;
use crate::cli::{AlertsArgs, AlertsCommand};
use crate::exit::Exit;

/// Runs one `alerts` subcommand.
pub async fn run(args: AlertsArgs) -> anyhow::Result<Exit> {
    let client = client(&args.remote);
    let json = args.remote.json;
    match args.command {
        AlertsCommand::List(a) => list::run(&client, a.limit, json).await,
        AlertsCommand::Test => test::run(&client, json).await,
        AlertsCommand::Silence(a) => silence::run(&client, a, json).await,
        AlertsCommand::Unsilence(a) => unsilence::run(&client, &a.id, json).await,
        AlertsCommand::Silences(a) => silences::run(&client, a.expired, json).await,
    }
}

/// What an alert or a silence matches, as people write it: `server_down{server=gpu0}`.
fn matcher(rule: Option<&str>, labels: &BTreeMap<String, String>) -> String {
    let rule = rule.unwrap_or("*");
    if labels.is_empty() {
        return rule.to_string();
    }
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{rule}{{{}}}", labels.join(","))
}
