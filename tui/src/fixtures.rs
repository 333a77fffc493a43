//! Realistic data for the unit and snapshot tests, at a fixed "now".

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use comfydash_wire::*;

use crate::action::{Action, Command, Fetch, LinkState, Loaded};
use crate::app::App;
use crate::config::{Context, Setup};

/// The fixed time every fixture is relative to.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 11, 28, 16, 0, 0).unwrap()
}

/// A job with nothing but an id and a status, created a minute ago.
pub fn job(id: &str, status: JobStatus) -> Job {
    Job {
        job_id: JobId(id.into()),
        status,
        prompt: Prompt::Text("a red bicycle at dawn".into()),
        workflow: None,
        params: None,
        priority: 0,
        attempt: 1,
        input_image_url: None,
        has_input_image: false,
        webhook_url: None,
        timeout_s: None,
        output_base64: false,
        cancel_requested: false,
        server: None,
        progress: None,
        error: None,
        outputs: Vec::new(),
        timings: Timings::default(),
        created_at: now() - Duration::minutes(1),
        updated_at: now() - Duration::minutes(1),
        started_at: None,
        finished_at: None,
    }
}

/// A mix of jobs: long ids, unicode prompts, every status.
pub fn jobs() -> Vec<Job> {
    let long_id = format!("lensia-{}", "0123456789abcdef".repeat(7));
    let mut running = job("lensia-8812", JobStatus::Processing);
    running.server = Some("gpu0".into());
    running.started_at = Some(now() - Duration::seconds(14));
    running.progress = Some(Progress {
        value: 12,
        max: 20,
        node: Some("3".into()),
    });
    running.prompt =
        Prompt::Text("自転車に乗る猫 🚲 — a cat riding a bicycle,\nstudio light".into());
    running.webhook_url = Some("https://www.lensia.ai/api/jobs/webhook".into());
    let mut long = job(&long_id, JobStatus::Pending);
    long.priority = 1_000_000;
    long.created_at = now() - Duration::seconds(5);
    let mut failed = job("lensia-8790", JobStatus::Failed);
    failed.attempt = 3;
    failed.server = Some("gpu1-h100-west".into());
    failed.started_at = Some(now() - Duration::minutes(50));
    failed.finished_at = Some(now() - Duration::minutes(49));
    failed.created_at = now() - Duration::hours(2);
    failed.error = Some(JobError {
        code: "execution_error".into(),
        message: "CUDA out of memory. Tried to allocate 2.50 GiB".into(),
        node: Some("8".into()),
    });
    let mut done = job("42", JobStatus::Completed);
    done.server = Some("gpu0".into());
    done.created_at = now() - Duration::days(3);
    done.started_at = Some(now() - Duration::days(3));
    done.finished_at = Some(now() - Duration::days(3) + Duration::milliseconds(8_450));
    done.timings = Timings {
        queued_ms: Some(120),
        processing_ms: Some(8_450),
    };
    done.outputs = vec![JobOutput {
        index: 0,
        filename: "ComfyUI_00001_.png".into(),
        content_type: "image/png".into(),
        size: 1_234_567,
        sha256: "ab".repeat(32),
        base64: None,
    }];
    let mut graph = job("graph:ü-free.id", JobStatus::Cancelled);
    graph.prompt = Prompt::Graph(serde_json::Map::from_iter([(
        "3".to_string(),
        serde_json::json!({"class_type": "KSampler", "inputs": {}}),
    )]));
    graph.created_at = now() - Duration::minutes(7);
    vec![long, running, graph, failed, done]
}

