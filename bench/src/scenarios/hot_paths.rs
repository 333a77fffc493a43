//! Scenario `hot_paths` (issue 3): do the endpoints a backend and a monitor call all day stay
//! as fast with a long history as with none? p50/p99 of each request, sequential on one
//! keep-alive connection, against a store holding 1,000,000 finished jobs (100,000 with
//! `--quick`; seeded through the database before the daemon starts, see `seed`) and, as the
//! baseline in the same run, against an empty store. A ratio near 1 means O(1) in history.
//! A few list and search requests are measured too, as a guide to what is *not* O(1).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use comfydash_daemon::config::Synchronous;

use crate::ctx::Ctx;
use crate::daemon::{self, READ_KEY, Running, SUBMIT_KEY};
use crate::report::{Cell, Report, Table};
use crate::seed::{self, Seeded};
use crate::stats::Samples;
use crate::{load, workload};

/// What a request asks.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Health,
    Telemetry,
    Submit,
    Metrics,
    JobById,
    FirstPage,
    ByStatus(&'static str),
    Search,
}

/// One request kind.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    label: &'static str,
    kind: Kind,
    /// Hot path (the question) or a guide figure.
    hot: bool,
    /// Requests timed (full run); `--quick` takes a fifth.
    reps: u64,
}

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        label: "GET /api/health",
        kind: Kind::Health,
        hot: true,
        reps: 2000,
    },
    Endpoint {
        label: "GET /api/telemetry",
        kind: Kind::Telemetry,
        hot: true,
        reps: 2000,
    },
    Endpoint {
        label: "POST /api/jobs",
        kind: Kind::Submit,
        hot: true,
        reps: 1000,
    },
    Endpoint {
        label: "GET /metrics",
        kind: Kind::Metrics,
        hot: true,
        reps: 1000,
    },
    Endpoint {
        label: "GET /api/jobs/{id}",
        kind: Kind::JobById,
        hot: false,
        reps: 1000,
    },
    Endpoint {
        label: "GET /api/jobs?limit=50",
        kind: Kind::FirstPage,
        hot: false,
        reps: 500,
    },
    Endpoint {
        label: "GET /api/jobs?status=failed&limit=50",
        kind: Kind::ByStatus("failed"),
        hot: false,
        reps: 50,
    },
    Endpoint {
        label: "GET /api/jobs?status=completed&limit=50",
        kind: Kind::ByStatus("completed"),
        hot: false,
        reps: 5,
    },
    Endpoint {
        label: "GET /api/jobs?q=<no match>&limit=50",
        kind: Kind::Search,
        hot: false,
        reps: 5,
    },
];

/// Figures for one store.
struct StoreRun {
    samples: Vec<Samples>,
    start: Duration,
    db_mb: f64,
    seeded: Option<Seeded>,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let n: u64 = ctx.size(1_000_000, 100_000);
    let mut report = Report::new(
        "hot_paths",
        "health, telemetry and submit latency with a long history vs an empty store (issue 3)",
    );
    let empty = measure(ctx, 0).await?;
    let mut big = measure(ctx, n).await?;
    let mut empty = empty;
    let mut table = Table::new(
        format!(
            "Latency in ms, sequential requests on one connection: empty store vs {n} jobs in history"
        ),
        &[
            "request",
            "O(1)?",
            "requests",
            "empty p50",
            "empty p99",
            "history p50",
            "history p99",
            "p50 history/empty",
            "p99 history/empty",
        ],
    );
    for (i, e) in ENDPOINTS.iter().enumerate() {
        let (a, b) = (&mut empty.samples[i], &mut big.samples[i]);
        let (a50, a99, b50, b99) = (a.p50(), a.p99(), b.p50(), b.p99());
        table.row(vec![
            Cell::text(e.label),
            Cell::text(if e.hot { "should be" } else { "guide" }),
            Cell::int(b.len() as u64),
            Cell::ms(a50),
            Cell::ms(a99),
            Cell::ms(b50),
            Cell::ms(b99),
            Cell::ratio(b50, a50),
            Cell::ratio(b99, a99),
        ]);
    }
    report.tables.push(table);
    let mut t = Table::new(
        "Store size and daemon start",
        &[
            "store",
            "jobs",
            "job-log lines",
            "database MB",
            "daemon start ms",
            "seeding s",
        ],
    );
    for (label, r) in [("empty", &empty), ("history", &big)] {
        t.row(vec![
            Cell::text(label),
            Cell::int(r.seeded.as_ref().map_or(0, |s| s.jobs)),
            Cell::int(r.seeded.as_ref().map_or(0, |s| s.events)),
            Cell::Num(r.db_mb, 1),
            Cell::ms(r.start.as_secs_f64() * 1000.0),
            r.seeded
                .as_ref()
                .map_or(Cell::Empty, |s| Cell::Num(s.took.as_secs_f64(), 1)),
        ]);
    }
    report.tables.push(t);

