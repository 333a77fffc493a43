use std::time::{Duration, Instant};

use base64::Engine;
use comfydash_daemon::config::Config;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::*;

/// `kill -9` with deliveries in flight, with the real binary.
mod crash;
/// Operators: redelivery, replay, listing.
mod operators;
/// A receiver that records requests and answers from a script.
mod receiver;
/// Refused URLs, seeded straight into the outbox.
mod refused;

use receiver::{Hit, Receiver, Reply};

/// The Standard Webhooks specification's example secret.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// A second secret, as during a rotation.
pub const SECRET2: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Webhooks to 127.0.0.1 allowed, retries every ~50 ms.
pub fn fast_webhooks(c: &mut Config) {
    c.outbound.allow = vec!["127.0.0.1/32".into()];
    c.webhooks.secrets = vec![SECRET.into()];
    c.webhooks.schedule = vec![Duration::from_millis(50)];
    c.webhooks.timeout = Duration::from_secs(5);
    c.webhooks.connect_timeout = Duration::from_millis(500);
    c.webhooks.max_age = Duration::from_secs(120);
}

pub async fn start(f: impl FnOnce(&mut Config)) -> Harness {
    let h = Harness::with(|c| {
        fast_webhooks(c);
        f(c);
    })
    .await;
    // Nothing runs: jobs stay pending until cancelled, which ends them at once.
    assert_eq!(
        h.post("/api/queue/pause", Some(ADMIN_KEY), json!({}))
            .await
            .status,
        200
    );
    h
}

