use std::time::Duration;

use comfydash_wire::StreamEvent;
use comfydash_wire::client::{Client, LiveEvent};
use futures_util::StreamExt;
use serde_json::json;

use crate::harness::*;

async fn next_matching(
    s: &mut (
             impl futures_util::Stream<Item = Result<LiveEvent, comfydash_wire::client::ClientError>>
             + Unpin
         ),
    f: impl Fn(&StreamEvent) -> bool,
) -> LiveEvent {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let e = s.next().await.expect("stream ended").expect("stream error");
            if f(&e.event) {
                return e;
            }
        }
    })
    .await
    .expect("event did not arrive")
}

#[tokio::test]
async fn job_and_queue_events_stream_and_resume() {
    let h = Harness::start().await;
    let client = Client::new(&h.url, Some(READ_KEY.into()));
    let mut s = Box::pin(client.events(None).await.unwrap());
    h.submit(json!({"job_id": "ev-1", "prompt": "x"})).await;
    // The queue event (from the commit) and the job event (from the handler) may come in either order.
    let (mut job, mut queue) = (None, None);
    while job.is_none() || queue.is_none() {
        let e = next_matching(&mut s, |e| {
            matches!(e, StreamEvent::Job(_) | StreamEvent::Queue(_))
        })
        .await;
        match &e.event {
            StreamEvent::Job(j) if j.job_id.0 == "ev-1" => job = e.id,
            StreamEvent::Queue(q) if q.pending == 1 => queue = e.id,
            _ => {}
        }
    }
    let last = job.unwrap().max(queue.unwrap());
    drop(s);

    // Missed while disconnected: delivered on resume, in order.
    h.post("/api/jobs/ev-1/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    h.post(
        "/api/telemetry",
        Some(SUBMIT_KEY),
        json!({"source": "gpu", "metrics": {"temp": 70}}),
    )
    .await;
    let mut s = Box::pin(client.events(Some(last)).await.unwrap());
    let c = next_matching(
        &mut s,
        |e| matches!(e, StreamEvent::Job(j) if j.status == comfydash_wire::JobStatus::Cancelled),
    )
    .await;
    let t = next_matching(
        &mut s,
        |e| matches!(e, StreamEvent::Telemetry(t) if t.source == "gpu"),
    )
    .await;
    assert!(c.id.unwrap() > last && t.id.unwrap() > c.id.unwrap());
    drop(s);

    // An id older than the ring (or from a previous run) means: refetch.
    let mut s = Box::pin(client.events(Some(1)).await.unwrap());
    next_matching(
        &mut s,
        |e| matches!(e, StreamEvent::Resync(r) if r.reason == "gap"),
    )
    .await;
    let mut s = Box::pin(client.events(Some(u64::MAX - 1)).await.unwrap());
    next_matching(
        &mut s,
        |e| matches!(e, StreamEvent::Resync(r) if r.reason == "restart"),
    )
    .await;

    // Server probe results are streamed too.
    let mut s = Box::pin(client.events(None).await.unwrap());
    next_matching(
        &mut s,
        |e| matches!(e, StreamEvent::Server(sv) if sv.name == "gpu0"),
    )
    .await;
}

#[tokio::test]
async fn a_slow_reader_gets_resync_and_the_daemon_keeps_going() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::with(|c| c.events.per_subscriber = 8).await;
    // A reader with a tiny receive window that does not read while the daemon is busy.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    let mut conn = sock.connect(h.daemon.as_ref().unwrap().addr).await.unwrap();
    let req = format!("GET /api/events HTTP/1.1\r\nHost: x\r\nX-API-Key: {READ_KEY}\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let metrics: serde_json::Map<String, serde_json::Value> = (0..100)
        .map(|i| (format!("metric_with_a_long_name_{i:03}"), json!(i)))
        .collect();
    let started = std::time::Instant::now();
    for _ in 0..1000 {
        let r = h
            .post(
                "/api/telemetry",
                Some(SUBMIT_KEY),
                json!({"source": "flood", "metrics": metrics}),
            )
            .await;
        assert_eq!(r.status, 202);
    }
    // The daemon did not wait for the reader.
    assert!(started.elapsed() < Duration::from_secs(60));
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = conn.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let from = seen.len().saturating_sub(16);
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen[from..]).contains("\"lagged\"") {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("event: resync") && text.contains("\"lagged\""),
        "no resync after lagging; read {} bytes",
        seen.len()
    );
}

#[tokio::test]
async fn streams_close_on_shutdown() {
    let mut h = Harness::with(|c| c.http.shutdown_grace = Duration::from_secs(30)).await;
    let client = Client::new(&h.url, Some(READ_KEY.into()));
    let mut s = Box::pin(client.events(None).await.unwrap());
    let started = std::time::Instant::now();
    h.daemon.take().unwrap().stop().await;
    // The daemon stopped well before its 30 s grace: the open stream did not hold it.
    assert!(started.elapsed() < Duration::from_secs(5));
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = s.next().await {}
    })
    .await;
    assert!(end.is_ok(), "stream still open after shutdown");
}

#[tokio::test]
async fn events_need_a_key() {
    let h = Harness::start().await;
    let r = h.get("/api/events", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn webhook_counts_are_streamed() {
    let h = Harness::start().await;
    let client = Client::new(&h.url, Some(READ_KEY.into()));
    let mut s = Box::pin(client.events(None).await.unwrap());
    h.submit(
        json!({"job_id": "wh-1", "prompt": "x", "webhook_url": "https://hooks.example.com/lensia"}),
    )
    .await;
    h.post("/api/jobs/wh-1/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    // The cancel writes one outbox event in the same transaction: total and pending go to 1.
    let e = next_matching(
        &mut s,
        |e| matches!(e, StreamEvent::Webhooks(w) if w.total == 1),
    )
    .await;
    let StreamEvent::Webhooks(w) = e.event else {
        unreachable!()
    };
    assert_eq!(w.total, w.pending + w.delivered + w.failed);
}
