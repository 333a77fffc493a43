//! Measures the console: CPU while idle and while 100 jobs/s stream through, memory with 50,000
//! jobs in history, and time to first frame.
//!
//! `cargo run --release -p comfydash-tui --example measure` starts the ComfyUI simulator and a
//! daemon in this process and the console in a child process (drawing through the crossterm
//! backend into a sink at 160x48), so the child's CPU and memory are the console's alone.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use comfydash_daemon::auth::Role;
use comfydash_daemon::config::{Config, KeyConfig, ServerConfig, Synchronous};
use comfydash_sim::{Sim, SimConfig};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

const ADMIN_KEY: &str = "measure-admin-key-0123456789";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("console") {
        console(&args[2]).await;
    } else {
        measure().await;
    }
}

/// The child: the console at 160x48 drawing into a sink, keys from stdin lines, timings on stdout.
async fn console(url: &str) {
    let started = Instant::now();
    let backend = CrosstermBackend::new(std::io::sink());
    let mut term = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 160, 48)),
        },
    )
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<Event>>();
    // The jobs panel's title (row 2) says which row of how many is selected.
    let title = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let shown = title.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if line == "!report" {
                println!(
                    "jobs-title {}",
                    shown.lock().map(|s| s.clone()).unwrap_or_default()
                );
                continue;
            }
            for c in line.chars() {
                let ev = Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
                if tx.send(Ok(ev)).is_err() {
                    return;
                }
            }
        }
    });
    let input =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
    let setup = comfydash_tui::Setup::for_url(url, Some(ADMIN_KEY.into()));
    let (mut first, mut live) = (false, false);
    comfydash_tui::run_on(&mut term, setup, input, |buf| {
        if let Ok(mut t) = title.lock() {
            *t = (0..buf.area.width).map(|x| buf[(x, 2)].symbol()).collect();
        }
        if !first {
            first = true;
            println!("first-frame {}", started.elapsed().as_millis());
        }
        if !live {
            let top: String = (0..buf.area.width).map(|x| buf[(x, 0)].symbol()).collect();
            if top.contains("● live") && (top.contains("healthy") || top.contains("degraded")) {
                live = true;
                println!("first-live-frame {}", started.elapsed().as_millis());
            }
        }
    })
    .await
    .unwrap();
}

async fn measure() {
    let sim = Sim::start(SimConfig {
        exec_time: Duration::from_millis(2),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.servers = vec![
        serde_json::from_value::<ServerConfig>(
            serde_json::json!({"name": "gpu0", "url": sim.url()}),
        )
        .unwrap(),
    ];
    config.keys = vec![KeyConfig {
        name: "ops".into(),
        role: Role::Admin,
        key: ADMIN_KEY.into(),
    }];
    config.queue.max_pending = 1_000_000;
    // Only the console is measured; the daemon may trade durability for a faster bulk load.
    config.store.synchronous = Synchronous::Normal;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let daemon = comfydash_daemon::start(config, listener).await.unwrap();
    let url = format!("http://{}", daemon.addr);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["console", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = BufReader::new(child.stdout.take().unwrap());
    let timings = std::thread::spawn(move || out.lines().map_while(Result::ok).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_secs(3)).await;

    let idle = cpu_percent(pid, Duration::from_secs(10)).await;

    // 100 jobs a second for 10 seconds, run to completion on the simulator.
    let submitter = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for i in 0..1000 {
                tick.tick().await;
                let (http, url) = (http.clone(), url.clone());
                tokio::spawn(async move { submit(&http, &url, &format!("stream-{i}")).await });
            }
        })
    };
    let busy = cpu_percent(pid, Duration::from_secs(10)).await;
    submitter.await.unwrap();

    // 50,000 jobs in history (held by a paused queue), then page through them on the jobs screen.
    post(&http, &url, "/api/queue/pause").await;
    let t = Instant::now();
    let mut batch = Vec::new();
    for i in 0..50_000 {
        let (http, url) = (http.clone(), url.clone());
        batch.push(tokio::spawn(async move {
            submit(&http, &url, &format!("bulk-{i}")).await
        }));
        if batch.len() == 64 {
            for b in batch.drain(..) {
                b.await.unwrap();
            }
        }
    }
    for b in batch {
        b.await.unwrap();
    }
    eprintln!("submitted 50,000 jobs in {:.1}s", t.elapsed().as_secs_f64());
    let rss_before = rss_kib(pid);
    let stdin = child.stdin.as_mut().unwrap();
    writeln!(stdin, "2").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Walk about 20,000 rows down the keyset pages, one page request at a time.
    for _ in 0..200 {
        writeln!(stdin, "G").unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss_after, hwm) = (rss_kib(pid), hwm_kib(pid));
    writeln!(stdin, "!report").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let _ = child.kill();
    let _ = child.wait();
    let timings = timings.join().unwrap_or_default();
    println!("console, 160x48, crossterm backend into a sink:");
    for t in &timings {
        match t.split_once(' ') {
            Some(("jobs-title", title)) => println!("  jobs screen after paging: {}", title.trim()),
            Some((what, ms)) => println!("  {what:<18} {ms} ms after start"),
            None => {}
        }
    }
    println!("  cpu idle           {idle:.2}% of one core (10 s)");
    println!(
        "  cpu at 100 jobs/s  {busy:.2}% of one core (10 s, every job submitted, run, completed)"
    );
    println!(
        "  rss 50k jobs       {} KiB before paging, {} KiB after ~200 pages (peak {} KiB)",
        rss_before, rss_after, hwm
    );
    daemon.stop().await;
    sim.shutdown().await;
    reap(child);
}

fn reap(mut c: Child) {
    let _ = c.wait();
}

async fn submit(http: &reqwest::Client, url: &str, id: &str) {
    let r = http
        .post(format!("{url}/api/jobs"))
        .header("x-api-key", ADMIN_KEY)
        .json(&serde_json::json!({"job_id": id, "prompt": "a red bicycle at dawn"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn post(http: &reqwest::Client, url: &str, path: &str) {
    http.post(format!("{url}{path}"))
        .header("x-api-key", ADMIN_KEY)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
}

/// CPU time of `pid` over `window`, as a percentage of one core.
async fn cpu_percent(pid: u32, window: Duration) -> f64 {
    let a = cpu_ticks(pid);
    tokio::time::sleep(window).await;
    let b = cpu_ticks(pid);
    let hz = clock_ticks();
    (b - a) as f64 / hz / window.as_secs_f64() * 100.0
}

/// utime + stime from /proc/PID/stat (fields 14 and 15, after the parenthesised name).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

fn hwm_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}
