use std::time::Duration;

use comfydash_sim::{Sim, SimConfig};
use serde_json::{Value, json};

use crate::harness::*;

pub(crate) fn slow(color: u32) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "s"}}
    })
}

pub(crate) async fn sims(n: usize, ms: u64) -> Vec<Sim> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(
            Sim::start(SimConfig {
                exec_time: Duration::from_millis(ms),
                ..SimConfig::default()
            })
            .await
            .unwrap(),
        );
    }
    v
}

pub(crate) async fn daemon(
    sims: &[Sim],
    f: impl FnOnce(&mut comfydash_daemon::config::Config),
) -> Harness {
    let urls: Vec<String> = sims.iter().map(Sim::url).collect();
    let h = Harness::with(|c| {
        c.servers = urls
            .iter()
            .enumerate()
            .map(|(i, u)| comfydash_daemon::config::ServerConfig {
                name: format!("gpu{i}"),
                url: u.clone(),
                restart_command: None,
            })
            .collect();
        fast_worker(c);
        f(c);
    })
    .await;
    h.wait_server_up().await;
    h
}

#[tokio::test]
async fn two_servers_share_the_load() {
    let s = sims(2, 100).await;
    let h = daemon(&s, |_| {}).await;
    for i in 0..12 {
        h.submit(json!({"job_id": format!("l{i}"), "prompt": slow(i)}))
            .await;
    }
    for i in 0..12 {
        h.wait_status(&format!("l{i}"), "completed", Duration::from_secs(20))
            .await;
    }
    let (a, b) = (s[0].executed_count(), s[1].executed_count());
    assert_eq!(a + b, 12);
    assert!(a >= 3 && b >= 3, "unbalanced: {a} vs {b}");
}

#[tokio::test]
async fn a_server_dying_mid_run_hands_its_jobs_to_the_other() {
    let s = sims(2, 400).await;
    let h = daemon(&s, |_| {}).await;
    for i in 0..6 {
        h.submit(json!({"job_id": format!("d{i}"), "prompt": slow(100 + i)}))
            .await;
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            let servers = h.get("/api/servers", Some(READ_KEY)).await.body;
            servers["servers"][0]["in_flight"].as_u64().unwrap_or(0) > 0
        })
        .await
    );
    s[0].set_refuse_connections(true);
    for i in 0..6 {
        h.wait_status(&format!("d{i}"), "completed", Duration::from_secs(20))
            .await;
    }
    let health = h.get("/api/health", None).await.body;
    assert_eq!(health["services"]["comfyui"]["status"], "up");
    assert_eq!(
        health["services"]["comfyui"]["servers"][0]["status"],
        "down"
    );
    assert_eq!(health["status"], "degraded");
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["byStatus"]["completed"], 6);
    let mut requeued = 0;
    for i in 0..6 {
        let log = h
            .get(&format!("/api/jobs/d{i}/events"), Some(READ_KEY))
            .await
            .body;
        if log.to_string().contains("requeued") {
            requeued += 1;
            assert_eq!(
                h.get(&format!("/api/jobs/d{i}"), Some(READ_KEY)).await.body["server"],
                "gpu1"
            );
        }
    }
    assert!(requeued >= 1);
}

