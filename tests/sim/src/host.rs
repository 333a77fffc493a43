//! The machine the simulated ComfyUI runs on: what survives a process restart (disk folders,
//! knobs, the port, test counters) and the controls that listen, refuse and restart.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::SimConfig;
use crate::executor;
use crate::files::Dirs;
use crate::knobs::Knobs;
use crate::net::Generation;
use crate::process::Process;
use crate::routes::{self, AppState};

/// State and controls that outlive any one simulated process.
#[derive(Debug)]
pub struct Host {
    /// Data folders.
    pub dirs: Dirs,
    /// Whether `dirs.root` was made by us (and is removed on shutdown).
    owns_root: bool,
    /// Live settings.
    pub knobs: Knobs,
    /// `system_stats` device name.
    pub device_name: String,
    /// `system_stats` device memory.
    pub vram_total: u64,
    /// Seeded randomness for failures and temp names.
    pub rng: Mutex<StdRng>,
    /// Jobs that ran at least one node (not fully served from cache).
    pub executed: AtomicU64,
    /// Accepted POST /prompt bodies.
    pub received: Mutex<Vec<Value>>,
    history_cap: usize,
    process: Mutex<Arc<Process>>,
    net: Mutex<Option<Generation>>,
    refusing: AtomicBool,
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
}

impl Host {
    /// Creates the folders, binds `addr`, starts a process and serves it.
    pub async fn start(config: SimConfig, addr: SocketAddr) -> io::Result<Arc<Host>> {
        let (root, owns_root) = match &config.data_dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir()
                    .join(format!("comfydash-sim-{}", uuid::Uuid::new_v4().simple())),
                true,
            ),
        };
        let dirs = Dirs::create(&root)?;
        dirs.wipe_temp()?;
        let (generation, local) = Generation::bind(addr)?;
        let process = Arc::new(Process::new(config.history_cap));
        let host = Arc::new(Host {
            dirs,
            owns_root,
            knobs: Knobs::new(config.exec_time, config.failure_rate),
            device_name: config.device_name,
            vram_total: config.vram_total,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            executed: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
            history_cap: config.history_cap,
            process: Mutex::new(process.clone()),
            net: Mutex::new(None),
            refusing: AtomicBool::new(false),
            addr: local,
            runtime: tokio::runtime::Handle::current(),
        });
        executor::spawn(host.clone(), process);
        host.serve(generation);
        Ok(host)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current process.
    pub fn process(&self) -> Arc<Process> {
        self.process.lock().clone()
    }

    fn serve(self: &Arc<Self>, generation: Generation) {
        let state = AppState {
            host: self.clone(),
            process: self.process(),
            stop: generation.stop_token(),
        };
        generation.serve(routes::router(state));
        if let Some(old) = self.net.lock().replace(generation) {
            old.close();
        }
    }

    /// Listens again on the same port (no-op when already listening).
    fn listen(self: &Arc<Self>) -> io::Result<()> {
        if self.net.lock().is_some() {
            return Ok(());
        }
        let _rt = self.runtime.enter();
        let (generation, _) = Generation::bind(self.addr)?;
        self.serve(generation);
        Ok(())
    }

    /// Listens again, retrying in the background if the port is briefly unavailable.
    fn listen_or_retry(self: &Arc<Self>) {
        if let Err(e) = self.listen() {
            tracing::warn!(error = %e, addr = %self.addr, "could not listen again; retrying");
            let host = self.clone();
            self.runtime.spawn(async move {
                while !host.refusing.load(Ordering::SeqCst) && host.listen().is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        }
    }

    /// Stops listening and drops every connection and WebSocket.
    fn stop_listening(&self) {
        if let Some(generation) = self.net.lock().take() {
            generation.close();
        }
    }

    /// Refuses connections (closing all open ones) or listens again on the same port.
    pub fn set_refuse_connections(self: &Arc<Self>, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
        if on {
            self.stop_listening();
        } else {
            self.listen_or_retry();
        }
    }

    /// Simulates a process restart: connections drop, memory is forgotten, temp/ is wiped, the
    /// same port serves a fresh process. Hang, unresponsive and refuse modes end with the old process.
    pub async fn restart(self: &Arc<Self>) {
        self.stop_listening();
        let fresh = Arc::new(Process::new(self.history_cap));
        let old = std::mem::replace(&mut *self.process.lock(), fresh.clone());
        old.stop.cancel();
        self.knobs.set_hang(false);
        self.knobs.set_unresponsive(false);
        self.refusing.store(false, Ordering::SeqCst);
        if let Err(e) = self.dirs.wipe_temp() {
            tracing::warn!(error = %e, "could not wipe temp/");
        }
        executor::spawn(self.clone(), fresh);
        self.listen_or_retry();
    }

    /// Stops everything; removes the data folder if the simulator created it.
    pub fn shutdown(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.stop_listening();
        self.process().stop.cancel();
        self.knobs.set_hang(false);
        if self.owns_root {
            let _ = std::fs::remove_dir_all(&self.dirs.root);
        }
    }

    /// Five random letters from ComfyUI's (slightly odd) alphabet for PreviewImage names.
    pub fn temp_tag(&self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstupvxyz";
        let mut rng = self.rng.lock();
        (0..5)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }
}

impl Drop for Host {
    /// Tests rarely call `shutdown`; the folder the simulator made goes when its last handle does.
    fn drop(&mut self) {
        if self.owns_root {
            let _ = std::fs::remove_dir_all(&self.dirs.root);
        }
    }
}
