//! `comfydash ping`: does the daemon answer (no key needed)?

use std::time::Instant;

use super::{client, print_json};
use crate::cli::Remote;
use crate::exit::Exit;

/// Calls `GET /api/ping` and prints the answer and its round-trip time.
pub async fn run(remote: &Remote) -> anyhow::Result<Exit> {
    let client = client(remote);
    let started = Instant::now();
    let ping = client.ping().await?;
    if remote.json {
        print_json(&ping)?;
    } else {
        outln!(
            "{} from {} in {} ms",
            ping.status,
            client.base_url(),
            started.elapsed().as_millis()
        );
    }
    Ok(Exit::Success)
}
