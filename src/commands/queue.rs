//! `comfydash queue status|pause|resume`.

use comfydash_wire::QueueState;

use super::{client, print_json};
use crate::cli::{QueueCommand, Remote};
use crate::exit::Exit;

/// Reads or changes the queue and prints its state.
pub async fn run(remote: &Remote, command: QueueCommand) -> anyhow::Result<Exit> {
    let client = client(remote);
    let state = match command {
        QueueCommand::Status => client.queue().await?,
        QueueCommand::Pause => client.set_paused(true).await?,
        QueueCommand::Resume => client.set_paused(false).await?,
    };
    if remote.json {
        print_json(&state)?;
    } else {
        outln!("{}", describe(&state));
    }
    Ok(Exit::Success)
}

fn describe(q: &QueueState) -> String {
    format!(
        "queue {}: {} pending, {} processing (health {}, at most {} pending)",
        if q.paused { "paused" } else { "running" },
        q.pending,
        q.processing,
        q.health,
        q.max_pending
    )
}
