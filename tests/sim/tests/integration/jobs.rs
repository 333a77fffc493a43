use std::time::Duration;

use comfydash_sim::SimConfig;
use serde_json::{Value, json};

use crate::common::{Frame, Harness, decode, events, f1, png};

#[tokio::test]
async fn f1_end_to_end_over_ws() {
    let h = Harness::start().await;
    let mut ws = h.ws("smoke-curl").await;
    let hello = ws.next_json().await;
    assert_eq!(
        hello,
        json!({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "smoke-curl"}})
    );

    let resp = h.submit(json!({"prompt": f1(0xFF0000, "smoke_empty"), "client_id": "smoke-curl", "prompt_id": "p-1"})).await;
    assert_eq!(
        resp,
        json!({"prompt_id": "p-1", "number": 0, "node_errors": {}})
    );
    let frames = ws.until_done("p-1").await;
    // executing null comes after the history entry is written: no retry needed.
    let (status, body) = h.get("/api/history/p-1").await;
    assert_eq!(status, 200);
    let history: Value = serde_json::from_str(&body).expect("json");
    assert!(
        history.get("p-1").is_some(),
        "history written before executing null: {body}"
    );

    let seen: Vec<String> = events(&frames)
        .into_iter()
        .filter(|(t, _)| t != "progress_state")
        .map(|(t, d)| match t.as_str() {
            "status" => format!("status({})", d["status"]["exec_info"]["queue_remaining"]),
            "executing" | "executed" => format!("{t} {}", d["node"]),
            _ => t,
        })
        .collect();
    assert_eq!(
        seen,
        [
            "status(1)",
            "status(1)",
            "execution_start",
            "execution_cached",
            "executing \"1\"",
            "executing \"2\"",
            "executed \"2\"",
            "execution_success",
            "status(0)",
            "executing null",
        ]
    );
    let evs = events(&frames);
    let executed = &evs
        .iter()
        .find(|(t, _)| t == "executed")
        .expect("executed")
        .1;
    let item = json!({"filename": "smoke_empty_00001_.png", "subfolder": "", "type": "output"});
    assert_eq!(
        executed,
        &json!({"node": "2", "display_node": "2", "output": {"images": [item]}, "prompt_id": "p-1"})
    );

    let entry = &history["p-1"];
    assert_eq!(entry["prompt"][0], json!(0));
    assert_eq!(entry["prompt"][1], json!("p-1"));
    assert_eq!(entry["prompt"][3], json!({"client_id": "smoke-curl"}));
    assert_eq!(entry["prompt"][4], json!(["2"]));
    assert_eq!(entry["outputs"], json!({"2": {"images": [item]}}));
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(entry["status"]["completed"], true);
    let names: Vec<&str> = entry["status"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m[0].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        ["execution_start", "execution_cached", "execution_success"]
    );
    assert!(
        entry["status"]["messages"][0][1]["timestamp"]
            .as_u64()
            .is_some()
    );
    assert_eq!(
        entry["meta"],
        json!({"2": {"node_id": "2", "display_node": "2", "parent_node": null, "real_node_id": "2"}})
    );

    let bytes = h.view(&item).await;
    let (w, hgt, rgb) = decode(&bytes);
    assert_eq!((w, hgt), (64, 64));
    assert!(rgb.chunks(3).all(|p| p == [255, 0, 0]));
    let chunks = comfydash_sim::png_text_chunks(&bytes).expect("chunks");
    assert!(chunks.iter().any(|(k, _)| k == "prompt"));
    assert!(h.sim.output_dir().join("smoke_empty_00001_.png").is_file());
    assert_eq!(h.sim.executed_count(), 1);
    assert_eq!(h.sim.received_prompts().len(), 1);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn f2_upload_then_invert() {
    let h = Harness::start().await;
    let input = png(16, 8, |x, y| [(x * 16) as u8, (y * 30) as u8, 200]);
    let (status, body) = h
        .upload(
            "in.png",
            input.clone(),
            &[
                ("overwrite", "true"),
                ("type", "input"),
                ("subfolder", "smoke"),
            ],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json!({"name": "in.png", "subfolder": "smoke", "type": "input"})
    );
    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "smoke/in.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "smoke/inverted"}}
    });
    let resp = h.submit(json!({"prompt": prompt})).await;
    let entry = h
        .wait_history(resp["prompt_id"].as_str().expect("id"))
        .await;
    let item = json!({"filename": "inverted_00001_.png", "subfolder": "smoke", "type": "output"});
    assert_eq!(entry["outputs"], json!({"3": {"images": [item]}}));
    let (_, _, original) = decode(&input);
    let (w, hgt, inverted) = decode(&h.view(&item).await);
    assert_eq!((w, hgt), (16, 8));
    for (o, i) in original.iter().zip(&inverted) {
        let expect = 255 - *o as i32;
        assert!((expect - *i as i32).abs() <= 1, "{o} inverted to {i}");
    }
    h.sim.shutdown().await;
}

