use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::run;
use crate::harness::READ_KEY;

/// A stand-in daemon serving one job whose second output is not what the job says.
async fn fake_daemon() -> String {
    use axum::routing::get;
    let good = b"first file".to_vec();
    let sha = hex::encode(Sha256::digest(&good));
    let job = json!({
        "job_id": "f1", "status": "completed", "prompt": "x", "priority": 0, "attempt": 1,
        "has_input_image": false, "output_base64": false, "cancel_requested": false,
        "outputs": [
            {"index": 0, "filename": "a.png", "content_type": "image/png", "size": good.len(), "sha256": sha},
            {"index": 1, "filename": "b.png", "content_type": "image/png", "size": 3, "sha256": "00"},
            {"index": 2, "filename": "c.png", "content_type": "image/png", "size": good.len(), "sha256": sha,
             "base64": "Zmlyc3QgZmlsZQ=="}
        ],
        "timings": {}, "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"
    });
    let app = axum::Router::new()
        .route("/api/jobs/f1", get(move || async move { axum::Json(job) }))
        .route("/api/jobs/f1/outputs/0", get(move || async move { good }))
        .route("/api/jobs/f1/outputs/1", get(|| async { "bad" }))
        .route(
            "/api/ping",
            get(|| async { ([("x-comfydash-protocol", "99")], "{}") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn outputs_are_verified_and_protocol_mismatch_is_its_own_exit() {
    let url = fake_daemon().await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().to_str().unwrap();
    let out = run(&url, READ_KEY, &["jobs", "outputs", "f1", "-o", target]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("output 1 (b.png) does not match the job"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("a.png")).unwrap(),
        b"first file"
    );
    // The bad file is neither kept nor left half-written.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.png"]);

    let ping = run(&url, READ_KEY, &["ping"]).await;
    assert_eq!(ping.code, 7, "{ping:?}");
    assert!(ping.stderr.contains("protocol mismatch"), "{ping:?}");
}

/// What the stand-in daemon of the reconnect test saw.
#[derive(Default)]
struct Seen {
    fetches: AtomicU32,
    last_event_ids: Mutex<Vec<Option<String>>>,
}

/// A daemon whose event streams end at once: the first carries one event, the second a `resync`;
/// the job reads as cancelled from its fifth fetch on.
async fn flaky_daemon(seen: Arc<Seen>) -> String {
    use axum::http::HeaderMap;
    use axum::routing::get;
    let jobs = seen.clone();
    let job = move || {
        let n = jobs.fetches.fetch_add(1, Ordering::SeqCst);
        axum::Json(json!({
            "job_id": "r1", "status": if n >= 4 { "cancelled" } else { "pending" }, "prompt": "x",
            "priority": 0, "attempt": 1, "has_input_image": false, "output_base64": false,
            "cancel_requested": false, "outputs": [], "timings": {},
            "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"
        }))
    };
    let events = move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let last = headers
                .get("last-event-id")
                .map(|v| v.to_str().unwrap().to_string());
            let mut ids = seen.last_event_ids.lock().unwrap();
            let body = if ids.is_empty() {
                "id: 41\nevent: queue\ndata: {\"paused\":false,\"pending\":1,\"processing\":0,\"size\":1,\"health\":\"good\",\"max_pending\":10}\n\n"
            } else {
                "event: resync\ndata: {\"reason\":\"gap\"}\n\n"
            };
            ids.push(last);
            ([("content-type", "text/event-stream")], body)
        }
    };
    let app = axum::Router::new()
        .route("/api/jobs/r1", get(move || std::future::ready(job())))
        .route("/api/events", get(events));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn wait_reconnects_with_the_last_event_id_and_refetches() {
    let seen = Arc::new(Seen::default());
    let url = flaky_daemon(seen.clone()).await;
    let out = run(&url, READ_KEY, &["jobs", "wait", "r1", "--timeout", "10s"]).await;
    assert_eq!(out.code, 5, "{out:?}");
    // Fetched first, on each of three connects, and on the resync.
    assert_eq!(seen.fetches.load(Ordering::SeqCst), 5);
    assert_eq!(
        *seen.last_event_ids.lock().unwrap(),
        [None, Some("41".to_string()), Some("41".to_string())]
    );
}
