use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// `promtool` from Debian's `prometheus` package; `.ci/run` installs it, so under CI it must exist.
fn promtool() -> Option<&'static str> {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var("CI").is_err(), "promtool is missing under CI");
        eprintln!("promtool not installed; skipping (apt-get install prometheus)");
        return None;
    }
    Some("promtool")
}

fn value_of(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no series {series}"))
        .trim()
        .parse()
        .unwrap()
}

pub(crate) async fn scrape(h: &Harness) -> String {
    let r = h
        .http
        .get(format!("{}/metrics", h.url))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_pass_promtool_and_agree_with_telemetry() {
    let (h, _sim) = with_sim(comfydash_sim::SimConfig::default(), |_| {}).await;
    for i in 0..3 {
        h.submit(json!({"job_id": format!("m{i}"), "prompt": "metrics", "params": {"steps": 2}}))
            .await;
    }
    let bad = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
                     "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}});
    h.submit(json!({"job_id": "mbad", "prompt": bad})).await;
    h.submit(json!({"job_id": "mcancel", "prompt": "x"})).await;
    h.post("/api/jobs/mcancel/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    for i in 0..3 {
        h.wait_status(&format!("m{i}"), "completed", Duration::from_secs(10))
            .await;
    }
    h.wait_status("mbad", "failed", Duration::from_secs(10))
        .await;
    h.post(
        "/api/telemetry",
        Some(SUBMIT_KEY),
        json!({"source": "gpu-box", "metrics": {"temp_c": 71.5}}),
    )
    .await;
    h.post("/api/queue/pause", Some(ADMIN_KEY), json!({})).await;
    h.submit(json!({"job_id": "mwait", "prompt": "x"})).await;

    let text = scrape(&h).await;
    let t = h.telemetry().await;
    // The quick-start's six names, its values.
    assert_eq!(
        value_of(&text, "dashboard_jobs_total"),
        t["jobs"]["total"].as_f64().unwrap()
    );
    assert_eq!(
        value_of(&text, "dashboard_jobs_pending"),
        t["jobs"]["byStatus"]["pending"].as_f64().unwrap()
    );
    assert_eq!(
        value_of(&text, "dashboard_jobs_processing"),
        t["jobs"]["byStatus"]["processing"].as_f64().unwrap()
    );
    assert_eq!(
        value_of(&text, "dashboard_jobs_completed"),
        t["jobs"]["byStatus"]["completed"].as_f64().unwrap()
    );
    assert_eq!(value_of(&text, "dashboard_queue_health"), 0.0);
    assert_eq!(
        value_of(&text, "dashboard_webhook_success_rate"),
        t["webhooks"]["successRate"].as_f64().unwrap() / 100.0
    );
    assert!(text.contains("# TYPE dashboard_jobs_completed counter\n"));
    assert!(text.contains(
        "# HELP dashboard_queue_health Queue health status (0=healthy, 1=warning, 2=critical)\n"
    ));
    // comfydash_* by convention.
    assert_eq!(
        value_of(&text, "comfydash_jobs_finished_total{status=\"completed\"}"),
        3.0
    );
    assert_eq!(
        value_of(&text, "comfydash_jobs_finished_total{status=\"failed\"}"),
        1.0
    );
    assert_eq!(
        value_of(&text, "comfydash_jobs_finished_total{status=\"cancelled\"}"),
        1.0
    );
    assert_eq!(value_of(&text, "comfydash_jobs{status=\"pending\"}"), 1.0);
    assert_eq!(value_of(&text, "comfydash_queue_paused"), 1.0);
    assert_eq!(
        value_of(&text, "comfydash_job_processing_seconds_count"),
        3.0
    );
    assert_eq!(
        value_of(&text, "comfydash_server_up{server=\"gpu0\",status=\"up\"}"),
        1.0
    );
    assert_eq!(
        value_of(
            &text,
            "comfydash_external_metric{metric=\"temp_c\",source=\"gpu-box\"}"
        ),
        71.5
    );
    assert!(text.contains("comfydash_server_vram_bytes{kind=\"total\",server=\"gpu0\"}"));
    assert!(text.contains(
        "comfydash_http_requests_total{method=\"POST\",route=\"/api/jobs\",status=\"202\"}"
    ));
    assert!(text.contains("comfydash_build_info{version="));

    let Some(promtool) = promtool() else { return };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Only the quick-start's legacy names may draw lint remarks (a counter without _total).
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with("dashboard_"))
        .collect();
    assert!(problems.is_empty(), "promtool: {report}");
}

#[tokio::test]
async fn metrics_need_a_key_unless_open() {
    let h = Harness::start().await;
    assert_eq!(h.get("/metrics", None).await.status, 401);
    let r = h
        .http
        .get(format!("{}/metrics", h.url))
        .header("X-API-Key", SUBMIT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let open = Harness::with(|c| c.metrics.open = true).await;
    let r = open
        .http
        .get(format!("{}/metrics", open.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn prometheus_and_grafana_assets_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana/comfydash.json")).unwrap(),
    )
    .unwrap();
    assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
    assert_eq!(dash["templating"]["list"][0]["type"], "datasource");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_string())
        })
        .collect();
    for needle in [
        "up{job=\"dashboard\"}",
        "dashboard_jobs_pending",
        "dashboard_webhook_success_rate * 100",
        "comfydash_job_processing_seconds_bucket",
        "comfydash_server_vram_bytes",
        "ALERTS",
    ] {
        assert!(
            exprs.iter().any(|e| e.contains(needle)),
            "no panel uses {needle}"
        );
    }
    for p in dash["panels"].as_array().unwrap() {
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {} has a fixed data source",
            p["title"]
        );
    }
    let queue = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Queue Size")
        .unwrap();
    let steps: Vec<f64> = queue["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(steps, [10.0, 50.0, 100.0]);

    let Some(promtool) = promtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("comfydash.key");
    std::fs::write(&key, "k").unwrap();
    let config = std::fs::read_to_string(root.join("prometheus/prometheus.yml")).unwrap();
    assert!(config.contains("job_name: dashboard"));
    std::fs::write(
        dir.path().join("prometheus.yml"),
        config.replace("/etc/prometheus/comfydash.key", key.to_str().unwrap()),
    )
    .unwrap();
    std::fs::copy(
        root.join("prometheus/comfydash-rules.yml"),
        dir.path().join("comfydash-rules.yml"),
    )
    .unwrap();
    for args in [
        vec!["check", "config", "prometheus.yml"],
        vec!["check", "rules", "comfydash-rules.yml"],
    ] {
        let out = Command::new(promtool)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rules = std::fs::read_to_string(root.join("prometheus/comfydash-rules.yml")).unwrap();
    assert!(
        rules.contains("up{job=\"dashboard\"} == 0"),
        "no rule for the daemon itself being down"
    );
}

#[test]
fn systemd_hears_ready_and_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let _p = Proc::spawn(
        &data,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !(got.iter().any(|m: &String| m == "READY=1") && got.iter().any(|m| m == "WATCHDOG=1")) {
        let n = sock
            .recv(&mut buf)
            .expect("no notification from the daemon");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}
