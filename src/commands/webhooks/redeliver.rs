//! `comfydash webhooks redeliver JOB_ID`.

use comfydash_wire::client::Client;

use crate::commands::print_json;
use crate::exit::Exit;

/// Queues the job's latest webhook event for delivery now, with its id unchanged.
pub async fn run(client: &Client, job_id: &str, json: bool) -> anyhow::Result<Exit> {
    let event = client.redeliver(job_id).await?;
    if json {
        print_json(&event)?;
    } else {
        outln!(
            "webhook {} ({}) of job {job_id} queued for delivery to {}",
            event.id,
            event.kind,
            event.url
        );
    }
    Ok(Exit::Success)
}
