//! Fills a daemon's database with a long job history before the daemon starts: the schema comes
//! from `Store::open` (then closed), the rows are bulk-inserted here in large transactions with
//! the columns the store writes, and the counters are set to match, as if the jobs had run.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfydash_daemon::config::Synchronous;
use comfydash_daemon::store::{Store, StoreOptions};
use comfydash_wire::{JobId, Prompt, SubmitJob};
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use crate::workload::PROMPT;

/// Rows per transaction.
const BATCH: u64 = 50_000;
/// History spread over this much time before now (inside the default 30-day retention).
const SPAN_MS: i64 = 20 * 24 * 3600 * 1000;

/// What was seeded.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Jobs inserted.
    pub jobs: u64,
    /// Job-log lines inserted.
    pub events: u64,
    /// How long it took.
    pub took: Duration,
}

/// A job's final state in the seeded history: 96 % completed, 3 % failed, 1 % cancelled.
fn outcome(i: u64) -> &'static str {
    match i % 100 {
        0..=2 => "failed",
        3 => "cancelled",
        _ => "completed",
    }
}

/// The canonical request JSON and its hash, as the submit handler stores them.
pub fn request(id: &str, seed: u64) -> anyhow::Result<(String, String)> {
    let req = SubmitJob {
        job_id: JobId(id.to_string()),
        prompt: Prompt::Text(PROMPT.to_string()),
        input_image_url: None,
        input_image_base64: None,
        webhook_url: None,
        params: Some(serde_json::json!({"seed": seed})),
        workflow: None,
        priority: None,
        timeout_s: None,
        output_base64: None,
    };
    let text = serde_json::to_string(&req).context("serialising a request")?;
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    Ok((text, hash))
}

/// Inserts `n` finished jobs (ids `hist-00000000`…) and then `pending` waiting ones
/// (`pend-00000000`…) with their logs into the database at `db`.
pub fn seed(db: &Path, n: u64, pending: u64) -> anyhow::Result<Seeded> {
    let t = Instant::now();
    // Creates and migrates the schema exactly as the daemon will find it.
    Store::open(
        db,
        StoreOptions {
            synchronous: Synchronous::Normal,
            max_batch: 1,
            ..StoreOptions::default()
        },
    )
    .context("creating the schema with Store::open")?
    .close();
    let mut conn = Connection::open(db).context("opening the database")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut totals = Totals::default();
    let mut events = 0;
    let mut start = 0;
    while start < n {
        let end = (start + BATCH).min(n);
        let tx = conn.transaction()?;
        for i in start..end {
            let created = now - SPAN_MS + (i as i64 * SPAN_MS) / n as i64;
            events += insert_job(&tx, i, created, &mut totals)?;
        }
        tx.commit()?;
        start = end;
    }
    let tx = conn.transaction()?;
    for i in 0..pending {
        insert_pending(&tx, i, now - 60_000 + (i as i64 * 60_000) / pending as i64)?;
    }
    tx.commit()?;
    events += pending;
    let set = |name: &str, v: i64| {
        conn.execute(
            "UPDATE counters SET value = ?2 WHERE name = ?1",
            params![name, v],
        )
    };
    set("total", (n + pending) as i64)?;
    set("pending", pending as i64)?;
    set("completed", totals.completed)?;
    set("failed", totals.failed)?;
    set("cancelled", totals.cancelled)?;
    set("finished_completed", totals.completed)?;
    set("finished_failed", totals.failed)?;
    set("finished_cancelled", totals.cancelled)?;
    set("processing_ms_sum", totals.processing_ms_sum)?;
    set("processing_ms_count", totals.completed)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    Ok(Seeded {
        jobs: n + pending,
        events,
        took: t.elapsed(),
    })
}

#[derive(Debug, Default)]
struct Totals {
    completed: i64,
    failed: i64,
    cancelled: i64,
    processing_ms_sum: i64,
}

