//! The worker: runs jobs on ComfyUI servers.
//!
//! One pipeline task per server (see [`pipeline`]); they share this state:
//! - wake-ups when work arrives (submit, retry, resume);
//! - cancel requests for processing jobs;
//! - live progress per job (shown by the API, streamed as coalesced events, never stored);
//! - the workflow templates.

mod fleet;
mod outputs;
mod pipeline;
mod prepare;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use comfydash_wire::Progress;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use outputs::output_path;

use crate::config::{Config, ProbeConfig, WatchdogConfig, WorkerConfig};
use crate::events::Bus;
use crate::outbound::{Limits, Outbound};
use crate::servers::Servers;
use crate::store::Store;
use crate::templates::Templates;

struct Shared {
    store: Store,
    bus: Bus,
    servers: Servers,
    cfg: WorkerConfig,
    watchdog: WatchdogConfig,
    templates: RwLock<Arc<Templates>>,
    outbound: Outbound,
    limits: Limits,
    data_dir: PathBuf,
    run_id: String,
    /// One per server entry, by index; grows when a reload adds servers.
    wakes: RwLock<Vec<Arc<Notify>>>,
    probe: ProbeConfig,
    shutdown: CancellationToken,
    cancels: Mutex<HashSet<String>>,
    progress: Mutex<HashMap<String, Progress>>,
    /// Template problems per server (node classes the server lacks), from `/object_info`.
    class_warnings: Mutex<std::collections::BTreeMap<String, Vec<String>>>,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Handle to the worker; cheap to clone.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
}

impl Shared {
    fn wake_all(&self) {
        for w in self.wakes.read().unwrap_or_else(|e| e.into_inner()).iter() {
            w.notify_one();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Worker {
    /// A worker for the configured servers; everything it starts stops with `shutdown`.
    pub fn new(
        config: &Config,
        store: Store,
        bus: Bus,
        servers: Servers,
        outbound: Outbound,
        metrics: Arc<crate::metrics::Metrics>,
        shutdown: CancellationToken,
    ) -> Worker {
        let templates = Templates::load(config.worker.workflows_dir.as_deref());
        for w in &templates.warnings {
            tracing::warn!(warning = %w, "workflow templates");
        }
        let limits = Limits {
            timeout: config.outbound.timeout,
            connect_timeout: config.outbound.connect_timeout,
            max_bytes: config.outbound.max_bytes,
            max_redirects: config.outbound.max_redirects,
        };
        Worker {
            shared: Arc::new(Shared {
                store,
                bus,
                servers,
                cfg: config.worker.clone(),
                watchdog: config.watchdog.clone(),
                templates: RwLock::new(Arc::new(templates)),
                outbound,
                limits,
                data_dir: config.data_dir.clone(),
                run_id: format!("comfydash-{}", uuid::Uuid::new_v4().simple()),
                wakes: RwLock::new(Vec::new()),
                probe: config.probe.clone(),
                shutdown,
                cancels: Mutex::new(HashSet::new()),
                progress: Mutex::new(HashMap::new()),
                class_warnings: Mutex::new(Default::default()),
                metrics,
            }),
        }
    }

    /// Wakes every pipeline (new work, resumed queue).
    pub fn wake(&self) {
        self.shared.wake_all();
    }

    /// Asks the pipeline running `job_id` to stop it.
    pub fn request_cancel(&self, job_id: &str) {
        lock(&self.shared.cancels).insert(job_id.to_string());
        self.wake();
    }

    /// Latest progress of a processing job.
    pub fn progress_of(&self, job_id: &str) -> Option<Progress> {
        lock(&self.shared.progress).get(job_id).cloned()
    }

    /// The templates in use.
    pub fn templates(&self) -> Arc<Templates> {
        self.shared
            .templates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the templates again (SIGHUP); returns the warnings.
    pub fn reload_templates(&self, dir: Option<&std::path::Path>) -> Vec<String> {
        let t = Templates::load(dir);
        let warnings = t.warnings.clone();
        *self
            .shared
            .templates
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        warnings
    }

    /// Template warnings: loading problems and node classes a server does not have.
    pub fn template_warnings(&self) -> Vec<String> {
        let mut out = self.templates().warnings.clone();
        for list in lock(&self.shared.class_warnings).values() {
            out.extend(list.iter().cloned());
        }
        out
    }

    /// Where the daemon keeps job files.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.shared.data_dir
    }

    /// Default template names (text, image).
    pub fn default_workflows(&self) -> (String, String) {
        (
            self.shared.cfg.default_workflow.clone(),
            self.shared.cfg.default_image_workflow.clone(),
        )
    }
}
