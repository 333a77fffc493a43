//! A real daemon for a scenario: started in-process on `127.0.0.1:0` in its own data dir with
//! the benchmark's keys, and typed clients to talk to it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use comfydash_daemon::Daemon;
use comfydash_daemon::auth::Role;
use comfydash_daemon::config::{Config, KeyConfig, ServerConfig};
use comfydash_wire::client::Client;
use tempfile::TempDir;

/// Key with the `submit` role (the Lensia backend's).
pub const SUBMIT_KEY: &str = "bench-submit-key-0123456789";
/// Key with the `admin` role.
pub const ADMIN_KEY: &str = "bench-admin-key-0123456789";
/// Key with the `read` role.
pub const READ_KEY: &str = "bench-read-key-0123456789";

/// A URL where nothing listens (a port bound, then released), so nothing ever runs.
pub fn dead_url() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
    Ok(format!("http://{}", l.local_addr()?))
}

/// Defaults, except: the benchmark's keys, the given servers (named `gpu0`, `gpu1`, …), and
/// probes fast enough that servers are up a moment after start.
pub fn config(dir: &TempDir, servers: &[String]) -> Config {
    let mut c = Config::new(dir.path().to_path_buf());
    c.servers = servers
        .iter()
        .enumerate()
        .map(|(i, url)| ServerConfig {
            name: format!("gpu{i}"),
            url: url.clone(),
            restart_command: None,
        })
        .collect();
    c.keys = [
        ("lensia", Role::Submit, SUBMIT_KEY),
        ("ops", Role::Admin, ADMIN_KEY),
        ("grafana", Role::Read, READ_KEY),
    ]
    .into_iter()
    .map(|(name, role, key)| KeyConfig {
        name: name.into(),
        role,
        key: key.into(),
    })
    .collect();
    c.probe.interval = Duration::from_millis(250);
    c.probe.timeout = Duration::from_millis(500);
    c.http.shutdown_grace = Duration::from_millis(500);
    c
}

/// A running daemon and its data dir.
pub struct Running {
    daemon: Daemon,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Time `comfydash_daemon::start` took (store open, migrations, counters).
    pub start_time: Duration,
    /// Kept until the daemon has stopped.
    dir: TempDir,
}

impl Running {
    /// Starts a daemon with `config`, whose data dir is `dir`.
    pub async fn start(dir: TempDir, config: Config) -> anyhow::Result<Running> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the daemon's port")?;
        let t = Instant::now();
        let daemon = comfydash_daemon::start(config, listener)
            .await
            .context("starting the daemon")?;
        let start_time = t.elapsed();
        Ok(Running {
            url: format!("http://{}", daemon.addr),
            daemon,
            start_time,
            dir,
        })
    }

    /// A typed client with `key`.
    pub fn client(&self, key: &str) -> Client {
        Client::new(&self.url, Some(key.to_string()))
    }

    /// Waits until every configured ComfyUI server is up.
    pub async fn wait_servers_up(&self, limit: Duration) -> anyhow::Result<()> {
        let c = self.client(READ_KEY);
        let deadline = Instant::now() + limit;
        loop {
            let h = c.health().await.context("GET /api/health")?;
            if h.services.comfyui.servers.iter().all(|s| s.status.is_up()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("ComfyUI servers not up after {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The data dir.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Pauses (`true`) or resumes the queue.
    pub async fn set_paused(&self, paused: bool) -> anyhow::Result<()> {
        self.client(ADMIN_KEY)
            .set_paused(paused)
            .await
            .context("pausing or resuming the queue")?;
        Ok(())
    }

    /// Stops the daemon, waits for its store to close, then removes the data dir.
    pub async fn stop(self) {
        self.daemon.stop().await;
        drop(self.dir);
    }
}

/// Submits text jobs `{prefix}-0` … `{prefix}-{n-1}` (seed `seed0 + i`) from `concurrency`
/// keep-alive connections; fails on any answer but 202.
pub async fn submit_many(
    url: &str,
    prefix: &str,
    n: u64,
    seed0: u64,
    concurrency: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the HTTP client")?;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (http, url, prefix) = (http.clone(), format!("{url}/api/jobs"), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < n {
                let body = crate::workload::text_job(&format!("{prefix}-{i}"), seed0 + i);
                let resp = http
                    .post(&url)
                    .header("x-api-key", SUBMIT_KEY)
                    .json(&body)
                    .send()
                    .await
                    .context("POST /api/jobs")?;
                let status = resp.status();
                if status != reqwest::StatusCode::ACCEPTED {
                    bail!(
                        "submit answered {status}: {}",
                        resp.text().await.unwrap_or_default()
                    );
                }
                i += concurrency;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await.context("submitter panicked")??;
    }
    Ok(())
}

/// Polls `GET /api/queue` every `every` until nothing is pending or processing.
pub async fn wait_idle(url: &str, every: Duration, limit: Duration) -> anyhow::Result<()> {
    let c = Client::new(url, Some(READ_KEY.to_string()));
    let deadline = Instant::now() + limit;
    loop {
        let q = c.queue().await.context("GET /api/queue")?;
        if q.pending + q.processing == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "queue not empty after {limit:?}: {} pending, {} processing",
                q.pending,
                q.processing
            );
        }
        tokio::time::sleep(every).await;
    }
}

/// Polls `GET /api/queue` every `every` for `dur`, as [`wait_idle`] does, whatever it answers.
pub async fn poll_queue(url: &str, every: Duration, dur: Duration) -> anyhow::Result<()> {
    let c = Client::new(url, Some(READ_KEY.to_string()));
    let deadline = Instant::now() + dur;
    while Instant::now() < deadline {
        c.queue().await.context("GET /api/queue")?;
        tokio::time::sleep(every).await;
    }
    Ok(())
}
