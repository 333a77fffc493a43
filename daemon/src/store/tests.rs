//! Store tests: transitions, counters, group commit and schema versions.

use comfydash_wire::{JobError, JobOutput, JobStatus, Prompt, SubmitJob};

use super::*;

fn opts() -> StoreOptions {
    StoreOptions {
        synchronous: Synchronous::Full,
        max_batch: 64,
        ..StoreOptions::default()
    }
}

fn new_job(id: &str, priority: i64) -> NewJob {
    let req = SubmitJob {
        job_id: comfydash_wire::JobId(id.into()),
        prompt: Prompt::Text("p".into()),
        input_image_url: None,
        input_image_base64: None,
        webhook_url: None,
        params: None,
        workflow: None,
        priority: Some(priority),
        timeout_s: None,
        output_base64: None,
    };
    let request = serde_json::to_string(&req).unwrap();
    NewJob {
        id: id.into(),
        request_hash: request.clone(),
        request,
        input_image: None,
        search_text: "p".into(),
        priority,
        max_pending: 1000,
        actor: "t".into(),
    }
}

fn sums_to_total(s: &Snapshot) {
    let parts: u64 = JobStatus::ALL.iter().map(|st| s.get(st.as_str())).sum();
    assert_eq!(parts, s.get("total"));
}

#[tokio::test]
async fn claim_order_finish_and_counters() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), opts()).unwrap();
    store.submit(new_job("low", 0)).await.unwrap();
    store.submit(new_job("high", 5)).await.unwrap();
    store.submit(new_job("low2", 0)).await.unwrap();
    let order: Vec<String> = {
        let mut v = Vec::new();
        while let Some(c) = store.claim_next("gpu0", "p").await.unwrap() {
            assert_eq!(c.job.status, JobStatus::Processing);
            assert_eq!(c.job.server.as_deref(), Some("gpu0"));
            v.push(c.job.job_id.0);
        }
        v
    };
    assert_eq!(order, ["high", "low", "low2"]);
    let s = store.snapshot();
    assert_eq!(s.get("processing"), 3);
    sums_to_total(&s);

    let start = now_ms() - 1500;
    let out = JobOutput {
        index: 0,
        filename: "a.png".into(),
        content_type: "image/png".into(),
        size: 3,
        sha256: "00".into(),
        base64: None,
    };
    let end = JobEnd::Completed(vec![out]);
    let first = store
        .finish("high", end.clone(), Some(start), "worker")
        .await;
    assert!(first.unwrap().is_some());
    // A second finish loses the race: exactly one terminal transition.
    let second = store.finish("high", end, Some(start), "worker").await;
    assert!(second.unwrap().is_none());
    let err = JobError {
        code: "execution_error".into(),
        message: "boom".into(),
        node: Some("3".into()),
    };
    assert!(
        store
            .finish("low", JobEnd::Failed(err), Some(start), "worker")
            .await
            .unwrap()
            .is_some()
    );
    let s = store.snapshot();
    assert_eq!(s.get("completed"), 1);
    assert_eq!(s.get("failed"), 1);
    assert_eq!(s.get("processing"), 1);
    assert_eq!(s.recent_processing_ms.len(), 1);
    assert!(s.recent_processing_ms[0] >= 1500);
    sums_to_total(&s);
    let high = store.job("high").await.unwrap();
    assert_eq!(high.outputs.len(), 1);
    assert!(high.timings.processing_ms.unwrap() >= 1500);
    assert!(high.timings.queued_ms.is_some());
    let low = store.job("low").await.unwrap();
    assert_eq!(low.error.unwrap().node.as_deref(), Some("3"));
    // Manual retry of the failed job.
    let r = store.retry("low", "ops").await.unwrap();
    assert_eq!((r.status, r.attempt), (JobStatus::Pending, 2));
    assert!(r.error.is_none());
    sums_to_total(&store.snapshot());
}

