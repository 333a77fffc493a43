use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfydash_daemon::config::{Config, ServerConfig};
use comfydash_sim::Sim;
use serde_json::{Value, json};

use crate::harness::*;
use crate::servers::{daemon, sims, slow};

fn server(name: &str, sim: &Sim) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        url: sim.url(),
        restart_command: None,
    }
}

async fn reload(h: &Harness, servers: Vec<ServerConfig>) -> Vec<String> {
    let mut c: Config = h.config.clone();
    c.servers = servers;
    let report = h.daemon.as_ref().unwrap().reloader().reload(&c).await;
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    report.applied
}

async fn listed(h: &Harness) -> Vec<(String, String)> {
    names_and_statuses(&h.get("/api/servers", Some(READ_KEY)).await.body)
}

async fn job(h: &Harness, id: &str) -> Value {
    h.get(&format!("/api/jobs/{id}"), Some(READ_KEY)).await.body
}

async fn was_requeued(h: &Harness, id: &str) -> bool {
    let log = h
        .get(&format!("/api/jobs/{id}/events"), Some(READ_KEY))
        .await
        .body;
    log.to_string().contains("\"requeued\"")
}

/// Submits `n` slow jobs named `{prefix}{i}` and waits until all of them have completed.
async fn run_jobs(h: &Harness, prefix: &str, n: u32) {
    for i in 0..n {
        let r = h
            .submit(json!({"job_id": format!("{prefix}{i}"), "prompt": slow(i)}))
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    for i in 0..n {
        h.wait_status(
            &format!("{prefix}{i}"),
            "completed",
            Duration::from_secs(20),
        )
        .await;
    }
}

#[tokio::test]
async fn reload_adds_a_server_and_drains_a_removed_one_without_dropping_work() {
    let s = sims(2, 300).await;
    let h = daemon(&s[..1], |c| c.outbound.allow = vec!["127.0.0.0/8".into()]).await;
    // Before the reload the second simulator is just an allowed loopback address.
    let hook = format!("{}/hook", s[1].url());
    let r = h
        .submit(json!({"job_id": "pre", "prompt": slow(1), "webhook_url": hook}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);

    let notes = reload(&h, vec![server("gpu0", &s[0]), server("gpu1", &s[1])]).await;
    assert!(notes.iter().any(|n| n == "server gpu1 added"), "{notes:?}");
    h.wait_server_up().await;
    assert_eq!(listed(&h).await.len(), 2);
    // An added server joins the outbound guard: client URLs may never reach a ComfyUI.
    let r = h
        .submit(json!({"job_id": "post", "prompt": slow(2), "webhook_url": hook}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("configured ComfyUI server"),
        "{}",
        r.body
    );
    run_jobs(&h, "a", 8).await;
    assert!(s[1].executed_count() >= 2, "the added server got no work");

    // Remove gpu0 while it runs jobs: they finish there, nothing new goes to it.
    for i in 0..6 {
        h.submit(json!({"job_id": format!("b{i}"), "prompt": slow(10 + i)}))
            .await;
    }
    let busy = eventually(Duration::from_secs(5), || async {
        let b = h.get("/api/servers", Some(READ_KEY)).await.body;
        b["servers"][0]["in_flight"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert!(busy, "gpu0 never had work");
    let notes = reload(&h, vec![server("gpu1", &s[1])]).await;
    assert!(
        notes.iter().any(|n| n.starts_with("server gpu0 removed")),
        "{notes:?}"
    );
    let during = listed(&h).await;
    assert!(
        during.contains(&("gpu0".into(), "draining".into())),
        "{during:?}"
    );
    for i in 0..6 {
        let id = format!("b{i}");
        h.wait_status(&id, "completed", Duration::from_secs(20))
            .await;
        assert!(!was_requeued(&h, &id).await, "{id} was requeued");
    }
    let gone = eventually(Duration::from_secs(5), || async {
        listed(&h).await == vec![("gpu1".to_string(), "up".to_string())]
    })
    .await;
    assert!(gone, "gpu0 still listed: {:?}", listed(&h).await);
    let health = h.get("/api/health", None).await.body;
    assert_eq!(
        health["services"]["comfyui"]["servers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let text = crate::metrics::scrape(&h).await;
    assert!(text.contains("comfydash_server_up{"), "{text}");
    assert!(!text.contains("server=\"gpu0\""), "stale gpu0 series");

    let before = s[0].executed_count();
    run_jobs(&h, "c", 4).await;
    assert_eq!(s[0].executed_count(), before, "a removed server got work");
    for i in 0..4 {
        assert_eq!(job(&h, &format!("c{i}")).await["server"], "gpu1");
    }
    // A removed server is still a ComfyUI: the guard keeps refusing it.
    let r = h
        .submit(json!({"job_id": "gone-hook", "prompt": "x", "webhook_url": format!("{}/h", s[0].url())}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn reload_moves_a_server_to_a_new_url_and_the_old_one_finishes_its_jobs() {
    let s = sims(2, 500).await;
    let h = daemon(&s[..1], |_| {}).await;
    h.submit(json!({"job_id": "m0", "prompt": slow(1)})).await;
    h.wait_status("m0", "processing", Duration::from_secs(5))
        .await;
    let notes = reload(&h, vec![server("gpu0", &s[1])]).await;
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("server gpu0: URL changed")),
        "{notes:?}"
    );
    // One entry per name, even while the old address drains.
    assert_eq!(listed(&h).await.len(), 1);
    h.wait_status("m0", "completed", Duration::from_secs(10))
        .await;
    assert!(!was_requeued(&h, "m0").await);
    assert_eq!(s[0].executed_count(), 1);
    run_jobs(&h, "n", 3).await;
    assert_eq!(s[0].executed_count(), 1, "the old address got new work");
    assert_eq!(s[1].executed_count(), 3);
    assert_eq!(
        listed(&h).await,
        vec![("gpu0".to_string(), "up".to_string())]
    );
}

#[tokio::test]
async fn a_server_taken_back_before_it_drained_keeps_its_jobs_and_mode() {
    let s = sims(2, 600).await;
    let h = daemon(&s, |_| {}).await;
    let r = h
        .post("/api/servers/gpu1/drain", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 200);
    h.submit(json!({"job_id": "t0", "prompt": slow(1)})).await;
    h.wait_status("t0", "processing", Duration::from_secs(5))
        .await;
    assert_eq!(job(&h, "t0").await["server"], "gpu0");
    let notes = reload(&h, vec![server("gpu1", &s[1])]).await;
    assert!(notes.iter().any(|n| n.starts_with("server gpu0 removed")));
    let notes = reload(&h, vec![server("gpu0", &s[0]), server("gpu1", &s[1])]).await;
    assert_eq!(notes, vec!["server gpu0 is back before it had drained"]);
    h.wait_status("t0", "completed", Duration::from_secs(10))
        .await;
    assert!(!was_requeued(&h, "t0").await);
    // Still one gpu0, taking work again; gpu1 kept its operator mode.
    run_jobs(&h, "u", 2).await;
    assert_eq!(s[0].executed_count(), 3);
    assert_eq!(
        listed(&h).await,
        vec![
            ("gpu0".to_string(), "up".to_string()),
            ("gpu1".to_string(), "draining".to_string())
        ]
    );
    // Reloading the same list changes nothing.
    let notes = reload(&h, vec![server("gpu0", &s[0]), server("gpu1", &s[1])]).await;
    assert!(notes.is_empty(), "{notes:?}");
}

#[tokio::test]
async fn jobs_left_on_a_server_no_longer_configured_are_requeued_at_start() {
    let s = sims(2, 0).await;
    s[0].set_hang(true);
    let mut h = daemon(&s[..1], |_| {}).await;
    h.submit(json!({"job_id": "o0", "prompt": slow(1)})).await;
    h.wait_status("o0", "processing", Duration::from_secs(5))
        .await;
    h.config.servers = vec![server("gpu9", &s[1])];
    h.restart().await;
    let done = h
        .wait_status("o0", "completed", Duration::from_secs(10))
        .await;
    assert_eq!(done["server"], "gpu9");
    let log = h
        .get("/api/jobs/o0/events", Some(READ_KEY))
        .await
        .body
        .to_string();
    assert!(log.contains("server gpu0 is no longer configured"), "{log}");
}

#[tokio::test]
async fn the_reload_endpoint_applies_the_source_or_says_why_not() {
    let s = sims(2, 0).await;
    let h = daemon(&s[..1], |_| {}).await;
    let r = h
        .post("/api/config/reload", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "reload_unavailable");
    let r = h
        .post("/api/config/reload", Some(SUBMIT_KEY), json!({}))
        .await;
    assert_eq!(r.status, 403);

    let next: Arc<Mutex<Result<Config, String>>> = Arc::new(Mutex::new(Ok(h.config.clone())));
    let source = next.clone();
    h.daemon
        .as_ref()
        .unwrap()
        .set_config_source(Arc::new(move || source.lock().unwrap().clone()));
    let r = h
        .post("/api/config/reload", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"applied": [], "warnings": []}));

    let mut c = h.config.clone();
    c.servers.push(server("gpu1", &s[1]));
    *next.lock().unwrap() = Ok(c);
    let r = h
        .post("/api/config/reload", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["applied"], json!(["server gpu1 added"]));
    h.wait_server_up().await;

    // A file that does not load changes nothing and says why.
    *next.lock().unwrap() = Err("config.toml: TOML parse error at line 3".into());
    let r = h
        .post("/api/config/reload", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "config_invalid");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{}",
        r.body
    );
    assert_eq!(listed(&h).await.len(), 2);
}