fn servers() -> Vec<ServerInfo> {
    let s = |name: &str, status, lat, dev: Option<&str>, free: Option<u64>| ServerInfo {
        name: name.into(),
        url: format!("http://10.0.0.{}:8188", name.len()),
        status,
        latency_ms: lat,
        device: dev.map(String::from),
        vram_total: free.map(|_| 25_757_220_864),
        vram_free: free,
        version: Some("0.3.40".into()),
        in_flight: 1,
        consecutive_failures: 0,
    };
    let mut down = s("gpu2", ServerStatus::Down, None, None, None);
    down.consecutive_failures = 17;
    down.in_flight = 0;
    vec![
        s(
            "gpu0",
            ServerStatus::Up,
            Some(4),
            Some("cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync"),
            Some(20_000_000_000),
        ),
        s(
            "gpu1-h100-west",
            ServerStatus::Draining,
            Some(38),
            Some("cuda:0 NVIDIA H100 80GB HBM3"),
            Some(1_000_000_000),
        ),
        down,
    ]
}

fn history() -> StatsHistory {
    let samples = (0..360u64)
        .map(|i| {
            let wave = ((i as f64 / 20.0).sin() * 20.0 + 22.0) as u64;
            StatsSample {
                at: now() - Duration::seconds(3600 - i as i64 * 10),
                pending: if i > 300 { wave + (i - 300) } else { wave },
                processing: 2,
                completed: 10_000 + i * 3,
                failed: 40 + i / 60,
                cancelled: 5,
            }
        })
        .collect();
    StatsHistory {
        interval_s: 10.0,
        samples,
    }
}

fn health(huge: bool) -> Health {
    Health {
        status: HealthStatus::Degraded,
        timestamp: now(),
        version: "0.1.0".into(),
        uptime_seconds: 3 * 3600 + 12 * 60,
        services: Services {
            comfyui: ComfyUiService {
                status: UpDown::Up,
                servers: servers()
                    .into_iter()
                    .map(|s| ServerHealth {
                        name: s.name,
                        status: s.status,
                        latency_ms: s.latency_ms,
                    })
                    .collect(),
            },
            database: DatabaseService { status: UpDown::Up },
        },
        statistics: Statistics {
            pending: 82,
            processing: 2,
            completed: if huge { u64::MAX / 2 } else { 11_080 },
            failed: 46,
            cancelled: 5,
            paused: false,
            queue_health: QueueHealth::High,
        },
    }
}

fn telemetry(huge: bool) -> Telemetry {
    let mut external = BTreeMap::new();
    external.insert(
        "lensia-web".to_string(),
        BTreeMap::from([(
            "signups_per_min".to_string(),
            ExternalValue {
                value: 12.5,
                timestamp: now() - Duration::seconds(20),
            },
        )]),
    );
    let completed = if huge { u64::MAX / 2 } else { 11_080 };
    Telemetry {
        jobs: JobsTelemetry {
            total: if huge { u64::MAX } else { 11_213 },
            by_status: ByStatus {
                pending: 82,
                processing: 2,
                completed,
                failed: 46,
                cancelled: 5,
            },
            performance: Performance {
                success_rate: 99.59,
                average_processing_time: 8_450.0,
                p50_processing_time: 7_900.0,
                p95_processing_time: 21_300.0,
            },
        },
        webhooks: WebhooksTelemetry {
            total: 11_126,
            delivered: 10_200,
            failed: 926,
            pending: 0,
            success_rate: 91.68,
        },
        queue: QueueTelemetry {
            size: 84,
            health: QueueLevel::Critical,
            paused: false,
        },
        uptime_seconds: 11_520,
        version: "0.1.0".into(),
        timestamp: now(),
        external,
    }
}

fn external() -> ExternalHistory {
    let mut points = Vec::new();
    for i in 0..60u64 {
        let at = now() - Duration::minutes(60 - i as i64);
        for (source, metric, v) in [
            (
                "lensia-web",
                "signups_per_min",
                10.0 + (i as f64 / 5.0).sin() * 3.0,
            ),
            (
                "lensia-web",
                "p95_latency_ms",
                180.0 + (i % 7) as f64 * 12.0,
            ),
            ("gpu-exporter.gpu0", "temperature_c", 61.0 + (i / 10) as f64),
        ] {
            points.push(ExternalPoint {
                id: i,
                source: source.into(),
                metric: metric.into(),
                value: v,
                timestamp: at,
                tags: None,
            });
        }
    }
    ExternalHistory { points }
}

