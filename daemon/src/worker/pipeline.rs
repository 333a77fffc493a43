//! One server's pipeline. Its loop:
//! - keeps up to `pipeline_depth` prompts in ComfyUI (one running, the rest waiting), taking
//!   jobs from the store only when a slot is free, the queue is not paused and the server is up;
//! - follows them over the WebSocket (progress, start, end) and polls `/queue` + `/history`
//!   every `poll_interval`, so nothing finishes unnoticed when the socket is down;
//! - collects outputs and ends each job exactly once (the store's conditional update);
//! - handles cancels (delete from ComfyUI's queue, or interrupt the running prompt), timeouts,
//!   pause (pulls back prompts not yet started) and lost prompts (requeued, bounded);
//! - on start, adopts the jobs a previous daemon run left processing on this server;
//! - once its server is removed from the configuration, takes nothing new and stops when its
//!   last prompt has ended;
//! - watchdog: a server that ignores an interrupt past `interrupt_grace`, or stays busy and
//!   silent past `silence`, is marked stuck: its jobs are requeued elsewhere, its restart
//!   command (if any) runs at most once per `restart_cooldown`, and it rejoins once nothing is
//!   running on it any more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfydash_wire::{Job, JobError, JobStatus, JobUpdate, Progress, ServerStatus, StreamEvent};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::outputs::collect;
use super::prepare::{PrepareCtx, PrepareError, prepare};
use super::{Shared, lock};
use crate::comfyui::socket::{self, SocketMsg};
use crate::comfyui::{ComfyClient, ComfyError, Outcome, QueuePlace, WsEvent};
use crate::servers::ServerState;
use crate::store::{JobEnd, now_ms};

/// A prompt this pipeline handed to ComfyUI.
#[derive(Debug)]
struct Flight {
    job_id: String,
    started_ms: Option<i64>,
    timeout: Duration,
    timed_out: bool,
    interrupted: bool,
    tries: u32,
    collect_failures: u32,
    interrupt_at: Option<Instant>,
}

pub(super) struct Pipeline {
    shared: Arc<Shared>,
    idx: usize,
    name: String,
    comfy: ComfyClient,
    flights: HashMap<String, Flight>,
    client_id: Option<String>,
    adopt: bool,
    last_activity: Instant,
    stuck: bool,
    last_restart: Option<Instant>,
}

fn job_error(code: &str, message: impl Into<String>, node: Option<String>) -> JobError {
    JobError {
        code: code.into(),
        message: message.into(),
        node,
    }
}

impl Pipeline {
    /// A pipeline for server `idx`; `adopt` picks up the jobs a previous run left on it.
    pub(super) fn new(
        shared: Arc<Shared>,
        idx: usize,
        server: &ServerState,
        adopt: bool,
    ) -> Pipeline {
        let comfy = ComfyClient::new(&server.url, shared.cfg.comfyui_timeout);
        Pipeline {
            shared,
            idx,
            name: server.name.clone(),
            comfy,
            flights: HashMap::new(),
            client_id: None,
            adopt,
            last_activity: Instant::now(),
            stuck: false,
            last_restart: None,
        }
    }

