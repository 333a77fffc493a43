use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;

use crate::common::{Frame, Harness, events, f1, png};

#[tokio::test]
async fn restart_forgets_memory_and_keeps_files() {
    let h = Harness::start().await;
    let port = h.sim.addr().port();
    h.upload("keep.png", png(2, 2, |_, _| [9, 9, 9]), &[]).await;
    h.submit(json!({"prompt": f1(1, "kept"), "prompt_id": "before"}))
        .await;
    h.wait_history("before").await;
    let preview = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 2, "color": 2}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    });
    h.submit(json!({"prompt": preview, "prompt_id": "preview"}))
        .await;
    let temp_items = h.wait_history("preview").await["outputs"]["2"]["images"].clone();
    let temp_name = temp_items[0]["filename"]
        .as_str()
        .expect("name")
        .to_string();
    assert_eq!(temp_items.as_array().map(Vec::len), Some(2));
    assert_eq!(temp_items[0]["type"], "temp");
    assert!(
        temp_name.starts_with("ComfyUI_temp_") && temp_name.ends_with("_00001_.png"),
        "{temp_name}"
    );
    assert!(h.sim.temp_dir().join(&temp_name).is_file());
    h.sim.set_hang(true);
    h.submit(json!({"prompt": f1(2, "lost"), "prompt_id": "lost"}))
        .await;
    h.submit(json!({"prompt": f1(3, "pending"), "prompt_id": "pending"}))
        .await;
    let mut ws = h.ws("r").await;
    ws.next_json().await;

    h.sim.restart().await;
    let frames = ws.drain(Duration::from_secs(2)).await;
    assert!(
        matches!(frames.last(), Some(Frame::Closed)),
        "old sockets are dropped: {frames:?}"
    );
    assert_eq!(h.sim.addr().port(), port);
    assert_eq!(h.get_json("/api/history").await, json!({}));
    assert_eq!(
        h.get_json("/api/queue").await,
        json!({"queue_running": [], "queue_pending": []})
    );
    assert_eq!(h.sim.history_len(), 0);
    assert!(
        !h.sim.temp_dir().join(&temp_name).exists(),
        "temp/ is wiped"
    );
    assert!(h.sim.output_dir().join("kept_00001_.png").is_file());
    assert!(h.sim.input_dir().join("keep.png").is_file());
    let resp = h.submit(json!({"prompt": f1(1, "kept")})).await;
    assert_eq!(resp["number"], 0, "the priority counter starts again");
    let entry = h
        .wait_history(resp["prompt_id"].as_str().expect("id"))
        .await;
    assert_eq!(
        entry["outputs"]["2"]["images"][0]["filename"], "kept_00002_.png",
        "the cache is gone, files are not"
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn refuse_connections_then_listen_on_the_same_port() {
    let h = Harness::start().await;
    let addr = h.sim.addr();
    let mut ws = h.ws("gone").await;
    ws.next_json().await;
    h.sim.set_refuse_connections(true);
    let err = TcpStream::connect(addr).await.expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(matches!(
        ws.drain(Duration::from_secs(2)).await.last(),
        Some(Frame::Closed)
    ));
    h.sim.set_refuse_connections(false);
    assert_eq!(h.sim.addr(), addr);
    let fresh = reqwest::Client::new();
    let resp = fresh
        .get(format!("{}/api/system_stats", h.sim.url()))
        .send()
        .await
        .expect("listening again");
    assert_eq!(resp.status(), 200);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn unresponsive_server_accepts_but_never_answers() {
    let h = Harness::start().await;
    h.sim.set_unresponsive(true);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let err = quick
        .get(format!("{}/api/system_stats", h.sim.url()))
        .send()
        .await
        .expect_err("hangs");
    assert!(err.is_timeout(), "{err}");
    let stats = quick
        .get(format!("{}/sim/stats", h.sim.url()))
        .send()
        .await
        .expect("control still answers");
    assert_eq!(stats.status(), 200);
    let (status, _) = h.post("/sim/config", &json!({"unresponsive": false})).await;
    assert_eq!(status, 200);
    let resp = quick
        .get(format!("{}/api/system_stats", h.sim.url()))
        .send()
        .await
        .expect("answers again");
    assert_eq!(resp.status(), 200);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn hang_freezes_the_running_job_until_released() {
    let h = Harness::start().await;
    let mut ws = h.ws("hang").await;
    ws.next_json().await;
    h.sim.set_hang(true);
    h.submit(json!({"prompt": f1(6, "hang"), "client_id": "hang", "prompt_id": "hang"}))
        .await;
    h.wait_running("hang").await;
    h.post("/api/interrupt", &json!({"prompt_id": "hang"}))
        .await;
    let frames = ws.drain(Duration::from_millis(200)).await;
    let seen: Vec<String> = events(&frames).into_iter().map(|(t, _)| t).collect();
    assert!(
        !seen.iter().any(|t| t == "executing"),
        "no node starts while hung: {seen:?}"
    );
    assert_eq!(h.get_json("/api/history/hang").await, json!({}));
    h.sim.set_hang(false);
    let evs = events(&ws.until_done("hang").await);
    assert!(
        evs.iter().any(|(t, _)| t == "execution_interrupted"),
        "the interrupt lands once released"
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn control_routes_steer_the_simulator() {
    let h = Harness::start().await;
    let (status, body) = h
        .post(
            "/sim/config",
            &json!({"exec_time_ms": 3, "failure_rate": 1.0}),
        )
        .await;
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(config["failure_rate"], 1.0);
    h.submit(json!({"prompt": f1(1, "ctl"), "prompt_id": "ctl"}))
        .await;
    assert_eq!(h.wait_history("ctl").await["status"]["status_str"], "error");
    let stats = h.get_json("/sim/stats").await;
    assert_eq!(stats["history_len"], 1);
    assert_eq!(stats["received_prompts"], 1);
    let (status, _) = h.post("/sim/config", &json!({"bogus": 1})).await;
    assert_eq!(status, 400);
    let (status, _) = h.post("/sim/restart", &json!({})).await;
    assert_eq!(status, 202);
    let fresh = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + crate::common::PATIENCE;
    loop {
        let resp = fresh.get(format!("{}/sim/stats", h.sim.url())).send().await;
        if let Ok(resp) = resp
            && resp
                .json::<serde_json::Value>()
                .await
                .is_ok_and(|s| s["history_len"] == 0)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "restart via /sim/restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.sim.shutdown().await;
}
