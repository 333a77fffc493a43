//! The scenarios. Each is one module with `pub async fn run(ctx: &Ctx) -> anyhow::Result<Report>`
//! that measures something beside a baseline taken in the same run; add a module and a line in
//! [`SCENARIOS`] and [`run_one`] to add one.

pub mod end_to_end;
pub mod hot_paths;
pub mod naive_client;
pub mod submit;

use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::Cli;
use crate::ctx::Ctx;
use crate::machine::Machine;
use crate::report::Report;

/// Every scenario, in run order, with what it measures.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "submit",
        "HTTP submit throughput and latency vs one SQLite transaction per job (issue 3)",
    ),
    (
        "hot_paths",
        "health, telemetry and submit latency with a long history vs an empty store (issue 3)",
    ),
    (
        "end_to_end",
        "jobs/s and idle gaps on 1, 2 and 4 simulated servers vs the ideal; CPU per job (issue 5)",
    ),
    (
        "naive_client",
        "comfydash vs a script posting to ComfyUI and polling /history (issue 10)",
    ),
];

async fn run_one(name: &str, ctx: &Ctx) -> anyhow::Result<Report> {
    match name {
        "submit" => submit::run(ctx).await,
        "hot_paths" => hot_paths::run(ctx).await,
        "end_to_end" => end_to_end::run(ctx).await,
        "naive_client" => naive_client::run(ctx).await,
        other => bail!("unknown scenario {other:?}"),
    }
}

/// The `--json` document.
#[derive(Debug, Serialize)]
struct JsonRun<'a> {
    command: String,
    quick: bool,
    started_at: String,
    machine: &'a Machine,
    reports: &'a [Report],
    failures: &'a [(String, String)],
}

/// Runs the selected scenarios, printing each report as it ends; a failing scenario is
/// reported and the others still run.
pub async fn run_all(cli: &Cli, ctx: &Ctx) -> anyhow::Result<()> {
    if cli.list {
        for (name, what) in SCENARIOS {
            println!("{name:<14} {what}");
        }
        return Ok(());
    }
    for o in &cli.only {
        if !SCENARIOS.iter().any(|(n, _)| n == o) {
            let names: Vec<&str> = SCENARIOS.iter().map(|(n, _)| *n).collect();
            bail!("unknown scenario {o:?}; known: {}", names.join(", "));
        }
    }
    let machine = Machine::detect(&ctx.dir);
    // The program name without its path: `cargo run` and a direct call look the same.
    let command = std::iter::once("comfydash-bench".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let started_at = chrono::Utc::now().to_rfc3339();
    println!(
        "# comfydash benchmarks{}",
        if ctx.quick { " (--quick)" } else { "" }
    );
    println!();
    println!("- command: `{command}`");
    println!("- started: {started_at}");
    print!("{machine}");
    println!();
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for (name, _) in SCENARIOS {
        if !cli.only.is_empty() && !cli.only.iter().any(|o| o == name) {
            continue;
        }
        let t = Instant::now();
        match run_one(name, ctx).await {
            Ok(mut r) => {
                r.seconds = t.elapsed().as_secs_f64();
                println!("{r}");
                reports.push(r);
            }
            Err(e) => {
                println!(
                    "## {name}: FAILED after {:.1} s: {e:#}\n",
                    t.elapsed().as_secs_f64()
                );
                failures.push((name.to_string(), format!("{e:#}")));
            }
        }
    }
    if let Some(path) = &cli.json {
        let doc = JsonRun {
            command,
            quick: ctx.quick,
            started_at,
            machine: &machine,
            reports: &reports,
            failures: &failures,
        };
        let text = serde_json::to_string_pretty(&doc).context("serialising the results")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    if !failures.is_empty() {
        bail!("{} scenario(s) failed", failures.len());
    }
    Ok(())
}
