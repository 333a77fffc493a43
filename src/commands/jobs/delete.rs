//! `comfydash jobs delete ID`.

use comfydash_wire::client::Client;
use serde_json::json;

use crate::commands::print_json;
use crate::exit::Exit;

/// Deletes a finished job and its files.
pub async fn run(client: &Client, id: &str, json: bool) -> anyhow::Result<Exit> {
    client.delete(id).await?;
    if json {
        print_json(&json!({"job_id": id, "deleted": true}))?;
    } else {
        outln!("job {id} deleted");
    }
    Ok(Exit::Success)
}
