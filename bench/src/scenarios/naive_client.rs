//! Scenario `naive_client` (issue 10): what comfydash buys over the simplest thing a user
//! would write instead — a script that posts each workflow straight to ComfyUI
//! (`POST /prompt`), polls `GET /history/{id}` every 500 ms until it is there, downloads the
//! image, and goes on to the next job. Measured on the same simulator (50 ms execution) in the
//! same run: that script (the baseline); comfydash fed one job at a time by a client that
//! waits on the event stream and downloads the output from comfydash; and comfydash given all
//! the jobs at once. Added latency is end-to-end time minus the simulator's execution time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use comfydash_wire::client::Client;
use comfydash_wire::{JobStatus, StreamEvent, SubmitJob};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::daemon::{self, Running, SUBMIT_KEY};
use crate::report::{Cell, Report, Table};
use crate::sim::{self, Execution};
use crate::stats::Samples;
use crate::workload;

/// Simulated execution time.
const EXEC: Duration = Duration::from_millis(50);
/// How often the naive script polls `/history`.
const POLL: Duration = Duration::from_millis(500);

/// One job as a client saw it.
#[derive(Debug, Clone)]
struct Run {
    /// ComfyUI prompt id (script) or comfydash job id.
    key: String,
    /// Sent → image held.
    e2e: Duration,
    /// Wall clock (ms since the epoch) when the job was sent.
    sent_ms: f64,
    /// Wall clock when the client learnt that it had ended.
    seen_ms: f64,
}

/// Jobs one client ran, and the wall time.
type Timed = (Vec<Run>, Duration);

/// Milliseconds since the epoch, with sub-millisecond precision.
fn wall_ms() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1000.0
}

/// What the daemon's job log says about one job, in ms since the epoch.
#[derive(Debug, Clone)]
struct Logged {
    prompt_id: String,
    claimed_ms: f64,
    ended_ms: f64,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let m: u64 = ctx.size(40, 8);
    let mut report = Report::new(
        "naive_client",
        "comfydash vs a script posting to ComfyUI and polling /history (issue 10)",
    );
    let s = sim::start(ctx, EXEC).await?;
    let sim_url = s.url();

    let u = sim_url.clone();
    let (naive, naive_wall) = ctx
        .on_client(async move { naive_script(u, m).await })
        .await?;

    let dir = ctx.tempdir("bench-naive-client-")?;
    let config = daemon::config(&dir, std::slice::from_ref(&sim_url));
    let d = Running::start(dir, config).await?;
    d.wait_servers_up(Duration::from_secs(10)).await?;
    let url = d.url.clone();
    let (one, one_wall, one_logs) = ctx
        .on_client(async move {
            let (timed, wall) = one_at_a_time(&url, m).await?;
            let logs = logs(&url, &timed).await?;
            Ok((timed, wall, logs))
        })
        .await?;
    let url = d.url.clone();
    let batch_wall = ctx
        .on_client(async move {
            let t = Instant::now();
            daemon::submit_many(&url, "batch", m, 4_000_000, 8).await?;
            daemon::wait_idle(&url, Duration::from_millis(10), Duration::from_secs(120)).await?;
            Ok(t.elapsed())
        })
        .await?;
    d.stop().await;

    let u = sim_url.clone();
    let execs: HashMap<String, Execution> = ctx
        .on_client(async move {
            let http = reqwest::Client::builder().no_proxy().build()?;
            sim::executions(&http, &u).await
        })
        .await?
        .into_iter()
        .map(|e| (e.prompt_id.clone(), e))
        .collect();
    sim::stop(ctx, vec![s]).await?;