    /// Runs until `stop` is cancelled (shutdown), or cancels it itself once its server has been
    /// removed and drained.
    pub(super) async fn run(mut self, stop: CancellationToken) {
        let (tx, mut rx) = mpsc::channel(1024);
        let (connected, _) = watch::channel(None);
        socket::spawn(
            self.comfy.base().to_string(),
            self.shared.run_id.clone(),
            tx,
            connected,
            self.shared.cfg.reconnect_max,
            stop.clone(),
        );
        if self.adopt {
            self.adopt().await;
        }
        let Some(wake) = self
            .shared
            .wakes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(self.idx)
            .cloned()
        else {
            return;
        };
        let mut tick = tokio::time::interval(self.shared.cfg.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(msg) = rx.recv() => self.on_socket(msg).await,
                _ = wake.notified() => {}
                _ = tick.tick() => self.poll().await,
            }
            self.handle_cancels().await;
            self.check_timeouts().await;
            self.watchdog().await;
            if self.shared.store.paused() {
                self.pull_back().await;
            } else {
                self.dispatch().await;
            }
            self.shared
                .servers
                .set_in_flight(self.idx, self.flights.len() as u32);
            if self.flights.is_empty()
                && !self.shared.servers.is_live(self.idx)
                && self.shared.servers.retire(self.idx)
            {
                tracing::info!(server = %self.name, "removed server has drained; stopped following it");
                stop.cancel();
                // Its template warnings go with it, unless the name lives on at a new address.
                if self.shared.servers.live_index_of(&self.name).is_none() {
                    lock(&self.shared.class_warnings).remove(&self.name);
                }
                self.shared
                    .bus
                    .emit(StreamEvent::Resync(comfydash_wire::Resync {
                        reason: "server list changed".into(),
                    }));
                break;
            }
        }
    }

    fn emit(&self, job: &Job) {
        self.shared.bus.emit(StreamEvent::Job(JobUpdate::from(job)));
    }

    fn server_up(&self) -> bool {
        self.shared.servers.status(self.idx) == ServerStatus::Up
    }

    /// Jobs a previous run left processing on this server: finished ones are collected,
    /// queued or running ones followed again by polling, vanished ones resubmitted.
    async fn adopt(&mut self) {
        let Ok(all) = self.shared.store.in_flight().await else {
            return;
        };
        for j in all
            .into_iter()
            .filter(|j| j.server.as_deref() == Some(&self.name))
        {
            let Some(prompt_id) = j.prompt_id else {
                self.requeue(&j.id, "daemon restarted before the prompt was sent")
                    .await;
                continue;
            };
            let tries = j.tries;
            let timeout = self.timeout_of(&j.id).await;
            self.flights.insert(
                prompt_id.clone(),
                Flight {
                    job_id: j.id.clone(),
                    started_ms: j.started_ms,
                    timeout,
                    timed_out: false,
                    interrupted: false,
                    tries,
                    collect_failures: 0,
                    interrupt_at: None,
                },
            );
            if j.cancel_requested {
                lock(&self.shared.cancels).insert(j.id.clone());
            }
            let detail = serde_json::json!({"server": self.name, "prompt_id": prompt_id});
            let _ = self
                .shared
                .store
                .log(&j.id, "reattached", "worker", detail)
                .await;
        }
        if !self.flights.is_empty() {
            self.poll().await;
        }
    }

    async fn timeout_of(&self, job_id: &str) -> Duration {
        match self.shared.store.request(job_id).await {
            Ok((req, _)) => req
                .timeout_s
                .map(Duration::from_secs)
                .unwrap_or(self.shared.cfg.job_timeout),
            Err(_) => self.shared.cfg.job_timeout,
        }
    }

    async fn on_socket(&mut self, msg: SocketMsg) {
        match msg {
            SocketMsg::Connected(id) => {
                self.client_id = Some(id);
                self.check_templates().await;
                // Prompts may have ended while the socket was down.
                self.poll().await;
            }
            SocketMsg::Disconnected => self.client_id = None,
            SocketMsg::Event(ev) => {
                self.last_activity = Instant::now();
                self.on_event(ev).await
            }
        }
    }

    /// Compares the templates' node classes with the server's `/object_info` and keeps the
    /// differences as warnings (shown by `GET /api/workflows` and logged).
    async fn check_templates(&self) {
        let info = match self.comfy.object_info().await {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(server = %self.name, error = %e, "object_info unavailable");
                return;
            }
        };
        let templates = self
            .shared
            .templates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut warnings = Vec::new();
        for t in templates.by_name.values() {
            let missing: Vec<String> = t
                .classes()
                .into_iter()
                .filter(|c| !info.contains_key(c))
                .collect();
            if !missing.is_empty() {
                let w = format!(
                    "workflow {:?}: server {} has no node {}",
                    t.name,
                    self.name,
                    missing.join(", ")
                );
                tracing::warn!("{w}");
                warnings.push(w);
            }
        }
        lock(&self.shared.class_warnings).insert(self.name.clone(), warnings);
    }

    async fn on_event(&mut self, ev: WsEvent) {
        match ev {
            WsEvent::ExecutionStart { prompt_id, .. } => self.started(&prompt_id).await,
            WsEvent::Executing {
                node: Some(_),
                prompt_id: Some(p),
            } => self.started(&p).await,
            // Sent after history is written: the safe point to read the outcome.
            WsEvent::Executing {
                node: None,
                prompt_id: Some(p),
            } if self.flights.contains_key(&p) => self.check(&p).await,
            WsEvent::Progress {
                prompt_id: Some(p),
                node,
                value,
                max,
            } => {
                let Some(f) = self.flights.get(&p) else {
                    return;
                };
                let progress = Progress { value, max, node };
                lock(&self.shared.progress).insert(f.job_id.clone(), progress.clone());
                let update = JobUpdate {
                    job_id: comfydash_wire::JobId(f.job_id.clone()),
                    status: JobStatus::Processing,
                    attempt: 0,
                    progress: None,
                    server: Some(self.name.clone()),
                    error: None,
                    at: chrono::Utc::now(),
                };
                self.shared.bus.progress(update, progress);
            }
            _ => {}
        }
    }

    async fn started(&mut self, prompt_id: &str) {
        let Some(f) = self.flights.get_mut(prompt_id) else {
            return;
        };
        if f.started_ms.is_some() {
            return;
        }
        let now = now_ms();
        f.started_ms = Some(now);
        let job_id = f.job_id.clone();
        if self.shared.store.mark_started(&job_id, now).await.is_ok()
            && let Ok(job) = self.shared.store.job(&job_id).await
        {
            self.emit(&job);
        }
    }

    /// Looks at every in-flight prompt over HTTP.
    async fn poll(&mut self) {
        let ids: Vec<String> = self.flights.keys().cloned().collect();
        for p in ids {
            self.check(&p).await;
        }
    }

    /// Decides one prompt's fate from `/queue` then `/history` (in that order: a prompt leaves
    /// the queue only after its history entry is written, so "in neither" really means lost).
    async fn check(&mut self, prompt_id: &str) {
        let place = match self.comfy.queue_place(prompt_id).await {
            Ok(p) => p,
            Err(e) => return self.unreachable(e).await,
        };
        match place {
            QueuePlace::Running => return self.started(prompt_id).await,
            QueuePlace::Pending => return,
            QueuePlace::Absent => {}
        }
        match self.comfy.history(prompt_id).await {
            Ok(Some(outcome)) => self.finish(prompt_id, outcome).await,
            Ok(None) => {
                let Some(f) = self.flights.remove(prompt_id) else {
                    return;
                };
                if lock(&self.shared.cancels).remove(&f.job_id) {
                    self.end(&f.job_id, JobEnd::Cancelled, f.started_ms).await;
                } else {
                    self.lost(
                        f,
                        "ComfyUI no longer knows the prompt (restarted or deleted)",
                    )
                    .await;
                }
            }
            Err(e) => self.unreachable(e).await,
        }
    }

    /// ComfyUI did not answer. While the prober still calls it up this is a blip; once it is
    /// down, its prompts are requeued so they run elsewhere or after it returns.
    async fn unreachable(&mut self, e: ComfyError) {
        // Unknown (not probed yet, e.g. just after a restart) is not down: keep following.
        if self.shared.servers.health_of(self.idx) != ServerStatus::Down || !e.is_transient() {
            tracing::debug!(server = %self.name, error = %e, "poll failed");
            return;
        }
        let flights: Vec<(String, Flight)> = self.flights.drain().collect();
        for (_, f) in flights {
            self.lost(f, "ComfyUI server is down").await;
        }
    }

    async fn lost(&mut self, f: Flight, why: &str) {
        lock(&self.shared.progress).remove(&f.job_id);
        if lock(&self.shared.cancels).remove(&f.job_id) {
            return self.end(&f.job_id, JobEnd::Cancelled, f.started_ms).await;
        }
        if f.tries >= self.shared.cfg.max_tries {
            let msg = format!("{why}; gave up after {} submissions", f.tries);
            self.end(
                &f.job_id,
                JobEnd::Failed(job_error("server_lost", msg, None)),
                None,
            )
            .await;
        } else {
            self.requeue(&f.job_id, why).await;
        }
    }

    async fn requeue(&self, job_id: &str, why: &str) {
        lock(&self.shared.progress).remove(job_id);
        match self.shared.store.requeue(job_id, why).await {
            Ok(Some(job)) => {
                tracing::info!(job = job_id, server = %self.name, reason = why, "job requeued");
                self.emit(&job);
                self.shared.wake_all();
            }
            Ok(None) => {}
            Err(e) => tracing::error!(job = job_id, error = %e, "requeue failed"),
        }
    }

    async fn finish(&mut self, prompt_id: &str, outcome: Outcome) {
        let Some(f) = self.flights.get(prompt_id) else {
            return;
        };
        let job_id = f.job_id.clone();
        let cancelled = lock(&self.shared.cancels).contains(&job_id);
        let (end, started) = match outcome {
            Outcome::Success { files, .. } => {
                match collect(&self.comfy, &self.shared.data_dir, &job_id, &files).await {
                    Ok(outputs) => (JobEnd::Completed(outputs), f.started_ms),
                    Err(e) if e.is_transient() && f.collect_failures < 5 => {
                        if let Some(f) = self.flights.get_mut(prompt_id) {
                            f.collect_failures += 1;
                        }
                        tracing::warn!(job = %job_id, error = %e, "collecting outputs failed; will retry");
                        return;
                    }
                    Err(e) => (
                        JobEnd::Failed(job_error("output_error", e.to_string(), None)),
                        f.started_ms,
                    ),
                }
            }
            Outcome::Error {
                node,
                node_type,
                message,
                ..
            } => {
                let retries = self.shared.cfg.execution_retries;
                let msg = match node_type {
                    Some(t) => format!("{t}: {message}"),
                    None => message,
                };
                if !cancelled && f.tries <= retries {
                    let f = self.flights.remove(prompt_id);
                    if let Some(f) = f {
                        self.requeue(&f.job_id, &format!("execution error, retrying: {msg}"))
                            .await;
                    }
                    return;
                }
                let err = job_error("execution_error", msg, node);
                (JobEnd::Failed(err), f.started_ms)
            }
            Outcome::Interrupted { .. } => {
                if cancelled {
                    (JobEnd::Cancelled, f.started_ms)
                } else if f.timed_out {
                    let msg = format!("execution took longer than {} s", f.timeout.as_secs());
                    (
                        JobEnd::Failed(job_error("timeout", msg, None)),
                        f.started_ms,
                    )
                } else {
                    let msg = "interrupted on the ComfyUI server";
                    (
                        JobEnd::Failed(job_error("interrupted", msg, None)),
                        f.started_ms,
                    )
                }
            }
        };
        self.flights.remove(prompt_id);
        lock(&self.shared.cancels).remove(&job_id);
        self.end(&job_id, end, started).await;
    }

    async fn end(&self, job_id: &str, end: JobEnd, started: Option<i64>) {
        lock(&self.shared.progress).remove(job_id);
        match self
            .shared
            .store
            .finish(job_id, end, started, "worker")
            .await
        {
            Ok(Some(job)) => {
                tracing::info!(job = job_id, status = %job.status, server = %self.name, "job ended");
                self.shared.metrics.job_ended(&job);
                self.emit(&job);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(job = job_id, error = %e, "could not record job end"),
        }
    }

    async fn handle_cancels(&mut self) {
        let wanted: Vec<(String, String, bool, bool)> = {
            let cancels = lock(&self.shared.cancels);
            self.flights
                .iter()
                .filter(|(_, f)| cancels.contains(&f.job_id))
                .map(|(p, f)| {
                    (
                        p.clone(),
                        f.job_id.clone(),
                        f.started_ms.is_some(),
                        f.interrupted,
                    )
                })
                .collect()
        };
        for (prompt_id, job_id, started, interrupted) in wanted {
            if !started {
                // Waiting in ComfyUI: take it out; check() then finds it gone and ends it cancelled.
                let _ = self.comfy.delete_queued(&prompt_id).await;
                self.check(&prompt_id).await;
            } else if !interrupted {
                self.interrupt(&prompt_id, &job_id, "cancel").await;
            }
        }
    }

    /// Interrupts a running prompt and notes it in the job's log; the watchdog times the effect.
    async fn interrupt(&mut self, prompt_id: &str, job_id: &str, reason: &str) {
        if let Some(f) = self.flights.get_mut(prompt_id) {
            f.interrupted = true;
            f.interrupt_at = Some(Instant::now());
        }
        let _ = self.comfy.interrupt(prompt_id).await;
        let detail = serde_json::json!({ "reason": reason });
        let _ = self
            .shared
            .store
            .log(job_id, "interrupt_sent", "worker", detail)
            .await;
    }

    async fn check_timeouts(&mut self) {
        let now = now_ms();
        let due: Vec<(String, String)> = self
            .flights
            .iter()
            .filter(|(_, f)| !f.timed_out)
            .filter(|(_, f)| {
                f.started_ms
                    .is_some_and(|s| now - s > f.timeout.as_millis() as i64)
            })
            .map(|(p, f)| (p.clone(), f.job_id.clone()))
            .collect();
        for (prompt_id, job_id) in due {
            if let Some(f) = self.flights.get_mut(&prompt_id) {
                f.timed_out = true;
            }
            tracing::warn!(job = %job_id, server = %self.name, "job timed out; interrupting");
            self.interrupt(&prompt_id, &job_id, "timeout").await;
        }
    }

    /// Pause: prompts still waiting in ComfyUI come back to our queue; the running one finishes.
    async fn pull_back(&mut self) {
        let waiting: Vec<String> = self
            .flights
            .iter()
            .filter(|(_, f)| f.started_ms.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        for prompt_id in waiting {
            if self.comfy.delete_queued(&prompt_id).await.is_err() {
                continue;
            }
            if let Ok(QueuePlace::Absent) = self.comfy.queue_place(&prompt_id).await
                && let Ok(None) = self.comfy.history(&prompt_id).await
                && let Some(f) = self.flights.remove(&prompt_id)
            {
                self.requeue(&f.job_id, "queue paused").await;
            } else {
                self.check(&prompt_id).await;
            }
        }
    }

    async fn dispatch(&mut self) {
        while self.flights.len() < self.shared.cfg.pipeline_depth && self.server_up() {
            let prompt_id = uuid::Uuid::new_v4().to_string();
            let claimed = match self.shared.store.claim_next(&self.name, &prompt_id).await {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "claiming a job failed");
                    return;
                }
            };
            let job_id = claimed.job.job_id.0.clone();
            self.emit(&claimed.job);
            let (shared, comfy) = (self.shared.clone(), self.comfy.clone());
            let templates = shared
                .templates
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let ctx = PrepareCtx {
                templates: &templates,
                defaults: (
                    &shared.cfg.default_workflow,
                    &shared.cfg.default_image_workflow,
                ),
                outbound: &shared.outbound,
                limits: &shared.limits,
                comfy: &comfy,
            };
            let graph = match prepare(&claimed, &prompt_id, &ctx).await {
                Ok(g) => g,
                Err(PrepareError::Job(err)) => {
                    self.end(&job_id, JobEnd::Failed(err), None).await;
                    continue;
                }
                Err(PrepareError::Server(e)) => {
                    let f = self.flight(&claimed, Duration::ZERO);
                    self.lost(f, &format!("uploading the input image failed: {e}"))
                        .await;
                    return;
                }
            };
            let client_id = self
                .client_id
                .clone()
                .unwrap_or_else(|| format!("{}-offline", self.shared.run_id));
            match self
                .comfy
                .queue_prompt(&graph, &prompt_id, &client_id)
                .await
            {
                Ok(queued) => {
                    let timeout = claimed
                        .request
                        .timeout_s
                        .map(Duration::from_secs)
                        .unwrap_or(self.shared.cfg.job_timeout);
                    let f = self.flight(&claimed, timeout);
                    self.flights.insert(prompt_id.clone(), f);
                    if let Some(partial) = queued.partial_errors {
                        let _ = self
                            .shared
                            .store
                            .log(
                                &job_id,
                                "partial_validation",
                                "comfyui",
                                serde_json::json!({"message": partial}),
                            )
                            .await;
                    }
                }
                Err(ComfyError::Invalid { message, node }) => {
                    let err = job_error("validation_error", message, node);
                    self.end(&job_id, JobEnd::Failed(err), None).await;
                }
                Err(e) if e.is_transient() => {
                    let f = self.flight(&claimed, Duration::ZERO);
                    self.lost(f, &format!("submitting to ComfyUI failed: {e}"))
                        .await;
                    return;
                }
                Err(e) => {
                    let err = job_error("comfyui_error", e.to_string(), None);
                    self.end(&job_id, JobEnd::Failed(err), None).await;
                }
            }
        }
    }

    fn flight(&self, claimed: &crate::store::ClaimedJob, timeout: Duration) -> Flight {
        Flight {
            job_id: claimed.job.job_id.0.clone(),
            started_ms: None,
            timeout,
            timed_out: false,
            interrupted: false,
            tries: claimed.tries,
            collect_failures: 0,
            interrupt_at: None,
        }
    }

    /// Marks the server stuck when an interrupt had no effect or a busy server went silent;
    /// clears the mark once nothing runs on it any more.
    async fn watchdog(&mut self) {
        let wd = &self.shared.watchdog;
        if self.stuck {
            if let Ok(0) = self.comfy.running_count().await {
                self.stuck = false;
                self.last_activity = Instant::now();
                self.shared.servers.set_stuck(self.idx, false);
                tracing::info!(server = %self.name, "server recovered from stuck");
            }
            return;
        }
        let ignored = self.flights.values().any(|f| {
            f.interrupt_at
                .is_some_and(|t| t.elapsed() > wd.interrupt_grace)
        });
        let busy = self.flights.values().any(|f| f.started_ms.is_some());
        let silent = busy && self.last_activity.elapsed() > wd.silence;
        let reason = if ignored {
            format!(
                "an interrupt had no effect within {} ms",
                wd.interrupt_grace.as_millis()
            )
        } else if silent {
            format!("busy with no progress for {} ms", wd.silence.as_millis())
        } else {
            return;
        };
        tracing::warn!(server = %self.name, reason = %reason, "server is stuck");
        self.stuck = true;
        self.shared.servers.set_stuck(self.idx, true);
        let flights: Vec<(String, Flight)> = self.flights.drain().collect();
        for (prompt_id, f) in flights {
            let detail =
                serde_json::json!({"server": self.name, "prompt_id": prompt_id, "reason": reason});
            let _ = self
                .shared
                .store
                .log(&f.job_id, "watchdog", "watchdog", detail)
                .await;
            let why = format!("server {} is stuck: {reason}", self.name);
            self.lost(f, &why).await;
        }
        self.restart().await;
    }

    /// Runs the server's restart command, at most once per cooldown.
    async fn restart(&mut self) {
        let Some(cmd) = self
            .shared
            .servers
            .get(self.idx)
            .and_then(|s| s.restart_command)
        else {
            return;
        };
        let wd = &self.shared.watchdog;
        if self
            .last_restart
            .is_some_and(|t| t.elapsed() < wd.restart_cooldown)
        {
            tracing::warn!(server = %self.name, "restart skipped: cooldown");
            return;
        }
        self.last_restart = Some(Instant::now());
        tracing::warn!(server = %self.name, command = %cmd, "running restart command");
        let run = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(wd.restart_timeout, run).await {
            Ok(Ok(out)) if out.status.success() => {
                tracing::info!(server = %self.name, "restart command succeeded")
            }
            Ok(Ok(out)) => {
                tracing::error!(server = %self.name, status = %out.status, "restart command failed")
            }
            Ok(Err(e)) => {
                tracing::error!(server = %self.name, error = %e, "restart command could not run")
            }
            Err(_) => tracing::error!(server = %self.name, "restart command timed out"),
        }
    }
}
