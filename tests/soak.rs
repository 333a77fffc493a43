//! The whole system under load and injected faults, the way the Lensia backend and operators hit
//! it. `COMFYDASH_SOAK_SECS` sets the load phase (default 120 s in the suite; run the long one by hand with
//! `COMFYDASH_SOAK_SECS=1800 cargo test --release --test integration soak -- --nocapture`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use comfydash_sim::{Sim, SimConfig};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::*;

/// What the webhook receiver saw.
#[derive(Default)]
struct Hooks {
    /// job id → webhook ids seen (with a valid signature).
    by_job: Mutex<HashMap<String, HashSet<String>>>,
    bad_signatures: AtomicU64,
    deliveries: AtomicU64,
    outage: AtomicBool,
    secret: Mutex<Option<Vec<u8>>>,
    n: AtomicU64,
}

fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let id = headers.get("webhook-id")?.to_str().ok()?;
    let ts = headers.get("webhook-timestamp")?.to_str().ok()?;
    let sigs = headers.get("webhook-signature")?.to_str().ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(want.as_str()))
        .then(|| id.to_string())
}

async fn hook(
    State(h): State<Arc<Hooks>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let n = h.n.fetch_add(1, Ordering::Relaxed);
    if h.outage.load(Ordering::Relaxed) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if n % 10 == 3 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if n % 10 == 7 {
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let key = h.secret.lock().unwrap().clone();
    let Some(key) = key else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    match verify(&key, &headers, &body) {
        Some(id) => {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let job = v["data"]["job_id"].as_str().unwrap_or("").to_string();
            h.by_job.lock().unwrap().entry(job).or_default().insert(id);
            h.deliveries.fetch_add(1, Ordering::Relaxed);
            StatusCode::OK
        }
        None => {
            h.bad_signatures.fetch_add(1, Ordering::Relaxed);
            StatusCode::BAD_REQUEST
        }
    }
}

/// Alert messages: (alert name, state) as the generic JSON channel sends them.
#[derive(Default)]
struct Alerts {
    messages: Mutex<Vec<Value>>,
}

async fn alert(State(a): State<Arc<Alerts>>, body: String) -> StatusCode {
    a.messages
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
    StatusCode::OK
}

async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

/// Counts of client-visible outcomes.
#[derive(Default)]
struct Tally {
    accepted: Mutex<BTreeMap<String, Value>>,
    rejected_invalid: AtomicU64,
    conflicts: AtomicU64,
    server_errors_outside_faults: AtomicU64,
    retried_after_crash: AtomicU64,
}

struct Shared {
    url: Mutex<String>,
    /// Set while a fault that may cause 5xx or refused connections is in progress.
    fault: AtomicBool,
    stop: AtomicBool,
    tally: Tally,
}

fn png() -> String {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 2, 2);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[9; 12]).unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn graph(n: u64) -> Value {
    json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": n % 0xFFFFFF}},
           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "soak"}}})
}

