//! Webhook delivery benchmark (issue 6). Bounded: about 30 s in release mode.
//!
//! `cargo run --release -p comfydash-daemon --example bench_webhooks [-- EVENTS]`
//!
//! Runs the real sender (store, outbox, signing, guarded POST, one recorded attempt per
//! delivery) with the default limits (32 at once, 4 per host) against a local receiver on 8
//! ports (8 hosts) that answers at once, and prints:
//! 1. ceiling: the receiver's own rate under a plain HTTP load loop of 32 clients;
//! 2. burst: EVENTS events created in one transaction: deliveries/s, and the delay from the
//!    event's creation (the job's end) to its receipt (p50, p99: under a burst, the queue drain);
//! 3. paced: EVENTS/5 events created one by one at half the burst rate: delay p50, p99;
//! 4. black hole: the burst again with 10% of the events to a host that accepts and never
//!    answers (timeout 250 ms): the others' deliveries/s as a ratio to run 2.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comfydash_daemon::config::Config;
use comfydash_daemon::outbound::{Outbound, OutboundPolicy};
use comfydash_daemon::store::{NewWebhookEvent, Store, StoreOptions, now_ms, outbox};
use comfydash_daemon::webhook::{Webhooks, host_key};
use comfydash_wire::{JobId, JobStatus, Timings, WebhookEventType, WebhookJob, WebhookPayload};
use tokio_util::sync::CancellationToken;

const HOSTS: usize = 8;

/// Counts deliveries and their delay from creation (the payload's `timestamp`) to receipt.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    delays_ms: Mutex<Vec<u64>>,
}

async fn receive(
    axum::extract::State(rx): axum::extract::State<Arc<Received>>,
    body: axum::body::Bytes,
) -> &'static str {
    if let Ok(p) = serde_json::from_slice::<WebhookPayload>(&body) {
        let delay = (chrono::Utc::now() - p.timestamp).num_milliseconds().max(0) as u64;
        if let Ok(mut d) = rx.delays_ms.lock() {
            d.push(delay);
        }
    }
    rx.count.fetch_add(1, Ordering::Relaxed);
    ""
}

/// One receiver app served on `HOSTS` ports.
async fn start_receiver(rx: Arc<Received>) -> Vec<SocketAddr> {
    let app = axum::Router::new().fallback(receive).with_state(rx);
    let mut addrs = Vec::new();
    for _ in 0..HOSTS {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        addrs.push(l.local_addr().expect("addr"));
        let app = app.clone();
        tokio::spawn(async move { axum::serve(l, app).await });
    }
    addrs
}

/// Accepts connections and never answers.
async fn start_black_hole() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

fn event(url: &str, n: usize, at_ms: i64) -> NewWebhookEvent {
    let job = format!("bench-{n}");
    let payload = WebhookPayload {
        kind: WebhookEventType::JobCompleted,
        timestamp: chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default(),
        data: WebhookJob {
            job_id: JobId(job.clone()),
            status: JobStatus::Completed,
            outputs: Vec::new(),
            error: None,
            timings: Timings::default(),
            attempts: 1,
            params: Some(serde_json::json!({"seed": n})),
            created_at: chrono::Utc::now(),
            finished_at: Some(chrono::Utc::now()),
        },
    };
    NewWebhookEvent {
        id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
        job_id: job,
        url: url.to_string(),
        host: host_key(url),
        kind: WebhookEventType::JobCompleted,
        payload: serde_json::to_string(&payload).unwrap_or_default(),
        inline_outputs: false,
        at_ms,
    }
}

/// A fresh store and sender in a temporary dir.
async fn sender(dir: &std::path::Path) -> (Store, CancellationToken) {
    let mut config = Config::new(dir.to_path_buf());
    config.outbound.allow = vec!["127.0.0.1/32".into()];
    config.webhooks.timeout = Duration::from_millis(250);
    config.webhooks.connect_timeout = Duration::from_millis(250);
    // One attempt per event within the run: no retry of the black hole's events.
    config.webhooks.schedule = vec![Duration::from_secs(3600)];
    config.webhooks.secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()];
    let store = Store::open(&config.db_path(), StoreOptions::from(&config.store)).expect("store");
    let policy = OutboundPolicy::new(&config.outbound.allow, &[]).expect("policy");
    let outbound = Outbound::new(policy).expect("client");
    let listen: SocketAddr = "127.0.0.1:8190".parse().expect("addr");
    let hooks = Webhooks::new(&config, listen, store.clone(), outbound).expect("webhooks");
    let token = CancellationToken::new();
    hooks.spawn(token.clone());
    (store, token)
}

