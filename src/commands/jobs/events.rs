//! `comfydash jobs events ID`: the job's log.

use comfydash_wire::client::Client;

use crate::commands::print_json;
use crate::exit::Exit;
use crate::table::{Table, clip};

/// Prints every line of the job's log, oldest first.
pub async fn run(client: &Client, id: &str, json: bool) -> anyhow::Result<Exit> {
    let log = client.job_events(id).await?;
    if json {
        print_json(&log.events)?;
        return Ok(Exit::Success);
    }
    let mut table = Table::new(&["AT", "KIND", "CHANGE", "ACTOR", "DETAIL"]);
    for e in &log.events {
        let change = match (e.from, e.to) {
            (Some(f), Some(t)) => format!("{f} -> {t}"),
            (None, Some(t)) => format!("-> {t}"),
            (Some(f), None) => format!("{f} ->"),
            (None, None) => String::new(),
        };
        let detail = e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default();
        table.row(vec![
            e.at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            e.kind.clone(),
            change,
            e.actor.clone(),
            clip(&detail, 100),
        ]);
    }
    out!("{}", table.render());
    Ok(Exit::Success)
}
