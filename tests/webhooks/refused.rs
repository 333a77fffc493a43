//! URLs that passed (or skipped) the submit check are checked again at send time: a refused one
//! fails at once with the guard's message and is never retried.

use std::time::Duration;

use comfydash_daemon::store::{NewWebhookEvent, Store, StoreOptions};
use comfydash_wire::WebhookEventType;

use super::receiver::{Receiver, Reply};
use super::{counters, fast_webhooks, wait_event};
use crate::harness::*;

#[tokio::test]
async fn refused_urls_fail_at_send_time_without_retry() {
    let rx = Receiver::start(Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    fast_webhooks(&mut config);
    // Loopback is no longer allowed (as after an allow-list change); the ComfyUI server never is.
    config.outbound.allow.clear();
    let comfy = config.servers[0].url.clone();
    let cases = [
        (
            "meta",
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "169.254.169.254",
        ),
        ("loop", rx.url("/hook"), "COMFYDASH_OUTBOUND_ALLOW"),
        ("comfy", format!("{comfy}/prompt"), "ComfyUI"),
    ];
    let store = Store::open(
        &config.db_path(),
        StoreOptions {
            synchronous: config.store.synchronous,
            max_batch: 16,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    for (job, url, _) in &cases {
        store
            .enqueue_webhook(NewWebhookEvent {
                id: format!("msg_{job}"),
                job_id: (*job).into(),
                host: comfydash_daemon::webhook::host_key(url),
                url: url.clone(),
                kind: WebhookEventType::JobCompleted,
                payload: r#"{"type":"job.completed"}"#.into(),
                inline_outputs: false,
                at_ms: comfydash_daemon::store::now_ms(),
            })
            .await
            .unwrap();
    }
    tokio::task::spawn_blocking(move || store.close())
        .await
        .unwrap();

    let h = Harness::start_in(dir, config).await;
    for (job, _, words) in &cases {
        let ev = wait_event(&h, job, "failed").await;
        assert_eq!(ev["attempt_count"], 1, "{ev}");
        let a = &ev["attempts"][0];
        assert_eq!(a["status_code"], serde_json::Value::Null);
        let err = a["error"].as_str().unwrap();
        assert!(
            err.contains("refused") && err.contains(words),
            "{job}: {err}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.hits().is_empty(), "a refused URL was contacted");
    assert_eq!(counters(&h).await, (3, 0, 3, 0));
}
