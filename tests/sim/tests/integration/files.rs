use serde_json::{Value, json};

use crate::common::{Harness, png};

fn name_of(body: &str) -> String {
    serde_json::from_str::<Value>(body).expect("json")["name"]
        .as_str()
        .expect("name")
        .to_string()
}

#[tokio::test]
async fn upload_renames_on_conflict_and_dedups_identical_content() {
    let h = Harness::start().await;
    let red = png(2, 2, |_, _| [255, 0, 0]);
    let blue = png(2, 2, |_, _| [0, 0, 255]);
    let green = png(2, 2, |_, _| [0, 255, 0]);
    let (_, first) = h.upload("in_gradient.png", red.clone(), &[]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&first).expect("json"),
        json!({"name": "in_gradient.png", "subfolder": "", "type": "input"})
    );
    assert_eq!(
        name_of(&h.upload("in_gradient.png", red.clone(), &[]).await.1),
        "in_gradient.png"
    );
    assert_eq!(
        name_of(&h.upload("in_gradient.png", blue.clone(), &[]).await.1),
        "in_gradient (1).png"
    );
    assert_eq!(
        name_of(&h.upload("in_gradient.png", green, &[]).await.1),
        "in_gradient (2).png"
    );
    assert_eq!(
        name_of(&h.upload("in_gradient.png", blue.clone(), &[]).await.1),
        "in_gradient (1).png"
    );
    assert_eq!(
        std::fs::read_dir(h.sim.input_dir()).expect("dir").count(),
        3
    );
    assert_eq!(
        name_of(
            &h.upload("in_gradient.png", blue.clone(), &[("overwrite", "1")])
                .await
                .1
        ),
        "in_gradient.png"
    );
    assert_eq!(
        std::fs::read(h.sim.input_dir().join("in_gradient.png")).expect("file"),
        blue
    );

    let (status, _) = h.upload("x.png", red.clone(), &[("type", "models")]).await;
    assert_eq!(status, 500);
    let (status, _) = h
        .upload("x.png", red.clone(), &[("subfolder", "../../etc")])
        .await;
    assert_eq!(status, 400);
    let (status, body) = h
        .upload("x.png", red, &[("type", "temp"), ("subfolder", "deep/er")])
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json!({"name": "x.png", "subfolder": "deep/er", "type": "temp"})
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn view_rules() {
    let h = Harness::start().await;
    std::fs::write(
        h.sim.output_dir().join("a.png"),
        png(1, 1, |_, _| [1, 2, 3]),
    )
    .expect("write");
    std::fs::write(h.sim.output_dir().join("page.html"), "<html>").expect("write");
    let resp = h
        .http
        .get(h.url("/api/view?filename=a.png&type=output&subfolder="))
        .send()
        .await
        .expect("view");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["content-disposition"], "filename=\"a.png\"");
    let resp = h
        .http
        .get(h.url("/view?filename=page.html"))
        .send()
        .await
        .expect("view");
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let cases = [
        ("/api/view?type=output", 404),
        ("/api/view?filename=a.png&type=models", 400),
        ("/api/view?filename=../a.png", 400),
        ("/api/view?filename=/a.png", 400),
        ("/api/view?filename=a.png&subfolder=../../", 403),
        ("/api/view?filename=missing.png", 404),
        ("/api/view?filename=a.png%20%5Boutput%5D&type=input", 200),
        ("/api/view?filename=a.png&type=input", 404),
    ];
    for (path, want) in cases {
        let (status, body) = h.get(path).await;
        assert_eq!(status.as_u16(), want, "{path}");
        if want != 200 {
            assert_eq!(body, "", "{path}");
        }
    }
    h.sim.shutdown().await;
}

#[tokio::test]
async fn misc_routes() {
    let h = Harness::start().await;
    let stats = h.get_json("/api/system_stats").await;
    assert_eq!(stats["system"]["comfyui_version"], "0.3.64");
    assert_eq!(stats["devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(stats["devices"][0]["vram_total"], json!(25_757_220_864u64));
    assert_eq!(h.get_json("/api/object_info/NoSuchNode").await, json!({}));
    let info = h.get_json("/object_info/EmptyImage").await;
    assert_eq!(
        info["EmptyImage"]["input"]["required"]["width"],
        json!(["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}])
    );
    let all = h.get_json("/api/object_info").await;
    for class in [
        "KSampler",
        "CheckpointLoaderSimple",
        "LoadImage",
        "SaveImageWebsocket",
        "VAEEncode",
    ] {
        assert!(all.get(class).is_some(), "{class}");
    }
    assert_eq!(all["SaveImage"]["output_node"], true);
    assert_eq!(
        h.get_json("/api/features").await,
        json!({"supports_preview_metadata": true, "max_upload_size": 104857600})
    );
    assert_eq!(h.get("/api/internal/logs").await.0, 404);
    let forbidden = h
        .http
        .get(h.url("/api/prompt"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("get");
    assert_eq!(forbidden.status(), 403);
    assert_eq!(forbidden.text().await.expect("body"), "");
    let same = h
        .http
        .get(h.url("/api/prompt"))
        .header("Origin", h.sim.url())
        .send()
        .await
        .expect("get");
    assert_eq!(same.status(), 200);
    h.sim.shutdown().await;
}
