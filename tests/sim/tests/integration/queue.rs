use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Harness, events, f1};

#[tokio::test]
async fn priority_follows_number_front_and_counter() {
    let h = Harness::start().await;
    let mut ws = h.ws("prio").await;
    ws.next_json().await;
    h.sim.set_hang(true);
    let submit = |id: &str, extra: Value| {
        let mut body = json!({"prompt": f1(id.len() as u32 + id.as_bytes()[0] as u32, id), "client_id": "prio", "prompt_id": id});
        body.as_object_mut()
            .expect("obj")
            .extend(extra.as_object().expect("obj").clone());
        body
    };
    let a = h.submit(submit("A", json!({}))).await;
    h.wait_running("A").await;
    let b = h.submit(submit("B", json!({}))).await;
    let c = h.submit(submit("C", json!({"front": true}))).await;
    let d = h.submit(submit("D", json!({}))).await;
    let e = h.submit(submit("E", json!({"number": -100}))).await;
    let numbers: Vec<&Value> = [&a, &b, &c, &d, &e].iter().map(|r| &r["number"]).collect();
    assert_eq!(
        numbers,
        [&json!(0), &json!(1), &json!(-2), &json!(3), &json!(-100.0)]
    );
    let q = h.get_json("/api/queue").await;
    assert_eq!(q["queue_running"][0][1], "A");
    assert_eq!(
        q["queue_pending"][0][1], "E",
        "the heap's first item runs next"
    );
    assert_eq!(q["queue_pending"][0].as_array().map(Vec::len), Some(5));
    assert_eq!(
        h.get_json("/api/prompt").await,
        json!({"exec_info": {"queue_remaining": 5}})
    );
    h.sim.set_hang(false);
    let mut order = Vec::new();
    while order.len() < 5 {
        let v = ws.next_json().await;
        if v["type"] == "execution_start" {
            order.push(v["data"]["prompt_id"].as_str().expect("id").to_string());
        }
    }
    assert_eq!(order, ["A", "E", "C", "B", "D"]);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn queue_delete_and_clear_leave_no_trace() {
    let h = Harness::start().await;
    let mut ws = h.ws("del").await;
    ws.next_json().await;
    h.sim.set_hang(true);
    h.submit(json!({"prompt": f1(1, "a"), "prompt_id": "A"}))
        .await;
    h.wait_running("A").await;
    h.submit(json!({"prompt": f1(2, "b"), "prompt_id": "B"}))
        .await;
    h.submit(json!({"prompt": f1(3, "c"), "prompt_id": "C"}))
        .await;
    ws.drain(Duration::from_millis(50)).await;

    let (status, body) = h
        .post("/api/queue", &json!({"delete": ["B", "A", "unknown"]}))
        .await;
    assert_eq!((status.as_u16(), body.as_str()), (200, ""));
    let q = h.get_json("/api/queue").await;
    assert_eq!(
        q["queue_running"][0][1], "A",
        "the running job is never deleted"
    );
    let pending: Vec<&Value> = q["queue_pending"]
        .as_array()
        .expect("pending")
        .iter()
        .map(|j| &j[1])
        .collect();
    assert_eq!(pending, [&json!("C")]);
    let evs = events(&ws.drain(Duration::from_millis(50)).await);
    assert_eq!(
        evs,
        [(
            "status".to_string(),
            json!({"status": {"exec_info": {"queue_remaining": 2}}})
        )]
    );

    h.post("/api/queue", &json!({"clear": true})).await;
    assert_eq!(h.get_json("/api/queue").await["queue_pending"], json!([]));
    h.sim.set_hang(false);
    h.wait_history("A").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(h.get_json("/api/history/B").await, json!({}));
    assert_eq!(h.get_json("/api/history/C").await, json!({}));
    assert_eq!(h.sim.history_len(), 1);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn interrupt_running_job_between_nodes() {
    let h = Harness::start().await;
    h.sim.set_exec_time(Duration::from_millis(600));
    let mut ws = h.ws("int").await;
    ws.next_json().await;
    h.submit(json!({"prompt": f1(7, "long"), "client_id": "int", "prompt_id": "long"}))
        .await;
    h.submit(json!({"prompt": f1(8, "queued"), "client_id": "int", "prompt_id": "queued"}))
        .await;
    loop {
        let v = ws.next_json().await;
        if v["type"] == "executing" && v["data"]["node"] == "1" {
            break;
        }
    }
    // Interrupting a queued job does nothing.
    let (status, _) = h
        .post("/api/interrupt", &json!({"prompt_id": "queued"}))
        .await;
    assert_eq!(status, 200);
    let (status, body) = h
        .post("/api/interrupt", &json!({"prompt_id": "long"}))
        .await;
    assert_eq!((status.as_u16(), body.as_str()), (200, ""));
    h.sim.set_exec_time(Duration::from_millis(4));
    let evs: Vec<(String, Value)> = events(&ws.until_done("long").await)
        .into_iter()
        .filter(|(t, _)| t != "progress_state" && t != "status")
        .collect();
    let names: Vec<&str> = evs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["executing", "execution_interrupted", "executing"],
        "{evs:?}"
    );
    assert_eq!(
        evs[0].1["node"], "2",
        "executing for the next node goes out before the interrupt is raised"
    );
    let interrupted = &evs[1].1;
    assert_eq!(
        (&interrupted["node_id"], &interrupted["node_type"]),
        (&json!("2"), &json!("SaveImage"))
    );
    assert_eq!(interrupted["executed"], json!(["1"]));
    let entry = h.wait_history("long").await;
    assert_eq!(entry["status"]["status_str"], "error");
    assert_eq!(entry["status"]["completed"], false);
    assert_eq!(entry["status"]["messages"][2][0], "execution_interrupted");
    assert_eq!(entry["outputs"], json!({}));

    let queued = h.wait_history("queued").await;
    assert_eq!(queued["status"]["status_str"], "success");
    // An interrupt sent while idle never reaches the next job.
    h.post_raw("/api/interrupt", "").await;
    h.submit(json!({"prompt": f1(9, "after"), "prompt_id": "after"}))
        .await;
    assert_eq!(
        h.wait_history("after").await["status"]["status_str"],
        "success"
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn interrupt_during_progress_steps() {
    let h = Harness::start().await;
    h.sim.set_exec_time(Duration::from_millis(2000));
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "blur"}}
    });
    let mut ws = h.ws("blur").await;
    ws.next_json().await;
    h.submit(json!({"prompt": prompt, "client_id": "blur", "prompt_id": "blur"}))
        .await;
    loop {
        let v = ws.next_json().await;
        if v["type"] == "progress" && v["data"]["node"] == "2" {
            break;
        }
    }
    h.post("/api/interrupt", &json!({})).await;
    let evs = events(&ws.until_done("blur").await);
    let (_, interrupted) = evs
        .iter()
        .find(|(t, _)| t == "execution_interrupted")
        .expect("interrupted");
    assert_eq!(
        interrupted["node_id"], "2",
        "checked inside the progress hook, not only between nodes"
    );
    h.sim.shutdown().await;
}