/// One submitter: a mix of text jobs, raw graphs, image jobs, duplicates and invalid requests.
/// A request whose answer was lost (daemon killed) is sent again: job_id makes that safe.
async fn submitter(me: u64, s: Arc<Shared>, hook_url: String) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let image = png();
    let mut n = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("s{me}-{n}");
        let body = match n % 10 {
            0 => json!({"job_id": id, "prompt": graph(n), "webhook_url": hook_url}),
            1 => {
                json!({"job_id": id, "prompt": "soak", "input_image_base64": image, "webhook_url": hook_url, "params": {"steps": 2}})
            }
            2 => json!({"job_id": 12, "prompt": 5}), // invalid
            3 => json!({"job_id": id, "prompt": "soak", "webhook_url": "http://169.254.169.254/x"}), // refused URL
            _ => {
                json!({"job_id": id, "prompt": "soak text", "params": {"steps": 2, "seed": n}, "webhook_url": hook_url, "priority": (n % 3) as i64})
            }
        };
        let valid = !matches!(n % 10, 2 | 3);
        loop {
            let url = s.url.lock().unwrap().clone();
            let r = http
                .post(format!("{url}/api/jobs"))
                .header("X-API-Key", SUBMIT_KEY)
                .json(&body)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    assert!(valid, "an invalid request was accepted: {body}");
                    s.tally
                        .accepted
                        .lock()
                        .unwrap()
                        .insert(id.clone(), body.clone());
                    // A duplicate of the same request is answered 200; a different one 409.
                    if n.is_multiple_of(7) {
                        let again = http
                            .post(format!("{url}/api/jobs"))
                            .header("X-API-Key", SUBMIT_KEY)
                            .json(&body)
                            .send()
                            .await;
                        if let Ok(a) = again {
                            assert!(
                                a.status() == 200 || a.status().is_server_error(),
                                "duplicate got {}",
                                a.status()
                            );
                        }
                        let mut other = body.clone();
                        other["params"] = json!({"different": true});
                        if let Ok(c) = http
                            .post(format!("{url}/api/jobs"))
                            .header("X-API-Key", SUBMIT_KEY)
                            .json(&other)
                            .send()
                            .await
                            && c.status() == 409
                        {
                            s.tally.conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    break;
                }
                Ok(r) if r.status().is_client_error() => {
                    assert!(
                        !valid || r.status() == 429,
                        "valid request refused {}: {body}",
                        r.status()
                    );
                    if r.status() == 429 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    s.tally.rejected_invalid.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(r) => {
                    if !s.fault.load(Ordering::Relaxed) {
                        s.tally
                            .server_errors_outside_faults
                            .fetch_add(1, Ordering::Relaxed);
                        eprintln!("5xx outside a fault: {}", r.status());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {
                    // Connection refused or reset: the daemon is being restarted. Same request again.
                    s.tally.retried_after_crash.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        // About 12 jobs/s offered in all: more than the debug build's simulators absorb at
        // peak, but drainable once the load phase ends.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Health every 100 ms and telemetry every 300 ms (the quick-start's cadence, sped up).
async fn poller(s: Arc<Shared>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut n = 0u64;
    while !s.stop.load(Ordering::Relaxed) {
        n += 1;
        let url = s.url.lock().unwrap().clone();
        if let Ok(r) = http.get(format!("{url}/api/health")).send().await {
            assert_eq!(r.status(), 200, "health must always answer 200");
        }
        if n.is_multiple_of(3)
            && let Ok(r) = http
                .get(format!("{url}/api/telemetry"))
                .header("X-API-Key", SUBMIT_KEY)
                .send()
                .await
        {
            assert!(
                r.status() == 200 || s.fault.load(Ordering::Relaxed),
                "telemetry {}",
                r.status()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows the event stream, reconnecting with Last-Event-ID; returns (events, resyncs).
async fn reader(s: Arc<Shared>) -> (u64, u64) {
    use futures_util::StreamExt;
    let (mut events, mut resyncs, mut last) = (0u64, 0u64, None);
    while !s.stop.load(Ordering::Relaxed) {
        let url = s.url.lock().unwrap().clone();
        let client = comfydash_wire::client::Client::new(&url, Some(SUBMIT_KEY.into()));
        let Ok(stream) = client.events(last).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut stream = Box::pin(stream);
        loop {
            let next = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
            if s.stop.load(Ordering::Relaxed) {
                break;
            }
            match next {
                Ok(Some(Ok(e))) => {
                    events += 1;
                    if matches!(e.event, comfydash_wire::StreamEvent::Resync(_)) {
                        resyncs += 1;
                    }
                    if e.id.is_some() {
                        last = e.id;
                    }
                }
                Ok(_) => break,
                Err(_) => {}
            }
        }
    }
    (events, resyncs)
}

fn proc_stats(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss_kb, fds)
}

fn config_toml(hooks: std::net::SocketAddr, alerts: std::net::SocketAddr) -> String {
    format!(
        r#"{FAST_TOML}
[outbound]
allow = ["127.0.0.1/32"]
[webhooks]
schedule = [100, 200, 400, 800, 1000]
max_age = "5m"
timeout = 2000
[alerts]
interval = 100
retry_backoff = 50
webhook_url = "http://{alerts}/alerts"
[alerts.rules.server_down]
for = 1000
[alerts.rules.all_servers_down]
for = 1000
[alerts.rules.degraded]
enabled = false
[alerts.rules.queue_high]
enabled = false
[alerts.rules.job_failure_rate]
enabled = false
[alerts.rules.webhook_failure_rate]
enabled = false
[alerts.rules.stuck]
enabled = false
[alerts.rules.disk_low]
enabled = false
[retention]
max_age = 0
"#
    )
    .replace("{hooks}", &hooks.to_string())
}

fn get(http: &reqwest::blocking::Client, url: &str, path: &str) -> Value {
    http.get(format!("{url}{path}"))
        .header("X-API-Key", ADMIN_KEY)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn soak_under_faults_loses_nothing() {
    let secs: u64 = std::env::var("COMFYDASH_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let sims: Vec<Sim> = rt.block_on(async {
        let mut v = Vec::new();
        // The third joins by a reload halfway, when the second leaves.
        for (i, ms) in [30u64, 60, 45].into_iter().enumerate() {
            v.push(
                Sim::start(SimConfig {
                    exec_time: Duration::from_millis(ms),
                    failure_rate: 0.05,
                    seed: i as u64,
                    ..SimConfig::default()
                })
                .await
                .unwrap(),
            );
        }
        v
    });
    let hooks = Arc::new(Hooks::default());
    let alerts = Arc::new(Alerts::default());
    let hook_addr = rt.block_on(serve(
        axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(hooks.clone()),
    ));
    let alert_addr = rt.block_on(serve(
        axum::Router::new()
            .route("/alerts", axum::routing::post(alert))
            .with_state(alerts.clone()),
    ));
    // Servers come from the config file, so SIGHUP can change them.
    let with_servers = |which: &[usize]| {
        let mut toml = config_toml(hook_addr, alert_addr);
        for &i in which {
            toml.push_str(&format!(
                "[[servers]]\nname = \"comfyui-{i}\"\nurl = \"{}\"\n",
                sims[i].url()
            ));
        }
        toml
    };
    let toml = Mutex::new(with_servers(&[0, 1]));
    let mut p = Proc::spawn_configured(dir.path(), &[], &toml.lock().unwrap());
    let secret = std::fs::read_to_string(dir.path().join("webhook.secret")).unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim().trim_start_matches("whsec_"))
        .unwrap();
    *hooks.secret.lock().unwrap() = Some(key);
    let start_stats = proc_stats(p.child.id());
    let shared = Arc::new(Shared {
        url: Mutex::new(p.url.clone()),
        fault: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        tally: Tally::default(),
    });
    let hook_url = format!("http://{hook_addr}/hook");
    let mut tasks = Vec::new();
    for me in 0..6 {
        tasks.push(rt.spawn(submitter(me, shared.clone(), hook_url.clone())));
    }
    tasks.push(rt.spawn(poller(shared.clone())));
    let reader_task = rt.spawn(reader(shared.clone()));
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The fault schedule, spread over the load phase.
    let started = Instant::now();
    let at = |frac: f64| Duration::from_secs_f64(secs as f64 * frac);
    let wait_until = |d: Duration| {
        while started.elapsed() < d {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut kills = 0;
    let mut outages = 0;
    let restart_daemon = |p: &mut Proc, shared: &Shared| {
        shared.fault.store(true, Ordering::Relaxed);
        p.kill9();
        *p = Proc::spawn_configured(dir.path(), &[], &toml.lock().unwrap());
        *shared.url.lock().unwrap() = p.url.clone();
        std::thread::sleep(Duration::from_millis(300));
        shared.fault.store(false, Ordering::Relaxed);
    };
    wait_until(at(0.12));
    restart_daemon(&mut p, &shared);
    kills += 1;
    wait_until(at(0.2));
    rt.block_on(sims[0].restart()); // forgets its queue and history
    wait_until(at(0.28));
    // A simulator that stops answering: long enough for "server down" to fire, then it returns.
    sims[1].set_unresponsive(true);
    outages += 1;
    std::thread::sleep(Duration::from_secs(3));
    sims[1].set_unresponsive(false);
    wait_until(at(0.4));
    restart_daemon(&mut p, &shared);
    kills += 1;
    wait_until(at(0.45));
    hooks.outage.store(true, Ordering::Relaxed); // receiver outage
    wait_until(at(0.6));
    hooks.outage.store(false, Ordering::Relaxed);
    let post = |path: &str| {
        let url = shared.url.lock().unwrap().clone();
        http.post(format!("{url}{path}"))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(post("/api/queue/pause"), 200);
    std::thread::sleep(Duration::from_millis(500));
    // Cancel a few pending jobs while paused.
    let url = shared.url.lock().unwrap().clone();
    let pending = get(&http, &url, "/api/jobs?status=pending&limit=5");
    let mut cancelled = 0;
    for j in pending["jobs"].as_array().unwrap() {
        if post(&format!(
            "/api/jobs/{}/cancel",
            j["job_id"].as_str().unwrap()
        )) == 200
        {
            cancelled += 1;
        }
    }
    assert_eq!(post("/api/queue/resume"), 200);
    wait_until(at(0.7));
    assert_eq!(post("/api/servers/comfyui-0/drain"), 200);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(post("/api/servers/comfyui-0/enable"), 200);
    wait_until(at(0.75));
    // Reload: comfyui-1 leaves (finishing what it has), comfyui-2 joins. The kill -9 below may
    // land while comfyui-1 still drains, leaving jobs on a server the next start does not know.
    *toml.lock().unwrap() = with_servers(&[0, 2]);
    std::fs::write(
        dir.path().join("test-config.toml"),
        toml.lock().unwrap().as_str(),
    )
    .unwrap();
    send_signal(p.child.id(), "HUP");
    let joined = (0..250).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let url = shared.url.lock().unwrap().clone();
        get(&http, &url, "/api/servers")
            .to_string()
            .contains("comfyui-2")
    });
    assert!(joined, "comfyui-2 never joined after SIGHUP");
    wait_until(at(0.85));
    restart_daemon(&mut p, &shared);
    kills += 1;
    let last_start_stats = proc_stats(p.child.id());
    wait_until(at(1.0));
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let (events, resyncs) = rt.block_on(reader_task).unwrap();

    // Drain: every accepted job reaches a terminal state; every webhook is delivered.
    let accepted = shared.tally.accepted.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let url = p.url.clone();
    loop {
        let t = get(&http, &url, "/api/telemetry");
        let by = &t["jobs"]["byStatus"];
        let open = by["pending"].as_u64().unwrap() + by["processing"].as_u64().unwrap();
        let hooks_pending = t["webhooks"]["pending"].as_u64().unwrap();
        if open == 0 && hooks_pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let end_stats = proc_stats(p.child.id());

    // Recount the store through the API.
    let mut recount: BTreeMap<String, u64> = BTreeMap::new();
    let mut jobs = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = get(&http, &url, &format!("/api/jobs?limit=500&cursor={cursor}"));
        for j in page["jobs"].as_array().unwrap() {
            *recount
                .entry(j["status"].as_str().unwrap().to_string())
                .or_default() += 1;
            jobs.insert(j["job_id"].as_str().unwrap().to_string(), j.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let t = get(&http, &url, "/api/telemetry");
    let lost: Vec<&String> = accepted
        .keys()
        .filter(|id| !jobs.contains_key(*id))
        .collect();
    let stuck: Vec<&String> = jobs
        .iter()
        .filter(|(_, j)| {
            !["completed", "failed", "cancelled"].contains(&j["status"].as_str().unwrap())
        })
        .map(|(k, _)| k)
        .collect();
    let mut finished_twice = 0;
    for id in accepted.keys().take(400) {
        let log = get(&http, &url, &format!("/api/jobs/{id}/events"));
        let terminal = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                ["completed", "failed", "cancelled"].contains(&e["to"].as_str().unwrap_or(""))
            })
            .count();
        if terminal != 1 {
            finished_twice += 1;
        }
    }
    let by_job = hooks.by_job.lock().unwrap().clone();
    let with_hook: Vec<&String> = accepted
        .iter()
        .filter(|(_, b)| b["webhook_url"].is_string())
        .map(|(k, _)| k)
        .collect();
    let undelivered: Vec<&&String> = with_hook
        .iter()
        .filter(|id| !by_job.contains_key(**id))
        .collect();
    let split_ids = by_job.values().filter(|ids| ids.len() != 1).count();
    let metrics = http
        .get(format!("{url}/metrics"))
        .bearer_auth(SUBMIT_KEY)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let metric = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .unwrap()
            .trim()
            .parse::<f64>()
            .unwrap() as u64
    };
    let msgs = alerts.messages.lock().unwrap().clone();
    let text = serde_json::to_string(&msgs).unwrap();

    println!(
        "soak: {secs} s load, {kills} kill -9, {outages} server outage, 1 simulator restart, 1 receiver outage, pause/resume, {cancelled} cancels, 1 drain, 1 server-list reload"
    );
    println!(
        "  accepted {} | terminal {} | lost {} | stuck {} | finished twice {}",
        accepted.len(),
        jobs.len() - stuck.len(),
        lost.len(),
        stuck.len(),
        finished_twice
    );
    println!(
        "  by status {recount:?} | telemetry {}",
        t["jobs"]["byStatus"]
    );
    println!(
        "  invalid rejected {} | 409 conflicts {} | resent after crash {} | 5xx outside faults {}",
        shared.tally.rejected_invalid.load(Ordering::Relaxed),
        shared.tally.conflicts.load(Ordering::Relaxed),
        shared.tally.retried_after_crash.load(Ordering::Relaxed),
        shared
            .tally
            .server_errors_outside_faults
            .load(Ordering::Relaxed)
    );
    println!(
        "  webhooks: {} jobs with a webhook, {} undelivered, {} deliveries, {} bad signatures, {} jobs with more than one id",
        with_hook.len(),
        undelivered.len(),
        hooks.deliveries.load(Ordering::Relaxed),
        hooks.bad_signatures.load(Ordering::Relaxed),
        split_ids
    );
    println!(
        "  events read {events}, resyncs {resyncs}; alert messages {}",
        msgs.len()
    );
    let servers_now: Vec<String> = names_and_statuses(&get(&http, &url, "/api/servers"))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let ended_on = |name: &str| jobs.values().filter(|j| j["server"] == name).count();
    println!(
        "  servers after the reload {servers_now:?}; jobs last run on comfyui-0/1/2: {}/{}/{}",
        ended_on("comfyui-0"),
        ended_on("comfyui-1"),
        ended_on("comfyui-2")
    );
    println!(
        "  daemon RSS: first process at start {} KiB; last process {} → {} KiB; fds {} → {}",
        start_stats.0, last_start_stats.0, end_stats.0, last_start_stats.1, end_stats.1
    );

    assert_eq!(servers_now, ["comfyui-0", "comfyui-2"]);
    assert!(
        ended_on("comfyui-2") > 0,
        "the server added by the reload ran nothing"
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(stuck.is_empty(), "stuck: {stuck:?}");
    assert_eq!(finished_twice, 0);
    assert_eq!(
        accepted.len() as u64,
        t["jobs"]["total"].as_u64().unwrap(),
        "invalid requests must not create jobs"
    );
    for st in ["pending", "processing", "completed", "failed", "cancelled"] {
        assert_eq!(
            recount.get(st).copied().unwrap_or(0),
            t["jobs"]["byStatus"][st].as_u64().unwrap(),
            "{st}"
        );
    }
    assert_eq!(
        metric("dashboard_jobs_total"),
        t["jobs"]["total"].as_u64().unwrap()
    );
    assert_eq!(
        metric("dashboard_jobs_completed"),
        t["jobs"]["byStatus"]["completed"].as_u64().unwrap()
    );
    assert!(
        undelivered.is_empty(),
        "undelivered webhooks: {undelivered:?}"
    );
    assert_eq!(hooks.bad_signatures.load(Ordering::Relaxed), 0);
    assert_eq!(split_ids, 0, "a job's deliveries must share one webhook-id");
    assert_eq!(
        shared
            .tally
            .server_errors_outside_faults
            .load(Ordering::Relaxed),
        0
    );
    assert!(
        end_stats.1 < last_start_stats.1 + 50,
        "file descriptors grew: {last_start_stats:?} → {end_stats:?}"
    );
    // One firing and one resolved message for the simulator outage, nothing else.
    let statuses: Vec<(&str, String)> = msgs
        .iter()
        .map(|m| (m["status"].as_str().unwrap_or(""), m["alerts"].to_string()))
        .collect();
    let firing = statuses
        .iter()
        .filter(|(s, a)| *s == "firing" && a.contains("server_down"))
        .count();
    let resolved = statuses
        .iter()
        .filter(|(s, a)| *s == "resolved" && a.contains("server_down"))
        .count();
    assert_eq!(
        (firing, resolved, msgs.len()),
        (outages, outages, 2 * outages),
        "alerts: {text}"
    );
}
