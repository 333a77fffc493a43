//! The operators' API over the outbox: redelivery keeps the id, a manual retry makes a new event,
//! dead events are listed and replayed; the counters follow each move.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::receiver::{Receiver, Reply};
use super::{cancelled_job, counters, events_of, start, wait_event};
use crate::harness::*;

#[tokio::test]
async fn redelivery_keeps_the_id_and_a_manual_retry_makes_a_new_event() {
    let rx = Receiver::start(Reply::ok()).await;
    let h = start(|_| {}).await;
    cancelled_job(&h, "rd", &rx.url("/hook")).await;
    let first = wait_event(&h, "rd", "delivered").await;
    assert_eq!(counters(&h).await, (1, 1, 0, 0));

    let r = h
        .post("/api/jobs/rd/webhook/redeliver", Some(READ_KEY), json!({}))
        .await;
    assert_eq!(r.status, 403);
    let r = h
        .post("/api/jobs/rd/webhook/redeliver", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["id"], first["id"]);
    assert_eq!(r.body["status"], "pending");
    let hits = rx.wait_hits(2, Duration::from_secs(10)).await;
    assert_eq!(hits[0].id, hits[1].id);
    assert_eq!(hits[0].body, hits[1].body);
    let again = wait_event(&h, "rd", "delivered").await;
    assert_eq!(again["attempt_count"], 2);
    assert_eq!(counters(&h).await, (1, 1, 0, 0));

    // Retried and ended again: a new event with a new id.
    assert_eq!(
        h.post("/api/jobs/rd/retry", Some(ADMIN_KEY), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        h.post("/api/jobs/rd/cancel", Some(ADMIN_KEY), json!({}))
            .await
            .status,
        200
    );
    let hits = rx.wait_hits(3, Duration::from_secs(10)).await;
    assert_ne!(hits[2].id, hits[0].id);
    assert_eq!(hits[2].json()["data"]["attempts"], 2);
    wait_event(&h, "rd", "delivered").await;
    assert_eq!(events_of(&h, "rd").await.len(), 2);
    assert_eq!(counters(&h).await, (2, 2, 0, 0));

    let r = h
        .post(
            "/api/jobs/nope/webhook/redeliver",
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["code"].as_str()),
        (404, Some("job_not_found"))
    );
    assert_eq!(
        h.submit(json!({"job_id": "plain", "prompt": "x"}))
            .await
            .status,
        202
    );
    let r = h
        .post(
            "/api/jobs/plain/webhook/redeliver",
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["code"].as_str()),
        (404, Some("webhook_not_found"))
    );
}

#[tokio::test]
async fn dead_events_are_listed_and_replayed() {
    let rx = Receiver::start(Reply::status(503)).await;
    let h = start(|c| c.webhooks.max_age = Duration::from_millis(400)).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    cancelled_job(&h, "dd", &rx.url("/hook")).await;
    let dead = wait_event(&h, "dd", "dead").await;
    let n = dead["attempt_count"].as_u64().unwrap();
    assert!(n >= 2, "{dead}");
    assert_eq!(dead["attempts"].as_array().unwrap().len() as u64, n);
    assert_eq!(dead["next_attempt_at"], Value::Null);
    let listed = h
        .get("/api/webhooks?status=dead,failed", Some(READ_KEY))
        .await
        .body;
    assert_eq!(listed["events"][0]["id"], dead["id"]);
    assert_eq!(counters(&h).await, (1, 0, 1, 0));

    let since =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = |t| format!("/api/webhooks/replay?since={}", since(t));
    assert_eq!(
        h.post(&path(before), Some(READ_KEY), json!({}))
            .await
            .status,
        403
    );
    let r = h
        .post("/api/webhooks/replay", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 400, "since is required");
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let r = h.post(&path(later), Some(ADMIN_KEY), json!({})).await;
    assert_eq!(r.body, json!({"replayed": 0}));

    rx.set_default(Reply::ok());
    let r = h.post(&path(before), Some(ADMIN_KEY), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({"replayed": 1}));
    let ev = wait_event(&h, "dd", "delivered").await;
    assert_eq!(ev["id"], dead["id"]);
    assert_eq!(ev["attempt_count"].as_u64().unwrap(), n + 1);
    assert_eq!(counters(&h).await, (1, 1, 0, 0));
    let ids: HashSet<String> = rx.hits().into_iter().map(|x| x.id).collect();
    assert_eq!(ids.len(), 1);
    let by_status = h.get("/api/webhooks?status=bogus", Some(READ_KEY)).await;
    assert_eq!(by_status.status, 400);
}
