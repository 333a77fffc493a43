//! `comfydash alerts test`: a test message to every channel, one line per channel.

use comfydash_wire::client::Client;
use comfydash_wire::{AlertTestResult, ChannelResult};

use crate::commands::print_json;
use crate::exit::Exit;
use crate::table::{Table, clip};

/// Sends the test; exit 1 when any channel did not take it.
pub async fn run(client: &Client, json: bool) -> anyhow::Result<Exit> {
    let result = client.alert_test().await?;
    if json {
        print_json(&result)?;
    } else {
        out!("{}", describe(&result));
    }
    let failed = result.results.iter().filter(|r| !r.ok).count();
    if failed > 0 {
        eprintln!(
            "comfydash: {failed} of {} channels failed",
            result.results.len()
        );
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}

fn describe(r: &AlertTestResult) -> String {
    let mut t = Table::new(&["CHANNEL", "RESULT", "ATTEMPTS", "HTTP", "LATENCY", "ERROR"]);
    for c in &r.results {
        t.row(row(c));
    }
    t.render()
}

fn row(c: &ChannelResult) -> Vec<String> {
    let dash = || "-".to_string();
    vec![
        c.channel.clone(),
        if c.ok { "ok" } else { "FAILED" }.into(),
        c.attempts.to_string(),
        c.status_code.map_or_else(dash, |s| s.to_string()),
        c.latency_ms.map_or_else(dash, |l| format!("{l} ms")),
        c.error.as_deref().map_or_else(dash, |e| clip(e, 100)),
    ]
}
