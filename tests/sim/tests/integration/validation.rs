use serde_json::{Value, json};

use crate::common::{Harness, f1, png};

async fn rejected(h: &Harness, prompt: Value) -> Value {
    let (status, body) = h.post("/api/prompt", &json!({ "prompt": prompt })).await;
    assert_eq!(status, 400, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[tokio::test]
async fn f5_width_zero_gives_the_observed_body() {
    let h = Harness::start().await;
    let mut prompt = f1(0, "x");
    prompt["1"]["inputs"]["width"] = json!(0);
    let body = rejected(&h, prompt).await;
    let expected: Value = serde_json::from_str(
        r#"{"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation", "details": "", "extra_info": {}},
   "node_errors": {"1": {"errors": [{"type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1", "details": "width",
     "extra_info": {"input_name": "width", "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}], "received_value": 0}}],
     "dependent_outputs": ["2"], "class_type": "EmptyImage"}}}"#,
    )
    .expect("doc body");
    assert_eq!(body, expected);
    assert_eq!(h.sim.received_prompts().len(), 0);
    h.sim.shutdown().await;
}

#[tokio::test]
async fn graph_level_errors() {
    let h = Harness::start().await;
    let body = rejected(&h, json!({"1": {"class_type": "NoSuchNode", "inputs": {}}})).await;
    assert_eq!(body["error"]["type"], "invalid_prompt");
    assert_eq!(
        body["error"]["message"],
        "Cannot execute because node NoSuchNode does not exist."
    );
    assert_eq!(body["node_errors"], json!({}));

    let body = rejected(&h, json!({"1": {"inputs": {}}})).await;
    assert_eq!(body["error"]["details"], "Node ID '#1'");

    let body = rejected(&h, json!({"1": f1(0, "x")["1"].clone()})).await;
    assert_eq!(body["error"]["type"], "prompt_no_outputs");

    let (status, body) = h.post("/api/prompt", &json!({"client_id": "x"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["error"]["type"],
        "no_prompt"
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn link_errors() {
    let h = Harness::start().await;
    let mut prompt = f1(0, "x");
    prompt["2"]["inputs"]["images"] = json!(["9", 0]);
    let body = rejected(&h, prompt).await;
    let err = &body["node_errors"]["2"]["errors"][0];
    assert_eq!(err["type"], "exception_during_validation");
    assert_eq!(err["details"], "'9'");
    assert_eq!(err["extra_info"]["exception_type"], "KeyError");
    assert!(
        body["error"]["details"]
            .as_str()
            .expect("details")
            .contains("Exception when validating node")
    );

    let mut prompt = f1(0, "x");
    prompt["2"]["inputs"]["images"] = json!([1, 0]);
    rejected(&h, prompt).await;

    h.upload("m.png", png(2, 2, |_, _| [1, 2, 3]), &[]).await;
    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "m.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 1], "filename_prefix": "x"}}
    });
    let body = rejected(&h, prompt).await;
    let err = &body["node_errors"]["2"]["errors"][0];
    assert_eq!(err["type"], "return_type_mismatch");
    assert_eq!(
        err["details"],
        "images, received_type(MASK) mismatch input_type(IMAGE)"
    );
    assert_eq!(err["extra_info"]["received_type"], "MASK");
    assert_eq!(err["extra_info"]["linked_node"], json!(["1", 1]));
    h.sim.shutdown().await;
}

#[tokio::test]
async fn input_errors() {
    let h = Harness::start().await;
    let cases = [
        (
            "width",
            json!(20000),
            "value_bigger_than_max",
            "Value 20000 bigger than max of 16384",
        ),
        (
            "width",
            json!("wide"),
            "invalid_input_type",
            "Failed to convert an input value to a INT value",
        ),
    ];
    for (input, value, kind, message) in cases {
        let mut prompt = f1(0, "x");
        prompt["1"]["inputs"][input] = value;
        let body = rejected(&h, prompt).await;
        let err = &body["node_errors"]["1"]["errors"][0];
        assert_eq!(
            (err["type"].as_str(), err["message"].as_str()),
            (Some(kind), Some(message))
        );
    }
    let mut prompt = f1(0, "x");
    prompt["1"]["inputs"]
        .as_object_mut()
        .expect("inputs")
        .remove("height");
    let body = rejected(&h, prompt).await;
    assert_eq!(
        body["node_errors"]["1"]["errors"][0],
        json!({"type": "required_input_missing", "message": "Required input is missing", "details": "height", "extra_info": {"input_name": "height"}})
    );

    let prompt = json!({
        "1": {"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
    });
    let body = rejected(&h, prompt).await;
    let err = &body["node_errors"]["1"]["errors"][0];
    assert_eq!(err["type"], "custom_validation_failed");
    assert_eq!(err["details"], "image - Invalid image file: nope.png");
    h.sim.shutdown().await;
}

#[tokio::test]
async fn partial_node_errors_still_queue_valid_outputs() {
    let h = Harness::start().await;
    let prompt = json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "good"}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 8, "batch_size": 1, "color": 0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "bad"}}
    });
    let resp = h
        .submit(json!({"prompt": prompt, "prompt_id": "partial"}))
        .await;
    assert_eq!(resp["node_errors"]["3"]["dependent_outputs"], json!(["4"]));
    assert_eq!(
        resp["node_errors"]["3"]["errors"][0]["type"],
        "value_smaller_than_min"
    );
    let entry = h.wait_history("partial").await;
    assert_eq!(entry["prompt"][4], json!(["2"]));
    assert_eq!(
        entry["outputs"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["2".to_string()])
    );
    h.sim.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_get_the_aiohttp_500() {
    let h = Harness::start().await;
    for path in [
        "/api/prompt",
        "/api/queue",
        "/api/history",
        "/api/free",
        "/prompt",
    ] {
        for body in ["{not json", ""] {
            let (status, text) = h.post_raw(path, body).await;
            assert_eq!(status, 500, "{path} {body:?}");
            assert_eq!(
                text,
                "500 Internal Server Error\n\nServer got itself in trouble"
            );
        }
    }
    let (status, text) = h.post_raw("/api/interrupt", "").await;
    assert_eq!((status.as_u16(), text.as_str()), (200, ""));
    h.sim.shutdown().await;
}

#[tokio::test]
async fn prompt_id_and_number_are_echoed_like_python() {
    let h = Harness::start().await;
    let resp = h
        .submit(json!({"prompt": f1(3, "n"), "prompt_id": 12345, "number": "7"}))
        .await;
    assert_eq!(resp["prompt_id"], "12345");
    assert_eq!(resp["number"], json!(7.0));
    assert!(
        serde_json::to_string(&resp["number"])
            .expect("num")
            .contains('.')
    );
    h.wait_history("12345").await;
    h.sim.shutdown().await;
}