/// An alert as the daemon lists it.
fn alert(id: i64, rule: &str, server: Option<&str>, severity: Severity, summary: &str) -> Alert {
    Alert {
        id,
        rule: rule.into(),
        labels: server
            .map(|s| BTreeMap::from([("server".to_string(), s.to_string())]))
            .unwrap_or_default(),
        severity,
        state: AlertState::Firing,
        summary: summary.into(),
        value: None,
        started_at: now() - Duration::minutes(13),
        fired_at: Some(now() - Duration::minutes(12)),
        resolved_at: None,
        last_notified_at: Some(now() - Duration::minutes(12)),
        muted: None,
    }
}

/// The silence of the queue alert in [`alerts`].
pub const QUEUE_SILENCE: &str = "5b1f3c2e-8d4a-4c1e-9f0b-2a7d6e5c4b3a";

/// Alerts matching the fixture's daemon: gpu2 down, the queue high (silenced for a load test),
/// `degraded` inhibited by them, the disk getting full; two silences and two resolved alerts.
pub fn alerts() -> AlertList {
    let down = alert(
        1,
        "server_down",
        Some("gpu2"),
        Severity::Warning,
        "ComfyUI server gpu2 is down (17 failed probes)",
    );
    let mut queue = alert(
        2,
        "queue_high",
        None,
        Severity::Warning,
        "Queue is high: 82 jobs pending (threshold 50)",
    );
    queue.fired_at = Some(now() - Duration::minutes(4));
    queue.value = Some(82.0);
    queue.muted = Some(format!("silenced:{QUEUE_SILENCE}"));
    let mut degraded = alert(
        3,
        "degraded",
        None,
        Severity::Warning,
        "comfydash is degraded: server gpu2 down, queue high",
    );
    degraded.muted = Some("inhibited:server_down".into());
    let mut disk = alert(
        4,
        "disk_low",
        None,
        Severity::Warning,
        "Disk space low on the data dir: 9.8% free (24.8 GiB of 252.0 GiB)",
    );
    disk.state = AlertState::Pending;
    disk.fired_at = None;
    disk.started_at = now() - Duration::seconds(20);
    disk.last_notified_at = None;
    let mut stuck = alert(
        5,
        "stuck",
        None,
        Severity::Critical,
        "Nothing finished for 15m with 40 jobs pending",
    );
    stuck.state = AlertState::Resolved;
    stuck.started_at = now() - Duration::minutes(31);
    stuck.resolved_at = Some(now() - Duration::minutes(25));
    let mut blip = alert(
        6,
        "server_down",
        Some("gpu0"),
        Severity::Warning,
        "ComfyUI server gpu0 is down (3 failed probes)",
    );
    blip.state = AlertState::Resolved;
    blip.started_at = now() - Duration::hours(2);
    blip.resolved_at = Some(now() - Duration::hours(2) + Duration::seconds(45));
    let silence =
        |id: &str, rule: &str, server: Option<&str>, ends: Duration, comment: &str| Silence {
            id: id.into(),
            rule: Some(rule.into()),
            labels: server
                .map(|s| BTreeMap::from([("server".to_string(), s.to_string())]))
                .unwrap_or_default(),
            comment: comment.into(),
            created_by: "ops".into(),
            created_at: now() - Duration::minutes(15),
            ends_at: now() + ends,
            active: true,
        };
    AlertList {
        active: vec![down, queue, degraded, disk],
        history: vec![stuck, blip],
        silences: vec![
            silence(
                QUEUE_SILENCE,
                "queue_high",
                None,
                Duration::minutes(105),
                "load test until 18:00",
            ),
            silence(
                "c0ffee00-1111-4222-8333-944455556666",
                "server_stuck",
                Some("gpu1-h100-west"),
                Duration::hours(3),
                "driver update, restarts expected",
            ),
        ],
        channels: vec!["slack".into(), "webhook".into()],
        deliveries: vec![
            AlertDelivery {
                id: 2,
                at: now() - Duration::minutes(12),
                channel: "webhook".into(),
                kind: "firing".into(),
                alert_ids: vec![1],
                status: AlertDeliveryStatus::Failed,
                attempts: 3,
                status_code: Some(502),
                error: Some("HTTP 502 Bad Gateway".into()),
                latency_ms: Some(31),
            },
            AlertDelivery {
                id: 1,
                at: now() - Duration::minutes(12),
                channel: "slack".into(),
                kind: "firing".into(),
                alert_ids: vec![1],
                status: AlertDeliveryStatus::Sent,
                attempts: 1,
                status_code: Some(200),
                error: None,
                latency_ms: Some(212),
            },
        ],
    }
}

