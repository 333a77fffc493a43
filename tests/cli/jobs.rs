use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{command, finish, run};
use crate::harness::*;

async fn status_of(h: &Harness, id: &str) -> Value {
    h.get(&format!("/api/jobs/{id}"), Some(READ_KEY))
        .await
        .body
        .get("status")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn submit_text_params_and_image_idempotently() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("in.png");
    std::fs::write(&image, b"\x89PNG\r\n\x1a\n0000000000000000").unwrap();
    let image = image.to_str().unwrap();
    let args = [
        "submit",
        "a red bicycle",
        "--job-id",
        "s1",
        "--param",
        "seed=7",
        "--param",
        "style=noir",
        "--image-file",
        image,
        "--priority",
        "-5",
        "--timeout-s",
        "60",
        "--webhook",
        "https://example.com/hook",
    ];
    let out = run(&h.url, SUBMIT_KEY, &args).await;
    assert_eq!((out.code, out.stdout.as_str()), (0, "s1\n"), "{out:?}");
    let job = h.get("/api/jobs/s1", Some(READ_KEY)).await.body;
    assert_eq!(job["params"], json!({"seed": 7, "style": "noir"}));
    assert_eq!(job["prompt"], "a red bicycle");
    assert_eq!(job["has_input_image"], true);
    assert_eq!(job["priority"], -5);
    assert_eq!(job["timeout_s"], 60);
    assert_eq!(job["webhook_url"], "https://example.com/hook");

    // The same request again is the same job; exit 0 with a note.
    let again = run(&h.url, SUBMIT_KEY, &args).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("already submitted"), "{again:?}");

    // Another request with the same id: 409, exit 4, in the daemon's words.
    let daemon_says = h
        .submit(json!({"job_id": "s1", "prompt": "a blue bicycle"}))
        .await
        .body["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    let conflict = run(
        &h.url,
        SUBMIT_KEY,
        &["submit", "a blue bicycle", "--job-id", "s1"],
    )
    .await;
    assert_eq!(conflict.code, 4, "{conflict:?}");
    assert!(conflict.stderr.contains("job_conflict"), "{conflict:?}");
    assert!(conflict.stderr.contains(&daemon_says), "{conflict:?}");

    // Without --job-id the CLI makes one up.
    let out = run(&h.url, SUBMIT_KEY, &["submit", "x", "--json"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let accepted = out.json();
    assert!(accepted["job_id"].as_str().unwrap().starts_with("cli-"));
    assert_eq!(accepted["created"], true);
    assert_eq!(accepted["status"], "pending");

    // A rejected field comes back as the daemon's error code.
    let bad = run(&h.url, SUBMIT_KEY, &["submit", "x", "--timeout-s", "0"]).await;
    assert_eq!(bad.code, 4);
    assert!(bad.stderr.contains("invalid_timeout"), "{bad:?}");
}

#[tokio::test]
async fn submit_a_workflow_file() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let graph = json!({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}});
    let bare = dir.path().join("bare.json");
    let wrapped = dir.path().join("wrapped.json");
    std::fs::write(&bare, graph.to_string()).unwrap();
    std::fs::write(
        &wrapped,
        json!({"prompt": graph, "client_id": "ui"}).to_string(),
    )
    .unwrap();
    for (id, file) in [("w1", &bare), ("w2", &wrapped)] {
        let file = file.to_str().unwrap();
        let out = run(
            &h.url,
            SUBMIT_KEY,
            &["submit", "--workflow-file", file, "--job-id", id],
        )
        .await;
        assert_eq!(out.code, 0, "{out:?}");
        let job = h.get(&format!("/api/jobs/{id}"), Some(READ_KEY)).await.body;
        assert_eq!(job["prompt"], graph);
    }
    let missing = run(
        &h.url,
        SUBMIT_KEY,
        &["submit", "--workflow-file", "/no/such.json"],
    )
    .await;
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("cannot read workflow file"));
    let neither = run(&h.url, SUBMIT_KEY, &["submit"]).await;
    assert_eq!(neither.code, 2, "{neither:?}");
}