    let depths: Vec<u64> = ctx.size(vec![0, 10_000, 100_000], vec![0, 10_000]);
    let mut t = Table::new(
        "POST /api/jobs vs jobs already pending (synchronous=NORMAL, so no fsync): latency in ms of \
         sequential submits, then jobs/s from 16 submitters",
        &[
            "pending ahead",
            "requests",
            "p50",
            "p99",
            "p50 vs none pending",
            "jobs/s, 16 submitters",
            "jobs/s vs none pending",
        ],
    );
    let (mut base, mut base_rate) = (f64::NAN, f64::NAN);
    for depth in depths {
        let (mut s, rate) = submit_vs_pending(ctx, depth).await?;
        let p50 = s.p50();
        if depth == 0 {
            (base, base_rate) = (p50, rate);
        }
        t.row(vec![
            Cell::int(depth),
            Cell::int(s.len() as u64),
            Cell::ms(p50),
            Cell::ms(s.p99()),
            Cell::ratio(p50, base),
            Cell::rate(rate),
            Cell::ratio(rate, base_rate),
        ]);
    }
    report.tables.push(t);
    report.note(
        "History: 96 % completed, 3 % failed, 1 % cancelled, spread over the last 20 days \
         (inside the default 30-day retention, so the pruner finds nothing), three job-log \
         lines per run job. Default settings otherwise: synchronous=FULL, so POST /api/jobs \
         includes an fsync.",
    );
    report.note(
        "Daemon start is `comfydash_daemon::start` (open, migrate, load counters and the \
         recent processing times) until the listener serves; the page cache is warm from seeding.",
    );
    report.note(
        "`q=` searches id and prompt with LIKE '%…%'; a term that matches nothing reads every row.",
    );
    Ok(report)
}

/// Times sequential submits to a daemon whose queue already holds `pending` jobs (no
/// history, a dead ComfyUI so none leaves), then measures jobs/s from 16 submitters; the
/// store answers each submit with the job's position.
async fn submit_vs_pending(ctx: &Ctx, pending: u64) -> anyhow::Result<(Samples, f64)> {
    let dir = ctx.tempdir("bench-pending-")?;
    if pending > 0 {
        let db = dir.path().join("comfydash.db");
        tokio::task::spawn_blocking(move || seed::seed(&db, 0, pending))
            .await
            .context("seeding panicked")??;
    }
    let mut config = daemon::config(&dir, &[daemon::dead_url()?]);
    config.store.synchronous = Synchronous::Normal;
    config.queue.max_pending = 1_000_000_000;
    let d = Running::start(dir, config).await?;
    let url = format!("{}/api/jobs", d.url);
    let reps: u64 = ctx.size(500, 100);
    let u = url.clone();
    let samples = ctx
        .on_client(async move {
            let http = reqwest::Client::builder().no_proxy().build()?;
            let mut s = Samples::new();
            for i in 0..reps + 20 {
                let body = workload::text_job(&format!("depth-{i}"), i);
                let t = Instant::now();
                let resp = http
                    .post(&u)
                    .header("x-api-key", SUBMIT_KEY)
                    .json(&body)
                    .send()
                    .await?;
                let status = resp.status();
                resp.bytes().await?;
                if status != reqwest::StatusCode::ACCEPTED {
                    bail!("POST /api/jobs answered {status}");
                }
                if i >= 20 {
                    s.push(t.elapsed());
                }
            }
            Ok(s)
        })
        .await?;
    let dur = Duration::from_secs_f64(ctx.size(2.0, 0.5));
    let burst = ctx
        .on_client(async move {
            let http = reqwest::Client::builder().no_proxy().build()?;
            load::run(http, url, 16, dur, u64::MAX, "burst").await
        })
        .await?;
    d.stop().await;
    Ok((samples, burst.rate()))
}