#[tokio::test]
async fn runtime_failure_with_failure_rate_one() {
    let h = Harness::with(SimConfig {
        exec_time: Duration::from_millis(2),
        failure_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let mut ws = h.ws("f").await;
    ws.next_json().await;
    h.submit(json!({"prompt": f1(1, "fail"), "client_id": "f", "prompt_id": "boom"}))
        .await;
    let evs = events(&ws.until_done("boom").await);
    let (_, err) = evs
        .iter()
        .find(|(t, _)| t == "execution_error")
        .expect("execution_error");
    for key in [
        "prompt_id",
        "node_id",
        "node_type",
        "executed",
        "exception_message",
        "exception_type",
        "traceback",
        "current_inputs",
        "current_outputs",
        "timestamp",
    ] {
        assert!(err.get(key).is_some(), "execution_error lacks {key}: {err}");
    }
    assert!(!evs.iter().any(|(t, _)| t == "execution_success"));
    let entry = h.wait_history("boom").await;
    assert_eq!(entry["status"]["status_str"], "error");
    assert_eq!(entry["status"]["completed"], false);
    assert_eq!(entry["status"]["messages"][2][0], "execution_error");
    h.sim.shutdown().await;
}

#[tokio::test]
async fn broken_png_passes_validation_then_fails() {
    let h = Harness::start().await;
    let (status, _) = h
        .upload("broken.png", b"this is not a png".to_vec(), &[])
        .await;
    assert_eq!(status, 200);
    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "broken.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "broken"}}
    });
    let mut ws = h.ws("b").await;
    ws.next_json().await;
    h.submit(json!({"prompt": prompt, "client_id": "b", "prompt_id": "broken"}))
        .await;
    let evs = events(&ws.until_done("broken").await);
    let (_, err) = evs
        .iter()
        .find(|(t, _)| t == "execution_error")
        .expect("execution_error");
    assert_eq!(err["node_type"], "LoadImage");
    assert_eq!(err["node_id"], "1");
    assert_eq!(err["exception_type"], "PIL.UnidentifiedImageError");
    assert_eq!(err["current_inputs"], json!({"image": ["broken.png"]}));
    let entry = h.wait_history("broken").await;
    assert_eq!(entry["status"]["status_str"], "error");
    assert_eq!(entry["outputs"], json!({}));
    h.sim.shutdown().await;
}

