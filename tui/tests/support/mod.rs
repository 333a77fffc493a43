//! A real daemon, the ComfyUI simulator and the console on a `TestBackend`, driven by keys.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use comfydash_daemon::Daemon;
use comfydash_daemon::auth::Role;
use comfydash_daemon::config::{Config, KeyConfig, ServerConfig};
use comfydash_tui::Setup;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use tokio::sync::{mpsc, watch};

pub const SUBMIT_KEY: &str = "test-submit-key-0123456789";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const READ_KEY: &str = "test-read-key-0123456789";

/// A test config: fast probes, three keys, the given ComfyUI server.
pub fn config(dir: &Path, comfy_url: &str) -> Config {
    let mut c = Config::new(dir.to_path_buf());
    // Built through serde so fields the daemon adds later keep their defaults.
    c.servers = vec![
        serde_json::from_value::<ServerConfig>(
            serde_json::json!({"name": "gpu0", "url": comfy_url}),
        )
        .unwrap(),
    ];
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
    c.probe.interval = Duration::from_millis(50);
    c.probe.timeout = Duration::from_millis(200);
    c.probe.failures_before_down = 2;
    c.http.shutdown_grace = Duration::from_millis(300);
    c
}

/// Starts a daemon on `addr` (`127.0.0.1:0` for any port).
pub async fn daemon(config: Config, addr: &str) -> Daemon {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    comfydash_daemon::start(config, listener).await.unwrap()
}

/// The console running against a daemon, its screen readable as text.
pub struct Console {
    keys: mpsc::UnboundedSender<std::io::Result<Event>>,
    frames: watch::Receiver<String>,
    task: tokio::task::JoinHandle<Result<(), comfydash_tui::TuiError>>,
}

impl Console {
    /// Starts the console at `w`x`h` against `url` with `key`.
    pub fn start(url: &str, key: &str, w: u16, h: u16) -> Console {
        let (keys, rx) = mpsc::unbounded_channel();
        let (tx, frames) = watch::channel(String::new());
        let setup = Setup::for_url(url, Some(key.to_string()));
        let input =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
            );
        let task = tokio::spawn(async move {
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            comfydash_tui::run_on(&mut term, setup, input, |b| {
                let _ = tx.send(text(b));
            })
            .await
        });
        Console { keys, frames, task }
    }

    /// Types `keys` (`\n` is enter, `\x1b` escape).
    pub fn press(&self, keys: &str) {
        for c in keys.chars() {
            let code = match c {
                '\n' => KeyCode::Enter,
                '\x1b' => KeyCode::Esc,
                c => KeyCode::Char(c),
            };
            let _ = self
                .keys
                .send(Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))));
        }
    }

    /// The last frame.
    pub fn screen(&self) -> String {
        self.frames.borrow().clone()
    }

    /// Waits until the screen satisfies `f`; panics with the screen after `limit`.
    pub async fn wait(&mut self, what: &str, limit: Duration, f: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            {
                let s = self.frames.borrow_and_update();
                if f(&s) {
                    return s.clone();
                }
            }
            if tokio::time::timeout_at(deadline, self.frames.changed())
                .await
                .is_err()
            {
                panic!("timed out waiting for {what}; screen:\n{}", self.screen());
            }
        }
    }

    /// Waits until the screen shows `needle`.
    pub async fn wait_for(&mut self, needle: &str) -> String {
        self.wait(needle, Duration::from_secs(10), |s| s.contains(needle))
            .await
    }

    /// Quits with `q` and waits for the console to end.
    pub async fn quit(self) {
        self.press("q");
        let r = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("console did not stop")
            .unwrap();
        r.unwrap();
    }
}

/// The row of the screen that contains `needle`.
pub fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

fn text(b: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            out.push_str(b[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// `POST /api/jobs` with the submit key.
pub async fn submit(url: &str, id: &str, prompt: &str) {
    let r = http()
        .post(format!("{url}/api/jobs"))
        .header("x-api-key", SUBMIT_KEY)
        .json(&serde_json::json!({"job_id": id, "prompt": prompt}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
}

/// `GET /api/jobs/{id}`'s status.
pub async fn status(url: &str, id: &str) -> String {
    let v: serde_json::Value = http()
        .get(format!("{url}/api/jobs/{id}"))
        .header("x-api-key", READ_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["status"].as_str().unwrap_or_default().to_string()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}
