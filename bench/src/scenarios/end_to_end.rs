//! Scenario `end_to_end` (issue 5): does the daemon keep its ComfyUI servers busy? With the
//! simulator at a fixed execution time (50 ms) and 1,000 jobs queued (100 with `--quick`),
//! jobs/s and the idle gap between consecutive executions on each server, read from the
//! simulator's own `execution_start` / `execution_success` stamps, on 1, 2 and 4 servers (one
//! simulator each), beside the ideal `jobs × execution time / servers`.
//!
//! Baselines in the same run: the ideal, and the simulator alone with every prompt queued in it
//! directly, whose gaps are the simulator's own floor. With execution time 0 the run measures
//! the daemon's own cost per job: its CPU time (process CPU minus simulator, client and harness
//! threads) and the rate it reaches beside the simulator alone.

use std::time::{Duration, Instant};

use anyhow::Context;
use comfydash_daemon::config::Synchronous;
use comfydash_sim::Sim;

use crate::cpu::{self, CpuTimes};
use crate::ctx::Ctx;
use crate::daemon::{self, READ_KEY, Running};
use crate::report::{Cell, Report, Table};
use crate::sim::{self, Execution};
use crate::stats::Samples;
use crate::workload;

/// Simulated execution time of the throughput runs.
const EXEC: Duration = Duration::from_millis(50);
/// How often the client polls `GET /api/queue` to see the end.
const POLL: Duration = Duration::from_millis(50);

/// What one run observed.
struct Observed {
    jobs: u64,
    wall: Duration,
    completed: u64,
    gaps: Samples,
    exec: Samples,
    /// Σ busy / Σ (first start → last end), over servers.
    busy_share: f64,
    cpu: CpuTimes,
    /// Size of one job's output, when known.
    output_bytes: Option<u64>,
    /// Daemon CPU seconds per second with the queue paused (background work).
    idle_cpu_per_s: f64,
}

impl Observed {
    fn rate(&self) -> f64 {
        self.jobs as f64 / self.wall.as_secs_f64()
    }

    fn per_job_ms(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0 / self.jobs.max(1) as f64
    }

    /// Daemon CPU per job, less what it would have spent idle over the same wall time.
    fn daemon_net_ms(&self) -> f64 {
        let background = self.idle_cpu_per_s * self.wall.as_secs_f64();
        (self.cpu.daemon().as_secs_f64() - background).max(0.0) * 1000.0 / self.jobs.max(1) as f64
    }
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let jobs: u64 = ctx.size(1000, 100);
    let alone_jobs: u64 = ctx.size(200, 50);
    let mut report = Report::new(
        "end_to_end",
        "jobs/s and idle gaps on 1, 2 and 4 simulated servers vs the ideal; CPU per job (issue 5)",
    );

    let exec_ms = EXEC.as_secs_f64() * 1000.0;
    let mut t = Table::new(
        format!(
            "{jobs} jobs queued, then the queue resumed; simulator execution time {exec_ms:.0} ms"
        ),
        &[
            "setup",
            "servers",
            "jobs",
            "wall s",
            "jobs/s",
            "ideal jobs/s",
            "wall / ideal",
            "exec mean ms",
            "wall / ideal at measured exec",
            "gap p50 ms",
            "gap p99 ms",
            "servers busy %",
            "daemon CPU ms/job",
            "completed",
        ],
    );
    let alone = sim_alone(ctx, EXEC, alone_jobs).await?;
    let mut rows = vec![("simulator alone (prompts queued in it)", 1usize, alone)];
    for servers in [1usize, 2, 4] {
        let o = through_daemon(ctx, servers, EXEC, jobs, Synchronous::Full).await?;
        rows.push(("comfydash", servers, o));
    }
    let mut output_bytes = None;
    for (setup, servers, mut o) in rows {
        let ideal = servers as f64 * 1000.0 / exec_ms;
        let measured = servers as f64 * 1000.0 / o.exec.mean();
        let daemon_cpu = if setup == "comfydash" {
            Cell::ms(o.daemon_net_ms())
        } else {
            Cell::Empty
        };
        output_bytes = output_bytes.or(o.output_bytes);
        t.row(vec![
            Cell::text(setup),
            Cell::int(servers as u64),
            Cell::int(o.jobs),
            Cell::Num(o.wall.as_secs_f64(), 2),
            Cell::rate(o.rate()),
            Cell::rate(ideal),
            Cell::ratio(ideal, o.rate()),
            Cell::ms(o.exec.mean()),
            Cell::ratio(measured, o.rate()),
            Cell::ms(o.gaps.p50()),
            Cell::ms(o.gaps.p99()),
            Cell::Num(o.busy_share * 100.0, 1),
            daemon_cpu,
            Cell::int(o.completed),
        ]);
    }
    if let Some(b) = output_bytes {
        report.note(format!(
            "Each job's output, fetched from the simulator, hashed and written to the data dir by \
             the daemon: one PNG of {:.0} KB.",
            b as f64 / 1000.0
        ));
    }
    report.tables.push(t);

