use serde_json::{Value, json};

use crate::harness::*;

fn assert_rfc3339(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    chrono_free_check(s);
}

/// RFC 3339 UTC: `YYYY-MM-DDTHH:MM:SS(.fff)Z`.
fn chrono_free_check(s: &str) {
    let b = s.as_bytes();
    assert!(
        b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && s.ends_with('Z'),
        "not RFC 3339 UTC: {s}"
    );
}

#[tokio::test]
async fn ping_as_the_quickstart_calls_it() {
    let h = Harness::start().await;
    let r = h.get("/api/ping", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    assert_rfc3339(&r.body["timestamp"]);
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test]
async fn health_has_every_quickstart_field_and_no_secrets() {
    let h = Harness::start().await;
    let r = h.get("/api/health", None).await;
    assert_eq!(r.status, 200);
    let b = &r.body;
    assert!(["healthy", "degraded"].contains(&b["status"].as_str().unwrap()));
    assert!(["up", "down"].contains(&b["services"]["comfyui"]["status"].as_str().unwrap()));
    assert_eq!(b["services"]["comfyui"]["servers"][0]["name"], "gpu0");
    assert_eq!(b["services"]["database"]["status"], "up");
    for k in ["pending", "processing", "completed", "failed", "cancelled"] {
        assert!(b["statistics"][k].is_u64(), "statistics.{k}");
    }
    assert_eq!(b["statistics"]["paused"], false);
    assert_eq!(b["statistics"]["queueHealth"], "good");
    let text = b.to_string();
    assert!(!text.contains("http://"), "health leaks a URL: {text}");
    assert!(!text.contains("key"), "health mentions keys: {text}");
    // The ComfyUI address is dead: after two failed probes the server is down and health degraded.
    assert!(
        eventually(std::time::Duration::from_secs(5), || async {
            let b = h.get("/api/health", None).await.body;
            b["services"]["comfyui"]["status"] == "down"
                && b["services"]["comfyui"]["servers"][0]["status"] == "down"
                && b["status"] == "degraded"
        })
        .await
    );
    assert_eq!(h.get("/readyz", None).await.status, 503);
    assert_eq!(h.get("/livez", None).await.status, 200);
}

#[tokio::test]
async fn telemetry_has_every_quickstart_field() {
    let h = Harness::start().await;
    for key in [SUBMIT_KEY, READ_KEY, ADMIN_KEY] {
        let r = h.get("/api/telemetry", Some(key)).await;
        assert_eq!(r.status, 200);
    }
    // Prometheus can only send a bearer token.
    let r = h
        .http
        .get(format!("{}/api/telemetry", h.url))
        .bearer_auth(SUBMIT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["total"], 0);
    for k in ["pending", "processing", "completed", "failed", "cancelled"] {
        assert_eq!(t["jobs"]["byStatus"][k], 0);
    }
    let perf = &t["jobs"]["performance"];
    // Never null: the quick-start does parseFloat(x) / 100.
    assert_eq!(perf["successRate"].as_f64(), Some(100.0));
    for k in [
        "averageProcessingTime",
        "p50ProcessingTime",
        "p95ProcessingTime",
    ] {
        assert!(perf[k].is_number(), "{k}");
    }
    for k in ["total", "delivered", "failed", "pending"] {
        assert!(t["webhooks"][k].is_u64(), "webhooks.{k}");
    }
    assert_eq!(t["webhooks"]["successRate"].as_f64(), Some(100.0));
    assert_eq!(t["queue"]["size"], 0);
    assert_eq!(t["queue"]["health"], "healthy");
    assert_eq!(t["queue"]["paused"], false);
    assert!(t["uptimeSeconds"].is_u64());
    assert!(t["version"].is_string());
    assert!(t["external"].is_object());
}

#[tokio::test]
async fn telemetry_post_as_the_quickstart_curl() {
    let h = Harness::start().await;
    // curl -X POST .../api/telemetry -H "Content-Type: application/json" -H "X-API-Key: ..." -d '{"source":"test","metrics":{"test":1}}'
    let r = h
        .call(
            "POST",
            "/api/telemetry",
            Some(SUBMIT_KEY),
            Some(r#"{"source":"test","metrics":{"test":1}}"#.into()),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert!(r.body["id"].is_u64());
    let t = h.telemetry().await;
    assert_eq!(t["external"]["test"]["test"]["value"], 1.0);
    assert_rfc3339(&t["external"]["test"]["test"]["timestamp"]);
    let r = h
        .post(
            "/api/telemetry",
            Some(SUBMIT_KEY),
            json!({"source":"test","metrics":{"test":2.5,"gpu_temp":71},"tags":{"host":"a"},"timestamp":"2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 202);
    let hist = h
        .get("/api/telemetry/external?source=test", Some(READ_KEY))
        .await
        .body;
    let points = hist["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    // The older timestamp is stored in history but does not replace the newer latest value.
    assert_eq!(
        h.telemetry().await["external"]["test"]["test"]["value"],
        1.0
    );
    assert_eq!(
        h.telemetry().await["external"]["test"]["gpu_temp"]["value"],
        71.0
    );
    let since = h
        .get(
            "/api/telemetry/external?source=test&since=2026-06-01T00:00:00Z",
            Some(READ_KEY),
        )
        .await
        .body;
    assert_eq!(since["points"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn submit_as_the_quickstart_does() {
    let h = Harness::start().await;
    let body = json!({
        "job_id": "lensia-1",
        "prompt": "a red bicycle at dawn",
        "input_image_url": "https://cdn.lensia.ai/in/1.png",
        "webhook_url": "https://www.lensia.ai/api/jobs/webhook",
        "params": {"seed": 7, "steps": 20}
    });
    let r = h.submit(body.clone()).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["job_id"], "lensia-1");
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["position"], 0);
    assert_rfc3339(&r.body["created_at"]);
    assert_eq!(r.headers["location"], "/api/jobs/lensia-1");
    let job = h.get("/api/jobs/lensia-1", Some(SUBMIT_KEY)).await.body;
    assert_eq!(job["prompt"], "a red bicycle at dawn");
    assert_eq!(job["params"]["seed"], 7);
    assert_eq!(job["webhook_url"], "https://www.lensia.ai/api/jobs/webhook");
    assert_eq!(job["attempt"], 1);
    // undefined fields in JS become absent, null ones null: both mean absent.
    let r = h
        .submit(json!({"job_id": 99, "prompt": "x", "input_image_url": null, "webhook_url": null, "params": null}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["job_id"], "99");
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["total"], 2);
    assert_eq!(t["jobs"]["byStatus"]["pending"], 2);
    assert_eq!(t["queue"]["size"], 2);
    let health = h.get("/api/health", None).await.body;
    assert_eq!(health["statistics"]["pending"], 2);
    assert_eq!(r.headers["x-comfydash-protocol"], "1");
}
