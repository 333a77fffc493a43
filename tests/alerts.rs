use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use comfydash_daemon::config::{Config, ServerConfig};
use comfydash_sim::{Sim, SimConfig};
use serde_json::{Value, json};

use crate::harness::*;

const CRITICAL: u64 = 16_711_680;
const WARNING: u64 = 16_776_960;
const INFO: u64 = 3_447_003;
const TOKEN: &str = "123456:test-token";

/// A scripted answer.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// Slack, Discord, Telegram and a generic webhook on one local server: records every request
/// and answers from a per-channel script, then as the real service would.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value, Instant)>>>,
    script: Arc<Mutex<HashMap<&'static str, VecDeque<Reply>>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let mut app = axum::Router::new();
        for (path, channel) in [
            ("/slack", "slack"),
            ("/discord", "discord"),
            ("/tg/{bot}/sendMessage", "telegram"),
            ("/hook", "webhook"),
        ] {
            app = app.route(
                path,
                axum::routing::post(move |State(s): State<Receiver>, b: String| async move {
                    s.answer(channel, b).await
                }),
            );
        }
        let app = app.with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, base)
    }

    async fn answer(&self, channel: &'static str, body: String) -> Response {
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        self.got
            .lock()
            .unwrap()
            .push((channel.into(), v, Instant::now()));
        let scripted = self
            .script
            .lock()
            .unwrap()
            .get_mut(channel)
            .and_then(|q| q.pop_front());
        let reply = scripted.unwrap_or_else(|| match channel {
            "slack" => Reply {
                status: 200,
                headers: vec![],
                body: "ok".into(),
            },
            "discord" => Reply {
                status: 204,
                headers: vec![],
                body: String::new(),
            },
            "telegram" => Reply {
                status: 200,
                headers: vec![],
                body: json!({"ok": true, "result": {}}).to_string(),
            },
            _ => Reply {
                status: 200,
                headers: vec![],
                body: String::new(),
            },
        });
        let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
        for (k, v) in reply.headers {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
        resp
    }

    fn then(
        &self,
        channel: &'static str,
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Value,
    ) {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.script
            .lock()
            .unwrap()
            .entry(channel)
            .or_default()
            .push_back(Reply {
                status,
                headers,
                body,
            });
    }

    fn bodies(&self, channel: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _, _)| c == channel)
            .map(|(_, b, _)| b.clone())
            .collect()
    }

    fn times(&self, channel: &str) -> Vec<Instant> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _, _)| c == channel)
            .map(|(_, _, t)| *t)
            .collect()
    }

    fn count(&self, channel: &str) -> usize {
        self.bodies(channel).len()
    }

    /// Waits until every channel received `n` requests.
    async fn wait_all(&self, n: usize) {
        let ok = eventually(Duration::from_secs(10), || async {
            CHANNELS.iter().all(|c| self.count(c) >= n)
        })
        .await;
        assert!(
            ok,
            "not every channel got {n} messages: {:?}",
            CHANNELS.map(|c| self.count(c))
        );
    }
}

const CHANNELS: [&str; 4] = ["slack", "discord", "telegram", "webhook"];

/// Every channel pointed at the receiver, fast evaluation and retries, short `for`s.
fn alerting(c: &mut Config, base: &str) {
    let a = &mut c.alerts;
    a.slack_webhook_url = Some(format!("{base}/slack"));
    a.discord_webhook_url = Some(format!("{base}/discord"));
    a.telegram_bot_token = Some(TOKEN.into());
    a.telegram_chat_id = Some("-1001".into());
    a.telegram_api_url = format!("{base}/tg");
    a.webhook_url = Some(format!("{base}/hook"));
    a.interval = Duration::from_millis(50);
    a.timeout = Duration::from_secs(2);
    a.retry_backoff = Duration::from_millis(20);
    a.rules.server_down.hold = Some(Duration::from_millis(300));
    a.rules.all_servers_down.hold = Some(Duration::from_millis(300));
}