#[tokio::test]
async fn racing_cancels_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), opts()).unwrap();
    store.submit(new_job("r", 0)).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let s = store.clone();
        set.spawn(async move { s.cancel("r", "ops").await.is_ok() });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        ok += r.unwrap() as usize;
    }
    assert_eq!(ok, 1);
    assert_eq!(store.snapshot().get("cancelled"), 1);
    let events = store.job_events("r").await.unwrap();
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn a_failing_write_does_not_spoil_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), opts()).unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let s = store.clone();
        set.spawn(async move {
            let mut j = new_job(&format!("j{}", i % 25), 0);
            if i >= 25 {
                j.request_hash = "different".into();
            }
            s.submit(j).await.is_ok()
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        ok += r.unwrap() as usize;
    }
    assert_eq!(ok, 25);
    assert_eq!(store.snapshot().get("total"), 25);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    Store::open(&path, opts()).unwrap().close();
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(c);
    match Store::open(&path, opts()) {
        Err(StoreError::NewerSchema { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected NewerSchema, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn writes_after_close_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), opts()).unwrap();
    store.close();
    assert!(matches!(
        store.submit(new_job("x", 0)).await,
        Err(StoreError::Closed)
    ));
}

/// The trigger-kept pending counts match a recount, and every new job's position matches a
/// count of the queue ahead of it, through random submits, claims, requeues, cancels, retries,
/// ends and deletes.
#[tokio::test]
async fn queue_positions_and_pending_counts_follow_every_transition() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), opts()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut ids = Vec::new();
    for i in 0..400 {
        let id = format!("j{i}");
        match rng.random_range(0..10) {
            0..=4 => {
                let priority = rng.random_range(-2..3);
                let out = store.submit(new_job(&id, priority)).await.unwrap();
                let seq_of = id.clone();
                let counted: i64 = store
                    .read(move |c| {
                        Ok(c.query_row(
                            "SELECT COUNT(*) FROM jobs j, jobs me WHERE me.id = ?1 AND j.status = 'pending' \
                             AND (j.priority > me.priority OR (j.priority = me.priority AND j.seq < me.seq))",
                            [seq_of],
                            |r| r.get(0),
                        )?)
                    })
                    .await
                    .unwrap();
                assert_eq!(out.position, Some(counted as u64), "{id}");
                ids.push(id);
            }
            5 => {
                let _ = store.claim_next("gpu0", &format!("p{i}")).await.unwrap();
            }
            6 => {
                if let Some(c) = store.claim_next("gpu0", &format!("p{i}")).await.unwrap() {
                    store.requeue(&c.job.job_id.0, "test").await.unwrap();
                }
            }
            7 => {
                if let Some(c) = store.claim_next("gpu0", &format!("p{i}")).await.unwrap() {
                    let err = JobError {
                        code: "x".into(),
                        message: "x".into(),
                        node: None,
                    };
                    let id = c.job.job_id.0;
                    store
                        .finish(&id, JobEnd::Failed(err), None, "t")
                        .await
                        .unwrap();
                    if rng.random_bool(0.5) {
                        store.retry(&id, "t").await.unwrap();
                    } else {
                        store.delete(&id).await.unwrap();
                    }
                }
            }
            _ => {
                if !ids.is_empty() {
                    let id = ids[rng.random_range(0..ids.len())].clone();
                    let _ = store.cancel(&id, "t").await;
                }
            }
        }
    }
    type Counts = Vec<(i64, i64)>;
    let (kept, recount): (Counts, Counts) = store
        .read(|c| {
            let rows = |sql: &str| -> Result<Vec<(i64, i64)>, StoreError> {
                let mut stmt = c.prepare(sql)?;
                let v = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                Ok(v)
            };
            Ok((
                rows("SELECT priority, n FROM pending_by_priority WHERE n != 0 ORDER BY priority")?,
                rows("SELECT priority, COUNT(*) FROM jobs WHERE status = 'pending' GROUP BY priority ORDER BY priority")?,
            ))
        })
        .await
        .unwrap();
    assert!(!recount.is_empty());
    assert_eq!(kept, recount);
}

/// Migration 5 counts the jobs already pending when it runs.
#[tokio::test]
async fn upgrading_counts_the_jobs_already_pending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let store = Store::open(&path, opts()).unwrap();
    for (i, p) in [0, 0, 5].into_iter().enumerate() {
        store.submit(new_job(&format!("u{i}"), p)).await.unwrap();
    }
    store.close();
    // Back to version 4: as a database written before the table existed.
    let c = Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP TRIGGER jobs_pending_insert; DROP TRIGGER jobs_pending_update; \
         DROP TRIGGER jobs_pending_delete; DROP TABLE pending_by_priority; PRAGMA user_version = 4;",
    )
    .unwrap();
    drop(c);
    let store = Store::open(&path, opts()).unwrap();
    let out = store.submit(new_job("after", 0)).await.unwrap();
    assert_eq!(out.position, Some(3));
    let out = store.submit(new_job("top", 9)).await.unwrap();
    assert_eq!(out.position, Some(0));
}
