//! `comfydash jobs list`: a page of jobs (or every page with `--all`) as a table or JSON.

use comfydash_wire::client::Client;
use comfydash_wire::{Job, Prompt};

use crate::cli::ListArgs;
use crate::exit::Exit;
use crate::table::{Table, clip};

/// Lists jobs; with `--all`, follows `next_cursor` to the end.
pub async fn run(client: &Client, args: &ListArgs, json: bool) -> anyhow::Result<Exit> {
    let mut cursor: Option<String> = None;
    let mut jobs = Vec::new();
    loop {
        let page = client.jobs(&query(args, cursor.as_deref())).await?;
        if args.json_lines {
            for job in &page.jobs {
                outln!("{}", serde_json::to_string(job)?);
            }
        } else {
            jobs.extend(page.jobs);
        }
        cursor = page.next_cursor;
        if !args.all || cursor.is_none() {
            break;
        }
    }
    if args.json_lines {
        // Printed page by page above.
    } else if json {
        outln!("{}", serde_json::to_string_pretty(&jobs)?);
    } else {
        out!("{}", table(&jobs));
        if cursor.is_some() {
            eprintln!("(more jobs: --all lists every page)");
        }
    }
    Ok(Exit::Success)
}

fn query(args: &ListArgs, cursor: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if !args.status.is_empty() {
        let s: Vec<&str> = args.status.iter().map(|s| s.as_str()).collect();
        q.append_pair("status", &s.join(","));
    }
    for (key, value) in [
        ("q", args.q.as_deref()),
        ("since", args.since.as_deref()),
        ("sort", args.sort.as_deref()),
        ("cursor", cursor),
    ] {
        if let Some(v) = value {
            q.append_pair(key, v);
        }
    }
    if let Some(l) = args.limit {
        q.append_pair("limit", &l.to_string());
    }
    q.finish()
}

fn table(jobs: &[Job]) -> String {
    let mut t = Table::new(&[
        "JOB_ID", "STATUS", "ATTEMPT", "PRIORITY", "SERVER", "CREATED", "PROMPT",
    ]);
    for j in jobs {
        let status = match &j.progress {
            Some(p) if !j.status.is_terminal() => format!("{} {}/{}", j.status, p.value, p.max),
            _ => j.status.to_string(),
        };
        let prompt = match &j.prompt {
            Prompt::Text(text) => clip(text, 60),
            Prompt::Graph(g) => format!("<graph, {} nodes>", g.len()),
        };
        t.row(vec![
            j.job_id.0.clone(),
            status,
            j.attempt.to_string(),
            j.priority.to_string(),
            j.server.clone().unwrap_or_else(|| "-".into()),
            j.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            prompt,
        ]);
    }
    t.render()
}
