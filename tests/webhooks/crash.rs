//! `kill -9` with deliveries in flight: after a restart every event arrives at least once,
//! with the same `webhook-id` each time it arrives.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;

use super::SECRET;
use super::receiver::{Receiver, Reply};
use crate::harness::*;

const EVENTS: usize = 40;

fn config() -> String {
    format!(
        r#"
[outbound]
allow = ["127.0.0.1/32"]
[webhooks]
secrets = ["{SECRET}"]
schedule = [50]
timeout = "5s"
concurrency = 8
per_host = 8
"#
    )
}

async fn call(http: &reqwest::Client, url: String, key: &str, body: serde_json::Value) -> u16 {
    http.post(url)
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_arrives_after_kill_9_with_deliveries_in_flight() {
    // Slow answers, so deliveries are in flight when the kill lands.
    let rx = Receiver::start(Reply::ok().delay(Duration::from_millis(300))).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let comfy = vec![format!("http://{}", dead_addr())];
    let (d, c) = (data.clone(), comfy.clone());
    let mut p = tokio::task::spawn_blocking(move || Proc::spawn_configured(&d, &c, &config()))
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    assert_eq!(
        call(
            &http,
            format!("{}/api/queue/pause", p.url),
            ADMIN_KEY,
            json!({})
        )
        .await,
        200
    );
    let url = rx.url("/hook");
    for i in 0..EVENTS {
        let id = format!("k{i}");
        let body = json!({"job_id": id, "prompt": "x", "webhook_url": url});
        assert_eq!(
            call(&http, format!("{}/api/jobs", p.url), SUBMIT_KEY, body).await,
            202
        );
        let cancel = format!("{}/api/jobs/{id}/cancel", p.url);
        assert_eq!(call(&http, cancel, ADMIN_KEY, json!({})).await, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(rx.hits().len() >= 8 && rx.inflight() > 0) {
        assert!(Instant::now() < deadline, "deliveries never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    p.kill9();
    let cut = rx.hits().len();
    assert!(cut < EVENTS * 2, "everything was delivered before the kill");

    let p = tokio::task::spawn_blocking(move || Proc::spawn_configured(&data, &comfy, &config()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let jobs_of = |hits: &[super::receiver::Hit]| {
        hits.iter()
            .map(|h| h.job_id())
            .collect::<HashSet<_>>()
            .len()
    };
    while jobs_of(&rx.hits()) < EVENTS {
        assert!(
            Instant::now() < deadline,
            "only {} of {EVENTS} jobs reported",
            jobs_of(&rx.hits())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Wait for the answers in flight to be recorded too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let hits = rx.hits();
    let mut id_of_job: HashMap<String, String> = HashMap::new();
    for h in &hits {
        let prev = id_of_job.insert(h.job_id(), h.id.clone());
        assert!(
            prev.is_none_or(|p| p == h.id),
            "job {} came with two ids",
            h.job_id()
        );
    }
    assert_eq!(id_of_job.len(), EVENTS);
    let distinct: HashSet<&str> = hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(distinct.len(), EVENTS);
    assert!(
        hits.len() > EVENTS,
        "the deliveries in flight at the kill should arrive twice"
    );

    let tel: serde_json::Value = http
        .get(format!("{}/api/telemetry", p.url))
        .header("X-API-Key", ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let w = &tel["webhooks"];
    assert_eq!(
        (w["total"].as_u64(), w["pending"].as_u64()),
        (Some(EVENTS as u64), Some(0)),
        "{w}"
    );
    assert_eq!(w["delivered"], EVENTS as u64);
    drop(p);
}
