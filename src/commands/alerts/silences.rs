//! `comfydash alerts silences [--expired]`.

use comfydash_wire::client::Client;

use crate::commands::print_json;
use crate::exit::Exit;

/// Prints the silences in force, and with `expired` the ended ones too.
pub async fn run(client: &Client, expired: bool, json: bool) -> anyhow::Result<Exit> {
    let list = client.silences(expired).await?;
    if json {
        print_json(&list)?;
    } else if list.silences.is_empty() {
        outln!("no silences");
    } else {
        out!("{}", super::list::silences(&list.silences));
    }
    Ok(Exit::Success)
}
