use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use comfydash_daemon::Daemon;
use comfydash_daemon::auth::Role;
use comfydash_daemon::config::{Config, KeyConfig, ServerConfig};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;

pub const SUBMIT_KEY: &str = "test-submit-key-0123456789";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const READ_KEY: &str = "test-read-key-0123456789";

/// An address where nothing listens (bound, then released).
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A config for tests: fast durations, three keys, one (dead unless replaced) ComfyUI server.
pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::new(dir.to_path_buf());
    c.servers = vec![ServerConfig {
        name: "gpu0".into(),
        url: format!("http://{}", dead_addr()),
        restart_command: None,
    }];
    c.keys = vec![
        KeyConfig {
            name: "lensia".into(),
            role: Role::Submit,
            key: SUBMIT_KEY.into(),
        },
        KeyConfig {
            name: "ops".into(),
            role: Role::Admin,
            key: ADMIN_KEY.into(),
        },
        KeyConfig {
            name: "grafana".into(),
            role: Role::Read,
            key: READ_KEY.into(),
        },
    ];
    c.probe.interval = Duration::from_millis(50);
    c.probe.timeout = Duration::from_millis(200);
    c.probe.failures_before_down = 2;
    c.http.shutdown_grace = Duration::from_millis(500);
    // The build machine's own disk must not raise alerts in tests that count messages.
    c.alerts.rules.disk_low.enabled = Some(false);
    c
}

pub struct Harness {
    pub daemon: Option<Daemon>,
    pub url: String,
    /// Keeps the data dir alive as long as the harness.
    pub _dir: TempDir,
    pub config: Config,
    pub http: reqwest::Client,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A daemon in front of one simulator, with a fast worker.
pub async fn with_sim(
    sim: comfydash_sim::SimConfig,
    f: impl FnOnce(&mut Config),
) -> (Harness, comfydash_sim::Sim) {
    let sim = comfydash_sim::Sim::start(sim).await.unwrap();
    let url = sim.url();
    let h = Harness::with(|c| {
        c.servers[0].url = url;
        fast_worker(c);
        f(c);
    })
    .await;
    h.wait_server_up().await;
    (h, sim)
}

/// Worker durations for tests: poll often, fail fast.
pub fn fast_worker(c: &mut Config) {
    c.worker.poll_interval = Duration::from_millis(50);
    c.worker.comfyui_timeout = Duration::from_secs(2);
    c.worker.reconnect_max = Duration::from_millis(100);
    c.events.progress_interval = Duration::from_millis(20);
}

impl Harness {
    /// Waits until every server is up in health.
    pub async fn wait_server_up(&self) {
        let up = eventually(Duration::from_secs(10), || async {
            let b = self.get("/api/health", None).await.body;
            b["services"]["comfyui"]["servers"]
                .as_array()
                .is_some_and(|a| a.iter().all(|s| s["status"] == "up"))
        })
        .await;
        assert!(up, "ComfyUI server never came up");
    }

    /// Waits until every server's status is one of `ok`.
    pub async fn wait_server_up_or(&self, ok: &[&str]) {
        let up = eventually(Duration::from_secs(10), || async {
            let b = self.get("/api/servers", Some(READ_KEY)).await.body;
            b["servers"]
                .as_array()
                .is_some_and(|a| a.iter().all(|s| ok.iter().any(|o| s["status"] == *o)))
        })
        .await;
        assert!(up, "servers never reached {ok:?}");
    }

    /// Waits until the job reaches `status`, returning it.
    pub async fn wait_status(&self, id: &str, status: &str, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let r = self.get(&format!("/api/jobs/{id}"), Some(READ_KEY)).await;
            if r.body["status"] == status {
                return r.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} did not become {status}: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The prompt ids a job was submitted as, oldest first.
    pub async fn prompt_ids(&self, id: &str) -> Vec<String> {
        let log = self
            .get(&format!("/api/jobs/{id}/events"), Some(READ_KEY))
            .await
            .body;
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["detail"]["prompt_id"].as_str().map(String::from))
            .collect()
    }

    pub async fn start() -> Harness {
        Self::with(|_| {}).await
    }