async fn wait_count(rx: &Received, n: u64, limit: Duration) {
    let start = Instant::now();
    while rx.count.load(Ordering::Relaxed) < n {
        let got = rx.count.load(Ordering::Relaxed);
        assert!(start.elapsed() < limit, "only {got} of {n} delivered");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn pct(v: &mut [u64], q: f64) -> u64 {
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(0)
}

fn take_delays(rx: &Received) -> Vec<u64> {
    rx.delays_ms
        .lock()
        .map(|mut d| std::mem::take(&mut *d))
        .unwrap_or_default()
}

/// Creates events in one transaction (a burst) and waits for `expect` receipts; deliveries/s.
async fn burst(store: &Store, urls: Vec<String>, rx: &Received, expect: u64) -> f64 {
    let before = rx.count.load(Ordering::Relaxed);
    let start = Instant::now();
    let at = now_ms();
    let events: Vec<NewWebhookEvent> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| event(u, i, at))
        .collect();
    store
        .write(move |c| {
            for e in &events {
                outbox::enqueue(c, e)?;
            }
            Ok(())
        })
        .await
        .expect("enqueue");
    wait_count(rx, before + expect, Duration::from_secs(300)).await;
    expect as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let rx = Arc::new(Received::default());
    let addrs = start_receiver(rx.clone()).await;
    let url = |i: usize| format!("http://{}/hook", addrs[i % HOSTS]);

    // 1. The receiver's ceiling: a plain load loop, 32 clients, same body size.
    let body = event(&url(0), 0, now_ms()).payload.into_bytes();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let (client, body, urls) = (
            client.clone(),
            body.clone(),
            (0..HOSTS).map(url).collect::<Vec<_>>(),
        );
        tasks.push(tokio::spawn(async move {
            for i in (t..events).step_by(32) {
                let _ = client
                    .post(&urls[i % HOSTS])
                    .body(body.clone())
                    .send()
                    .await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let ceiling = events as f64 / start.elapsed().as_secs_f64();
    let _ = take_delays(&rx);

    // 2. Burst to receivers that answer at once.
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, token) = sender(dir.path()).await;
    let rate = burst(&store, (0..events).map(url).collect(), &rx, events as u64).await;
    let mut d = take_delays(&rx);
    let (b50, b99) = (pct(&mut d, 0.5), pct(&mut d, 0.99));

    // 3. Paced at half the burst rate, one event per transaction.
    let paced = events / 5;
    let every = Duration::from_secs_f64(2.0 / rate);
    let before = rx.count.load(Ordering::Relaxed);
    let mut tick = tokio::time::interval(every);
    for i in 0..paced {
        tick.tick().await;
        let s = store.clone();
        let e = event(&url(i), i, now_ms());
        tokio::spawn(async move { s.enqueue_webhook(e).await });
    }
    wait_count(&rx, before + paced as u64, Duration::from_secs(120)).await;
    let mut d = take_delays(&rx);
    let (p50, p99) = (pct(&mut d, 0.5), pct(&mut d, 0.99));
    token.cancel();

    // 4. The burst again with 10% to a black hole.
    let hole = format!("http://{}/hook", start_black_hole().await);
    let dir2 = tempfile::tempdir().expect("tempdir");
    let (store2, token2) = sender(dir2.path()).await;
    let urls: Vec<String> = (0..events)
        .map(|i| if i % 10 == 0 { hole.clone() } else { url(i) })
        .collect();
    let good = urls.iter().filter(|u| **u != hole).count() as u64;
    let rate_hole = burst(&store2, urls, &rx, good).await;
    token2.cancel();

    println!(
        "webhooks: {events} events, {HOSTS} receiver hosts, concurrency 32, per host 4, synchronous=full"
    );
    println!("  ceiling  receiver under a 32-client load loop: {ceiling:>8.0} req/s");
    println!(
        "  burst    deliveries/s: {rate:>8.0}  delay p50 {b50} ms, p99 {b99} ms (creation to receipt; queue drain)"
    );
    println!(
        "  paced    {paced} events at {:.0}/s: delay p50 {p50} ms, p99 {p99} ms",
        1.0 / every.as_secs_f64()
    );
    println!(
        "  10% to a black hole (timeout 250 ms): others' deliveries/s {rate_hole:>8.0} = {:.2} of the burst rate",
        rate_hole / rate
    );
}
