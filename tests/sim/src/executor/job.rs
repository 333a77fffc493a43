//! Running one job like ComfyUI's PromptExecutor: execution_start and execution_cached, each
//! scheduled node (cached outputs replayed), then success, error or interrupt, the history
//! entry, the status broadcast and the final `executing` null.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::Rng;
use serde_json::{Map, Value, json};

use super::pace::{self, Paced};
use super::plan;
use super::report::Report;
use crate::cache::{self, CachedNode};
use crate::host::Host;
use crate::nodes::{self, Arg, Args, NodeClass, NodeError, NodeRun, RunContext};
use crate::process::Process;
use crate::queue::Job;

/// Keys ComfyUI strips from extra_data before a job reaches history.
const SENSITIVE_KEYS: [&str; 2] = ["api_key_comfy_org", "auth_token_comfy_org"];

/// How the node loop ended.
enum Outcome {
    Success,
    Interrupted {
        node: String,
    },
    Failed {
        node: String,
        error: NodeError,
        inputs: Value,
    },
}

/// Runs a job to its history entry and final events.
pub async fn run(host: &Host, process: &Process, job: Job) {
    let client = job.client_id();
    process.interrupt.store(false, Ordering::SeqCst);
    *process.current.lock() = crate::process::Current {
        client_id: client.clone(),
        last_node: None,
    };
    let mut report = Report::new(process, client, &job.prompt_id);
    report.add(
        "execution_start",
        json!({"prompt_id": job.prompt_id}),
        false,
    );

    let sigs = cache::signatures(&job.prompt, &host.dirs);
    let cached: Vec<String> = {
        let mut cache = process.cache.lock();
        cache.retain(&sigs.values().copied().collect());
        job.prompt
            .keys()
            .filter(|id| cache.get(sigs[*id]).is_some())
            .cloned()
            .collect()
    };
    report.add(
        "execution_cached",
        json!({"nodes": cached, "prompt_id": job.prompt_id}),
        false,
    );
    let cached_set: HashSet<&str> = cached.iter().map(String::as_str).collect();
    let order = plan::order(&job.prompt, &job.outputs, |id| cached_set.contains(id));

    let mut runner = Runner::new(
        host,
        process,
        &job,
        &sigs,
        order
            .iter()
            .filter(|id| !cached_set.contains(id.as_str()))
            .count(),
    );
    let mut outcome = Outcome::Success;
    for id in &order {
        if let Some(end) = runner.visit(&mut report, id).await {
            outcome = end;
            break;
        }
    }
    let ended = Ended {
        outcome,
        executed: runner.executed,
        cached,
        ran_any: runner.started_any,
    };
    host.knobs.wait_unhung().await;
    finish(host, process, &job, &sigs, report, ended);
}

/// What the node loop leaves for the history entry.
struct Ended {
    outcome: Outcome,
    executed: Vec<String>,
    cached: Vec<String>,
    ran_any: bool,
}

/// Per-job node-running state.
struct Runner<'a> {
    host: &'a Host,
    process: &'a Process,
    job: &'a Job,
    sigs: &'a HashMap<String, u64>,
    prompt: Arc<Value>,
    budget: std::time::Duration,
    failing: Option<usize>,
    index: usize,
    results: HashMap<String, Arc<CachedNode>>,
    executed: Vec<String>,
    started_any: bool,
}