    pub async fn with(f: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        f(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: TempDir, config: Config) -> Harness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let daemon = comfydash_daemon::start(config.clone(), listener)
            .await
            .unwrap();
        let url = format!("http://{}", daemon.addr);
        Harness {
            daemon: Some(daemon),
            url,
            _dir: dir,
            config,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// Stops the daemon and starts a new one on the same data dir.
    pub async fn restart(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let daemon = comfydash_daemon::start(self.config.clone(), listener)
            .await
            .unwrap();
        self.url = format!("http://{}", daemon.addr);
        self.daemon = Some(daemon);
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(k) = key {
            req = req.header("X-API-Key", k);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Resp {
        self.call("GET", path, key, None).await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> Resp {
        self.call("POST", path, key, Some(body.to_string())).await
    }

    pub async fn submit(&self, body: Value) -> Resp {
        self.post("/api/jobs", Some(SUBMIT_KEY), body).await
    }

    pub async fn telemetry(&self) -> Value {
        let r = self.get("/api/telemetry", Some(READ_KEY)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    /// Everything observable about the store, to check that a rejected request changed nothing.
    pub async fn fingerprint(&self) -> Value {
        let mut t = self.telemetry().await;
        for k in ["uptimeSeconds", "timestamp"] {
            t.as_object_mut().unwrap().remove(k);
        }
        let jobs = self.get("/api/jobs?limit=500", Some(READ_KEY)).await.body;
        let queue = self.get("/api/queue", Some(READ_KEY)).await.body;
        serde_json::json!({"telemetry": t, "jobs": jobs, "queue": queue})
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown();
        }
    }
}

/// `(name, status)` of each server in a `GET /api/servers` body.
pub fn names_and_statuses(body: &Value) -> Vec<(String, String)> {
    body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("status"))
        })
        .collect()
}

/// Waits until `f` is true, up to `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real `comfydash` binary running as a child process.
pub struct Proc {
    pub child: Child,
    pub url: String,
}

impl Proc {
    /// Starts `comfydash daemon` on a free port with the test keys, and waits until it answers.
    pub fn spawn(data_dir: &Path, extra_env: &[(&str, &str)]) -> Proc {
        // An empty config file, so a developer's own ~/.config/comfydash/config.toml is not read.
        Self::launch(
            data_dir,
            &[format!("http://{}", dead_addr())],
            "",
            extra_env,
        )
    }

    /// Starts the binary against `comfyui` with `toml` as its config file and `env` added.
    pub fn launch(data_dir: &Path, comfyui: &[String], toml: &str, env: &[(&str, &str)]) -> Proc {
        let config = data_dir.join("test-config.toml");
        std::fs::write(&config, toml).unwrap();
        let mut last = None;
        for _ in 0..5 {
            let addr = dead_addr();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfydash"));
            cmd.arg("daemon")
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--data-dir")
                .arg(data_dir)
                .env_remove("COMFYUI_URL");
            // Without URLs the servers come from the config file (and reload on SIGHUP).
            if !comfyui.is_empty() {
                cmd.arg("--comfyui-url").arg(comfyui.join(","));
            }
            cmd.env("DASHBOARD_API_KEY", SUBMIT_KEY)
                .env("COMFYDASH_ADMIN_KEY", ADMIN_KEY)
                .env("COMFYDASH_CONFIG", &config)
                .env("COMFYDASH_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            for (k, v) in env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().unwrap();
            let mut p = Proc {
                child,
                url: format!("http://{addr}"),
            };
            if p.wait_ready(Duration::from_secs(20)) {
                return p;
            }
            let _ = p.child.kill();
            last = p.child.wait().ok();
        }
        panic!("daemon did not start: {last:?}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            // The port accepts connections as soon as it is bound; ready means /api/ping answers.
            if ping(&self.url) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        send_signal(self.child.id(), "TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with the system's `kill` command (the workspace forbids `unsafe`).
pub fn send_signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Fast worker settings for a daemon started as the real binary.
pub const FAST_TOML: &str = r#"
[probe]
interval = 50
timeout = 500
failures_before_down = 2
[worker]
poll_interval = 50
comfyui_timeout = 2000
reconnect_max = 100
"#;

impl Proc {
    /// Starts the real binary against these ComfyUI servers with `toml` as its config file.
    pub fn spawn_configured(data_dir: &Path, comfyui: &[String], toml: &str) -> Proc {
        Self::launch(data_dir, comfyui, toml, &[])
    }
}

/// Whether `GET {url}/api/ping` answers 200 (plain HTTP/1.1 over a socket, no client needed).
fn ping(url: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(url.trim_start_matches("http://")) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = "GET /api/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}
