use std::time::Duration;

use serde_json::json;

use crate::common::{Frame, Harness, Ws, events, f1};

fn types(frames: &[Frame]) -> Vec<String> {
    events(frames).into_iter().map(|(t, _)| t).collect()
}

#[tokio::test]
async fn recipient_rules() {
    let h = Harness::start().await;
    let mut a = h.ws("a").await;
    let mut b = h.ws("b").await;
    a.next_json().await;
    b.next_json().await;
    let blur = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "anon"}}
    });
    // No client_id: execution events go nowhere, status and progress go to everyone.
    h.submit(json!({"prompt": blur, "prompt_id": "anon"})).await;
    h.wait_history("anon").await;
    for ws in [&mut a, &mut b] {
        let seen = types(&ws.drain(Duration::from_millis(100)).await);
        assert!(
            seen.iter()
                .all(|t| ["status", "progress", "progress_state"].contains(&t.as_str())),
            "{seen:?}"
        );
        assert!(seen.contains(&"progress".to_string()) && seen.contains(&"status".to_string()));
    }
    // client_id "a": b sees only status broadcasts.
    let mut owned = blur.clone();
    // A new colour, or the cache would serve EmptyImage and ImageBlur without progress.
    owned["1"]["inputs"]["color"] = json!(2);
    h.submit(json!({"prompt": owned, "client_id": "a", "prompt_id": "owned"}))
        .await;
    let seen_a = types(&a.until_done("owned").await);
    for t in [
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "executed",
        "execution_success",
    ] {
        assert!(seen_a.contains(&t.to_string()), "a misses {t}: {seen_a:?}");
    }
    let seen_b = types(&b.drain(Duration::from_millis(100)).await);
    assert!(seen_b.iter().all(|t| t == "status"), "{seen_b:?}");
    h.sim.shutdown().await;
}

#[tokio::test]
async fn reconnect_with_same_id_orphans_the_new_socket() {
    let h = Harness::start().await;
    let mut old = h.ws("dup").await;
    old.next_json().await;
    let mut new = h.ws("dup").await;
    assert_eq!(new.next_json().await["data"]["sid"], "dup");
    assert_eq!(h.sim.ws_clients(), 1);
    old.close().await;
    h.wait_until("the old socket's close to delete the entry", || {
        h.sim.ws_clients() == 0
    })
    .await;
    assert_eq!(
        h.sim.ws_connections(),
        1,
        "the new socket is still connected"
    );
    h.submit(json!({"prompt": f1(4, "orphan"), "client_id": "dup", "prompt_id": "orphan"}))
        .await;
    h.wait_history("orphan").await;
    let frames = new.drain(Duration::from_millis(100)).await;
    assert!(
        frames.is_empty(),
        "an orphaned socket hears nothing, not even status: {frames:?}"
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn reconnect_during_a_job_gets_the_current_node() {
    let h = Harness::start().await;
    h.sim.set_exec_time(Duration::from_millis(800));
    let mut first = h.ws("rc").await;
    first.next_json().await;
    h.submit(json!({"prompt": f1(5, "rc"), "client_id": "rc", "prompt_id": "rc"}))
        .await;
    loop {
        let v = first.next_json().await;
        if v["type"] == "executing" && v["data"]["node"] == "1" {
            break;
        }
    }
    let mut second = h.ws("rc").await;
    let hello = second.next_json().await;
    assert_eq!(hello["data"]["status"]["exec_info"]["queue_remaining"], 1);
    assert_eq!(
        second.next_json().await,
        json!({"type": "executing", "data": {"node": "1"}})
    );
    second.until_done("rc").await;
    h.sim.shutdown().await;
}

#[tokio::test]
async fn generated_sid_and_feature_flags() {
    let h = Harness::start().await;
    let mut ws = Ws::connect(&format!("ws://{}/api/ws", h.sim.addr())).await;
    let hello = ws.next_json().await;
    let sid = hello["data"]["sid"].as_str().expect("sid");
    assert_eq!(sid.len(), 32);
    assert!(sid.chars().all(|c| c.is_ascii_hexdigit()));
    ws.send_json(json!({"type": "feature_flags", "data": {"supports_preview_metadata": true}}))
        .await;
    assert_eq!(
        ws.next_json().await,
        json!({"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600}})
    );
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 4, "height": 4, "batch_size": 1, "color": 9}},
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}
    });
    h.submit(json!({"prompt": prompt, "client_id": sid, "prompt_id": "meta"}))
        .await;
    let frames = ws.until_done("meta").await;
    let binary = frames
        .iter()
        .find_map(|f| {
            if let Frame::Binary(b) = f {
                Some(b)
            } else {
                None
            }
        })
        .expect("frame");
    assert_eq!(
        &binary[..4],
        &[0, 0, 0, 4],
        "type 4 after declaring supports_preview_metadata"
    );
    let len = u32::from_be_bytes([binary[4], binary[5], binary[6], binary[7]]) as usize;
    let meta: serde_json::Value = serde_json::from_slice(&binary[8..8 + len]).expect("metadata");
    assert_eq!(
        (meta["node_id"].as_str(), meta["prompt_id"].as_str()),
        (Some("2"), Some("meta"))
    );
    h.sim.shutdown().await;
}
