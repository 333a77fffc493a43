//! The worker: one task per process that takes jobs off the queue and runs them one at a time.
//!
//! Duties: apply `/free` requests between jobs; run each job (see `job`); write its history
//! entry; broadcast the queue status; send the final `executing` with node null last.

mod job;
mod pace;
mod plan;
mod report;

use std::sync::Arc;

use crate::host::Host;
use crate::process::Process;

/// Starts the worker of a process; it ends when the process is stopped.
pub fn spawn(host: Arc<Host>, process: Arc<Process>) {
    tokio::spawn(async move {
        let stop = process.stop.clone();
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = worker(&host, &process) => {}
        }
    });
}

async fn worker(host: &Host, process: &Process) {
    loop {
        apply_free(process);
        let next = process.queue.lock().start_next();
        let Some(job) = next else {
            process.wake.notified().await;
            continue;
        };
        process.broadcast_status();
        job::run(host, process, job).await;
    }
}

/// Applies pending `/free` flags: only `free_memory` has a visible effect (the cache).
fn apply_free(process: &Process) {
    let req = std::mem::take(&mut *process.free.lock());
    if req.free_memory {
        process.cache.lock().clear();
    }
}
