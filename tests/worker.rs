use std::time::Duration;

use comfydash_sim::{Sim, SimConfig, decode_png};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::*;

fn sim_cfg(ms: u64) -> SimConfig {
    SimConfig {
        exec_time: Duration::from_millis(ms),
        ..SimConfig::default()
    }
}

/// A 4x4 PNG of one colour.
fn png(rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 4, 4);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().unwrap();
        let data: Vec<u8> = std::iter::repeat_n(rgb, 16).flatten().collect();
        w.write_image_data(&data).unwrap();
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn invert_graph() -> Value {
    json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "{{input_image}}"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}
    })
}

fn slow_graph(color: u32) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 1, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "slow"}}
    })
}

async fn download(h: &Harness, id: &str, n: u32) -> Vec<u8> {
    let r = h
        .http
        .get(format!("{}/api/jobs/{id}/outputs/{n}", h.url))
        .header("X-API-Key", READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap().to_vec()
}

/// The bytes the simulator wrote for a job's output (found under the attempt's folder).
fn sim_file(sim: &Sim, prompt_id: &str, filename: &str) -> Vec<u8> {
    let dir = sim.output_dir().join("comfydash").join(prompt_id);
    std::fs::read(dir.join(filename)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

#[tokio::test]
async fn text_prompt_runs_through_the_default_template() {
    let (h, sim) = with_sim(sim_cfg(20), |_| {}).await;
    let r = h
        .submit(
            json!({"job_id": "t1", "prompt": "a lighthouse", "params": {"seed": 5, "steps": 4}}),
        )
        .await;
    assert_eq!(r.status, 202);
    let job = h
        .wait_status("t1", "completed", Duration::from_secs(10))
        .await;
    let outputs = job["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["content_type"], "image/png");
    let got = download(&h, "t1", 0).await;
    assert_eq!(got.len() as u64, outputs[0]["size"].as_u64().unwrap());
    assert_eq!(hex::encode(Sha256::digest(&got)), outputs[0]["sha256"]);
    let prompt_id = h.prompt_ids("t1").await.pop().unwrap();
    assert_eq!(
        got,
        sim_file(&sim, &prompt_id, outputs[0]["filename"].as_str().unwrap())
    );
    // What ComfyUI received: our prompt_id and client_id, the text, typed params, a per-attempt prefix.
    let sent = sim.received_prompts().pop().unwrap();
    assert_eq!(sent["prompt_id"], prompt_id.as_str());
    assert!(
        sent["client_id"]
            .as_str()
            .unwrap()
            .starts_with("comfydash-")
    );
    let graph = &sent["prompt"];
    assert_eq!(graph["6"]["inputs"]["text"], "a lighthouse");
    assert_eq!(graph["3"]["inputs"]["seed"], 5);
    assert_eq!(graph["3"]["inputs"]["steps"], 4);
    assert_eq!(
        graph["9"]["inputs"]["filename_prefix"],
        format!("comfydash/{prompt_id}/n9")
    );
    assert!(job["timings"]["processing_ms"].is_u64());
    assert!(job["timings"]["queued_ms"].is_u64());
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["byStatus"]["completed"], 1);
    assert_eq!(
        t["jobs"]["performance"]["successRate"].as_f64(),
        Some(100.0)
    );
}

#[tokio::test]
async fn raw_graph_with_an_inline_image() {
    let (h, _sim) = with_sim(sim_cfg(10), |_| {}).await;
    let r = h
        .submit(json!({"job_id": "g1", "prompt": invert_graph(), "input_image_base64": b64(&png([10, 200, 30])), "output_base64": true}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let job = h
        .wait_status("g1", "completed", Duration::from_secs(10))
        .await;
    let bytes = download(&h, "g1", 0).await;
    let img = decode_png(&bytes).unwrap();
    let px = &img.rgb[..3];
    assert!(
        (px[0] as i32 - 245).abs() <= 1
            && (px[1] as i32 - 55).abs() <= 1
            && (px[2] as i32 - 225).abs() <= 1,
        "{px:?}"
    );
    assert_eq!(job["outputs"][0]["base64"], b64(&bytes));
}

#[tokio::test]
async fn image_by_url_is_downloaded_through_the_guard() {
    let app = axum::Router::new()
        .route(
            "/in.png",
            axum::routing::get(|| async { ([("content-type", "image/png")], png([0, 0, 0])) }),
        )
        .route("/text", axum::routing::get(|| async { "not an image" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (h, _sim) = with_sim(sim_cfg(10), |c| {
        c.outbound.allow = vec!["127.0.0.1/32".into()]
    })
    .await;
    let r = h
        .submit(json!({"job_id": "u1", "prompt": invert_graph(), "input_image_url": format!("http://{addr}/in.png")}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    h.wait_status("u1", "completed", Duration::from_secs(10))
        .await;
    let img = decode_png(&download(&h, "u1", 0).await).unwrap();
    assert!(img.rgb[0] >= 254);
    // Not an image: the job fails with a clear reason.
    let r = h.submit(json!({"job_id": "u2", "prompt": invert_graph(), "input_image_url": format!("http://{addr}/text")})).await;
    assert_eq!(r.status, 202);
    let job = h.wait_status("u2", "failed", Duration::from_secs(10)).await;
    assert_eq!(job["error"]["code"], "input_image_error");
}

#[tokio::test]
async fn progress_reaches_the_event_stream() {
    use futures_util::StreamExt;
    let (h, _sim) = with_sim(sim_cfg(600), |_| {}).await;
    let client = comfydash_wire::client::Client::new(&h.url, Some(READ_KEY.into()));
    let mut s = Box::pin(client.events(None).await.unwrap());
    h.submit(json!({"job_id": "p1", "prompt": "steps", "params": {"steps": 10}}))
        .await;
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = Vec::new();
        while let Some(Ok(e)) = s.next().await {
            if let comfydash_wire::StreamEvent::Job(j) = e.event
                && let Some(p) = j.progress
            {
                seen.push((p.value, p.max));
                if p.value == p.max {
                    break;
                }
            }
        }
        seen
    })
    .await
    .unwrap();
    assert!(got.len() >= 2, "{got:?}");
    assert_eq!(got.last().unwrap(), &(10, 10));
    // Coalesced: fewer events than steps would be fine; never more.
    assert!(got.len() <= 10);
    h.wait_status("p1", "completed", Duration::from_secs(10))
        .await;
    // Progress is not written to the job's log.
    let log = h.get("/api/jobs/p1/events", Some(READ_KEY)).await.body;
    assert!(log["events"].as_array().unwrap().len() <= 4, "{log}");
}

#[tokio::test]
async fn validation_and_execution_errors_carry_comfyuis_words() {
    let (h, sim) = with_sim(sim_cfg(10), |_| {}).await;
    let bad = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
    });
    h.submit(json!({"job_id": "v1", "prompt": bad})).await;
    let job = h.wait_status("v1", "failed", Duration::from_secs(10)).await;
    assert_eq!(job["error"]["code"], "validation_error");
    assert_eq!(job["error"]["node"], "1");
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Value 0 smaller than min of 1"),
        "{job}"
    );
    assert_eq!(job["attempt"], 1);

    sim.set_failure_rate(1.0);
    h.submit(json!({"job_id": "e1", "prompt": slow_graph(1)}))
        .await;
    let job = h.wait_status("e1", "failed", Duration::from_secs(10)).await;
    assert_eq!(job["error"]["code"], "execution_error");
    assert!(job["error"]["node"].is_string());
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("injected failure"),
        "{job}"
    );
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["byStatus"]["failed"], 2);
    assert_eq!(t["jobs"]["performance"]["successRate"].as_f64(), Some(0.0));
}

#[tokio::test]
async fn a_job_past_its_timeout_is_interrupted_and_fails() {
    let (h, _sim) = with_sim(sim_cfg(10_000), |_| {}).await;
    h.submit(json!({"job_id": "to", "prompt": slow_graph(2), "timeout_s": 1}))
        .await;
    let job = h.wait_status("to", "failed", Duration::from_secs(15)).await;
    assert_eq!(job["error"]["code"], "timeout");
    let log = h.get("/api/jobs/to/events", Some(READ_KEY)).await.body;
    assert!(log.to_string().contains("interrupt_sent"));
}

#[tokio::test]
async fn cancel_in_each_of_the_three_places() {
    let (h, sim) = with_sim(sim_cfg(1500), |_| {}).await;
    // Running and waiting in ComfyUI (pipeline depth 2), and pending in our queue.
    for (i, id) in ["run", "wait", "queued"].iter().enumerate() {
        h.submit(json!({"job_id": id, "prompt": slow_graph(10 + i as u32)}))
            .await;
    }
    let running = eventually(Duration::from_secs(5), || async {
        let b = h.get("/api/jobs/run", Some(READ_KEY)).await.body;
        b["started_at"].is_string()
    })
    .await;
    assert!(running);
    assert_eq!(
        h.get("/api/jobs/wait", Some(READ_KEY)).await.body["status"],
        "processing"
    );
    assert_eq!(
        h.get("/api/jobs/queued", Some(READ_KEY)).await.body["status"],
        "pending"
    );

    let r = h
        .post("/api/jobs/queued/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["status"].as_str()),
        (200, Some("cancelled"))
    );
    let r = h
        .post("/api/jobs/wait/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 202);
    h.wait_status("wait", "cancelled", Duration::from_secs(5))
        .await;
    let r = h
        .post("/api/jobs/run/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 202);
    h.wait_status("run", "cancelled", Duration::from_secs(10))
        .await;
    // The waiting prompt never ran; the running one was interrupted, not completed.
    let wait_prompt = h.prompt_ids("wait").await.pop().unwrap();
    let hist: Value = h
        .http
        .get(format!("{}/history/{wait_prompt}", sim.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hist, json!({}));
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["byStatus"]["cancelled"], 3);
    // The next job runs after cancels.
    h.submit(json!({"job_id": "after", "prompt": slow_graph(20)}))
        .await;
    sim.set_exec_time(Duration::from_millis(10));
    h.wait_status("after", "completed", Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn pause_pulls_back_the_waiting_prompt_and_the_running_one_finishes() {
    let (h, sim) = with_sim(sim_cfg(1000), |_| {}).await;
    h.submit(json!({"job_id": "a", "prompt": slow_graph(30)}))
        .await;
    h.submit(json!({"job_id": "b", "prompt": slow_graph(31)}))
        .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.get("/api/jobs/a", Some(READ_KEY)).await.body["started_at"].is_string()
                && h.get("/api/jobs/b", Some(READ_KEY)).await.body["status"] == "processing"
        })
        .await
    );
    h.post("/api/queue/pause", Some(ADMIN_KEY), json!({})).await;
    h.wait_status("b", "pending", Duration::from_secs(5)).await;
    h.wait_status("a", "completed", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.get("/api/jobs/b", Some(READ_KEY)).await.body["status"],
        "pending"
    );
    let log = h.get("/api/jobs/b/events", Some(READ_KEY)).await.body;
    assert!(log.to_string().contains("queue paused"));
    sim.set_exec_time(Duration::from_millis(10));
    h.post("/api/queue/resume", Some(ADMIN_KEY), json!({}))
        .await;
    h.wait_status("b", "completed", Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn higher_priority_runs_first() {
    let (h, _sim) = with_sim(sim_cfg(30), |c| c.worker.pipeline_depth = 1).await;
    h.post("/api/queue/pause", Some(ADMIN_KEY), json!({})).await;
    for (id, prio) in [("low", -5), ("mid", 0), ("high", 10), ("mid2", 0)] {
        h.submit(
            json!({"job_id": id, "prompt": slow_graph((prio + 100) as u32), "priority": prio}),
        )
        .await;
    }
    h.post("/api/queue/resume", Some(ADMIN_KEY), json!({}))
        .await;
    for id in ["low", "mid", "high", "mid2"] {
        h.wait_status(id, "completed", Duration::from_secs(10))
            .await;
    }
    let mut order = Vec::new();
    for id in ["low", "mid", "high", "mid2"] {
        let j = h.get(&format!("/api/jobs/{id}"), Some(READ_KEY)).await.body;
        order.push((j["started_at"].as_str().unwrap().to_string(), id));
    }
    order.sort();
    let ids: Vec<&str> = order.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids, ["high", "mid", "mid2", "low"]);
}

#[tokio::test]
async fn a_simulator_restart_mid_run_resubmits_and_completes() {
    let (h, sim) = with_sim(sim_cfg(800), |_| {}).await;
    for i in 0..3 {
        h.submit(json!({"job_id": format!("r{i}"), "prompt": slow_graph(40 + i)}))
            .await;
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.get("/api/jobs/r0", Some(READ_KEY)).await.body["started_at"].is_string()
        })
        .await
    );
    sim.restart().await;
    sim.set_exec_time(Duration::from_millis(20));
    for i in 0..3 {
        h.wait_status(&format!("r{i}"), "completed", Duration::from_secs(15))
            .await;
    }
    let log = h.get("/api/jobs/r0/events", Some(READ_KEY)).await.body;
    assert!(log.to_string().contains("requeued"), "{log}");
    assert!(h.prompt_ids("r0").await.len() >= 2);
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["byStatus"]["completed"], 3);
    assert_eq!(t["jobs"]["byStatus"]["failed"], 0);
}

#[tokio::test]
async fn a_dropped_socket_does_not_hide_a_completion() {
    // A blip shorter than the down threshold: the server stays up, the prompt is followed.
    let (h, sim) = with_sim(sim_cfg(600), |c| c.probe.failures_before_down = 20).await;
    h.submit(json!({"job_id": "s1", "prompt": slow_graph(50)}))
        .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.get("/api/jobs/s1", Some(READ_KEY)).await.body["started_at"].is_string()
        })
        .await
    );
    // Connections refused and sockets closed for a moment; the prompt keeps running.
    sim.set_refuse_connections(true);
    tokio::time::sleep(Duration::from_millis(150)).await;
    sim.set_refuse_connections(false);
    let job = h
        .wait_status("s1", "completed", Duration::from_secs(10))
        .await;
    assert_eq!(job["outputs"].as_array().unwrap().len(), 1);
    // One submission: the prompt was followed, not resubmitted.
    assert_eq!(h.prompt_ids("s1").await.len(), 1);
}