impl<'a> Runner<'a> {
    fn new(
        host: &'a Host,
        process: &'a Process,
        job: &'a Job,
        sigs: &'a HashMap<String, u64>,
        to_run: usize,
    ) -> Runner<'a> {
        let budget = host.knobs.exec_time() / to_run.max(1) as u32;
        let failing = {
            let mut rng = host.rng.lock();
            let fail = to_run > 0 && rng.random::<f64>() < host.knobs.failure_rate();
            fail.then(|| rng.random_range(0..to_run))
        };
        Runner {
            host,
            process,
            job,
            sigs,
            prompt: Arc::new(Value::Object(job.prompt.clone())),
            budget,
            failing,
            index: 0,
            results: HashMap::new(),
            executed: Vec::new(),
            started_any: false,
        }
    }

    fn class_of(&self, id: &str) -> NodeClass {
        self.job.prompt[id]["class_type"]
            .as_str()
            .and_then(NodeClass::from_name)
            .unwrap_or(NodeClass::EmptyImage)
    }

    fn cached(&self, id: &str) -> Option<Arc<CachedNode>> {
        self.sigs
            .get(id)
            .and_then(|sig| self.process.cache.lock().get(*sig))
    }

    /// Visits one scheduled node; `Some` ends the job.
    async fn visit(&mut self, report: &mut Report<'_>, id: &str) -> Option<Outcome> {
        let pid = report.prompt_id().to_string();
        self.host.knobs.wait_unhung().await;
        if let Some(hit) = self.cached(id) {
            let output = hit.ui.clone().unwrap_or(Value::Null);
            report.to_client(
                "executed",
                json!({"node": id, "display_node": id, "output": output, "prompt_id": pid}),
            );
            report.node_state(id, "finished", 1, 1);
            self.results.insert(id.to_string(), hit);
            return None;
        }
        self.started_any = true;
        if report.has_client() {
            self.process.current.lock().last_node = Some(id.to_string());
        }
        report.to_client(
            "executing",
            json!({"node": id, "display_node": id, "prompt_id": pid}),
        );
        report.node_state(id, "running", 0, 1);
        // `executing` is already out when the interrupt is noticed, as in ComfyUI.
        if self.process.interrupted() {
            return Some(Outcome::Interrupted {
                node: id.to_string(),
            });
        }
        let class = self.class_of(id);
        let args = self.resolve_args(class, id);
        let injected = self.failing == Some(self.index);
        self.index += 1;
        let run = if injected {
            NodeRun::default()
        } else {
            match self.run_blocking(class, &args).await {
                Ok(run) => run,
                Err(error) => {
                    return Some(Outcome::Failed {
                        node: id.to_string(),
                        error,
                        inputs: args.formatted(),
                    });
                }
            }
        };
        let steps = nodes::progress_steps(class, &args, Some(&run));
        let (knobs, process) = (&self.host.knobs, self.process);
        let paced = pace::run(knobs, process, self.budget, steps, |i| {
            if class == NodeClass::SaveImageWebsocket {
                report.progress(id, i - 1, steps);
                if let Some(png) = run.previews.get(i as usize - 1) {
                    report.preview(id, png);
                }
            } else {
                report.progress(id, i, steps);
            }
        })
        .await;
        if paced == Paced::Interrupted {
            return Some(Outcome::Interrupted {
                node: id.to_string(),
            });
        }
        if injected {
            let msg = format!(
                "comfydash-sim: injected failure in {} (failure_rate)",
                class.name()
            );
            let error = NodeError::new("RuntimeError", msg);
            return Some(Outcome::Failed {
                node: id.to_string(),
                error,
                inputs: args.formatted(),
            });
        }
        self.host.knobs.wait_unhung().await;
        let done = Arc::new(CachedNode {
            outputs: run.outputs,
            ui: run.ui,
        });
        if let Some(sig) = self.sigs.get(id) {
            self.process.cache.lock().insert(*sig, done.clone());
        }
        if let Some(ui) = &done.ui {
            report.to_client(
                "executed",
                json!({"node": id, "display_node": id, "output": ui, "prompt_id": pid}),
            );
        }
        report.node_state(id, "finished", steps.max(1), steps.max(1));
        self.results.insert(id.to_string(), done);
        self.executed.push(id.to_string());
        None
    }

    /// The node's inputs: literals as validated, links from this job's results or the cache.
    fn resolve_args(&self, class: NodeClass, id: &str) -> Args {
        let mut args = Args::default();
        let inputs = &self.job.prompt[id]["inputs"];
        for spec in class.inputs(&self.host.dirs) {
            let Some(value) = inputs.get(spec.name) else {
                continue;
            };
            let arg = match value.as_array().map(Vec::as_slice) {
                Some([Value::String(src), slot]) => {
                    let from = self.results.get(src).cloned().or_else(|| self.cached(src));
                    let datum = from
                        .and_then(|r| r.outputs.get(slot.as_u64().unwrap_or(0) as usize).cloned());
                    match datum {
                        Some(d) => Arg::Data(d),
                        None => continue,
                    }
                }
                _ => Arg::Lit(value.clone()),
            };
            args.0.insert(spec.name.to_string(), arg);
        }
        args
    }

    async fn run_blocking(&self, class: NodeClass, args: &Args) -> Result<NodeRun, NodeError> {
        let dirs = self.host.dirs.clone();
        let prompt = self.prompt.clone();
        let extra = self.job.extra_data.get("extra_pnginfo").cloned();
        let temp_tag = self.host.temp_tag();
        let args = args.clone();
        let task = tokio::task::spawn_blocking(move || {
            let ctx = RunContext {
                dirs: &dirs,
                prompt: &prompt,
                extra_pnginfo: extra.as_ref(),
                temp_tag,
            };
            nodes::run(class, &args, &ctx)
        });
        task.await
            .unwrap_or_else(|e| Err(NodeError::new("RuntimeError", e.to_string())))
    }
}