/// The loaded model with [`alerts`] in it.
pub fn app_alerting() -> App {
    let mut app = app();
    app.update(Action::loaded(Loaded::Alerts(Ok(alerts()))));
    app
}

/// The model as it stands after connecting and loading everything.
pub fn app() -> App {
    loaded(false)
}

/// The same with enormous counters (u64 limits) to check nothing overflows or wraps badly.
pub fn app_huge() -> App {
    loaded(true)
}

/// A model that has connected but not loaded anything.
pub fn fresh() -> App {
    App::new(&Setup::for_url("http://127.0.0.1:8190", None), now())
}

fn loaded(huge: bool) -> App {
    let setup = Setup {
        contexts: vec![
            Context {
                name: "local".into(),
                url: "http://127.0.0.1:8190".into(),
                key: Some("k".into()),
                key_source: "/var/lib/comfydash/admin.key".into(),
            },
            Context {
                name: "gpu-west".into(),
                url: "http://10.0.0.7:8190".into(),
                key: None,
                key_source: "$WEST_KEY".into(),
            },
        ],
        current: 0,
        color: true,
        interactive: false,
        config_path: Some("/home/ops/.config/comfydash/tui.toml".into()),
    };
    let mut app = App::new(&setup, now());
    let cmds = app.update(Action::Link(LinkState::Up));
    app.update(Action::loaded(Loaded::Health(Ok(health(huge)))));
    app.update(Action::loaded(Loaded::Telemetry(Ok(telemetry(huge)))));
    app.update(Action::loaded(Loaded::Queue(Ok(QueueState {
        paused: false,
        pending: 82,
        processing: 2,
        size: 84,
        health: QueueHealth::High,
        max_pending: 10_000,
    }))));
    app.update(Action::loaded(Loaded::Servers(Ok(ServerList {
        servers: servers(),
    }))));
    app.update(Action::loaded(Loaded::History(Ok(history()))));
    app.update(Action::loaded(Loaded::External(Ok(external()))));
    app.update(Action::loaded(Loaded::Role(Ok(true))));
    app.update(Action::loaded(Loaded::Alerts(Ok(AlertList {
        active: Vec::new(),
        history: Vec::new(),
        silences: Vec::new(),
        channels: vec!["slack".into(), "webhook".into()],
        deliveries: Vec::new(),
    }))));
    let (generation, page) = cmds
        .iter()
        .find_map(|c| match c {
            Command::Fetch(Fetch::Jobs {
                generation, page, ..
            }) => Some((*generation, *page)),
            _ => None,
        })
        .expect("connecting fetches the jobs");
    app.update(Action::loaded(Loaded::Jobs {
        generation,
        page,
        result: Ok(JobPage {
            jobs: jobs(),
            next_cursor: Some("c1".into()),
        }),
    }));
    app.status = None;
    app
}
