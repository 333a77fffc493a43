//! HTTP submit load: keep-alive submitters posting text jobs for a fixed time, counting the
//! 202s and timing each; shared by the scenarios that push submits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::daemon::SUBMIT_KEY;
use crate::stats::Samples;
use crate::workload;

/// What a load run (or another writer) achieved.
#[derive(Debug, Default)]
pub struct Measured {
    /// Jobs answered 202.
    pub accepted: u64,
    /// Any other answer.
    pub errors: u64,
    /// Wall time of the run.
    pub secs: f64,
    /// Latency of each accepted submit.
    pub latency: Samples,
    /// CPU time of whoever did the work (daemon, store callers, or the naive thread).
    pub cpu: Duration,
}

impl Measured {
    /// Accepted jobs per second.
    pub fn rate(&self) -> f64 {
        self.accepted as f64 / self.secs
    }
}

/// Runs `c` submitters, each until `dur` has passed or it has sent `per_task` jobs.
pub async fn run(
    http: reqwest::Client,
    url: String,
    c: usize,
    dur: Duration,
    per_task: u64,
    prefix: &'static str,
) -> anyhow::Result<Measured> {
    let url = Arc::new(url);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..c {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut m = Measured::default();
            let mut i = 0;
            while i < per_task && t0.elapsed() < dur {
                let id = format!("{prefix}-{task}-{i}");
                let body = serde_json::to_vec(&workload::text_job(&id, i))?;
                let t = Instant::now();
                let resp = http
                    .post(url.as_str())
                    .header("x-api-key", SUBMIT_KEY)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .context("POST /api/jobs")?;
                let status = resp.status();
                resp.bytes().await.context("reading the answer")?;
                if status == reqwest::StatusCode::ACCEPTED {
                    m.latency.push(t.elapsed());
                    m.accepted += 1;
                } else {
                    m.errors += 1;
                }
                i += 1;
            }
            anyhow::Ok(m)
        }));
    }
    let mut total = Measured::default();
    for t in tasks {
        let m = t.await.context("submitter panicked")??;
        total.accepted += m.accepted;
        total.errors += m.errors;
        total.latency.extend(&m.latency);
    }
    total.secs = t0.elapsed().as_secs_f64();
    Ok(total)
}