/// Only the queue rule, firing at once from `threshold` pending jobs (the server is dead).
fn queue_only(c: &mut Config, base: &str, threshold: f64) {
    alerting(c, base);
    let r = &mut c.alerts.rules;
    for o in [&mut r.server_down, &mut r.all_servers_down, &mut r.degraded] {
        o.enabled = Some(false);
    }
    r.queue_high.threshold = Some(threshold);
    r.queue_high.hold = Some(Duration::ZERO);
}

/// A server like the configured one, with another name and URL.
fn server(c: &Config, name: &str, url: String) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        url,
        ..c.servers[0].clone()
    }
}

async fn submit(h: &Harness, ids: std::ops::Range<usize>) {
    for i in ids {
        let r = h
            .submit(json!({"job_id": format!("q{i}"), "prompt": "a cat"}))
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
}

fn text_of(channel: &str, b: &Value) -> String {
    match channel {
        "slack" | "telegram" | "webhook" => b["text"].as_str().unwrap_or_default().to_string(),
        _ => format!("{} {}", b["content"], b["embeds"]),
    }
}

#[tokio::test]
async fn an_outage_sends_one_message_and_one_resolve_and_a_restart_sends_nothing() {
    let (recv, base) = Receiver::start().await;
    let (mut h, sim) = with_sim(SimConfig::default(), |c| alerting(c, &base)).await;
    sim.set_refuse_connections(true);
    recv.wait_all(1).await;
    for c in CHANNELS {
        let b = &recv.bodies(c)[0];
        let text = text_of(c, b);
        assert!(
            text.contains("All ComfyUI servers are down: gpu0"),
            "{c}: {text}"
        );
        // One server: the outage speaks as "all servers down"; the per-server alert is inhibited.
        assert!(!text.contains("ComfyUI server gpu0 is down"), "{c}: {text}");
    }
    assert_eq!(recv.bodies("discord")[0]["embeds"][0]["color"], CRITICAL);
    assert_eq!(recv.bodies("telegram")[0]["parse_mode"], "HTML");
    assert_eq!(recv.bodies("webhook")[0]["status"], "firing");
    assert_eq!(
        recv.bodies("webhook")[0]["alerts"][0]["rule"],
        "all_servers_down"
    );

    let list = h.get("/api/alerts", Some(READ_KEY)).await.body;
    let active = list["active"].as_array().unwrap();
    let rules: Vec<&str> = active.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert!(
        rules.contains(&"all_servers_down") && rules.contains(&"server_down"),
        "{list}"
    );
    let per_server = active.iter().find(|a| a["rule"] == "server_down").unwrap();
    assert_eq!(per_server["muted"], "inhibited:all_servers_down");

    // A restart while firing: the state is in the database, so nothing is sent again.
    h.restart().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    for c in CHANNELS {
        assert_eq!(recv.count(c), 1, "{c} got a message after the restart");
    }

    sim.set_refuse_connections(false);
    recv.wait_all(2).await;
    for c in CHANNELS {
        let text = text_of(c, &recv.bodies(c)[1]);
        assert!(
            text.contains("RESOLVED") || text.contains("Resolved"),
            "{c}: {text}"
        );
    }
    assert_eq!(recv.bodies("webhook")[1]["status"], "resolved");
    let list = h.get("/api/alerts", Some(READ_KEY)).await.body;
    assert_eq!(list["active"], json!([]), "{list}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in CHANNELS {
        assert_eq!(
            recv.count(c),
            2,
            "{c}: exactly one down and one resolved message"
        );
    }
    let list = h.get("/api/alerts", Some(READ_KEY)).await.body;
    assert_eq!(list["active"], json!([]), "{list}");
    let history = list["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{list}");
    assert!(
        history
            .iter()
            .all(|a| a["state"] == "resolved" && a["resolved_at"].is_string())
    );
    assert!(
        list["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "sent"),
        "{list}"
    );
}

#[tokio::test]
async fn all_servers_down_mutes_the_per_server_alerts() {
    let (recv, base) = Receiver::start().await;
    let a = Sim::start(SimConfig::default()).await.unwrap();
    let b = Sim::start(SimConfig::default()).await.unwrap();
    let h = Harness::with(|c| {
        c.servers = vec![server(c, "gpu0", a.url()), server(c, "gpu1", b.url())];
        alerting(c, &base);
    })
    .await;
    h.wait_server_up().await;
    a.set_refuse_connections(true);
    b.set_refuse_connections(true);
    recv.wait_all(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in CHANNELS {
        assert_eq!(recv.count(c), 1, "{c}: one outage, one message");
        let text = text_of(c, &recv.bodies(c)[0]);
        assert!(
            text.contains("All ComfyUI servers are down: gpu0, gpu1"),
            "{c}: {text}"
        );
        assert!(!text.contains("is down ("), "{c}: {text}");
    }
    assert_eq!(
        recv.bodies("webhook")[0]["alerts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_high_queue_alerts_with_the_warning_colour() {
    let (recv, base) = Receiver::start().await;
    let h = Harness::with(|c| queue_only(c, &base, 3.0)).await;
    submit(&h, 0..2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(recv.count("slack"), 0, "below the threshold");
    submit(&h, 2..3).await;
    recv.wait_all(1).await;
    let slack = recv.bodies("slack")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(slack.contains("Queue is high: 3 jobs pending"), "{slack}");
    let discord = &recv.bodies("discord")[0];
    assert_eq!(discord["embeds"][0]["color"], WARNING);
    assert_eq!(discord["embeds"][0]["title"], "WARNING — 1 firing");
    assert_eq!(discord["allowed_mentions"], json!({"parse": []}));
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_the_test_reports_each_channel() {
    let (recv, base) = Receiver::start().await;
    // No rules: only the test message is sent.
    let h = Harness::with(|c| {
        alerting(c, &base);
        c.alerts.enabled = false;
    })
    .await;
    recv.then(
        "discord",
        429,
        vec![],
        json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false}),
    );
    recv.then(
        "telegram",
        429,
        vec![],
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
    );
    recv.then(
        "slack",
        429,
        vec![("retry-after", "0".into())],
        json!("rate_limited"),
    );
    recv.then("webhook", 500, vec![], Value::Null);

    let r = h.post("/api/alerts/test", Some(READ_KEY), json!({})).await;
    assert_eq!(r.status, 403);
    let r = h.post("/api/alerts/test", Some(ADMIN_KEY), json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for res in results {
        assert_eq!(res["ok"], true, "{res}");
        assert_eq!(res["attempts"], 2, "{res}");
    }
    let gap = |c: &str| {
        let t = recv.times(c);
        t[1] - t[0]
    };
    assert!(
        gap("discord") >= Duration::from_millis(300),
        "{:?}",
        gap("discord")
    );
    assert!(
        gap("telegram") >= Duration::from_secs(1),
        "{:?}",
        gap("telegram")
    );
    let embed = &recv.bodies("discord")[1]["embeds"][0];
    assert_eq!(embed["color"], INFO);
    assert!(
        recv.bodies("slack")[1]["text"]
            .as_str()
            .unwrap()
            .contains("test message")
    );

    // Recorded, with the failures' count.
    let list = h.get("/api/alerts", Some(READ_KEY)).await.body;
    let deliveries = list["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 4);
    assert!(
        deliveries
            .iter()
            .all(|d| d["kind"] == "test" && d["status"] == "sent" && d["attempts"] == 2)
    );
    assert_eq!(
        list["channels"],
        json!(["slack", "discord", "telegram", "webhook"])
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_allowed_gives_up_and_other_channels_still_send() {
    let (recv, base) = Receiver::start().await;
    let h = Harness::with(|c| {
        alerting(c, &base);
        c.alerts.enabled = false;
        c.alerts.retry_max_wait = Duration::from_millis(500);
    })
    .await;
    recv.then(
        "discord",
        429,
        vec![],
        json!({"retry_after": 60.0, "global": true}),
    );
    let r = h.post("/api/alerts/test", Some(ADMIN_KEY), json!({})).await;
    let results = r.body["results"].as_array().unwrap();
    let discord = results.iter().find(|r| r["channel"] == "discord").unwrap();
    assert_eq!(discord["ok"], false);
    assert_eq!(discord["status_code"], 429);
    assert!(
        discord["error"]
            .as_str()
            .unwrap()
            .contains("retry_max_wait"),
        "{discord}"
    );
    assert!(
        results
            .iter()
            .filter(|r| r["channel"] != "discord")
            .all(|r| r["ok"] == true)
    );
}

#[tokio::test]
async fn a_silence_holds_messages_until_it_is_ended() {
    let (recv, base) = Receiver::start().await;
    let h = Harness::with(|c| queue_only(c, &base, 1.0)).await;
    let r = h
        .post(
            "/api/alerts/silences",
            Some(READ_KEY),
            json!({"rule": "queue_high", "duration": "1h"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = h
        .post(
            "/api/alerts/silences",
            Some(ADMIN_KEY),
            json!({"rule": "queue_hihg", "duration": "1h"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["code"], "invalid_silence");
    let r = h
        .post(
            "/api/alerts/silences",
            Some(ADMIN_KEY),
            json!({"rule": "queue_high", "duration": "1h", "comment": "load test"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["created_by"], "ops");

    submit(&h, 0..1).await;
    let firing = eventually(Duration::from_secs(5), || async {
        let l = h.get("/api/alerts", Some(READ_KEY)).await.body;
        l["active"][0]["state"] == "firing"
    })
    .await;
    assert!(firing);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let l = h.get("/api/alerts", Some(READ_KEY)).await.body;
    assert_eq!(l["active"][0]["muted"], format!("silenced:{id}"));
    assert_eq!(l["silences"][0]["id"], id.as_str());
    for c in CHANNELS {
        assert_eq!(recv.count(c), 0, "{c} got a message while silenced");
    }

    let r = h
        .call(
            "DELETE",
            &format!("/api/alerts/silences/{id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = h
        .call(
            "DELETE",
            &format!("/api/alerts/silences/{id}"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    recv.wait_all(1).await;
    let listed = h
        .get("/api/alerts/silences?expired=true", Some(READ_KEY))
        .await
        .body;
    assert_eq!(listed["silences"][0]["active"], false);
    assert_eq!(
        h.get("/api/alerts/silences", Some(READ_KEY)).await.body["silences"],
        json!([])
    );
}

#[tokio::test]
async fn telegram_escapes_html_keeps_to_4096_and_falls_back_to_plain_text() {
    let (recv, base) = Receiver::start().await;
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let odd = format!("a<b>&c{}", "x".repeat(5000));
    let h = Harness::with(|c| {
        c.servers = vec![
            server(c, "gpu0", sim.url()),
            server(c, &odd, format!("http://{}", dead_addr())),
        ];
        alerting(c, &base);
    })
    .await;
    recv.then(
        "telegram",
        400,
        vec![],
        json!({"ok": false, "error_code": 400, "description": "Bad Request: can't parse entities: Unsupported start tag \"b\" at byte offset 0"}),
    );
    let ok = eventually(Duration::from_secs(10), || async {
        recv.count("telegram") >= 2
    })
    .await;
    assert!(ok, "no plain-text fallback");
    let sent = recv.bodies("telegram");
    let html = sent[0]["text"].as_str().unwrap();
    assert_eq!(sent[0]["parse_mode"], "HTML");
    assert_eq!(sent[0]["chat_id"], "-1001");
    assert!(
        html.contains("ComfyUI server a&lt;b&gt;&amp;cxxx"),
        "{html}"
    );
    assert!(!html.contains("a<b>"));
    assert!(html.encode_utf16().count() <= 4096, "{}", html.len());
    assert!(html.contains("x…"), "cut with an ellipsis");
    let plain = sent[1]["text"].as_str().unwrap();
    assert!(sent[1].get("parse_mode").is_none());
    assert!(plain.contains("ComfyUI server a<b>&cxxx"), "{plain}");
    assert!(plain.encode_utf16().count() <= 4096);

    // Discord's limits hold too: content 2000, each embed's description 4096.
    recv.wait_all(1).await;
    let d = &recv.bodies("discord")[0];
    assert!(d["content"].as_str().unwrap().chars().count() <= 2000);
    let desc = d["embeds"][0]["description"].as_str().unwrap();
    assert!(
        desc.encode_utf16().count() <= 4096 && desc.contains("a<b>&c"),
        "{desc}"
    );
    assert_eq!(d["embeds"][0]["color"], WARNING);

    let l = h.get("/api/alerts", Some(READ_KEY)).await.body;
    let tg = l["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"] == "telegram")
        .cloned()
        .unwrap();
    assert_eq!(tg["status"], "sent");
    assert_eq!(tg["attempts"], 2);
}

#[tokio::test]
async fn a_reload_switches_channels_and_the_alert_state_carries_on() {
    let (recv, base) = Receiver::start().await;
    let slack_only = |c: &mut Config| {
        queue_only(c, &base, 2.0);
        c.alerts.discord_webhook_url = None;
        c.alerts.telegram_bot_token = None;
        c.alerts.webhook_url = None;
    };
    let h = Harness::with(slack_only).await;
    submit(&h, 0..2).await;
    let fired = eventually(Duration::from_secs(10), || async {
        recv.count("slack") == 1
    })
    .await;
    assert!(fired, "the queue alert never reached Slack");

    // Slack out, the generic webhook in; the rules are the same.
    let mut c = h.config.clone();
    c.alerts.slack_webhook_url = None;
    c.alerts.webhook_url = Some(format!("{base}/hook"));
    let report = h.daemon.as_ref().unwrap().reloader().reload(&c).await;
    assert_eq!(
        report.applied,
        vec!["alerts configuration changed: 1 channel(s): webhook"]
    );
    let list = h.get("/api/alerts", Some(READ_KEY)).await.body;
    assert_eq!(list["channels"], json!(["webhook"]), "{list}");
    // The firing alert was announced before the reload: not again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(recv.count("webhook"), 0, "announced twice");

    // Its resolve goes to the channel configured now.
    for i in 0..2 {
        h.post(
            &format!("/api/jobs/q{i}/cancel"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    }
    let resolved = eventually(Duration::from_secs(10), || async {
        recv.count("webhook") == 1
    })
    .await;
    assert!(resolved, "no resolve message on the new channel");
    assert_eq!(recv.bodies("webhook")[0]["status"], "resolved");
    assert_eq!(recv.count("slack"), 1, "the removed channel got a message");
    // The same section again changes nothing.
    let report = h.daemon.as_ref().unwrap().reloader().reload(&c).await;
    assert!(report.applied.is_empty(), "{:?}", report.applied);
}

#[tokio::test]
async fn a_database_that_refuses_writes_is_announced_without_a_record() {
    let (recv, base) = Receiver::start().await;
    let h = Harness::with(|c| {
        // Only the queue rule, never reached: every message below is the database's.
        queue_only(c, &base, 1_000_000.0);
        c.store.busy_timeout = Duration::from_millis(50);
    })
    .await;
    // Another process holds the write lock, as an open `sqlite3` shell in a transaction does.
    let db = h.config.db_path();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        c.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    recv.wait_all(1).await;
    for c in CHANNELS {
        let text = text_of(c, &recv.bodies(c)[0]);
        assert!(text.contains("The database refuses writes"), "{c}: {text}");
    }
    assert_eq!(recv.bodies("webhook")[0]["status"], "firing");
    assert_eq!(
        recv.bodies("webhook")[0]["alerts"][0]["rule"],
        "database_unwritable"
    );
    let health = h.get("/api/health", None).await.body;
    assert_eq!(health["services"]["database"]["status"], "down", "{health}");
    // Listed from memory while it fires: it has no row.
    let list = h.get("/api/alerts", Some(READ_KEY)).await.body;
    let active = list["active"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{list}");
    assert_eq!(active[0]["rule"], "database_unwritable");
    assert_eq!(active[0]["state"], "firing");

    release_tx.send(()).unwrap();
    holder.join().unwrap();
    recv.wait_all(2).await;
    assert_eq!(recv.bodies("webhook")[1]["status"], "resolved");
    let list = h.get("/api/alerts", Some(READ_KEY)).await.body;
    assert_eq!(list["active"], json!([]), "{list}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in CHANNELS {
        assert_eq!(recv.count(c), 2, "{c}: one firing and one resolved message");
    }
}