    let mut t = Table::new(
        format!("Execution time 0: the daemon's own cost per job, {jobs} jobs, one server"),
        &[
            "setup",
            "synchronous",
            "jobs/s",
            "jobs/s vs simulator alone",
            "gap p50 ms",
            "gap p99 ms",
            "daemon CPU ms/job",
            "simulator CPU ms/job",
            "completed",
        ],
    );
    let alone = sim_alone(ctx, Duration::ZERO, jobs).await?;
    let base = alone.rate();
    let mut rows = vec![("simulator alone (prompts queued in it)", "–", alone)];
    for (sync, label) in [(Synchronous::Full, "FULL"), (Synchronous::Normal, "NORMAL")] {
        let o = through_daemon(ctx, 1, Duration::ZERO, jobs, sync).await?;
        rows.push(("comfydash", label, o));
    }
    for (setup, sync, mut o) in rows {
        let daemon_cpu = if setup == "comfydash" {
            Cell::ms(o.daemon_net_ms())
        } else {
            Cell::Empty
        };
        t.row(vec![
            Cell::text(setup),
            Cell::text(sync),
            Cell::rate(o.rate()),
            Cell::ratio(o.rate(), base),
            Cell::ms(o.gaps.p50()),
            Cell::ms(o.gaps.p99()),
            daemon_cpu,
            Cell::ms(o.per_job_ms(o.cpu.sim)),
            Cell::int(o.completed),
        ]);
    }
    report.tables.push(t);
    report.note(
        "Gap: simulator-stamped end of one execution to the start of the next on the same \
         server (ms resolution). Servers busy %: Σ execution time / Σ (first start → last end) \
         per server. Wall: resume → the client sees an empty queue (GET /api/queue every 50 ms); \
         for the simulator alone: first start → last end by its own stamps.",
    );
    report.note(
        "Daemon CPU ms/job: process CPU minus the simulator, client and harness threads over \
         the run, less the daemon's idle rate (measured just before, queue paused: probes, \
         heartbeat, stats and this client's polling) times the wall time, divided by the jobs. \
         10 ms tick resolution.",
    );
    report.note(
        "Daemon settings are the defaults (pipeline_depth 2, synchronous=FULL unless stated, \
         WebSocket tracking with a 1 s poll fallback) except probe interval 250 ms. Jobs are \
         text prompts through the built-in text2img template, each with its own seed so the \
         simulator's cache never answers; each output is a 512×512 PNG fetched and stored.",
    );
    report.note(
        "Ideal: jobs × execution time / servers, at the configured 50 ms and at the mean \
         execution time the simulator really took (its node work and timer granularity add \
         some); the second ratio is what the daemon itself costs in throughput.",
    );
    report.note(
        "Everything shares 2 cores: the daemon, the simulators (which render and encode the \
         PNGs) and the client.",
    );
    Ok(report)
}