#[tokio::test]
async fn submit_checks_templates_and_placeholders() {
    let h = Harness::start().await;
    let cases = [
        (
            json!({"job_id": "w1", "prompt": "x", "workflow": "nope"}),
            "unknown_workflow",
        ),
        (
            json!({"job_id": "w2", "prompt": invert_graph()}),
            "invalid_workflow",
        ),
        (
            json!({"job_id": "w3", "prompt": slow_graph(1), "input_image_base64": b64(&png([1, 2, 3]))}),
            "invalid_workflow",
        ),
        (
            json!({"job_id": "w4", "prompt": {"1": {"class_type": "SaveImage", "inputs": {"x": "{{params.size}}"}}}}),
            "invalid_workflow",
        ),
        (
            json!({"job_id": "w5", "prompt": "x", "workflow": "text2img", "input_image_base64": b64(&png([1, 2, 3]))}),
            "invalid_workflow",
        ),
    ];
    for (body, code) in cases {
        let r = h.submit(body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{body}");
    }
    let wf = h.get("/api/workflows", Some(READ_KEY)).await.body;
    let names: Vec<&str> = wf["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["img2img", "text2img"]);
    assert_eq!(wf["workflows"][0]["takes_image"], true);
    assert_eq!(wf["workflows"][1]["default_for"], "text");
    assert_eq!(h.telemetry().await["jobs"]["total"], 0);
}

#[tokio::test]
async fn user_templates_are_loaded_and_checked_against_object_info() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("upscale.json"),
        json!({"1": {"class_type": "EmptyImage", "inputs": {"width": "{{params.w|8}}", "height": 8, "batch_size": 1, "color": 0}},
               "2": {"class_type": "UltraUpscaler9000", "inputs": {"image": ["1", 0], "prompt": "{{prompt}}"}},
               "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "u"}}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.json"), "{not json").unwrap();
    let path = dir.path().to_path_buf();
    let (h, _sim) = with_sim(sim_cfg(10), move |c| c.worker.workflows_dir = Some(path)).await;
    let ok = eventually(Duration::from_secs(5), || async {
        let wf = h.get("/api/workflows", Some(READ_KEY)).await.body;
        wf["warnings"].to_string().contains("UltraUpscaler9000")
    })
    .await;
    let wf = h.get("/api/workflows", Some(READ_KEY)).await.body;
    assert!(ok, "{wf}");
    assert!(wf["warnings"].to_string().contains("broken"), "{wf}");
    let names: Vec<&str> = wf["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"upscale"));
    // Submitting with it is accepted (the placeholders fill); ComfyUI then rejects the unknown node.
    let r = h
        .submit(json!({"job_id": "up", "prompt": "x", "workflow": "upscale"}))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let job = h.wait_status("up", "failed", Duration::from_secs(10)).await;
    assert_eq!(job["error"]["code"], "validation_error");
}
