//! `comfydash webhooks list [--status dead,failed] [--job ID] [--limit N]`.

use comfydash_wire::WebhookEvent;
use comfydash_wire::client::{Client, WebhookFilter};

use crate::cli::WebhookListArgs;
use crate::commands::print_json;
use crate::exit::Exit;
use crate::table::{Table, clip};

/// Prints the matching events, newest first.
pub async fn run(client: &Client, args: WebhookListArgs, json: bool) -> anyhow::Result<Exit> {
    let filter = WebhookFilter {
        statuses: args.status,
        job_id: args.job_id,
        limit: args.limit,
    };
    let list = client.webhooks(&filter).await?;
    if json {
        print_json(&list)?;
    } else {
        out!("{}", table(&list.events));
    }
    Ok(Exit::Success)
}

fn table(events: &[WebhookEvent]) -> String {
    let mut t = Table::new(&[
        "EVENT", "JOB_ID", "TYPE", "STATUS", "ATTEMPTS", "CREATED", "LAST",
    ]);
    for e in events {
        t.row(vec![
            e.id.clone(),
            e.job_id.0.clone(),
            e.kind.to_string(),
            e.status.to_string(),
            e.attempt_count.to_string(),
            e.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            last(e),
        ]);
    }
    t.render()
}

/// The last attempt's answer, and when the next one is due.
fn last(e: &WebhookEvent) -> String {
    let mut parts = Vec::new();
    if let Some(code) = e.last_status_code {
        parts.push(format!("HTTP {code}"));
    }
    if let Some(err) = &e.last_error {
        parts.push(clip(err, 60));
    }
    if let Some(next) = e.next_attempt_at {
        parts.push(format!("next {}", next.format("%H:%M:%S")));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}
