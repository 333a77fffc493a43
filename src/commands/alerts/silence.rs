//! `comfydash alerts silence --rule R --label k=v --duration 2h`.

use comfydash_wire::NewSilence;
use comfydash_wire::client::Client;

use super::matcher;
use crate::cli::SilenceArgs;
use crate::commands::print_json;
use crate::exit::Exit;

/// Adds a silence; prints what it matches, until when, and its id.
pub async fn run(client: &Client, args: SilenceArgs, json: bool) -> anyhow::Result<Exit> {
    let new = NewSilence {
        rule: args.rule,
        labels: args.labels.into_iter().collect(),
        duration: args.until.is_none().then_some(args.duration),
        ends_at: args.until,
        comment: args.comment,
    };
    let s = client.add_silence(&new).await?;
    if json {
        print_json(&s)?;
    } else {
        outln!(
            "silenced {} until {} (silence {})",
            matcher(s.rule.as_deref(), &s.labels),
            s.ends_at.format("%Y-%m-%d %H:%M:%S UTC"),
            s.id
        );
    }
    Ok(Exit::Success)
}
