//! `comfydash jobs cancel ID`.

use comfydash_wire::JobStatus;
use comfydash_wire::client::Client;

use crate::commands::print_json;
use crate::exit::Exit;

/// Cancels a job: a pending one at once, a running one when the worker stops it.
pub async fn run(client: &Client, id: &str, json: bool) -> anyhow::Result<Exit> {
    let job = client.cancel(id).await?;
    if json {
        print_json(&job)?;
    } else if job.status == JobStatus::Cancelled {
        outln!("job {id} cancelled");
    } else {
        outln!("job {id} is {}; the worker will stop it", job.status);
    }
    Ok(Exit::Success)
}