/// One job waiting in the queue, with its `submitted` log line.
fn insert_pending(c: &Connection, i: u64, created: i64) -> anyhow::Result<()> {
    let id = format!("pend-{i:08}");
    let (request, hash) = request(&id, i)?;
    c.prepare_cached(
        "INSERT INTO jobs(id, status, priority, request, request_hash, input_image, search_text, created_at, updated_at) \
         VALUES (?1, 'pending', 0, ?2, ?3, NULL, ?4, ?5, ?5)",
    )?
    .execute(params![id, request, hash, PROMPT, created])?;
    c.prepare_cached(
        "INSERT INTO job_events(job_id, at, kind, from_status, to_status, actor, detail) \
         VALUES (?1, ?2, 'submitted', NULL, 'pending', 'lensia', NULL)",
    )?
    .execute(params![id, created])?;
    Ok(())
}

/// One job row and its log; returns the number of log lines.
fn insert_job(c: &Connection, i: u64, created: i64, totals: &mut Totals) -> anyhow::Result<u64> {
    let id = format!("hist-{i:08}");
    let (request, hash) = request(&id, i)?;
    let status = outcome(i);
    let server = format!("gpu{}", i % 2);
    let prompt_id = format!("{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let queued = 1_500 + (i % 7) as i64 * 300;
    let processing = 4_000 + ((i * 7919) % 6_000) as i64;
    let started = created + queued;
    let finished = started + processing;
    let (outputs, error, started_at, finished_at, queued_ms, processing_ms) = match status {
        "completed" => {
            totals.completed += 1;
            totals.processing_ms_sum += processing;
            let sha = hex::encode(Sha256::digest(id.as_bytes()));
            let out = format!(
                r#"[{{"index":0,"filename":"n9_{i:05}_.png","content_type":"image/png","size":{},"sha256":"{sha}"}}]"#,
                380_000 + i % 90_000
            );
            (
                out,
                None,
                Some(started),
                finished,
                Some(queued),
                Some(processing),
            )
        }
        "failed" => {
            totals.failed += 1;
            let err =
                r#"{"code":"execution_error","message":"KSampler: CUDA out of memory","node":"3"}"#;
            (
                "[]".to_string(),
                Some(err),
                Some(started),
                finished,
                Some(queued),
                None,
            )
        }
        _ => {
            totals.cancelled += 1;
            ("[]".to_string(), None, None, created + queued, None, None)
        }
    };
    c.prepare_cached(
        "INSERT INTO jobs(id, status, priority, request, request_hash, input_image, search_text, \
         attempt, tries, cancel_requested, server, prompt_id, progress, error, outputs, \
         created_at, updated_at, started_at, finished_at, queued_ms, processing_ms) \
         VALUES (?1, ?2, 0, ?3, ?4, NULL, ?5, 1, ?6, 0, ?7, ?8, NULL, ?9, ?10, ?11, ?12, ?13, ?12, ?14, ?15)",
    )?
    .execute(params![
        id,
        status,
        request,
        hash,
        PROMPT,
        i64::from(status != "cancelled"),
        (status != "cancelled").then_some(&server),
        (status != "cancelled").then_some(&prompt_id),
        error,
        outputs,
        created,
        finished_at,
        started_at,
        queued_ms,
        processing_ms,
    ])?;
    let mut ev = c.prepare_cached(
        "INSERT INTO job_events(job_id, at, kind, from_status, to_status, actor, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    ev.execute(params![
        id,
        created,
        "submitted",
        None::<&str>,
        "pending",
        "lensia",
        None::<&str>
    ])?;
    if status == "cancelled" {
        ev.execute(params![
            id,
            finished_at,
            "state",
            "pending",
            "cancelled",
            "ops",
            None::<&str>
        ])?;
        return Ok(2);
    }
    let claim = format!(r#"{{"prompt_id":"{prompt_id}","server":"{server}","try":1}}"#);
    ev.execute(params![
        id,
        created + queued - 20,
        "state",
        "pending",
        "processing",
        "worker",
        claim
    ])?;
    let end = if status == "completed" {
        r#"{"outputs":1}"#
    } else {
        r#"{"code":"execution_error","message":"KSampler: CUDA out of memory","node":"3"}"#
    };
    ev.execute(params![
        id,
        finished_at,
        "state",
        "processing",
        status,
        "worker",
        end
    ])?;
    Ok(3)
}