    let mut table = Table::new(
        format!(
            "{m} jobs per client on one simulator ({:.0} ms execution)",
            EXEC.as_secs_f64() * 1000.0
        ),
        &[
            "client",
            "jobs",
            "wall s",
            "jobs/s",
            "jobs/s vs naive",
            "end-to-end p50 ms",
            "end-to-end p99 ms",
            "added p50 ms",
            "added mean ms",
            "added vs naive (mean)",
        ],
    );
    let naive_rate = m as f64 / naive_wall.as_secs_f64();
    let (mut n_e2e, mut n_added) = split(&naive, |pid| execs.get(pid))?;
    let naive_added = n_added.mean();
    table.row(vec![
        Cell::text("script: POST /prompt, poll /history every 500 ms"),
        Cell::int(m),
        Cell::Num(naive_wall.as_secs_f64(), 2),
        Cell::rate(naive_rate),
        Cell::ratio(naive_rate, naive_rate),
        Cell::ms(n_e2e.p50()),
        Cell::ms(n_e2e.p99()),
        Cell::ms(n_added.p50()),
        Cell::ms(naive_added),
        Cell::ratio(naive_added, naive_added),
    ]);
    let one_rate = m as f64 / one_wall.as_secs_f64();
    let exec_of_job = |job: &str| one_logs.get(job).and_then(|l| execs.get(&l.prompt_id));
    let (mut o_e2e, mut o_added) = split(&one, exec_of_job)?;
    table.row(vec![
        Cell::text("comfydash, one at a time (end seen on /api/events)"),
        Cell::int(m),
        Cell::Num(one_wall.as_secs_f64(), 2),
        Cell::rate(one_rate),
        Cell::ratio(one_rate, naive_rate),
        Cell::ms(o_e2e.p50()),
        Cell::ms(o_e2e.p99()),
        Cell::ms(o_added.p50()),
        Cell::ms(o_added.mean()),
        Cell::ratio(o_added.mean(), naive_added),
    ]);
    let batch_rate = m as f64 / batch_wall.as_secs_f64();
    table.row(vec![
        Cell::text("comfydash, all submitted at once"),
        Cell::int(m),
        Cell::Num(batch_wall.as_secs_f64(), 2),
        Cell::rate(batch_rate),
        Cell::ratio(batch_rate, naive_rate),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ]);
    report.tables.push(table);
    let mut t = Table::new(
        "Where the time goes, one job at a time (medians, ms; daemon steps from the job's log)",
        &[
            "client",
            "sent → claimed by the worker",
            "→ execution starts",
            "execution",
            "execution ends → job ended in the store",
            "→ client knows",
            "→ client holds the image",
            "total",
        ],
    );
    let mut row = vec![Cell::text("script")];
    row.extend(steps(&naive, |k| execs.get(k), |_| None));
    t.row(row);
    let mut row = vec![Cell::text("comfydash, one at a time")];
    row.extend(steps(&one, exec_of_job, |k| one_logs.get(k)));
    t.row(row);
    report.tables.push(t);
    report.note(
        "Steps are differences of wall clocks on one machine: the client's, the daemon's job-log \
         stamps and the simulator's execution stamps, all ms resolution or better; medians of \
         steps need not add up to the median total.",
    );
    report.note(
        "End-to-end: from sending the job to holding the image (the script downloads it from \
         ComfyUI's /view, the comfydash client from /api/jobs/{id}/outputs/0). Added: end-to-end \
         minus that job's execution time as the simulator stamped it.",
    );
    report.note(
        "comfydash runs with defaults (pipeline_depth 2, synchronous=FULL, WebSocket tracking) \
         except probe interval 250 ms; the same graph either way (the built-in text2img \
         template with a per-job seed).",
    );
    Ok(report)
}

/// End-to-end and added (end-to-end minus execution) samples; `exec_of` finds a job's execution.
fn split<'a>(
    runs: &[Run],
    exec_of: impl Fn(&str) -> Option<&'a Execution>,
) -> anyhow::Result<(Samples, Samples)> {
    let (mut e2e, mut added) = (Samples::new(), Samples::new());
    for r in runs {
        let exec =
            exec_of(&r.key).with_context(|| format!("no simulator execution for {}", r.key))?;
        e2e.push(r.e2e);
        added.push_ms(r.e2e.as_secs_f64() * 1000.0 - exec.ms());
    }
    Ok((e2e, added))
}

/// Medians of each step between sending a job and holding its image; `logged` is the
/// daemon's account (none for the script).
fn steps<'a>(
    runs: &[Run],
    exec_of: impl Fn(&str) -> Option<&'a Execution>,
    logged: impl Fn(&str) -> Option<&'a Logged>,
) -> Vec<Cell> {
    let mut cols: Vec<Samples> = vec![Samples::new(); 7];
    for r in runs {
        let Some(e) = exec_of(&r.key) else { continue };
        let (start, end) = (e.start_ms as f64, e.end_ms as f64);
        let done = r.sent_ms + r.e2e.as_secs_f64() * 1000.0;
        if let Some(l) = logged(&r.key) {
            cols[0].push_ms(l.claimed_ms - r.sent_ms);
            cols[1].push_ms(start - l.claimed_ms);
            cols[3].push_ms(l.ended_ms - end);
            cols[4].push_ms(r.seen_ms - l.ended_ms);
        } else {
            cols[1].push_ms(start - r.sent_ms);
            cols[4].push_ms(r.seen_ms - end);
        }
        cols[2].push_ms(end - start);
        cols[5].push_ms(done - r.seen_ms);
        cols[6].push_ms(done - r.sent_ms);
    }
    cols.iter_mut()
        .map(|s| {
            if s.is_empty() {
                Cell::Empty
            } else {
                Cell::ms(s.p50())
            }
        })
        .collect()
}

