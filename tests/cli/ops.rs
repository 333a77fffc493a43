use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use comfydash_daemon::config::Config;
use serde_json::{Value, json};

use super::run;
use crate::harness::*;
use crate::webhooks::{cancelled_job, fast_webhooks, wait_event};

/// A receiver for alert messages and job webhooks: answers every POST with a settable status
/// and counts them.
#[derive(Clone)]
struct Receiver {
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    url: String,
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let status = Arc::new(AtomicU16::new(status));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, n) = (status.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (s, n) = (s.clone(), n.clone());
                async move {
                    n.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { status, hits, url }
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Only the generic webhook channel, pointed at `url`; only `queue_high` (the others depend on
/// the machine, like `disk_low`), firing at once from one pending job (the harness's ComfyUI is dead, so jobs stay pending).
fn queue_alerts(c: &mut Config, url: &str) {
    let a = &mut c.alerts;
    a.webhook_url = Some(url.into());
    a.interval = Duration::from_millis(50);
    a.timeout = Duration::from_secs(2);
    a.retry_backoff = Duration::from_millis(20);
    let r = &mut a.rules;
    for o in [
        &mut r.server_down,
        &mut r.all_servers_down,
        &mut r.degraded,
        &mut r.stuck,
        &mut r.job_failure_rate,
        &mut r.webhook_failure_rate,
        &mut r.server_stuck,
        &mut r.disk_low,
    ] {
        o.enabled = Some(false);
    }
    r.queue_high.threshold = Some(1.0);
    r.queue_high.hold = Some(Duration::ZERO);
}

#[tokio::test]
async fn alerts_list_silence_unsilence_and_test() {
    let rx = Receiver::start(200).await;
    let h = Harness::with(|c| queue_alerts(c, &rx.url)).await;
    let empty = run(&h.url, READ_KEY, &["alerts", "list"]).await;
    assert_eq!(empty.code, 0, "{empty:?}");
    assert!(empty.stdout.starts_with("no active alerts\n"), "{empty:?}");
    assert!(empty.stdout.contains("channels: webhook"), "{empty:?}");

    // Silencing needs an admin key, and something to match.
    let args = [
        "alerts",
        "silence",
        "--rule",
        "queue_high",
        "--duration",
        "2h",
        "--comment",
        "load test",
    ];
    let denied = run(&h.url, READ_KEY, &args).await;
    assert_eq!(denied.code, 4, "{denied:?}");
    assert!(denied.stderr.contains("HTTP 403"), "{denied:?}");
    let usage = run(
        &h.url,
        ADMIN_KEY,
        &["alerts", "silence", "--duration", "2h"],
    )
    .await;
    assert_eq!(usage.code, 2, "{usage:?}");
    let usage = run(&h.url, ADMIN_KEY, &["alerts", "silence", "--label", "gpu0"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
    let typo = run(
        &h.url,
        ADMIN_KEY,
        &["alerts", "silence", "--rule", "queue_hihg"],
    )
    .await;
    assert_eq!(typo.code, 4, "{typo:?}");
    assert!(typo.stderr.contains("invalid_silence"), "{typo:?}");

    let out = run(&h.url, ADMIN_KEY, &args).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("silenced queue_high until "),
        "{out:?}"
    );
    let until = (chrono::Utc::now() + chrono::Duration::hours(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let with_labels = run(
        &h.url,
        ADMIN_KEY,
        &[
            "alerts",
            "silence",
            "--label",
            "server=gpu0",
            "--until",
            &until,
            "--json",
        ],
    )
    .await;
    assert_eq!(with_labels.code, 0, "{with_labels:?}");
    let s = with_labels.json();
    assert_eq!(s["labels"], json!({"server": "gpu0"}));
    assert_eq!(s["ends_at"], until.as_str());
    assert_eq!(s["created_by"], "ops");
    let label_id = s["id"].as_str().unwrap().to_string();

    // A job waits on the dead server: the queue alert fires, muted by the silence.
    let r = h.submit(json!({"job_id": "a1", "prompt": "a cat"})).await;
    assert_eq!(r.status, 202);
    let firing = eventually(Duration::from_secs(5), || async {
        let l = run(&h.url, READ_KEY, &["alerts", "list", "--json"])
            .await
            .json();
        l["active"][0]["state"] == "firing" && l["active"][0]["muted"].is_string()
    })
    .await;
    assert!(firing, "the queue alert never fired");
    let list = run(&h.url, READ_KEY, &["alerts", "list"]).await;
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains("queue_high"))
        .unwrap_or_else(|| panic!("{list:?}"));
    assert!(row.starts_with("firing  warning"), "{row}");
    assert!(row.contains("silenced:"), "{row}");
    assert!(list.stdout.contains("load test"), "{list:?}");
    assert_eq!(rx.hits(), 0, "a silenced alert was sent");

    let id = run(&h.url, READ_KEY, &["alerts", "silences", "--json"])
        .await
        .json()["silences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["rule"] == "queue_high")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for sid in [&id, &label_id] {
        let out = run(&h.url, ADMIN_KEY, &["alerts", "unsilence", sid]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stdout, format!("silence {sid} ended\n"));
    }
    let again = run(&h.url, ADMIN_KEY, &["alerts", "unsilence", &id, "--json"]).await;
    assert_eq!(again.code, 4, "{again:?}");
    assert!(again.stderr.contains("silence_not_found"), "{again:?}");
    let expired = run(
        &h.url,
        READ_KEY,
        &["alerts", "silences", "--expired", "--json"],
    )
    .await
    .json();
    assert_eq!(expired["silences"].as_array().unwrap().len(), 2);
    assert!(
        expired["silences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["active"] == false)
    );
    // Unmuted, the firing alert is announced.
    assert!(eventually(Duration::from_secs(5), || async { rx.hits() >= 1 }).await);

    // The test message: one row per channel; a failing channel is exit 1.
    let test = run(&h.url, ADMIN_KEY, &["alerts", "test"]).await;
    assert_eq!(test.code, 0, "{test:?}");
    assert!(
        test.stdout.lines().any(|l| l.starts_with("webhook  ok")),
        "{test:?}"
    );
    rx.answer(400);
    let test = run(&h.url, ADMIN_KEY, &["alerts", "test", "--json"]).await;
    assert_eq!(test.code, 1, "{test:?}");
    assert_eq!(test.json()["results"][0]["status_code"], 400);
    assert!(test.stderr.contains("1 of 1 channels failed"), "{test:?}");

    // No channel at all: the daemon refuses, exit 4.
    let bare = Harness::start().await;
    let none = run(&bare.url, ADMIN_KEY, &["alerts", "test"]).await;
    assert_eq!(none.code, 4, "{none:?}");
    assert!(none.stderr.contains("no_alert_channels"), "{none:?}");
}

#[tokio::test]
async fn webhooks_list_redeliver_and_replay() {
    let rx = Receiver::start(503).await;
    let h = Harness::with(|c| {
        fast_webhooks(c);
        c.webhooks.max_age = Duration::from_millis(400);
    })
    .await;
    assert_eq!(
        h.post("/api/queue/pause", Some(ADMIN_KEY), json!({}))
            .await
            .status,
        200
    );
    cancelled_job(&h, "wd", &rx.url).await;
    let dead = wait_event(&h, "wd", "dead").await;

    let list = run(
        &h.url,
        READ_KEY,
        &["webhooks", "list", "--status", "dead,failed"],
    )
    .await;
    assert_eq!(list.code, 0, "{list:?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].starts_with("EVENT"), "{list:?}");
    assert!(
        lines[1].starts_with(dead["id"].as_str().unwrap()),
        "{list:?}"
    );
    assert!(
        lines[1].contains("job.cancelled") && lines[1].contains("dead"),
        "{list:?}"
    );
    assert!(lines[1].contains("HTTP 503"), "{list:?}");
    let json = run(
        &h.url,
        READ_KEY,
        &["webhooks", "list", "--job", "wd", "--json"],
    )
    .await;
    assert_eq!(json.json()["events"][0]["id"], dead["id"]);
    let none = run(
        &h.url,
        READ_KEY,
        &["webhooks", "list", "--status", "delivered", "--json"],
    )
    .await;
    assert_eq!(none.json()["events"], json!([]));
    let bad = run(&h.url, READ_KEY, &["webhooks", "list", "--status", "bogus"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");

    // Replay: admin only, `--since` required and checked here.
    let denied = run(&h.url, READ_KEY, &["webhooks", "replay", "--since", "1h"]).await;
    assert_eq!(denied.code, 4, "{denied:?}");
    for args in [
        &["webhooks", "replay"][..],
        &["webhooks", "replay", "--since", "yesterday"],
    ] {
        let out = run(&h.url, ADMIN_KEY, args).await;
        assert_eq!(out.code, 2, "{out:?}");
    }
    let later = run(
        &h.url,
        ADMIN_KEY,
        &[
            "webhooks",
            "replay",
            "--since",
            "2099-01-01T00:00:00Z",
            "--json",
        ],
    )
    .await;
    assert_eq!(later.json(), json!({"replayed": 0}));
    rx.answer(200);
    let out = run(&h.url, ADMIN_KEY, &["webhooks", "replay", "--since", "1h"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("1 dead webhook event since "),
        "{out:?}"
    );
    let delivered = wait_event(&h, "wd", "delivered").await;
    assert_eq!(delivered["id"], dead["id"]);

    // Redeliver: the same event again, now.
    let before = rx.hits();
    let out = run(&h.url, ADMIN_KEY, &["webhooks", "redeliver", "wd"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "webhook {} (job.cancelled) of job wd queued for delivery to {}\n",
            dead["id"].as_str().unwrap(),
            rx.url
        )
    );
    assert!(eventually(Duration::from_secs(10), || async { rx.hits() > before }).await);
    let missing = run(
        &h.url,
        ADMIN_KEY,
        &["webhooks", "redeliver", "nope", "--json"],
    )
    .await;
    assert_eq!(missing.code, 4, "{missing:?}");
    assert!(missing.stderr.contains("job_not_found"), "{missing:?}");
    let events: Value = run(&h.url, READ_KEY, &["webhooks", "list", "--json"])
        .await
        .json();
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
}
