//! `comfydash webhooks replay --since TIME [--status dead,failed]`.

use comfydash_wire::client::Client;

use crate::cli::ReplayArgs;
use crate::commands::print_json;
use crate::exit::Exit;

/// Puts dead (or failed) events created since a time back in the queue; prints how many.
pub async fn run(client: &Client, args: &ReplayArgs, json: bool) -> anyhow::Result<Exit> {
    let r = client.replay(args.since, &args.status).await?;
    if json {
        print_json(&r)?;
    } else {
        let states: Vec<&str> = args.status.iter().map(|s| s.as_str()).collect();
        let states = if states.is_empty() {
            "dead".to_string()
        } else {
            states.join(" or ")
        };
        outln!(
            "{} {states} webhook event{} since {} queued for delivery again",
            r.replayed,
            if r.replayed == 1 { "" } else { "s" },
            args.since.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(Exit::Success)
}
