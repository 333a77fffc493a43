use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn accepted_jobs_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::spawn(dir.path(), &[]);
    let http = blocking_client();
    let n = 200;
    // Several submitters at once, so some writes are in flight when the kill lands.
    let accepted: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (http, url) = (http.clone(), p.url.clone());
                s.spawn(move || {
                    let mut ok = Vec::new();
                    for i in 0..n / 4 {
                        let id = format!("k{t}-{i}");
                        let r = http
                            .post(format!("{url}/api/jobs"))
                            .header("X-API-Key", SUBMIT_KEY)
                            .json(&json!({"job_id": id, "prompt": "survive"}))
                            .send()
                            .unwrap();
                        if r.status().is_success() {
                            ok.push(id);
                        }
                    }
                    ok
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(accepted.len(), n);
    let r = http
        .post(format!("{}/api/queue/pause", p.url))
        .header("X-API-Key", ADMIN_KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    p.kill9();

    let p = Proc::spawn(dir.path(), &[]);
    for id in &accepted {
        let r = http
            .get(format!("{}/api/jobs/{id}", p.url))
            .header("X-API-Key", SUBMIT_KEY)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "job {id} lost after kill -9");
    }
    let t: serde_json::Value = http
        .get(format!("{}/api/telemetry", p.url))
        .header("X-API-Key", SUBMIT_KEY)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(t["jobs"]["total"], n);
    assert_eq!(t["jobs"]["byStatus"]["pending"], n);
    assert_eq!(t["queue"]["paused"], true, "pause lost after kill -9");
}

#[test]
fn sigterm_stops_cleanly_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proc::spawn(dir.path(), &[]);
    let started = Instant::now();
    let status = p.sigterm();
    assert!(status.success(), "exit status {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn admin_key_is_generated_private_and_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_comfydash"));
    let addr = dead_addr();
    let child = cmd
        .args(["daemon", "--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path())
        .env_remove("COMFYDASH_ADMIN_KEY")
        .env("DASHBOARD_API_KEY", SUBMIT_KEY)
        .env("COMFYDASH_CONFIG", {
            let c = dir.path().join("test-config.toml");
            std::fs::write(&c, "").unwrap();
            c
        })
        .env("COMFYUI_URL", format!("http://{}", dead_addr()))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let key_path = dir.path().join("admin.key");
    let http = blocking_client();
    let url = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{url}/api/ping")).send().is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let key = std::fs::read_to_string(&key_path)
        .unwrap()
        .trim()
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let r = http
        .post(format!("{url}/api/queue/pause"))
        .header("X-API-Key", &key)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    send_signal(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("admin.key"),
        "log does not say where the key is: {log}"
    );
    assert!(
        !log.contains(&key) && !log.contains(SUBMIT_KEY),
        "a key was logged"
    );
}

#[test]
fn sighup_reloads_keys_without_dropping_work() {
    let dir = tempfile::tempdir().unwrap();
    let key = |name: &str, k: &str| {
        format!("[[keys]]\nname = \"{name}\"\nrole = \"read\"\nkey = \"{k}\"\n")
    };
    let mut p = Proc::spawn_configured(
        dir.path(),
        &[format!("http://{}", dead_addr())],
        &key("old", "old-read-key-0123456789"),
    );
    let http = blocking_client();
    let status = |k: &str| {
        http.get(format!("{}/api/queue", p.url))
            .header("X-API-Key", k)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("old-read-key-0123456789"), 200);
    let r = http
        .post(format!("{}/api/jobs", p.url))
        .header("X-API-Key", SUBMIT_KEY)
        .json(&json!({"job_id": "kept", "prompt": "x"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    std::fs::write(
        dir.path().join("test-config.toml"),
        key("new", "new-read-key-0123456789"),
    )
    .unwrap();
    send_signal(p.child.id(), "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status("new-read-key-0123456789") != 200 {
        assert!(Instant::now() < deadline, "new key never accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status("old-read-key-0123456789"), 401);
    // Keys from the environment and the admin key survive the reload; the job is still there.
    assert_eq!(status(ADMIN_KEY), 200);
    let r = http
        .get(format!("{}/api/jobs/kept", p.url))
        .header("X-API-Key", SUBMIT_KEY)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "daemon exited on SIGHUP"
    );
}

#[test]
fn sighup_applies_a_changed_server_list() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(crate::servers::sims(2, 50));
    let dir = tempfile::tempdir().unwrap();
    let servers = |list: &[(&str, &comfydash_sim::Sim)]| {
        let mut toml = FAST_TOML.to_string();
        for (name, sim) in list {
            toml.push_str(&format!(
                "[[servers]]\nname = \"{name}\"\nurl = \"{}\"\n",
                sim.url()
            ));
        }
        toml
    };
    let mut p = Proc::spawn_configured(dir.path(), &[], &servers(&[("gpu0", &s[0])]));
    let http = blocking_client();
    let listed = || -> Vec<(String, String)> {
        let body = http
            .get(format!("{}/api/servers", p.url))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .unwrap()
            .json()
            .unwrap();
        names_and_statuses(&body)
    };
    let wait_for = |want: Vec<(&str, &str)>| {
        let want: Vec<(String, String)> = want
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while listed() != want {
            assert!(Instant::now() < deadline, "servers: {:?}", listed());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(vec![("gpu0", "up")]);
    std::fs::write(
        dir.path().join("test-config.toml"),
        servers(&[("gpu0", &s[0]), ("gpu1", &s[1])]),
    )
    .unwrap();
    send_signal(p.child.id(), "HUP");
    wait_for(vec![("gpu0", "up"), ("gpu1", "up")]);
    std::fs::write(
        dir.path().join("test-config.toml"),
        servers(&[("gpu1", &s[1])]),
    )
    .unwrap();
    send_signal(p.child.id(), "HUP");
    wait_for(vec![("gpu1", "up")]);
    let r = http
        .post(format!("{}/api/jobs", p.url))
        .header("X-API-Key", SUBMIT_KEY)
        .json(&json!({"job_id": "after", "prompt": crate::servers::slow(3)}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s[1].executed_count() < 1 {
        assert!(Instant::now() < deadline, "job never ran on gpu1");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(s[0].executed_count(), 0);
    // A config that does not load keeps the running one.
    std::fs::write(
        dir.path().join("test-config.toml"),
        "[[servers]]\nname = 1\n",
    )
    .unwrap();
    send_signal(p.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(listed(), vec![("gpu1".to_string(), "up".to_string())]);
    assert!(p.child.try_wait().unwrap().is_none(), "daemon exited");

    // The same through the API, from the CLI: the answer says what changed, or why not.
    let reload = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_comfydash"))
            .args(["config", "reload", "--url", &p.url, "--api-key", ADMIN_KEY])
            .env_remove("COMFYDASH_URL")
            .env_remove("COMFYDASH_API_KEY")
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, stderr) = reload();
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("config_invalid") && stderr.contains("line 2"),
        "{stderr}"
    );
    std::fs::write(
        dir.path().join("test-config.toml"),
        servers(&[("gpu0", &s[0]), ("gpu1", &s[1])]),
    )
    .unwrap();
    let (code, stdout, stderr) = reload();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "server gpu0 added\n");
    let (code, stdout, _) = reload();
    assert_eq!(
        (code, stdout.as_str()),
        (Some(0), "reloaded; nothing changed that applies live\n")
    );
    wait_for(vec![("gpu0", "up"), ("gpu1", "up")]);
}
