//! `comfydash alerts unsilence ID`.

use comfydash_wire::client::Client;
use serde_json::json;

use crate::commands::print_json;
use crate::exit::Exit;

/// Ends a silence now.
pub async fn run(client: &Client, id: &str, json: bool) -> anyhow::Result<Exit> {
    client.end_silence(id).await?;
    if json {
        print_json(&json!({"id": id, "ended": true}))?;
    } else {
        outln!("silence {id} ended");
    }
    Ok(Exit::Success)
}
