//! Everything one ComfyUI process keeps in memory (queue, history, sockets, cache, interrupt
//! flag); a simulated restart replaces it wholesale.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cache::ExecCache;
use crate::history::History;
use crate::queue::{Job, PromptQueue};
use crate::ws::Sockets;

/// Which client the running job reports to and which node it is on (for reconnecting sockets).
#[derive(Debug, Default)]
pub struct Current {
    /// `server.client_id`.
    pub client_id: Option<String>,
    /// `server.last_node_id`.
    pub last_node: Option<String>,
}

/// `/free` flags waiting for the worker.
#[derive(Debug, Default, Clone, Copy)]
pub struct FreeRequest {
    /// `unload_models`.
    pub unload_models: bool,
    /// `free_memory` (also clears the execution cache).
    pub free_memory: bool,
}

/// The in-memory state of one simulated ComfyUI process.
#[derive(Debug)]
pub struct Process {
    /// Pending and running jobs.
    pub queue: Mutex<PromptQueue>,
    /// Finished jobs.
    pub history: Mutex<History>,
    /// Connected WebSockets by sid.
    pub sockets: Sockets,
    /// Execution cache.
    pub cache: Mutex<ExecCache>,
    /// `interrupt_processing` flag.
    pub interrupt: AtomicBool,
    /// The running job's client and node.
    pub current: Mutex<Current>,
    /// Pending `/free` flags.
    pub free: Mutex<FreeRequest>,
    /// Wakes the worker (new job or /free).
    pub wake: Notify,
    /// Ends the worker when the process "dies".
    pub stop: CancellationToken,
}

impl Process {
    /// A freshly started process.
    pub fn new(history_cap: usize) -> Process {
        Process {
            queue: Mutex::new(PromptQueue::default()),
            history: Mutex::new(History::new(history_cap)),
            sockets: Sockets::default(),
            cache: Mutex::new(ExecCache::default()),
            interrupt: AtomicBool::new(false),
            current: Mutex::new(Current::default()),
            free: Mutex::new(FreeRequest::default()),
            wake: Notify::new(),
            stop: CancellationToken::new(),
        }
    }

    /// `{"exec_info": {"queue_remaining": N}}`.
    pub fn queue_info(&self) -> Value {
        let remaining = self.queue.lock().remaining();
        json!({"exec_info": {"queue_remaining": remaining}})
    }

    /// `queue_updated()`: broadcasts `status` to every socket.
    pub fn broadcast_status(&self) {
        let info = self.queue_info();
        self.sockets.send("status", json!({ "status": info }), None);
    }

    /// Queues a validated job, broadcasts the new status and wakes the worker.
    pub fn enqueue(&self, job: Job) {
        self.queue.lock().push(job);
        self.broadcast_status();
        self.wake.notify_one();
    }

    /// `nodes.interrupt_processing()`.
    pub fn request_interrupt(&self) {
        self.interrupt.store(true, Ordering::SeqCst);
    }

    /// Whether an interrupt is pending.
    pub fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Records `/free` flags for the worker to apply between jobs.
    pub fn request_free(&self, req: FreeRequest) {
        {
            let mut free = self.free.lock();
            free.unload_models |= req.unload_models;
            free.free_memory |= req.free_memory;
        }
        self.wake.notify_one();
    }
}
