//! `comfydash jobs retry ID`.

use comfydash_wire::client::Client;

use crate::commands::print_json;
use crate::exit::Exit;

/// Puts a failed or cancelled job back in the queue as a new attempt.
pub async fn run(client: &Client, id: &str, json: bool) -> anyhow::Result<Exit> {
    let job = client.retry(id).await?;
    if json {
        print_json(&job)?;
    } else {
        outln!("job {id} is {} again (attempt {})", job.status, job.attempt);
    }
    Ok(Exit::Success)
}
