//! A ComfyUI simulator: an HTTP + WebSocket server that behaves like ComfyUI 0.3.64 towards a
//! job client (routes, validation bodies, event order, queue, history, cache and reconnect
//! quirks), runs a handful of image nodes for real, and exposes fault knobs for tests.

mod cache;
mod executor;
mod files;
mod history;
mod host;
mod image;
mod knobs;
mod net;
mod nodes;
mod png_io;
mod process;
mod pyfmt;
mod queue;
mod routes;
mod validate;
mod ws;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::host::Host;

pub use png_io::{
    Decoded as DecodedPng, PngError, decode as decode_png, text_chunks as png_text_chunks,
};

/// How a simulator starts.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Total run time of a job, spread over the nodes it really executes.
    pub exec_time: Duration,
    /// Chance (0..1) that a job fails at run time with `execution_error`.
    pub failure_rate: f64,
    /// Seed for failures and temp file names.
    pub seed: u64,
    /// History entries kept (ComfyUI: 10 000).
    pub history_cap: usize,
    /// Where input/, output/ and temp/ live; `None` makes a fresh folder under the temp dir.
    pub data_dir: Option<PathBuf>,
    /// Device name reported by /system_stats (`cpu…` reports a CPU device).
    pub device_name: String,
    /// Device memory reported by /system_stats, in bytes.
    pub vram_total: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            exec_time: Duration::from_millis(20),
            failure_rate: 0.0,
            seed: 0,
            history_cap: 10_000,
            data_dir: None,
            device_name: "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync".into(),
            vram_total: 25_757_220_864,
        }
    }
}

/// A running simulator; cloning gives another handle to the same one.
#[derive(Clone, Debug)]
pub struct Sim {
    host: Arc<Host>,
}

impl Sim {
    /// Starts on 127.0.0.1 with a free port.
    pub async fn start(config: SimConfig) -> std::io::Result<Sim> {
        Sim::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on a given address.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<Sim> {
        Ok(Sim {
            host: Host::start(config, addr).await?,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.host.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `ws://127.0.0.1:PORT/ws?clientId=<client_id>`.
    pub fn ws_url(&self, client_id: &str) -> String {
        format!("ws://{}/ws?clientId={client_id}", self.addr())
    }

    /// Changes the total run time of later jobs.
    pub fn set_exec_time(&self, d: Duration) {
        self.host.knobs.set_exec_time(d);
    }

    /// Changes the run-time failure chance of later jobs.
    pub fn set_failure_rate(&self, r: f64) {
        self.host.knobs.set_failure_rate(r);
    }

    /// Freezes the running job (no events, no completion, interrupts wait) until turned off.
    pub fn set_hang(&self, on: bool) {
        self.host.knobs.set_hang(on);
    }

    /// Closes the listener and every connection and WebSocket so connects are refused; off
    /// listens again on the same port. Jobs keep running meanwhile.
    pub fn set_refuse_connections(&self, on: bool) {
        self.host.set_refuse_connections(on);
    }

    /// Accepts connections but leaves HTTP requests unanswered (those received meanwhile are
    /// never answered, even after it is turned off); `/sim/` routes still answer.
    pub fn set_unresponsive(&self, on: bool) {
        self.host.knobs.set_unresponsive(on);
    }

    /// Like a ComfyUI process restart: drops connections and WebSockets; forgets queue, running
    /// job, history, priority counter and cache; wipes temp/; keeps input/ and output/; serves
    /// again on the same port. Hang, unresponsive and refuse modes end too.
    pub async fn restart(&self) {
        self.host.restart().await;
    }

    /// Entries in the current process's history.
    pub fn history_len(&self) -> usize {
        self.host.process().history.lock().len()
    }

    /// Jobs that ran at least one node (jobs served entirely from cache do not count).
    pub fn executed_count(&self) -> u64 {
        self.host.executed.load(Ordering::SeqCst)
    }

    /// The output/ folder.
    pub fn output_dir(&self) -> PathBuf {
        self.host.dirs.output.clone()
    }

    /// The input/ folder.
    pub fn input_dir(&self) -> PathBuf {
        self.host.dirs.input.clone()
    }

    /// The temp/ folder.
    pub fn temp_dir(&self) -> PathBuf {
        self.host.dirs.temp.clone()
    }

    /// Sockets in the server's sid map, i.e. those that can receive events (an orphaned socket
    /// is connected but not counted).
    pub fn ws_clients(&self) -> usize {
        self.host.process().sockets.registered()
    }

    /// Open WebSocket connections, orphaned ones included.
    pub fn ws_connections(&self) -> usize {
        self.host.process().sockets.open()
    }

    /// Jobs pending plus running.
    pub fn queue_remaining(&self) -> usize {
        self.host.process().queue.lock().remaining()
    }

    /// Bodies of accepted POST /prompt requests, oldest first (kept across restarts).
    pub fn received_prompts(&self) -> Vec<Value> {
        self.host.received.lock().clone()
    }

    /// Stops serving and ends the worker; removes the data folder if the simulator made it.
    pub async fn shutdown(self) {
        self.host.shutdown();
        tokio::task::yield_now().await;
    }
}
