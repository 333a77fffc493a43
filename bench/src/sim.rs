//! ComfyUI simulators on their own runtime, and what their history says about each execution:
//! the simulator stamps `execution_start` and the end message itself, the most precise
//! account of when a server was busy.

use std::time::Duration;

use anyhow::Context;
use comfydash_sim::{Sim, SimConfig};
use serde_json::Value;

use crate::ctx::Ctx;
use crate::stats::Samples;

/// Starts a simulator whose jobs take `exec_time`.
pub async fn start(ctx: &Ctx, exec_time: Duration) -> anyhow::Result<Sim> {
    ctx.on_sim(async move {
        Sim::start(SimConfig {
            exec_time,
            ..SimConfig::default()
        })
        .await
        .context("starting the simulator")
    })
    .await
}

/// Stops simulators and removes their folders.
pub async fn stop(ctx: &Ctx, sims: Vec<Sim>) -> anyhow::Result<()> {
    ctx.on_sim(async move {
        for s in sims {
            s.shutdown().await;
        }
        Ok(())
    })
    .await
}

/// One prompt as the simulator ran it, in its own milliseconds since the epoch.
#[derive(Debug, Clone)]
pub struct Execution {
    /// ComfyUI prompt id.
    pub prompt_id: String,
    /// `execution_start`.
    pub start_ms: i64,
    /// `execution_success`, `execution_error` or `execution_interrupted`.
    pub end_ms: i64,
}

impl Execution {
    /// Milliseconds it ran.
    pub fn ms(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64
    }
}

/// Every finished prompt in `GET {url}/history`, in start order.
pub async fn executions(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<Execution>> {
    let body: Value = http
        .get(format!("{url}/history"))
        .send()
        .await
        .context("GET /history")?
        .json()
        .await
        .context("decoding /history")?;
    let mut out: Vec<Execution> = body
        .as_object()
        .context("/history is not an object")?
        .iter()
        .filter_map(|(id, entry)| execution(id, entry))
        .collect();
    out.sort_by_key(|e| e.start_ms);
    Ok(out)
}

/// Reads one history entry's start and end stamps.
pub fn execution(prompt_id: &str, entry: &Value) -> Option<Execution> {
    let messages = entry["status"]["messages"].as_array()?;
    let stamp = |names: &[&str]| {
        messages.iter().find_map(|m| {
            let name = m.get(0)?.as_str()?;
            names
                .contains(&name)
                .then(|| m.get(1)?.get("timestamp")?.as_i64())
                .flatten()
        })
    };
    Some(Execution {
        prompt_id: prompt_id.to_string(),
        start_ms: stamp(&["execution_start"])?,
        end_ms: stamp(&[
            "execution_success",
            "execution_error",
            "execution_interrupted",
        ])?,
    })
}

/// Idle time between consecutive executions on one server (start order), in milliseconds.
pub fn gaps(execs: &[Execution]) -> Samples {
    let mut s = Samples::new();
    for w in execs.windows(2) {
        s.push_ms((w[1].start_ms - w[0].end_ms).max(0) as f64);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_and_gaps() {
        let entry = |s: i64, e: i64| {
            json!({"status": {"messages": [
                ["execution_start", {"prompt_id": "p", "timestamp": s}],
                ["execution_cached", {"nodes": [], "prompt_id": "p", "timestamp": s}],
                ["execution_success", {"prompt_id": "p", "timestamp": e}]
            ]}})
        };
        let a = execution("a", &entry(100, 150)).unwrap();
        let b = execution("b", &entry(153, 203)).unwrap();
        assert_eq!(a.ms(), 50.0);
        let mut g = gaps(&[a, b]);
        assert_eq!(g.p50(), 3.0);
        assert!(execution("c", &json!({"status": {"messages": []}})).is_none());
    }
}