/// Seeds `n` jobs (none: empty store), starts a daemon and times every endpoint.
async fn measure(ctx: &Ctx, n: u64) -> anyhow::Result<StoreRun> {
    let dir = ctx.tempdir("bench-hot-")?;
    let db = dir.path().join("comfydash.db");
    let seeded = if n > 0 {
        let db = db.clone();
        Some(
            tokio::task::spawn_blocking(move || seed::seed(&db, n, 0))
                .await
                .context("seeding panicked")??,
        )
    } else {
        None
    };
    let config = daemon::config(&dir, &[daemon::dead_url()?]);
    let d = Running::start(dir, config).await?;
    let start = d.start_time;
    let url = d.url.clone();
    let quick = ctx.quick;
    let samples = ctx
        .on_client(async move { time_all(url, n, quick).await })
        .await?;
    let db_mb = ["comfydash.db", "comfydash.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(d.data_dir().join(f)).ok())
        .map(|m| m.len() as f64 / 1e6)
        .sum();
    d.stop().await;
    Ok(StoreRun {
        samples,
        start,
        db_mb,
        seeded,
    })
}

/// Times every endpoint in `ENDPOINTS` order.
async fn time_all(url: String, n: u64, quick: bool) -> anyhow::Result<Vec<Samples>> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let mut out = Vec::new();
    let mut posted = 0u64;
    for e in ENDPOINTS {
        let reps = if quick { (e.reps / 5).max(3) } else { e.reps };
        let warm = (reps / 10).clamp(1, 20);
        let mut s = Samples::new();
        for i in 0..warm + reps {
            let req = match e.kind {
                Kind::Health => http.get(format!("{url}/api/health")),
                Kind::Telemetry => http
                    .get(format!("{url}/api/telemetry"))
                    .header("x-api-key", READ_KEY),
                Kind::Submit => {
                    posted += 1;
                    let body = workload::text_job(&format!("hot-{i}"), i);
                    http.post(format!("{url}/api/jobs"))
                        .header("x-api-key", SUBMIT_KEY)
                        .json(&body)
                }
                Kind::Metrics => http
                    .get(format!("{url}/metrics"))
                    .header("authorization", format!("Bearer {READ_KEY}")),
                Kind::JobById => {
                    let id = if n > 0 {
                        format!("hist-{:08}", (i * 7919) % n)
                    } else {
                        format!("hot-{}", i % posted.max(1))
                    };
                    http.get(format!("{url}/api/jobs/{id}"))
                        .header("x-api-key", READ_KEY)
                }
                Kind::FirstPage => http
                    .get(format!("{url}/api/jobs?limit=50"))
                    .header("x-api-key", READ_KEY),
                Kind::ByStatus(status) => http
                    .get(format!("{url}/api/jobs?status={status}&limit=50"))
                    .header("x-api-key", READ_KEY),
                Kind::Search => http
                    .get(format!("{url}/api/jobs?q=lensia-404&limit=50"))
                    .header("x-api-key", READ_KEY),
            };
            let t = Instant::now();
            let resp = req.send().await.with_context(|| e.label)?;
            let status = resp.status();
            let body = resp.bytes().await.with_context(|| e.label)?;
            let took = t.elapsed();
            if !status.is_success() {
                bail!(
                    "{}: HTTP {status}: {}",
                    e.label,
                    String::from_utf8_lossy(&body)
                );
            }
            if i >= warm {
                s.push(took);
            }
        }
        out.push(s);
    }
    Ok(out)
}