#[tokio::test]
async fn jobs_list_show_and_events() {
    let h = Harness::start().await;
    for (id, prompt) in [("l1", "a cat"), ("l2", "a dog"), ("l3", "a cat and a dog")] {
        assert_eq!(
            h.submit(json!({"job_id": id, "prompt": prompt}))
                .await
                .status,
            202
        );
    }
    let table = run(&h.url, READ_KEY, &["jobs", "list"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{table:?}");
    assert!(
        lines[0].starts_with("JOB_ID  STATUS   ATTEMPT"),
        "{table:?}"
    );
    assert!(lines[1].starts_with("l3      pending  1"), "{table:?}");
    // Columns line up: every row's status starts where the header's does.
    let at = lines[0].find("STATUS").unwrap();
    assert!(lines.iter().skip(1).all(|l| &l[at..at + 7] == "pending"));

    let all = run(
        &h.url,
        READ_KEY,
        &["jobs", "list", "--json", "--limit", "1", "--all"],
    )
    .await;
    let ids: Vec<Value> = all
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].clone())
        .collect();
    assert_eq!(ids, [json!("l3"), json!("l2"), json!("l1")]);
    let one = run(
        &h.url,
        READ_KEY,
        &["jobs", "list", "--json", "--limit", "1"],
    )
    .await;
    assert_eq!(one.json().as_array().unwrap().len(), 1);
    let lines = run(
        &h.url,
        READ_KEY,
        &[
            "jobs",
            "list",
            "--json-lines",
            "--q",
            "cat",
            "--sort",
            "created_at",
        ],
    )
    .await;
    let ids: Vec<String> = lines
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["job_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["l1", "l3"]);
    let none = run(
        &h.url,
        READ_KEY,
        &["jobs", "list", "--status", "failed,cancelled", "--json"],
    )
    .await;
    assert_eq!(none.json(), json!([]));
    let bad = run(&h.url, READ_KEY, &["jobs", "list", "--status", "lost"]).await;
    assert_eq!(bad.code, 2);

    let show = run(&h.url, READ_KEY, &["jobs", "show", "l2"]).await;
    assert_eq!(show.code, 0, "{show:?}");
    assert!(show.stdout.starts_with("job_id"), "{show:?}");
    assert!(show.stdout.contains("status       pending"), "{show:?}");
    assert_eq!(
        run(&h.url, READ_KEY, &["jobs", "show", "l2", "--json"])
            .await
            .json()["prompt"],
        "a dog"
    );
    let missing = run(&h.url, READ_KEY, &["jobs", "show", "nope"]).await;
    assert_eq!(missing.code, 4);
    assert!(missing.stderr.contains("job_not_found"), "{missing:?}");

    let events = run(&h.url, READ_KEY, &["jobs", "events", "l2", "--json"]).await;
    assert_eq!(events.json()[0]["kind"], "submitted");
    let events = run(&h.url, READ_KEY, &["jobs", "events", "l2"]).await;
    assert!(
        events.stdout.lines().nth(1).unwrap().contains("submitted"),
        "{events:?}"
    );
}

#[tokio::test]
async fn cancel_retry_and_delete() {
    let h = Harness::start().await;
    h.submit(json!({"job_id": "c1", "prompt": "x"})).await;
    // A submit key may not cancel.
    let denied = run(&h.url, SUBMIT_KEY, &["jobs", "cancel", "c1"]).await;
    assert_eq!(denied.code, 4);
    assert!(denied.stderr.contains("forbidden"), "{denied:?}");

    let out = run(&h.url, ADMIN_KEY, &["jobs", "cancel", "c1"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "job c1 cancelled\n"),
        "{out:?}"
    );
    let retried = run(&h.url, ADMIN_KEY, &["jobs", "retry", "c1", "--json"]).await;
    assert_eq!(retried.code, 0, "{retried:?}");
    assert_eq!(retried.json()["status"], "pending");
    assert_eq!(retried.json()["attempt"], 2);

    // Only finished jobs can be deleted.
    let early = run(&h.url, ADMIN_KEY, &["jobs", "delete", "c1"]).await;
    assert_eq!(early.code, 4, "{early:?}");
    run(&h.url, ADMIN_KEY, &["jobs", "cancel", "c1"]).await;
    let deleted = run(&h.url, ADMIN_KEY, &["jobs", "delete", "c1", "--json"]).await;
    assert_eq!(deleted.code, 0, "{deleted:?}");
    assert_eq!(deleted.json(), json!({"job_id": "c1", "deleted": true}));
    assert_eq!(h.get("/api/jobs/c1", Some(READ_KEY)).await.status, 404);
}

#[tokio::test]
async fn queue_pause_status_resume() {
    let h = Harness::start().await;
    let paused = run(&h.url, ADMIN_KEY, &["queue", "pause", "--json"]).await;
    assert_eq!(paused.code, 0, "{paused:?}");
    assert_eq!(paused.json()["paused"], true);
    let status = run(&h.url, READ_KEY, &["queue", "status", "--json"])
        .await
        .json();
    assert_eq!(status["paused"], true);
    assert_eq!(status["health"], "good");
    let text = run(&h.url, READ_KEY, &["queue", "status"]).await;
    assert!(
        text.stdout.starts_with("queue paused: 0 pending"),
        "{text:?}"
    );
    // Flags are accepted before the subcommand too.
    let resumed = finish(&mut command(&[
        "queue",
        "--url",
        &h.url,
        "--api-key",
        ADMIN_KEY,
        "--json",
        "resume",
    ]))
    .await;
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_eq!(resumed.json()["paused"], false);
}

#[tokio::test]
async fn wait_ends_on_cancel_from_another_client_and_times_out() {
    let h = Harness::start().await;
    h.submit(json!({"job_id": "wc", "prompt": "x"})).await;
    let mut waiting = command(&["jobs", "wait", "wc", "--url", &h.url, "--api-key", READ_KEY]);
    let waiter = tokio::spawn(async move { finish(&mut waiting).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    h.post("/api/jobs/wc/cancel", Some(ADMIN_KEY), json!({}))
        .await;
    let out = waiter.await.unwrap();
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("job wc was cancelled"), "{out:?}");

    // Already cancelled: the refetch sees it at once.
    let out = run(&h.url, READ_KEY, &["jobs", "wait", "wc", "--json"]).await;
    assert_eq!(out.code, 5);
    assert_eq!(out.json()["status"], "cancelled");

    h.submit(json!({"job_id": "wt", "prompt": "x"})).await;
    let out = run(
        &h.url,
        READ_KEY,
        &["jobs", "wait", "wt", "--timeout", "300ms"],
    )
    .await;
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stderr
            .contains("timed out after 300ms waiting for job wt"),
        "{out:?}"
    );
    let out = run(
        &h.url,
        SUBMIT_KEY,
        &[
            "submit",
            "y",
            "--job-id",
            "ws",
            "--wait",
            "--wait-timeout",
            "200ms",
        ],
    )
    .await;
    assert_eq!((out.code, out.stdout.as_str()), (6, "ws\n"), "{out:?}");
    assert_eq!(status_of(&h, "ws").await, "pending");
}

#[tokio::test]
async fn submit_wait_and_download_outputs() {
    let (h, _sim) = with_sim(
        comfydash_sim::SimConfig {
            exec_time: Duration::from_millis(20),
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let out = run(
        &h.url,
        SUBMIT_KEY,
        &[
            "submit",
            "a lighthouse",
            "--job-id",
            "d1",
            "--wait",
            "--wait-timeout",
            "10s",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let job = out.json();
    assert_eq!(job["status"], "completed");
    let outputs = job["outputs"].as_array().unwrap();
    assert!(!outputs.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    let got = run(
        &h.url,
        READ_KEY,
        &["jobs", "outputs", "d1", "-o", target.to_str().unwrap()],
    )
    .await;
    assert_eq!(got.code, 0, "{got:?}");
    for (o, line) in outputs.iter().zip(got.stdout.lines()) {
        let bytes = std::fs::read(line).unwrap();
        assert_eq!(bytes.len() as u64, o["size"].as_u64().unwrap());
        assert_eq!(hex::encode(Sha256::digest(&bytes)), o["sha256"]);
    }
    // Again: the files are already there and identical.
    let again = run(
        &h.url,
        READ_KEY,
        &[
            "jobs",
            "outputs",
            "d1",
            "-o",
            target.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(again.json()[0]["downloaded"], false);
}