/// The script a user would write: one job at a time, straight to ComfyUI.
async fn naive_script(url: String, m: u64) -> anyhow::Result<Timed> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let t0 = Instant::now();
    let mut out = Vec::new();
    for i in 0..m {
        let t = Instant::now();
        let sent_ms = wall_ms();
        let body =
            json!({"prompt": workload::graph(2_000_000 + i, "naive"), "client_id": "naive-script"});
        let queued: Value = http
            .post(format!("{url}/prompt"))
            .json(&body)
            .send()
            .await
            .context("POST /prompt")?
            .json()
            .await
            .context("POST /prompt answer")?;
        let pid = queued["prompt_id"]
            .as_str()
            .with_context(|| format!("no prompt_id in {queued}"))?
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (entry, seen_ms) = loop {
            tokio::time::sleep(POLL).await;
            let h: Value = http
                .get(format!("{url}/history/{pid}"))
                .send()
                .await
                .context("GET /history/{id}")?
                .json()
                .await
                .context("GET /history/{id} answer")?;
            if let Some(e) = h.get(&pid) {
                break (e.clone(), wall_ms());
            }
            if Instant::now() > deadline {
                bail!("prompt {pid} never finished");
            }
        };
        let img = &entry["outputs"]["9"]["images"][0];
        let query = [
            ("filename", img["filename"].as_str().unwrap_or_default()),
            ("subfolder", img["subfolder"].as_str().unwrap_or_default()),
            ("type", img["type"].as_str().unwrap_or("output")),
        ];
        let resp = http
            .get(format!("{url}/view"))
            .query(&query)
            .send()
            .await
            .context("GET /view")?;
        anyhow::ensure!(resp.status().is_success(), "GET /view: {}", resp.status());
        resp.bytes().await.context("reading the image")?;
        out.push(Run {
            key: pid,
            e2e: t.elapsed(),
            sent_ms,
            seen_ms,
        });
    }
    Ok((out, t0.elapsed()))
}

/// A comfydash client that submits one job, waits for its end on the event stream, downloads
/// the output, then submits the next.
async fn one_at_a_time(url: &str, m: u64) -> anyhow::Result<Timed> {
    let c = Client::new(url, Some(SUBMIT_KEY.to_string()));
    let mut events = Box::pin(c.events(None).await.context("GET /api/events")?);
    let t0 = Instant::now();
    let mut out = Vec::new();
    for i in 0..m {
        let id = format!("one-{i}");
        let job: SubmitJob = serde_json::from_value(workload::text_job(&id, 3_000_000 + i))?;
        let t = Instant::now();
        let sent_ms = wall_ms();
        c.submit(&job).await.context("POST /api/jobs")?;
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(60), events.next())
                .await
                .with_context(|| format!("job {id} never ended"))?
                .context("event stream ended")?
                .context("event stream")?;
            match ev.event {
                StreamEvent::Job(u) if u.job_id.0 == id && u.status.is_terminal() => break,
                // Missed events: ask instead.
                StreamEvent::Resync(_) if c.job(&id).await?.status.is_terminal() => break,
                _ => {}
            }
        }
        let seen_ms = wall_ms();
        let mut dl = c.output(&id, 0).await.context("GET output")?;
        while dl.chunk().await.context("reading the output")?.is_some() {}
        out.push(Run {
            key: id,
            e2e: t.elapsed(),
            sent_ms,
            seen_ms,
        });
    }
    Ok((out, t0.elapsed()))
}

/// The ComfyUI prompt id each job ran as and when it was claimed and ended, from its log.
async fn logs(url: &str, runs: &[Run]) -> anyhow::Result<HashMap<String, Logged>> {
    let c = Client::new(url, Some(SUBMIT_KEY.to_string()));
    let mut out = HashMap::new();
    for r in runs {
        let log = c
            .job_events(&r.key)
            .await
            .context("GET /api/jobs/{id}/events")?;
        let at = |e: &comfydash_wire::JobEvent| e.at.timestamp_millis() as f64;
        let claim = log
            .events
            .iter()
            .rev()
            .find(|e| e.to == Some(JobStatus::Processing))
            .with_context(|| format!("no claim in the log of {}", r.key))?;
        let end = log
            .events
            .iter()
            .rev()
            .find(|e| e.to.is_some_and(JobStatus::is_terminal))
            .with_context(|| format!("no end in the log of {}", r.key))?;
        let prompt_id = claim
            .detail
            .as_ref()
            .and_then(|d| d.get("prompt_id")?.as_str())
            .with_context(|| format!("no prompt_id in the log of {}", r.key))?;
        out.insert(
            r.key.clone(),
            Logged {
                prompt_id: prompt_id.to_string(),
                claimed_ms: at(claim),
                ended_ms: at(end),
            },
        );
    }
    Ok(out)
}
