use serde_json::json;

use crate::harness::*;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    key: Option<&'static str>,
    body: Option<String>,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    key: Option<&'static str>,
    body: Option<String>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        key,
        body,
        status,
        code,
    }
}

fn job(extra: serde_json::Value) -> Option<String> {
    let mut b = json!({"job_id": "new-1", "prompt": "a cat"});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    Some(b.to_string())
}

async fn run(h: &Harness, cases: Vec<Case>) {
    let before = h.fingerprint().await;
    for c in &cases {
        let r = h.call(c.method, &c.path, c.key, c.body.clone()).await;
        assert_eq!(r.status.as_u16(), c.status, "{}: {:?}", c.name, r.body);
        assert_eq!(r.body["error"]["code"], c.code, "{}: {:?}", c.name, r.body);
        let msg = r.body["error"]["message"].as_str().unwrap_or("");
        assert!(!msg.is_empty(), "{}: empty message", c.name);
        assert!(
            !msg.contains(SUBMIT_KEY) && !msg.contains(ADMIN_KEY),
            "{}: message leaks a key",
            c.name
        );
    }
    assert_eq!(
        h.fingerprint().await,
        before,
        "a rejected request changed the store"
    );
}

#[tokio::test]
async fn every_bad_submit_is_rejected_and_changes_nothing() {
    let h = Harness::start().await;
    assert_eq!(
        h.submit(json!({"job_id": "seed-1", "prompt": "seed"}))
            .await
            .status,
        202
    );
    let s = Some(SUBMIT_KEY);
    let p = "/api/jobs";
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let comfy = h.config.servers[0].url.clone();
    let cases = vec![
        case(
            "malformed json",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"#.into()),
            400,
            "invalid_json",
        ),
        case(
            "empty body",
            "POST",
            p,
            s,
            Some(String::new()),
            400,
            "invalid_json",
        ),
        case(
            "not an object",
            "POST",
            p,
            s,
            Some("[1,2]".into()),
            400,
            "invalid_request",
        ),
        case(
            "job_id bool",
            "POST",
            p,
            s,
            Some(r#"{"job_id":true,"prompt":"x"}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "job_id float",
            "POST",
            p,
            s,
            Some(r#"{"job_id":1.5,"prompt":"x"}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "prompt number",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"a","prompt":5}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "prompt array",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"a","prompt":["x"]}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "prompt null",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"a","prompt":null}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "missing job_id",
            "POST",
            p,
            s,
            Some(r#"{"prompt":"x"}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "missing prompt",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"a"}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "unknown field",
            "POST",
            p,
            s,
            job(json!({"colour": "red"})),
            400,
            "invalid_request",
        ),
        case(
            "priority string",
            "POST",
            p,
            s,
            job(json!({"priority": "high"})),
            400,
            "invalid_request",
        ),
        case(
            "timeout negative",
            "POST",
            p,
            s,
            job(json!({"timeout_s": -1})),
            400,
            "invalid_request",
        ),
        case(
            "output_base64 string",
            "POST",
            p,
            s,
            job(json!({"output_base64": "yes"})),
            400,
            "invalid_request",
        ),
        case(
            "params string",
            "POST",
            p,
            s,
            job(json!({"params": "seed=1"})),
            400,
            "invalid_params",
        ),
        case(
            "empty job_id",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"","prompt":"x"}"#.into()),
            400,
            "invalid_job_id",
        ),
        case(
            "job_id space",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"a b","prompt":"x"}"#.into()),
            400,
            "invalid_job_id",
        ),
        case(
            "job_id slash",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"a/b","prompt":"x"}"#.into()),
            400,
            "invalid_job_id",
        ),
        case(
            "job_id unicode",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"çay","prompt":"x"}"#.into()),
            400,
            "invalid_job_id",
        ),
        case(
            "job_id 129",
            "POST",
            p,
            s,
            Some(json!({"job_id": "a".repeat(129), "prompt": "x"}).to_string()),
            400,
            "invalid_job_id",
        ),
        case(
            "empty prompt",
            "POST",
            p,
            s,
            job(json!({"prompt": "  "})),
            400,
            "invalid_prompt",
        ),
        case(
            "huge prompt",
            "POST",
            p,
            s,
            job(json!({"prompt": "x".repeat(70_000)})),
            400,
            "invalid_prompt",
        ),
        case(
            "empty graph",
            "POST",
            p,
            s,
            job(json!({"prompt": {}})),
            400,
            "invalid_workflow",
        ),
        case(
            "graph node no class",
            "POST",
            p,
            s,
            job(json!({"prompt": {"1": {"inputs": {}}}})),
            400,
            "invalid_workflow",
        ),
        case(
            "graph node not object",
            "POST",
            p,
            s,
            job(json!({"prompt": {"1": 3}})),
            400,
            "invalid_workflow",
        ),
        case(
            "workflow with graph",
            "POST",
            p,
            s,
            job(json!({"prompt": {"1": {"class_type": "X", "inputs": {}}}, "workflow": "default"})),
            400,
            "conflicting_fields",
        ),
        case(
            "workflow path",
            "POST",
            p,
            s,
            job(json!({"workflow": "../etc/passwd"})),
            400,
            "invalid_workflow",
        ),
        case(
            "file url",
            "POST",
            p,
            s,
            job(json!({"input_image_url": "file:///etc/passwd"})),
            400,
            "url_scheme",
        ),
        case(
            "ftp webhook",
            "POST",
            p,
            s,
            job(json!({"webhook_url": "ftp://example.com/x"})),
            400,
            "url_scheme",
        ),
        case(
            "not a url",
            "POST",
            p,
            s,
            job(json!({"webhook_url": "lensia webhook"})),
            400,
            "invalid_url",
        ),
        case(
            "metadata url",
            "POST",
            p,
            s,
            job(json!({"input_image_url": "http://169.254.169.254/latest/meta-data"})),
            400,
            "url_refused",
        ),
        case(
            "loopback webhook",
            "POST",
            p,
            s,
            job(json!({"webhook_url": "http://127.0.0.1:9/hook"})),
            400,
            "url_refused",
        ),
        case(
            "private webhook",
            "POST",
            p,
            s,
            job(json!({"webhook_url": "http://10.1.2.3/hook"})),
            400,
            "url_refused",
        ),
        case(
            "ipv6 loopback",
            "POST",
            p,
            s,
            job(json!({"webhook_url": "http://[::1]:80/hook"})),
            400,
            "url_refused",
        ),
        case(
            "comfyui webhook",
            "POST",
            p,
            s,
            job(json!({"webhook_url": format!("{comfy}/interrupt")})),
            400,
            "url_refused",
        ),
        case(
            "localhost webhook",
            "POST",
            p,
            s,
            job(json!({"webhook_url": "http://localhost/hook"})),
            400,
            "url_refused",
        ),
        case(
            "bad base64",
            "POST",
            p,
            s,
            job(json!({"input_image_base64": "%%%not-base64"})),
            400,
            "invalid_image",
        ),
        case(
            "base64 not image",
            "POST",
            p,
            s,
            job(json!({"input_image_base64": "aGVsbG8gd29ybGQ="})),
            400,
            "invalid_image",
        ),
        case(
            "url and base64",
            "POST",
            p,
            s,
            job(
                json!({"input_image_base64": png, "input_image_url": "https://cdn.example.com/a.png"}),
            ),
            400,
            "conflicting_fields",
        ),
        case(
            "priority huge",
            "POST",
            p,
            s,
            job(json!({"priority": 1_000_000_000})),
            400,
            "invalid_priority",
        ),
        case(
            "timeout zero",
            "POST",
            p,
            s,
            job(json!({"timeout_s": 0})),
            400,
            "invalid_timeout",
        ),
        case(
            "conflicting duplicate",
            "POST",
            p,
            s,
            Some(r#"{"job_id":"seed-1","prompt":"other"}"#.into()),
            409,
            "job_conflict",
        ),
        case(
            "oversize body",
            "POST",
            p,
            s,
            Some(json!({"job_id": "big", "prompt": "x".repeat(2 * 1024 * 1024)}).to_string()),
            413,
            "payload_too_large",
        ),
        case(
            "telemetry no source",
            "POST",
            "/api/telemetry",
            s,
            Some(r#"{"metrics":{"a":1}}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "telemetry bad source",
            "POST",
            "/api/telemetry",
            s,
            Some(r#"{"source":"a b","metrics":{"a":1}}"#.into()),
            400,
            "invalid_source",
        ),
        case(
            "telemetry string metric",
            "POST",
            "/api/telemetry",
            s,
            Some(r#"{"source":"a","metrics":{"a":"1"}}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "telemetry empty metrics",
            "POST",
            "/api/telemetry",
            s,
            Some(r#"{"source":"a","metrics":{}}"#.into()),
            400,
            "invalid_metrics",
        ),
        case(
            "telemetry bad metric name",
            "POST",
            "/api/telemetry",
            s,
            Some(r#"{"source":"a","metrics":{"a b":1}}"#.into()),
            400,
            "invalid_metrics",
        ),
        case(
            "telemetry malformed",
            "POST",
            "/api/telemetry",
            s,
            Some("{".into()),
            400,
            "invalid_json",
        ),
        case(
            "telemetry bad time",
            "POST",
            "/api/telemetry",
            s,
            Some(r#"{"source":"a","metrics":{"a":1},"timestamp":"yesterday"}"#.into()),
            400,
            "invalid_request",
        ),
        case(
            "list bad status",
            "GET",
            "/api/jobs?status=done",
            s,
            None,
            400,
            "invalid_query",
        ),
        case(
            "list bad limit",
            "GET",
            "/api/jobs?limit=0",
            s,
            None,
            400,
            "invalid_query",
        ),
        case(
            "list limit text",
            "GET",
            "/api/jobs?limit=ten",
            s,
            None,
            400,
            "invalid_query",
        ),
        case(
            "list bad sort",
            "GET",
            "/api/jobs?sort=size",
            s,
            None,
            400,
            "invalid_query",
        ),
        case(
            "list bad cursor",
            "GET",
            "/api/jobs?cursor=abc",
            s,
            None,
            400,
            "invalid_cursor",
        ),
        case(
            "list unknown param",
            "GET",
            "/api/jobs?colour=red",
            s,
            None,
            400,
            "invalid_query",
        ),
        case(
            "list bad since",
            "GET",
            "/api/jobs?since=yesterday",
            s,
            None,
            400,
            "invalid_query",
        ),
        case(
            "unknown job",
            "GET",
            "/api/jobs/nope",
            s,
            None,
            404,
            "job_not_found",
        ),
        case(
            "unknown job events",
            "GET",
            "/api/jobs/nope/events",
            s,
            None,
            404,
            "job_not_found",
        ),
        case(
            "invalid id in path",
            "GET",
            "/api/jobs/%20x",
            s,
            None,
            404,
            "job_not_found",
        ),
        case(
            "cancel unknown",
            "POST",
            "/api/jobs/nope/cancel",
            Some(ADMIN_KEY),
            None,
            404,
            "job_not_found",
        ),
        case(
            "retry unknown",
            "POST",
            "/api/jobs/nope/retry",
            Some(ADMIN_KEY),
            None,
            404,
            "job_not_found",
        ),
        case(
            "delete unknown",
            "DELETE",
            "/api/jobs/nope",
            Some(ADMIN_KEY),
            None,
            404,
            "job_not_found",
        ),
        case(
            "retry pending",
            "POST",
            "/api/jobs/seed-1/retry",
            Some(ADMIN_KEY),
            None,
            409,
            "invalid_state",
        ),
        case(
            "delete pending",
            "DELETE",
            "/api/jobs/seed-1",
            Some(ADMIN_KEY),
            None,
            409,
            "invalid_state",
        ),
        case(
            "unknown route",
            "GET",
            "/api/nothing",
            s,
            None,
            404,
            "not_found",
        ),
        case(
            "wrong method",
            "PUT",
            "/api/jobs",
            s,
            None,
            405,
            "method_not_allowed",
        ),
        case(
            "wrong method ping",
            "POST",
            "/api/ping",
            None,
            None,
            405,
            "method_not_allowed",
        ),
    ];
    run(&h, cases).await;
}

/// Every protected route, with the least role that may call it.
fn protected() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("GET", "/api/telemetry", "read"),
        ("GET", "/api/telemetry/external", "read"),
        ("POST", "/api/telemetry", "submit"),
        ("GET", "/api/jobs", "read"),
        ("POST", "/api/jobs", "submit"),
        ("GET", "/api/jobs/seed-1", "read"),
        ("GET", "/api/jobs/seed-1/events", "read"),
        ("POST", "/api/jobs/seed-1/cancel", "admin"),
        ("POST", "/api/jobs/seed-1/retry", "admin"),
        ("DELETE", "/api/jobs/seed-1", "admin"),
        ("GET", "/api/queue", "read"),
        ("POST", "/api/queue/pause", "admin"),
        ("POST", "/api/queue/resume", "admin"),
    ]
}

#[tokio::test]
async fn missing_wrong_key_and_wrong_role_on_every_protected_route() {
    let h = Harness::start().await;
    assert_eq!(
        h.submit(json!({"job_id": "seed-1", "prompt": "seed"}))
            .await
            .status,
        202
    );
    let body =
        Some(json!({"job_id": "x", "prompt": "y", "source": "s", "metrics": {"a": 1}}).to_string());
    let mut cases = Vec::new();
    for (m, path, least) in protected() {
        cases.push(case(
            "no key",
            m,
            path,
            None,
            body.clone(),
            401,
            "unauthorized",
        ));
        cases.push(case(
            "wrong key",
            m,
            path,
            Some("not-a-key"),
            body.clone(),
            401,
            "unauthorized",
        ));
        cases.push(case(
            "near key",
            m,
            path,
            Some("test-admin-key-012345678"),
            body.clone(),
            401,
            "unauthorized",
        ));
        match least {
            "submit" => cases.push(case(
                "read key",
                m,
                path,
                Some(READ_KEY),
                body.clone(),
                403,
                "forbidden",
            )),
            "admin" => {
                cases.push(case(
                    "read key",
                    m,
                    path,
                    Some(READ_KEY),
                    body.clone(),
                    403,
                    "forbidden",
                ));
                cases.push(case(
                    "submit key",
                    m,
                    path,
                    Some(SUBMIT_KEY),
                    body.clone(),
                    403,
                    "forbidden",
                ));
            }
            _ => {}
        }
    }
    run(&h, cases).await;
    // A 401 tells the client how to authenticate; a bearer token works like X-API-Key.
    let r = h
        .http
        .get(format!("{}/api/queue", h.url))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("www-authenticate"));
    let r = h
        .http
        .get(format!("{}/api/queue", h.url))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .http
        .get(format!("{}/api/queue", h.url))
        .header("Authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