/// Records the end of the job, writes history, broadcasts status and sends `executing` null.
fn finish(
    host: &Host,
    process: &Process,
    job: &Job,
    sigs: &HashMap<String, u64>,
    mut report: Report<'_>,
    ended: Ended,
) {
    let Ended {
        outcome,
        executed,
        cached,
        ran_any,
    } = ended;
    let pid = job.prompt_id.clone();
    let class_of = |id: &str| py_class(&job.prompt, id);
    let success = matches!(outcome, Outcome::Success);
    match outcome {
        Outcome::Success => report.add("execution_success", json!({"prompt_id": pid}), false),
        Outcome::Interrupted { node } => {
            let data = json!({"prompt_id": pid, "node_id": node, "node_type": class_of(&node), "executed": executed});
            report.add("execution_interrupted", data, true);
        }
        Outcome::Failed {
            node,
            error,
            inputs,
        } => {
            let data = json!({
                "prompt_id": pid, "node_id": node, "node_type": class_of(&node), "executed": executed,
                "exception_message": format!("{}\n", error.message), "exception_type": error.exception_type,
                "traceback": traceback(&class_of(&node)), "current_inputs": inputs, "current_outputs": cached,
            });
            report.add("execution_error", data, false);
        }
    }
    // History outputs come from the UI cache of every node in the prompt, as in ComfyUI.
    let (mut outputs, mut meta) = (Map::new(), Map::new());
    {
        let cache = process.cache.lock();
        for id in job.prompt.keys() {
            if let Some(ui) = sigs
                .get(id)
                .and_then(|s| cache.get(*s))
                .and_then(|c| c.ui.clone())
            {
                outputs.insert(id.clone(), ui);
                meta.insert(id.clone(), json!({"node_id": id, "display_node": id, "parent_node": null, "real_node_id": id}));
            }
        }
    }
    let mut extra = job.extra_data.clone();
    for key in SENSITIVE_KEYS {
        extra.remove(key);
    }
    let entry = json!({
        "prompt": [job.number.to_json(), pid, job.prompt, extra, job.outputs],
        "outputs": outputs,
        "status": {"status_str": if success { "success" } else { "error" }, "completed": success, "messages": report.messages},
        "meta": meta,
    });
    if ran_any {
        host.executed.fetch_add(1, Ordering::SeqCst);
    }
    process.history.lock().insert(pid.clone(), entry);
    process.queue.lock().finish_running();
    process.broadcast_status();
    report.to_client("executing", json!({"node": null, "prompt_id": pid}));
    *process.current.lock() = crate::process::Current::default();
}

fn py_class(prompt: &Map<String, Value>, id: &str) -> String {
    prompt
        .get(id)
        .and_then(|n| n["class_type"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A plausible `traceback.format_tb` for a node failure.
fn traceback(class: &str) -> Vec<String> {
    vec![
        "  File \"/opt/ComfyUI/execution.py\", line 496, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n".into(),
        format!("  File \"/opt/ComfyUI/nodes.py\", line 1, in {class}\n    (comfydash-sim)\n"),
    ]
}
