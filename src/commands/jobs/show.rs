//! `comfydash jobs show ID`.

use comfydash_wire::client::Client;
use comfydash_wire::{Job, Prompt, Timestamp};

use crate::commands::print_json;
use crate::exit::Exit;
use crate::table::{Table, clip};

/// Prints one job: its fields, then its outputs.
pub async fn run(client: &Client, id: &str, json: bool) -> anyhow::Result<Exit> {
    let job = client.job(id).await?;
    if json {
        print_json(&job)?;
    } else {
        out!("{}", describe(&job));
    }
    Ok(Exit::Success)
}

fn describe(job: &Job) -> String {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time = |t: &Option<Timestamp>| t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into());
    let ms = |v: Option<u64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
    let prompt = match &job.prompt {
        Prompt::Text(t) => clip(t, 200),
        Prompt::Graph(g) => format!("<API-format graph, {} nodes>", g.len()),
    };
    let mut t = Table::new(&["job_id", &job.job_id.0]);
    let mut add = |k: &str, v: String| t.row(vec![k.to_string(), v]);
    add("status", job.status.to_string());
    if job.cancel_requested {
        add("cancel", "requested".into());
    }
    add("attempt", job.attempt.to_string());
    add("priority", job.priority.to_string());
    add("prompt", prompt);
    add("workflow", opt(&job.workflow));
    add(
        "params",
        job.params
            .as_ref()
            .map(|p| clip(&p.to_string(), 200))
            .unwrap_or_else(|| "-".into()),
    );
    let image = match (&job.input_image_url, job.has_input_image) {
        (Some(u), _) => u.clone(),
        (None, true) => "inline".into(),
        (None, false) => "-".into(),
    };
    add("input_image", image);
    add("webhook_url", opt(&job.webhook_url));
    add(
        "timeout_s",
        job.timeout_s
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
    );
    add("server", opt(&job.server));
    if let Some(p) = &job.progress {
        add("progress", format!("{}/{}", p.value, p.max));
    }
    if let Some(e) = &job.error {
        let node = e
            .node
            .as_ref()
            .map(|n| format!(" (node {n})"))
            .unwrap_or_default();
        add("error", format!("{}: {}{node}", e.code, e.message));
    }
    add("created_at", job.created_at.to_rfc3339());
    add("started_at", time(&job.started_at));
    add("finished_at", time(&job.finished_at));
    add("queued", ms(job.timings.queued_ms));
    add("processing", ms(job.timings.processing_ms));
    add("outputs", job.outputs.len().to_string());
    let mut out = t.render();
    if !job.outputs.is_empty() {
        let mut o = Table::new(&["INDEX", "FILENAME", "TYPE", "SIZE", "SHA256"]);
        for f in &job.outputs {
            o.row(vec![
                f.index.to_string(),
                f.filename.clone(),
                f.content_type.clone(),
                f.size.to_string(),
                f.sha256.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&o.render());
    }
    out
}
