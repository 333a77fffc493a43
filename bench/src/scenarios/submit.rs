//! Scenario `submit` (issue 3): how many jobs a day the daemon can accept, and how long a
//! submit takes, with 1, 16 and 64 concurrent HTTP submitters (keep-alive connections, a dead
//! ComfyUI so nothing runs), with `synchronous=FULL` and `NORMAL`.
//!
//! Baseline, same run and settings: one thread inserting the same rows straight into the same
//! schema with rusqlite, one `BEGIN IMMEDIATE … COMMIT` per job — what durably recording a job
//! costs with no server, no batching and no HTTP. It runs twice, once beside a thread that wakes
//! every 50 µs: on a VM an idle vCPU can make each fsync wait several milliseconds longer, and the
//! daemon, busy with HTTP, rarely idles; the faster of the two is the baseline. Another row calls
//! `Store::submit` directly from 64 tasks: the store's group commit without HTTP, which splits
//! the daemon's cost in two.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use comfydash_daemon::config::Synchronous;
use comfydash_daemon::store::{NewJob, Store, StoreOptions};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::ctx::Ctx;
use crate::daemon::{self, Running};
use crate::load::{self, Measured};
use crate::report::{Cell, Report, Table};
use crate::{cpu, seed, workload};

/// Concurrent submitters tried against the daemon.
const CONCURRENCY: [usize; 3] = [1, 16, 64];
/// Tasks calling the store directly.
const STORE_TASKS: usize = 64;

/// A row's figures, with jobs/s as a ratio to `baseline`.
fn cells(m: &mut Measured, baseline: f64) -> Vec<Cell> {
    let cpu_us = m.cpu.as_secs_f64() * 1e6 / m.accepted.max(1) as f64;
    vec![
        Cell::rate(m.rate()),
        Cell::ms(m.latency.p50()),
        Cell::ms(m.latency.p99()),
        Cell::Num(cpu_us, 0),
        Cell::int(m.accepted),
        Cell::int(m.errors),
        Cell::ratio(m.rate(), baseline),
    ]
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let dur = Duration::from_secs_f64(ctx.size(4.0, 1.0));
    let mut report = Report::new(
        "submit",
        "HTTP submit throughput and latency vs one SQLite transaction per job (issue 3)",
    );
    let mut table = Table::new(
        format!(
            "Accepted submits in {:.0} s per row, each row on a fresh store",
            dur.as_secs_f64()
        ),
        &[
            "synchronous",
            "writer",
            "concurrency",
            "jobs/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/job",
            "accepted",
            "errors",
            "jobs/s vs naive",
        ],
    );
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let label = match sync {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        let mut plain = naive_in(ctx, sync, dur, false).await?;
        let mut awake = naive_in(ctx, sync, dur, true).await?;
        // The stronger of the two is the baseline (see the note on idle CPUs).
        let base = plain.rate().max(awake.rate());
        for (writer, m) in [
            ("naive: rusqlite, 1 txn/job", &mut plain),
            ("naive + 50 µs timer thread", &mut awake),
        ] {
            let mut row = vec![Cell::text(label), Cell::text(writer), Cell::int(1u64)];
            row.extend(cells(m, base));
            table.row(row);
        }
        for c in CONCURRENCY {
            let mut m = daemon_http(ctx, sync, c, dur).await?;
            let mut row = vec![
                Cell::text(label),
                Cell::text("daemon over HTTP"),
                Cell::int(c as u64),
            ];
            row.extend(cells(&mut m, base));
            table.row(row);
        }
        let mut m = store_direct(ctx, sync, dur).await?;
        let mut row = vec![
            Cell::text(label),
            Cell::text("Store::submit, no HTTP"),
            Cell::int(STORE_TASKS as u64),
        ];
        row.extend(cells(&mut m, base));
        table.row(row);
    }
    report.tables.push(table);
    report.note(
        "The naive writer runs per job: the duplicate-id lookup, the pending-count read, the job \
         INSERT, two counter UPDATEs and the job-log INSERT, in one BEGIN IMMEDIATE…COMMIT, \
         with the same journal_mode=WAL and synchronous setting; it skips the store's read-back \
         of the row and the queue-position count, so it is a floor, not the same work.",
    );
    report.note(
        "CPU µs/job: the daemon's threads (process CPU minus the load client, simulator and \
         harness threads) for daemon rows; the store and its 64 calling tasks for Store::submit; \
         the writing thread for naive. 10 ms tick resolution.",
    );
    report.note(
        "The load client runs in the same process on the same 2 cores, so at 16 and 64 \
         submitters it takes CPU from the daemon; jobs/s is a lower bound for a remote client.",
    );
    Ok(report)
}

/// Runs [`naive`] on a blocking thread in a fresh folder; with `keep_awake`, a sibling thread
/// wakes every 50 µs so the CPUs never go idle while the writer waits for fsync.
async fn naive_in(
    ctx: &Ctx,
    sync: Synchronous,
    dur: Duration,
    keep_awake: bool,
) -> anyhow::Result<Measured> {
    let dir = ctx.tempdir("bench-naive-")?;
    let path = dir.path().join("naive.db");
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = keep_awake.then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(50));
            }
        })
    });
    let m = tokio::task::spawn_blocking(move || naive(path, sync, dur))
        .await
        .context("naive writer panicked");
    stop.store(true, Ordering::Relaxed);
    if let Some(t) = ticker {
        let _ = t.join();
    }
    drop(dir);
    m?
}