/// A job with a webhook, ended at once by cancelling it.
pub async fn cancelled_job(h: &Harness, id: &str, url: &str) {
    let r = h
        .submit(json!({"job_id": id, "prompt": "a red bicycle", "webhook_url": url, "params": {"seed": 7}}))
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let r = h
        .post(
            &format!("/api/jobs/{id}/cancel"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// The events of a job (newest first).
pub async fn events_of(h: &Harness, job: &str) -> Vec<Value> {
    let r = h
        .get(&format!("/api/webhooks?job_id={job}"), Some(READ_KEY))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["events"].as_array().unwrap().clone()
}

/// Waits until the job's latest event has `status`, returning it.
pub async fn wait_event(h: &Harness, job: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let evs = events_of(h, job).await;
        if let Some(e) = evs.first().filter(|e| e["status"] == status) {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "event of {job} never {status}: {evs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `webhooks` of telemetry as (total, delivered, failed, pending).
pub async fn counters(h: &Harness) -> (u64, u64, u64, u64) {
    let t = h.telemetry().await;
    let w = &t["webhooks"];
    let n = |k: &str| w[k].as_u64().unwrap();
    (n("total"), n("delivered"), n("failed"), n("pending"))
}

/// Checks a delivery with the reference library from PyPI; `None` when it is not installed
/// outside CI (under CI a missing verifier fails the test).
pub fn verify(secret: &str, hit: &Hit) -> Option<Result<String, String>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/verify_webhook.py");
    let input = json!({
        "headers": {
            "webhook-id": hit.id,
            "webhook-timestamp": hit.timestamp,
            "webhook-signature": hit.signature,
        },
        "body": hit.body,
    });
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let child = std::process::Command::new("python3")
        .arg(script)
        .arg(secret)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if !ci => {
            eprintln!("skipping the independent signature check: python3: {e}");
            return None;
        }
        Err(e) => panic!("python3 is needed under CI: {e}"),
    };
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        input.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    match out.status.code() {
        Some(0) => Some(Ok(text(&out.stdout))),
        Some(3) if !ci => {
            eprintln!(
                "skipping the independent signature check: {}",
                text(&out.stderr)
            );
            None
        }
        Some(3) => panic!("the verifier is needed under CI: {}", text(&out.stderr)),
        _ => Some(Err(text(&out.stderr))),
    }
}

#[tokio::test]
async fn completed_job_payload_is_signed_and_verifies_with_the_reference_library() {
    let rx = Receiver::start(Reply::ok()).await;
    let sim = comfydash_sim::SimConfig {
        exec_time: Duration::from_millis(20),
        ..Default::default()
    };
    let (h, _sim) = with_sim(sim, |c| {
        fast_webhooks(c);
        c.webhooks.secrets = vec![SECRET.into(), SECRET2.into()];
        c.webhooks.public_url = Some("https://dash.example.test/".into());
    })
    .await;
    let r = h
        .submit(
            json!({"job_id": "w1", "prompt": "a lighthouse", "params": {"seed": 5},
            "output_base64": true, "webhook_url": rx.url("/hook")}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let job = h
        .wait_status("w1", "completed", Duration::from_secs(10))
        .await;
    let hit = rx.wait_hits(1, Duration::from_secs(10)).await.remove(0);
    assert_eq!(hit.content_type, "application/json");
    assert!(hit.id.starts_with("msg_"), "{}", hit.id);
    // One signature per secret, so a receiver can rotate without a gap.
    assert_eq!(
        hit.signature
            .split(' ')
            .filter(|s| s.starts_with("v1,"))
            .count(),
        2
    );

    let p = hit.json();
    assert_eq!(p["type"], "job.completed");
    assert!(p["timestamp"].as_str().unwrap().ends_with('Z'));
    let d = &p["data"];
    assert_eq!(d["job_id"], "w1");
    assert_eq!(d["status"], "completed");
    assert_eq!(d["params"], json!({"seed": 5}));
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["error"], Value::Null);
    assert!(d["timings"]["processing_ms"].is_u64(), "{d}");
    let out = &d["outputs"][0];
    assert_eq!(
        out["url"],
        "https://dash.example.test/api/jobs/w1/outputs/0"
    );
    assert_eq!(out["content_type"], "image/png");
    assert_eq!(out["sha256"], job["outputs"][0]["sha256"]);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes.len() as u64, out["size"].as_u64().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&bytes)), out["sha256"]);

    for secret in [SECRET, SECRET2] {
        if let Some(r) = verify(secret, &hit) {
            assert_eq!(r, Ok("job.completed".into()), "secret {secret}");
        }
    }
    // The verifier is not a rubber stamp: another secret or a changed body fails.
    if let Some(r) = verify("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &hit) {
        assert!(r.is_err());
    }
    let mut tampered = hit.clone();
    tampered.body = tampered.body.replace("completed", "failed");
    if let Some(r) = verify(SECRET, &tampered) {
        assert!(r.is_err());
    }

    let ev = wait_event(&h, "w1", "delivered").await;
    assert_eq!(ev["id"], hit.id.as_str());
    assert_eq!(ev["attempt_count"], 1);
    assert_eq!(ev["attempts"][0]["status_code"], 200);
    assert_eq!(counters(&h).await, (1, 1, 0, 0));
}

#[tokio::test]
async fn generated_secret_is_written_to_the_data_dir_and_signs() {
    let rx = Receiver::start(Reply::ok()).await;
    let h = start(|c| c.webhooks.secrets.clear()).await;
    cancelled_job(&h, "g1", &rx.url("/")).await;
    let hit = rx.wait_hits(1, Duration::from_secs(10)).await.remove(0);
    assert_eq!(hit.json()["type"], "job.cancelled");
    let path = h.config.data_dir.join("webhook.secret");
    let secret = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(secret.starts_with("whsec_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    if let Some(r) = verify(&secret, &hit) {
        assert_eq!(r, Ok("job.cancelled".into()));
    }
}

#[tokio::test]
async fn receiver_down_then_up_gets_the_event() {
    let addr = dead_addr();
    let h = start(|_| {}).await;
    cancelled_job(&h, "d1", &format!("http://{addr}/hook")).await;
    // A few refused connections first, each recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ev = events_of(&h, "d1").await.remove(0);
        if ev["attempt_count"].as_u64().unwrap() >= 2 {
            assert_eq!(ev["status"], "pending");
            assert_eq!(ev["attempts"][0]["status_code"], Value::Null);
            let err = ev["attempts"][0]["error"].as_str().unwrap();
            assert!(err.contains("connect"), "{err}");
            break;
        }
        assert!(Instant::now() < deadline, "no retries: {ev}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counters(&h).await, (1, 0, 0, 1));
    let rx = Receiver::start_on(addr, Reply::ok()).await;
    let ev = wait_event(&h, "d1", "delivered").await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, ev["id"].as_str().unwrap());
    assert_eq!(counters(&h).await, (1, 1, 0, 0));
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_id_and_fresh_signatures() {
    let rx = Receiver::start(Reply::ok()).await;
    rx.script(vec![Reply::status(500).body("oops, try later"); 3]);
    let h = start(|_| {}).await;
    cancelled_job(&h, "r1", &rx.url("/hook")).await;
    let ev = wait_event(&h, "r1", "delivered").await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 4);
    assert!(
        hits.iter()
            .all(|x| x.id == hits[0].id && x.body == hits[0].body)
    );
    let codes: Vec<_> = ev["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, [500, 500, 500, 200]);
    assert_eq!(ev["attempts"][0]["response"], "oops, try later");
    assert!(ev["attempts"][0]["latency_ms"].is_u64());
    // The same attempts are in the job's own log, for the console's job detail.
    let log = h.get("/api/jobs/r1/events", Some(READ_KEY)).await.body;
    let in_log: Vec<Value> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "webhook_attempt")
        .map(|e| e["detail"]["status_code"].clone())
        .collect();
    assert_eq!(in_log, [500, 500, 500, 200]);
    for hit in &hits {
        if let Some(r) = verify(SECRET, hit) {
            assert_eq!(r, Ok("job.cancelled".into()));
        }
    }
    assert_eq!(counters(&h).await, (1, 1, 0, 0));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rx = Receiver::start(Reply::ok()).await;
    rx.script(vec![Reply::status(429).header("retry-after", "1")]);
    let h = start(|_| {}).await;
    cancelled_job(&h, "ra", &rx.url("/hook")).await;
    wait_event(&h, "ra", "delivered").await;
    let hits = rx.hits();
    assert_eq!(hits.len(), 2);
    // The schedule says ~50 ms; the receiver said 1 s.
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[tokio::test]
async fn final_answers_stop_at_once() {
    let gone = Receiver::start(Reply::status(410)).await;
    let missing = Receiver::start(Reply::status(404)).await;
    let redirect = Receiver::start(
        Reply::status(302).header("location", "http://169.254.169.254/latest/meta-data/"),
    )
    .await;
    let h = start(|_| {}).await;
    cancelled_job(&h, "f410", &gone.url("/hook")).await;
    cancelled_job(&h, "f404", &missing.url("/hook")).await;
    cancelled_job(&h, "f302", &redirect.url("/hook")).await;
    for (job, code, words) in [
        ("f410", 410, "asked to stop"),
        ("f404", 404, "not retried"),
        ("f302", 302, "redirects are not followed"),
    ] {
        let ev = wait_event(&h, job, "failed").await;
        assert_eq!(ev["attempt_count"], 1, "{ev}");
        assert_eq!(ev["last_status_code"], code);
        assert!(ev["last_error"].as_str().unwrap().contains(words), "{ev}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (
            gone.hits().len(),
            missing.hits().len(),
            redirect.hits().len()
        ),
        (1, 1, 1)
    );
    assert_eq!(counters(&h).await, (3, 0, 3, 0));
    assert_eq!(h.telemetry().await["webhooks"]["successRate"], 0.0);
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_back_a_fast_one() {
    let slow = Receiver::start(Reply::ok().delay(Duration::from_secs(2))).await;
    let fast = Receiver::start(Reply::ok()).await;
    let h = start(|c| {
        c.webhooks.concurrency = 8;
        c.webhooks.per_host = 2;
    })
    .await;
    // The slow host's events are older, so a first-come queue would put them all in front.
    for i in 0..10 {
        cancelled_job(&h, &format!("slow{i}"), &slow.url("/hook")).await;
    }
    for i in 0..10 {
        cancelled_job(&h, &format!("fast{i}"), &fast.url("/hook")).await;
    }
    fast.wait_hits(10, Duration::from_secs(15)).await;
    let fast_done = eventually(Duration::from_secs(10), || async {
        let evs = h
            .get("/api/webhooks?status=delivered&limit=100", Some(READ_KEY))
            .await
            .body;
        let fast_delivered = evs["events"].as_array().unwrap().iter();
        fast_delivered
            .filter(|e| e["job_id"].as_str().unwrap().starts_with("fast"))
            .count()
            == 10
    })
    .await;
    assert!(
        fast_done,
        "the fast receiver's events were not all delivered"
    );
    let pending = h
        .get("/api/webhooks?status=pending&limit=100", Some(READ_KEY))
        .await
        .body;
    let backlog = pending["events"].as_array().unwrap().len();
    assert!(
        backlog >= 4,
        "the slow host should still have a backlog: {backlog}"
    );
    assert!(
        slow.max_inflight() <= 2,
        "per-host limit exceeded: {}",
        slow.max_inflight()
    );
    let (total, delivered, failed, pending) = counters(&h).await;
    assert_eq!((total, failed), (20, 0));
    assert_eq!(delivered + pending, 20);
}

async fn reload_secrets(h: &Harness, secrets: &[&str]) -> comfydash_daemon::ReloadReport {
    let mut c = h.config.clone();
    c.webhooks.secrets = secrets.iter().map(|s| s.to_string()).collect();
    h.daemon.as_ref().unwrap().reloader().reload(&c).await
}

#[tokio::test]
async fn reload_rotates_the_signing_secrets_from_the_next_delivery() {
    let rx = Receiver::start(Reply::ok()).await;
    let h = start(|_| {}).await;
    let hit_of = |job: &str| {
        let job = job.to_string();
        let rx = &rx;
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(hit) = rx.hits().into_iter().find(|x| x.job_id() == job) {
                    return hit;
                }
                assert!(Instant::now() < deadline, "no delivery for {job}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    cancelled_job(&h, "rot1", &rx.url("/")).await;
    assert_eq!(hit_of("rot1").await.signature.split(' ').count(), 1);

    // Rotation step 1: sign with old and new, so receivers can switch at their pace.
    let report = reload_secrets(&h, &[SECRET, SECRET2]).await;
    assert_eq!(
        report.applied,
        vec!["webhook signing secrets changed: 2 in use"]
    );
    cancelled_job(&h, "rot2", &rx.url("/")).await;
    let hit = hit_of("rot2").await;
    assert_eq!(hit.signature.split(' ').count(), 2);
    for secret in [SECRET, SECRET2] {
        if let Some(r) = verify(secret, &hit) {
            assert_eq!(r, Ok("job.cancelled".into()));
        }
    }

    // Step 2: the old secret goes.
    let report = reload_secrets(&h, &[SECRET2]).await;
    assert_eq!(
        report.applied,
        vec!["webhook signing secrets changed: 1 in use"]
    );
    cancelled_job(&h, "rot3", &rx.url("/")).await;
    let hit = hit_of("rot3").await;
    assert_eq!(hit.signature.split(' ').count(), 1);
    if let Some(r) = verify(SECRET2, &hit) {
        assert_eq!(r, Ok("job.cancelled".into()));
    }
    if let Some(r) = verify(SECRET, &hit) {
        assert!(r.is_err(), "the retired secret still verifies");
    }
    // The same secrets again change nothing; the secrets are never in the report.
    let report = reload_secrets(&h, &[SECRET2]).await;
    assert!(report.applied.is_empty() && report.warnings.is_empty());
}