/// Queues `jobs` jobs in a paused daemon in front of `servers` fresh simulators, resumes, and
/// waits until all have ended.
async fn through_daemon(
    ctx: &Ctx,
    servers: usize,
    exec: Duration,
    jobs: u64,
    sync: Synchronous,
) -> anyhow::Result<Observed> {
    let mut sims = Vec::new();
    for _ in 0..servers {
        sims.push(sim::start(ctx, exec).await?);
    }
    let urls: Vec<String> = sims.iter().map(Sim::url).collect();
    let dir = ctx.tempdir("bench-e2e-")?;
    let mut config = daemon::config(&dir, &urls);
    config.store.synchronous = sync;
    config.queue.max_pending = 1_000_000;
    let d = Running::start(dir, config).await?;
    d.wait_servers_up(Duration::from_secs(10)).await?;
    d.set_paused(true).await?;
    let url = d.url.clone();
    ctx.on_client(async move { daemon::submit_many(&url, "e2e", jobs, 1, 16).await })
        .await?;
    // What the daemon spends with nothing to run (probes, heartbeats, our polling), per second.
    let idle_for = Duration::from_secs(ctx.size(2, 1));
    let url = d.url.clone();
    let before = cpu::now()?;
    ctx.on_client(async move { daemon::poll_queue(&url, POLL, idle_for).await })
        .await?;
    let idle = cpu::now()?.since(&before).daemon().as_secs_f64() / idle_for.as_secs_f64();
    let before = cpu::now()?;
    let t0 = Instant::now();
    d.set_paused(false).await?;
    let url = d.url.clone();
    let limit = Duration::from_secs(120) + exec * (jobs as u32);
    ctx.on_client(async move { daemon::wait_idle(&url, POLL, limit).await })
        .await?;
    let wall = t0.elapsed();
    let cpu = cpu::now()?.since(&before);
    let tele = d
        .client(READ_KEY)
        .telemetry()
        .await
        .context("GET /api/telemetry")?;
    let page = d
        .client(READ_KEY)
        .jobs("limit=1&status=completed")
        .await
        .context("GET /api/jobs")?;
    let per_server = histories(ctx, &urls).await?;
    d.stop().await;
    sim::stop(ctx, sims).await?;
    let mut o = observe(jobs, wall, tele.jobs.by_status.completed, &per_server, cpu);
    o.idle_cpu_per_s = idle;
    o.output_bytes = page
        .jobs
        .first()
        .and_then(|j| j.outputs.first())
        .map(|f| f.size);
    Ok(o)
}

/// Every simulator's executions, in start order.
async fn histories(ctx: &Ctx, urls: &[String]) -> anyhow::Result<Vec<Vec<Execution>>> {
    let urls = urls.to_vec();
    ctx.on_client(async move {
        let http = reqwest::Client::builder().no_proxy().build()?;
        let mut out = Vec::new();
        for u in &urls {
            out.push(sim::executions(&http, u).await?);
        }
        Ok(out)
    })
    .await
}

fn observe(
    jobs: u64,
    wall: Duration,
    completed: u64,
    per_server: &[Vec<Execution>],
    cpu: CpuTimes,
) -> Observed {
    let (mut gaps, mut exec) = (Samples::new(), Samples::new());
    let (mut busy, mut span) = (0.0, 0.0);
    for execs in per_server {
        gaps.extend(&sim::gaps(execs));
        for e in execs {
            exec.push_ms(e.ms());
        }
        busy += execs.iter().map(Execution::ms).sum::<f64>();
        if let (Some(first), Some(last)) = (execs.first(), execs.last()) {
            span += (last.end_ms - first.start_ms) as f64;
        }
    }
    Observed {
        jobs,
        wall,
        completed,
        gaps,
        exec,
        busy_share: if span > 0.0 { busy / span } else { f64::NAN },
        cpu,
        output_bytes: None,
        idle_cpu_per_s: 0.0,
    }
}

/// One simulator with every prompt posted to it directly while it is frozen, then released:
/// its queue never runs dry, so its gaps and rate are the simulator's own.
async fn sim_alone(ctx: &Ctx, exec: Duration, jobs: u64) -> anyhow::Result<Observed> {
    let s = sim::start(ctx, exec).await?;
    s.set_hang(true);
    let url = s.url();
    let u = url.clone();
    ctx.on_client(async move {
        let http = reqwest::Client::builder().no_proxy().build()?;
        for i in 0..jobs {
            let body = serde_json::json!({
                "prompt": workload::graph(1_000_000 + i, "alone"),
                "client_id": "bench-alone",
            });
            let r = http.post(format!("{u}/prompt")).json(&body).send().await?;
            anyhow::ensure!(r.status().is_success(), "POST /prompt: {}", r.status());
        }
        Ok(())
    })
    .await?;
    let before = cpu::now()?;
    s.set_hang(false);
    let probe = s.clone();
    ctx.on_client(async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        while probe.queue_remaining() > 0 {
            anyhow::ensure!(Instant::now() < deadline, "simulator queue never drained");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    })
    .await?;
    let cpu = cpu::now()?.since(&before);
    let mut per_server = histories(ctx, std::slice::from_ref(&url)).await?;
    // The first prompt sat frozen; time the rest from its end.
    let execs = &mut per_server[0];
    let done = execs.len() as u64;
    let wall = match (execs.first(), execs.last()) {
        (Some(a), Some(b)) => Duration::from_millis((b.end_ms - a.end_ms).max(1) as u64),
        _ => Duration::from_millis(1),
    };
    if !execs.is_empty() {
        execs.remove(0);
    }
    sim::stop(ctx, vec![s]).await?;
    let mut o = observe(jobs.saturating_sub(1), wall, done, &per_server, cpu);
    o.jobs = jobs.saturating_sub(1);
    Ok(o)
}
