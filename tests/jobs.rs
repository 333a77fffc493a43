use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn same_request_is_idempotent_and_a_different_one_conflicts() {
    let h = Harness::start().await;
    let body = json!({"job_id": 7, "prompt": "a cat", "params": {"b": 1, "a": 2}});
    assert_eq!(h.submit(body).await.status, 202);
    // Same request with keys in another order and the id as a string: the same job.
    let again = h
        .call(
            "POST",
            "/api/jobs",
            Some(SUBMIT_KEY),
            Some(r#"{"params":{"a":2,"b":1},"prompt":"a cat","job_id":"7"}"#.into()),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["job_id"], "7");
    let other = h
        .submit(json!({"job_id": "7", "prompt": "a cat", "params": {"a": 3}}))
        .await;
    assert_eq!(other.status, 409);
    assert_eq!(h.telemetry().await["jobs"]["total"], 1);
}

#[tokio::test]
async fn concurrent_duplicate_submits_create_one_job() {
    let h = Harness::start().await;
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (http, url) = (h.http.clone(), h.url.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{url}/api/jobs"))
                .header("X-API-Key", SUBMIT_KEY)
                .json(&json!({"job_id": "dup", "prompt": "same"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 202).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 39, "{codes:?}");
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["total"], 1);
    assert_eq!(t["jobs"]["byStatus"]["pending"], 1);
}

#[tokio::test]
async fn cancel_retry_delete_and_the_job_log() {
    let h = Harness::start().await;
    h.submit(json!({"job_id": "j1", "prompt": "x"})).await;
    let r = h
        .post("/api/jobs/j1/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "cancelled");
    assert!(r.body["finished_at"].is_string());
    let again = h
        .post("/api/jobs/j1/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["error"]["code"], "invalid_state");
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["byStatus"]["cancelled"], 1);
    assert_eq!(t["jobs"]["byStatus"]["pending"], 0);

    let r = h
        .post("/api/jobs/j1/retry", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["attempt"], 2);
    assert!(r.body["finished_at"].is_null());
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["byStatus"]["cancelled"], 0);
    assert_eq!(t["jobs"]["byStatus"]["pending"], 1);
    assert_eq!(t["jobs"]["total"], 1);

    let log = h.get("/api/jobs/j1/events", Some(READ_KEY)).await.body;
    let events = log["events"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().into(),
                e["to"].as_str().unwrap_or("").into(),
                e["actor"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("submitted".into(), "pending".into(), "lensia".into()),
            ("state".into(), "cancelled".into(), "ops".into()),
            ("state".into(), "pending".into(), "ops".into()),
        ]
    );

    h.post("/api/jobs/j1/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    let r = h
        .call("DELETE", "/api/jobs/j1", Some(ADMIN_KEY), None)
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(h.get("/api/jobs/j1", Some(READ_KEY)).await.status, 404);
    // Deleted jobs keep counting: total and byStatus still sum up.
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["total"], 1);
    assert_eq!(t["jobs"]["byStatus"]["cancelled"], 1);
}

#[tokio::test]
async fn queue_full_answers_429_with_retry_after() {
    let h = Harness::with(|c| c.queue.max_pending = 2).await;
    assert_eq!(
        h.submit(json!({"job_id": "a", "prompt": "x"})).await.status,
        202
    );
    assert_eq!(
        h.submit(json!({"job_id": "b", "prompt": "x"})).await.status,
        202
    );
    let r = h.submit(json!({"job_id": "c", "prompt": "x"})).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["error"]["code"], "queue_full");
    assert_eq!(r.headers["retry-after"], "5");
    // The same request for an existing job is still answered.
    assert_eq!(
        h.submit(json!({"job_id": "a", "prompt": "x"})).await.status,
        200
    );
    assert_eq!(h.telemetry().await["jobs"]["total"], 2);
}

#[tokio::test]
async fn queue_health_levels_follow_the_pending_count() {
    let h = Harness::with(|c| {
        c.queue.moderate_at = 2;
        c.queue.high_at = 3;
    })
    .await;
    let level = || async {
        let hl = h.get("/api/health", None).await.body;
        let t = h.telemetry().await;
        (
            hl["statistics"]["queueHealth"]
                .as_str()
                .unwrap()
                .to_string(),
            t["queue"]["health"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(level().await, ("good".into(), "healthy".into()));
    for i in 0..2 {
        h.submit(json!({"job_id": format!("q{i}"), "prompt": "x"}))
            .await;
    }
    assert_eq!(level().await, ("moderate".into(), "warning".into()));
    h.submit(json!({"job_id": "q2", "prompt": "x"})).await;
    assert_eq!(level().await, ("high".into(), "critical".into()));
    assert_eq!(h.get("/api/health", None).await.body["status"], "degraded");
}

#[tokio::test]
async fn listing_filters_sorts_and_pages() {
    let h = Harness::start().await;
    for i in 0..25 {
        let prio = if i % 5 == 0 { 10 } else { 0 };
        let prompt = if i == 13 {
            "ünïcode lighthouse 🌊".to_string()
        } else {
            format!("prompt {i}")
        };
        let r = h
            .submit(json!({"job_id": format!("job-{i:02}"), "prompt": prompt, "priority": prio}))
            .await;
        assert_eq!(r.status, 202);
    }
    for i in [3, 4] {
        h.post(
            &format!("/api/jobs/job-{i:02}/cancel"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    }
    // Newest first by default; pages of 10 cover everything exactly once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = h
            .get(
                &format!("/api/jobs?limit=10&cursor={cursor}"),
                Some(READ_KEY),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        for j in r.body["jobs"].as_array().unwrap() {
            seen.push(j["job_id"].as_str().unwrap().to_string());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("job-{i:02}")).collect();
    assert_eq!(seen, expected);

    let r = h
        .get("/api/jobs?status=cancelled", Some(READ_KEY))
        .await
        .body;
    let ids: Vec<&str> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["job-04", "job-03"]);
    let r = h
        .get(
            "/api/jobs?status=pending,cancelled&limit=500",
            Some(READ_KEY),
        )
        .await
        .body;
    assert_eq!(r["jobs"].as_array().unwrap().len(), 25);

    let r = h.get("/api/jobs?q=lighthouse", Some(READ_KEY)).await.body;
    assert_eq!(r["jobs"][0]["job_id"], "job-13");
    assert_eq!(r["jobs"].as_array().unwrap().len(), 1);
    // LIKE wildcards in q are literal.
    let r = h.get("/api/jobs?q=%25", Some(READ_KEY)).await.body;
    assert_eq!(r["jobs"].as_array().unwrap().len(), 0);

    let r = h
        .get("/api/jobs?sort=-priority&limit=5", Some(READ_KEY))
        .await
        .body;
    let ids: Vec<&str> = r["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["job-20", "job-15", "job-10", "job-05", "job-00"]);
    let next = r["next_cursor"].as_str().unwrap();
    let r = h
        .get(
            &format!("/api/jobs?sort=-priority&limit=2&cursor={next}"),
            Some(READ_KEY),
        )
        .await
        .body;
    assert_eq!(r["jobs"][0]["job_id"], "job-24");

    let r = h
        .get("/api/jobs?sort=created_at&limit=1", Some(READ_KEY))
        .await
        .body;
    assert_eq!(r["jobs"][0]["job_id"], "job-00");
    // Priority shapes the queue position.
    let r = h
        .submit(json!({"job_id": "urgent", "prompt": "x", "priority": 100}))
        .await;
    assert_eq!(r.body["position"], 0);
    let r = h.submit(json!({"job_id": "late", "prompt": "x"})).await;
    assert_eq!(r.body["position"], 24);
}

#[tokio::test]
async fn pause_and_resume_survive_a_restart() {
    let mut h = Harness::start().await;
    let r = h.post("/api/queue/pause", Some(ADMIN_KEY), json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["paused"], true);
    h.restart().await;
    assert_eq!(
        h.get("/api/queue", Some(READ_KEY)).await.body["paused"],
        true
    );
    assert_eq!(
        h.get("/api/health", None).await.body["statistics"]["paused"],
        true
    );
    assert_eq!(h.telemetry().await["queue"]["paused"], true);
    let r = h
        .post("/api/queue/resume", Some(ADMIN_KEY), json!({}))
        .await;
    assert_eq!(r.body["paused"], false);
    h.restart().await;
    assert_eq!(
        h.get("/api/queue", Some(READ_KEY)).await.body["paused"],
        false
    );
}

#[tokio::test]
async fn pruning_deletes_old_terminal_jobs_and_keeps_the_counts() {
    let h = Harness::with(|c| {
        c.retention.max_age = Duration::from_millis(1);
        c.retention.interval = Duration::from_millis(30);
        c.retention.batch = 2;
        c.outbound.allow = vec!["127.0.0.0/8".into()];
        c.webhooks.schedule = vec![Duration::from_secs(3600)];
    })
    .await;
    for i in 0..5 {
        h.submit(json!({"job_id": format!("p{i}"), "prompt": "x"}))
            .await;
    }
    // Its webhook cannot be delivered yet: the job (and its outputs) must outlive retention.
    let hook = format!("http://{}/hook", dead_addr());
    let r = h
        .submit(json!({"job_id": "hooked", "prompt": "x", "webhook_url": hook}))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    h.post("/api/jobs/hooked/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    for i in 0..4 {
        h.post(
            &format!("/api/jobs/p{i}/cancel"),
            Some(ADMIN_KEY),
            json!({}),
        )
        .await;
    }
    let pruned = eventually(Duration::from_secs(5), || async {
        h.get("/api/jobs?limit=500", Some(READ_KEY)).await.body["jobs"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    assert!(pruned, "terminal jobs were not pruned");
    assert_eq!(h.get("/api/jobs/p4", Some(READ_KEY)).await.status, 200);
    assert_eq!(h.get("/api/jobs/hooked", Some(READ_KEY)).await.status, 200);
    let t = h.telemetry().await;
    assert_eq!(t["jobs"]["total"], 6);
    assert_eq!(t["jobs"]["byStatus"]["cancelled"], 5);
    assert_eq!(t["jobs"]["byStatus"]["pending"], 1);
}

/// The console reaches the end of a listing by reading the reversed sort from its start: that
/// must be exactly the listing backwards, ties included, page after page.
#[tokio::test]
async fn every_sort_read_backwards_is_the_exact_reverse() {
    let h = Harness::start().await;
    for i in 0..23 {
        let r = h
            .submit(json!({"job_id": format!("r{i:02}"), "prompt": "x", "priority": i % 3}))
            .await;
        assert_eq!(r.status, 202);
    }
    let all = |sort: &str, limit: usize| {
        let sort = sort.to_string();
        let h = &h;
        async move {
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/jobs?sort={sort}&limit={limit}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = h.get(&path, Some(READ_KEY)).await.body;
                for j in page["jobs"].as_array().unwrap() {
                    ids.push(j["job_id"].as_str().unwrap().to_string());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_string()),
                    None => return ids,
                }
            }
        }
    };
    for (forward, backward) in [
        ("-created_at", "created_at"),
        ("-updated_at", "updated_at"),
        ("-priority", "priority"),
    ] {
        let f = all(forward, 500).await;
        let mut b = all(backward, 4).await;
        assert_eq!(f.len(), 23);
        b.reverse();
        assert_eq!(f, b, "{forward} vs {backward}");
    }
}