#[tokio::test]
async fn text_to_image_template_runs_with_progress() {
    let h = Harness::start().await;
    let prompt = json!({
        "3": {"class_type": "KSampler", "inputs": {"seed": 18446744073709551615u64, "steps": 5, "cfg": 7, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 2}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "t2i/out", "images": ["8", 0]}}
    });
    let mut ws = h.ws("t2i").await;
    ws.next_json().await;
    h.submit(json!({"prompt": prompt, "client_id": "t2i", "prompt_id": "t2i-1"}))
        .await;
    let evs = events(&ws.until_done("t2i-1").await);
    let progress: Vec<u64> = evs
        .iter()
        .filter(|(t, d)| t == "progress" && d["node"] == "3")
        .map(|(_, d)| d["value"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(progress, [1, 2, 3, 4, 5]);
    let executing: Vec<&Value> = evs
        .iter()
        .filter(|(t, d)| t == "executing" && !d["node"].is_null())
        .map(|(_, d)| &d["node"])
        .collect();
    assert_eq!(executing.len(), 7);
    let entry = h.wait_history("t2i-1").await;
    let images = entry["outputs"]["9"]["images"].as_array().expect("images");
    assert_eq!(images.len(), 2);
    assert_eq!(images[1]["filename"], "out_00002_.png");
    let (w, hgt, _) = decode(&h.view(&images[0]).await);
    assert_eq!((w, hgt), (64, 48));
    h.sim.shutdown().await;
}

#[tokio::test]
async fn same_graph_twice_is_served_from_cache() {
    let h = Harness::start().await;
    let mut ws = h.ws("c").await;
    ws.next_json().await;
    h.submit(json!({"prompt": f1(0x00FF00, "cached"), "client_id": "c", "prompt_id": "first"}))
        .await;
    ws.until_done("first").await;
    h.submit(json!({"prompt": f1(0x00FF00, "cached"), "client_id": "c", "prompt_id": "second"}))
        .await;
    let evs = events(&ws.until_done("second").await);
    let (_, cached) = evs
        .iter()
        .find(|(t, _)| t == "execution_cached")
        .expect("cached");
    assert_eq!(cached["nodes"], json!(["1", "2"]));
    assert!(
        !evs.iter()
            .any(|(t, d)| t == "executing" && !d["node"].is_null()),
        "nothing executes"
    );
    let item = json!({"filename": "cached_00001_.png", "subfolder": "", "type": "output"});
    let (_, executed) = evs
        .iter()
        .find(|(t, _)| t == "executed")
        .expect("executed replayed");
    assert_eq!(executed["output"], json!({"images": [item]}));
    assert_eq!(
        h.wait_history("second").await["outputs"],
        json!({"2": {"images": [item]}})
    );
    assert_eq!(h.sim.executed_count(), 1);
    assert_eq!(
        std::fs::read_dir(h.sim.output_dir()).expect("dir").count(),
        1
    );

    let (status, body) = h.post("/api/free", &json!({"free_memory": true})).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, ""));
    h.submit(json!({"prompt": f1(0x00FF00, "cached"), "client_id": "c", "prompt_id": "third"}))
        .await;
    ws.until_done("third").await;
    let third = h.wait_history("third").await;
    assert_eq!(
        third["outputs"]["2"]["images"][0]["filename"],
        "cached_00002_.png"
    );
    assert_eq!(h.sim.executed_count(), 2);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn save_image_websocket_sends_png_frames_and_always_runs() {
    let h = Harness::start().await;
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 4, "batch_size": 2, "color": 255}},
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}}
    });
    let mut ws = h.ws("sw").await;
    ws.next_json().await;
    for id in ["sw-1", "sw-2"] {
        h.submit(json!({"prompt": prompt, "client_id": "sw", "prompt_id": id}))
            .await;
        let frames = ws.until_done(id).await;
        let binaries: Vec<&Vec<u8>> = frames
            .iter()
            .filter_map(|f| {
                if let Frame::Binary(b) = f {
                    Some(b)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(binaries.len(), 2, "{id}: one frame per image");
        assert_eq!(&binaries[0][..8], &[0, 0, 0, 1, 0, 0, 0, 2]);
        let (w, hgt, rgb) = decode(&binaries[0][8..]);
        assert_eq!((w, hgt, &rgb[..3]), (8, 4, &[0u8, 0, 255][..]));
        assert!(
            events(&frames)
                .iter()
                .any(|(t, d)| t == "executing" && d["node"] == "2"),
            "{id}: SaveImageWebsocket runs"
        );
        assert_eq!(h.wait_history(id).await["outputs"], json!({}));
    }
    h.sim.shutdown().await;
}

#[tokio::test]
async fn history_cap_drops_oldest_once_over() {
    let h = Harness::with(SimConfig {
        exec_time: Duration::ZERO,
        history_cap: 2,
        ..SimConfig::default()
    })
    .await;
    for i in 0..5 {
        let id = format!("h{i}");
        h.submit(json!({"prompt": f1(i, &id), "prompt_id": id}))
            .await;
        h.wait_history(&id).await;
    }
    assert_eq!(h.sim.history_len(), 3);
    let last_two = h.get("/api/history?max_items=2").await.1;
    let parsed: Value = serde_json::from_str(&last_two).expect("json");
    assert_eq!(parsed.as_object().map(|o| o.len()), Some(2));
    let (p3, p4) = (last_two.find("\"h3\": {"), last_two.find("\"h4\": {"));
    assert!(p3.is_some() && p3 < p4, "insertion order kept: {last_two}");
    let all = h.get_json("/api/history").await;
    assert!(all.get("h0").is_none() && all.get("h1").is_none() && all.get("h4").is_some());
    h.sim.shutdown().await;
}

#[tokio::test]
async fn img2img_template_shape_runs() {
    let h = Harness::start().await;
    h.upload("src.png", png(32, 16, |x, _| [x as u8 * 8, 40, 90]), &[])
        .await;
    let prompt = json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "10": {"class_type": "LoadImage", "inputs": {"image": "src.png"}},
        "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "oil painting", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": "42", "steps": "3", "cfg": "7.0", "sampler_name": "euler", "scheduler": "normal",
            "denoise": "0.75", "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["11", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "comfydash", "images": ["8", 0]}}
    });
    let resp = h.submit(json!({"prompt": prompt})).await;
    let entry = h
        .wait_history(resp["prompt_id"].as_str().expect("id"))
        .await;
    assert_eq!(entry["status"]["status_str"], "success", "{entry}");
    // Validation casts the string widgets, and history shows the cast graph.
    assert_eq!(entry["prompt"][2]["3"]["inputs"]["steps"], json!(3));
    assert_eq!(entry["prompt"][2]["3"]["inputs"]["denoise"], json!(0.75));
    let (w, hgt, _) = decode(&h.view(&entry["outputs"]["9"]["images"][0]).await);
    assert_eq!((w, hgt), (32, 16));
    h.sim.shutdown().await;
}

#[tokio::test]
async fn escaping_save_prefix_fails_at_execution() {
    let h = Harness::start().await;
    h.submit(json!({"prompt": f1(11, "../escape"), "prompt_id": "esc"}))
        .await;
    let entry = h.wait_history("esc").await;
    assert_eq!(entry["status"]["status_str"], "error");
    let (name, err) = (
        &entry["status"]["messages"][2][0],
        &entry["status"]["messages"][2][1],
    );
    assert_eq!(name, "execution_error");
    assert_eq!(
        (&err["node_type"], &err["exception_type"]),
        (&json!("SaveImage"), &json!("Exception"))
    );
    assert_eq!(err["executed"], json!(["1"]));
    h.sim.shutdown().await;
}