#[tokio::test]
async fn drain_disable_enable_and_the_mode_survives_a_restart() {
    let s = sims(2, 300).await;
    let mut h = daemon(&s, |_| {}).await;
    h.submit(json!({"job_id": "x0", "prompt": slow(1)})).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.get("/api/jobs/x0", Some(READ_KEY)).await.body["status"] == "processing"
        })
        .await
    );
    let on = h.get("/api/jobs/x0", Some(READ_KEY)).await.body["server"]
        .as_str()
        .unwrap()
        .to_string();
    let r = h
        .post(
            &format!("/api/servers/{on}/drain"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "draining");
    for i in 1..5 {
        h.submit(json!({"job_id": format!("x{i}"), "prompt": slow(1 + i)}))
            .await;
    }
    for i in 0..5 {
        h.wait_status(&format!("x{i}"), "completed", Duration::from_secs(20))
            .await;
    }
    // In-flight finished on the drained server; everything new went to the other one.
    assert_eq!(
        h.get("/api/jobs/x0", Some(READ_KEY)).await.body["server"],
        on.as_str()
    );
    for i in 1..5 {
        assert_ne!(
            h.get(&format!("/api/jobs/x{i}"), Some(READ_KEY)).await.body["server"],
            on.as_str()
        );
    }
    assert_eq!(h.get("/api/health", None).await.body["status"], "healthy");
    let r = h
        .post(
            &format!("/api/servers/{on}/disable"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "disabled");
    h.restart().await;
    h.wait_server_up_or(&["disabled", "up"]).await;
    let servers = h.get("/api/servers", Some(READ_KEY)).await.body;
    let me = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == on.as_str())
        .unwrap()
        .clone();
    assert_eq!(me["status"], "disabled");
    let r = h
        .post(
            &format!("/api/servers/{on}/enable"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    assert_eq!(r.body["status"], "up");
    let r = h
        .post(
            &format!("/api/servers/{on}/free"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = h
        .post("/api/servers/nope/drain", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["error"]["code"].as_str()),
        (404, Some("server_not_found"))
    );
    let r = h
        .post(
            &format!("/api/servers/{on}/drain"),
            Some(SUBMIT_KEY),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_hanging_prompt_trips_the_watchdog_and_the_restart_command_runs() {
    let s = sims(2, 50).await;
    let restart = format!(
        "python3 -c \"import urllib.request as u; u.urlopen(u.Request('{}/sim/restart', method='POST'))\"",
        s[0].url()
    );
    let h = daemon(&s, |c| {
        c.servers[0].restart_command = Some(restart);
        c.watchdog.interrupt_grace = Duration::from_millis(300);
        c.watchdog.restart_cooldown = Duration::from_secs(60);
    })
    .await;
    // Only gpu0 takes the job; then it hangs.
    h.post("/api/servers/gpu1/disable", Some(ADMIN_KEY), json!({}))
        .await;
    s[0].set_hang(true);
    h.submit(json!({"job_id": "hang", "prompt": slow(7), "timeout_s": 1}))
        .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.get("/api/jobs/hang", Some(READ_KEY)).await.body["started_at"].is_string()
        })
        .await
    );
    h.post("/api/servers/gpu1/enable", Some(ADMIN_KEY), json!({}))
        .await;
    // Timeout → interrupt → ignored → stuck → requeued to gpu1 → completed.
    let job = h
        .wait_status("hang", "completed", Duration::from_secs(20))
        .await;
    assert_eq!(job["server"], "gpu1");
    let log = h
        .get("/api/jobs/hang/events", Some(READ_KEY))
        .await
        .body
        .to_string();
    assert!(
        log.contains("watchdog") && log.contains("interrupt_sent"),
        "{log}"
    );
    // The restart command restarted the simulator (which clears the hang); gpu0 rejoins.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let sv = h.get("/api/servers", Some(READ_KEY)).await.body;
            sv["servers"][0]["status"] == "up"
        })
        .await,
        "gpu0 did not recover"
    );
    h.submit(json!({"job_id": "after", "prompt": slow(8)}))
        .await;
    h.wait_status("after", "completed", Duration::from_secs(10))
        .await;
}

#[test]
fn kill_9_mid_run_with_two_servers_loses_and_duplicates_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(sims(2, 150));
    let urls: Vec<String> = s.iter().map(Sim::url).collect();
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let mut p = Proc::spawn_configured(dir.path(), &urls, FAST_TOML);
    let n = 20;
    for i in 0..n {
        let r = http
            .post(format!("{}/api/jobs", p.url))
            .header("X-API-Key", SUBMIT_KEY)
            .json(&json!({"job_id": format!("k{i}"), "prompt": slow(200 + i)}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let get = |url: &str, path: &str| -> Value {
        http.get(format!("{url}{path}"))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while get(&p.url, "/api/telemetry")["jobs"]["byStatus"]["completed"]
        .as_u64()
        .unwrap()
        < 3
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    p.kill9();
    let p = Proc::spawn_configured(dir.path(), &urls, FAST_TOML);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        let t = get(&p.url, "/api/telemetry");
        if t["jobs"]["byStatus"]["completed"] == n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not all jobs completed: {t}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = get(&p.url, "/api/telemetry");
    assert_eq!(t["jobs"]["total"], n);
    for i in 0..n {
        let log = get(&p.url, &format!("/api/jobs/k{i}/events"));
        let completions = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["to"] == "completed")
            .count();
        assert_eq!(completions, 1, "job k{i} completed {completions} times");
        let job = get(&p.url, &format!("/api/jobs/k{i}"));
        let out = &job["outputs"][0];
        let file = http
            .get(format!("{}/api/jobs/k{i}/outputs/0", p.url))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .unwrap();
        assert_eq!(file.status(), 200, "output of k{i} missing");
        assert_eq!(
            file.bytes().unwrap().len() as u64,
            out["size"].as_u64().unwrap()
        );
    }
}
