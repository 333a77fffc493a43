use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use comfydash_daemon::auth::Role;
use serde_json::{Value, json};

use crate::harness::*;

/// Stand-in daemons for what a real one does not do: bad outputs, another protocol, dropped streams.
mod fake;
/// Submitting, listing, steering, waiting for and downloading jobs.
mod jobs;
/// Alerts (list, silence, unsilence, test) and webhooks (list, redeliver, replay).
mod ops;

/// What a run of the binary left behind.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// The binary with none of the caller's comfydash settings, so only the arguments count.
fn command(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_comfydash"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in [
        "COMFYDASH_URL",
        "COMFYDASH_API_KEY",
        "COMFYDASH_ADMIN_KEY",
        "COMFYDASH_DATA_DIR",
        "COMFYDASH_CONFIG",
        "COMFYDASH_LISTEN",
        "COMFYUI_URL",
        "DASHBOARD_API_KEY",
        "COMFYDASH_OUTBOUND_ALLOW",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

async fn finish(cmd: &mut tokio::process::Command) -> Out {
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("comfydash did not finish")
        .unwrap();
    Out {
        code: out.status.code().expect("killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `comfydash ARGS --url URL --api-key KEY`.
async fn run(url: &str, key: &str, args: &[&str]) -> Out {
    let mut all = args.to_vec();
    all.extend(["--url", url, "--api-key", key]);
    finish(&mut command(&all)).await
}

#[tokio::test]
async fn ping_and_health_exit_codes() {
    let h = Harness::start().await;
    let ping = run(&h.url, READ_KEY, &["ping"]).await;
    assert_eq!(ping.code, 0, "{ping:?}");
    assert!(ping.stdout.starts_with("ok from"), "{ping:?}");
    assert_eq!(
        run(&h.url, READ_KEY, &["ping", "--json"]).await.json()["status"],
        "ok"
    );

    // The harness's ComfyUI server is dead: degraded, exit 1.
    let health = run(&h.url, READ_KEY, &["health"]).await;
    assert_eq!(health.code, 1, "{health:?}");
    assert!(
        health
            .stdout
            .starts_with("COMFYDASH WARNING - degraded; comfyui down (0/1 servers"),
        "{health:?}"
    );
    assert!(
        health.stdout.contains("| pending=0 processing=0"),
        "{health:?}"
    );
    let health = run(&h.url, READ_KEY, &["health", "--json"]).await;
    assert_eq!(health.code, 1);
    assert_eq!(health.json()["status"], "degraded");

    // Nothing listening: 3, for ping and health alike.
    let dead = format!("http://{}", dead_addr());
    let health = run(&dead, READ_KEY, &["health"]).await;
    assert_eq!(health.code, 3, "{health:?}");
    assert!(
        health
            .stdout
            .starts_with("COMFYDASH UNKNOWN - daemon unreachable")
    );
    let ping = run(&dead, READ_KEY, &["ping"]).await;
    assert_eq!(ping.code, 3, "{ping:?}");
    assert!(ping.stderr.contains("unreachable"), "{ping:?}");
}

#[tokio::test]
async fn health_is_ok_when_comfyui_is_up() {
    let sim = comfydash_sim::Sim::start(comfydash_sim::SimConfig::default())
        .await
        .unwrap();
    let url = sim.url();
    let h = Harness::with(|c| c.servers[0].url = url).await;
    let mut last = None;
    for _ in 0..100 {
        let out = run(&h.url, READ_KEY, &["health"]).await;
        if out.code == 0 {
            last = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = last.expect("health never became OK");
    assert!(
        out.stdout.starts_with(
            "COMFYDASH OK - healthy; comfyui up (1/1 servers); queue good: 0 pending, 0 processing | pending=0"
        ),
        "{out:?}"
    );
}

#[tokio::test]
async fn servers_list_drain_enable_disable_and_free() {
    let (h, _sim) = with_sim(comfydash_sim::SimConfig::default(), |_| {}).await;
    let out = run(&h.url, READ_KEY, &["servers"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME  STATUS  LATENCY"), "{out:?}");
    assert!(lines[1].starts_with("gpu0  up"), "{out:?}");
    let out = run(&h.url, READ_KEY, &["servers", "list", "--json"]).await;
    assert_eq!(out.json()["servers"][0]["status"], "up", "{out:?}");

    let out = run(&h.url, ADMIN_KEY, &["servers", "drain", "gpu0"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "server gpu0: draining, 0 in flight\n")
    );
    let out = run(&h.url, ADMIN_KEY, &["servers", "disable", "gpu0", "--json"]).await;
    assert_eq!(out.json()["status"], "disabled", "{out:?}");
    let out = run(&h.url, ADMIN_KEY, &["servers", "enable", "gpu0"]).await;
    assert_eq!(out.stdout, "server gpu0: up, 0 in flight\n", "{out:?}");
    let out = run(&h.url, ADMIN_KEY, &["servers", "free", "gpu0"]).await;
    assert_eq!(
        out.stdout, "server gpu0: asked to free memory; up, 0 in flight\n",
        "{out:?}"
    );

    // Unknown servers and small keys are the daemon's refusals: exit 4 with its words.
    let out = run(&h.url, ADMIN_KEY, &["servers", "drain", "gpu9"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("server_not_found"), "{out:?}");
    let out = run(&h.url, READ_KEY, &["servers", "drain", "gpu0"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("forbidden"), "{out:?}");
}

#[tokio::test]
async fn wrong_key_is_unauthorized() {
    let h = Harness::start().await;
    let out = run(&h.url, "not-a-key", &["jobs", "list"]).await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("unauthorized"), "{out:?}");
}

#[tokio::test]
async fn admin_key_is_found_in_the_data_dir() {
    // No admin key configured: the daemon generates one into its data dir.
    let h = Harness::with(|c| c.keys.retain(|k| k.role != Role::Admin)).await;
    let data_dir = h.config.data_dir.to_str().unwrap();
    let out = finish(&mut command(&[
        "queue",
        "pause",
        "--url",
        &h.url,
        "--data-dir",
        data_dir,
        "--json",
    ]))
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["paused"], true);
    // Elsewhere there is no key at all.
    let empty = tempfile::tempdir().unwrap();
    let out = finish(&mut command(&[
        "queue",
        "resume",
        "--url",
        &h.url,
        "--data-dir",
        empty.path().to_str().unwrap(),
    ]))
    .await;
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("missing API key"), "{out:?}");
}

fn config_check(file: &Path, data_dir: &Path, extra: &[&str]) -> tokio::process::Command {
    let mut args = vec![
        "config",
        "check",
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    args.extend(extra);
    command(&args)
}

#[tokio::test]
async fn config_check_masks_secrets_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        r#"
[[servers]]
name = "gpu0"
url = "http://10.0.0.5:8188"
[[keys]]
name = "ops"
role = "admin"
key = "abcdefghijklmnopqrstuvwx"
[probe]
interval = "250ms"
"#,
    )
    .unwrap();
    let out = finish(
        config_check(&good, dir.path(), &["--listen", "127.0.0.1:9001"])
            .env("DASHBOARD_API_KEY", "lensia-secret-key-0123456789"),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("listen = \"127.0.0.1:9001\""),
        "{out:?}"
    );
    assert!(out.stdout.contains("key = \"abc…(24 chars)\""), "{out:?}");
    assert!(out.stdout.contains("name = \"lensia\""), "{out:?}");
    assert!(!out.stdout.contains("abcdefghij") && !out.stdout.contains("secret-key"));

    let out = finish(&mut config_check(&good, dir.path(), &["--json"])).await;
    let cfg = out.json();
    assert_eq!(cfg["listen"], "127.0.0.1:8190");
    assert_eq!(cfg["probe"]["interval"], 250);
    assert_eq!(
        cfg["keys"],
        json!([{"name": "ops", "role": "admin", "key": "abc…(24 chars)"}])
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[queue]\nmax_pendng = 3\n").unwrap();
    let out = finish(&mut config_check(&bad, dir.path(), &[])).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("unknown field `max_pendng`"), "{out:?}");
    assert!(out.stdout.is_empty());
}