/// One thread, one transaction per job, straight into the daemon's schema.
fn naive(path: PathBuf, sync: Synchronous, dur: Duration) -> anyhow::Result<Measured> {
    let opts = StoreOptions {
        synchronous: sync,
        max_batch: 1,
        ..StoreOptions::default()
    };
    Store::open(&path, opts)
        .context("creating the schema")?
        .close();
    let mut conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let level = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", level)?;
    let cpu0 = cpu::this_thread()?;
    let t0 = Instant::now();
    let mut m = Measured::default();
    let mut i = 0u64;
    while t0.elapsed() < dur {
        let t = Instant::now();
        let id = format!("naive-{i}");
        let (request, hash) = seed::request(&id, i)?;
        let now = chrono::Utc::now().timestamp_millis();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .prepare_cached("SELECT request_hash FROM jobs WHERE id = ?1")?
            .query_row([&id], |r| r.get(0))
            .optional()?;
        anyhow::ensure!(existing.is_none(), "duplicate id {id}");
        let _pending: i64 = tx
            .prepare_cached("SELECT value FROM counters WHERE name = 'pending'")?
            .query_row([], |r| r.get(0))?;
        tx.prepare_cached(
            "INSERT INTO jobs(id, status, priority, request, request_hash, input_image, search_text, created_at, updated_at) \
             VALUES (?1, 'pending', 0, ?2, ?3, NULL, ?4, ?5, ?5)",
        )?
        .execute(params![id, request, hash, workload::PROMPT, now])?;
        let mut bump =
            tx.prepare_cached("UPDATE counters SET value = value + 1 WHERE name = ?1")?;
        bump.execute(["total"])?;
        bump.execute(["pending"])?;
        drop(bump);
        tx.prepare_cached(
            "INSERT INTO job_events(job_id, at, kind, from_status, to_status, actor, detail) \
             VALUES (?1, ?2, 'submitted', NULL, 'pending', 'lensia', NULL)",
        )?
        .execute(params![id, now])?;
        tx.commit()?;
        m.latency.push(t.elapsed());
        m.accepted += 1;
        i += 1;
    }
    m.secs = t0.elapsed().as_secs_f64();
    m.cpu = cpu::this_thread()?.saturating_sub(cpu0);
    Ok(m)
}

/// `c` keep-alive HTTP submitters against a fresh daemon for `dur`.
async fn daemon_http(
    ctx: &Ctx,
    sync: Synchronous,
    c: usize,
    dur: Duration,
) -> anyhow::Result<Measured> {
    let dir = ctx.tempdir("bench-submit-")?;
    let mut config = daemon::config(&dir, &[daemon::dead_url()?]);
    config.store.synchronous = sync;
    config.queue.max_pending = 1_000_000_000;
    let d = Running::start(dir, config).await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let url = format!("{}/api/jobs", d.url);
    // Every submitter opens its connection first.
    let (h, u) = (http.clone(), url.clone());
    ctx.on_client(async move { load::run(h, u, c, Duration::from_secs(30), 3, "warm").await })
        .await?;
    let before = cpu::now()?;
    let mut m = ctx
        .on_client(async move { load::run(http, url, c, dur, u64::MAX, "job").await })
        .await?;
    m.cpu = cpu::now()?.since(&before).daemon();
    d.stop().await;
    Ok(m)
}

/// `STORE_TASKS` tasks calling `Store::submit` on a fresh store for `dur`.
async fn store_direct(ctx: &Ctx, sync: Synchronous, dur: Duration) -> anyhow::Result<Measured> {
    let dir = ctx.tempdir("bench-store-")?;
    let store = Store::open(
        &dir.path().join("comfydash.db"),
        StoreOptions {
            synchronous: sync,
            max_batch: comfydash_daemon::config::StoreConfig::default().max_batch,
            ..StoreOptions::default()
        },
    )
    .context("opening the store")?;
    let before = cpu::now()?;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..STORE_TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut m = Measured::default();
            let mut i = 0;
            while t0.elapsed() < dur {
                let id = format!("store-{task}-{i}");
                let (request, request_hash) = seed::request(&id, i)?;
                let t = Instant::now();
                let r = store
                    .submit(NewJob {
                        id,
                        request,
                        request_hash,
                        input_image: None,
                        search_text: workload::PROMPT.into(),
                        priority: 0,
                        max_pending: u64::MAX,
                        actor: "lensia".into(),
                    })
                    .await;
                match r {
                    Ok(s) if s.created => {
                        m.latency.push(t.elapsed());
                        m.accepted += 1;
                    }
                    _ => m.errors += 1,
                }
                i += 1;
            }
            anyhow::Ok(m)
        }));
    }
    let mut total = Measured::default();
    for t in tasks {
        let m = t.await.context("store task panicked")??;
        total.accepted += m.accepted;
        total.errors += m.errors;
        total.latency.extend(&m.latency);
    }
    total.secs = t0.elapsed().as_secs_f64();
    total.cpu = cpu::now()?.since(&before).daemon();
    tokio::task::spawn_blocking(move || store.close())
        .await
        .context("closing the store")?;
    drop(dir);
    Ok(total)
}
