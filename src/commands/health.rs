//! `comfydash health`: the daemon's health as one Nagios-style line (or JSON) and an exit code a
//! monitoring system can act on: 0 healthy, 1 degraded, 3 unreachable.

use comfydash_wire::{Health, HealthStatus, UpDown};

use super::{client, print_json};
use crate::cli::Remote;
use crate::exit::{self, Exit};

/// Calls `GET /api/health`; the exit code follows its `status`.
pub async fn run(remote: &Remote) -> anyhow::Result<Exit> {
    let health = match client(remote).health().await {
        Ok(h) => h,
        // A monitoring system reads stdout for the reason, so failures are a status line too.
        Err(e) if !remote.json => {
            let e = anyhow::Error::from(e);
            outln!("COMFYDASH UNKNOWN - {}", exit::describe(&e));
            return Ok(exit::of(&e));
        }
        Err(e) => return Err(e.into()),
    };
    if remote.json {
        print_json(&health)?;
    } else {
        outln!("{}", status_line(&health));
    }
    Ok(match health.status {
        HealthStatus::Healthy => Exit::Success,
        HealthStatus::Degraded => Exit::Failure,
    })
}

/// `COMFYDASH OK - healthy; comfyui up (1/1 servers); queue good: ... | perfdata`.
fn status_line(h: &Health) -> String {
    let (state, status) = match h.status {
        HealthStatus::Healthy => ("OK", "healthy"),
        HealthStatus::Degraded => ("WARNING", "degraded"),
    };
    let servers = &h.services.comfyui.servers;
    let up = servers.iter().filter(|s| s.status.is_up()).count();
    let not_up: Vec<String> = servers
        .iter()
        .filter(|s| !s.status.is_up())
        .map(|s| format!("{} {}", s.name, word(&s.status)))
        .collect();
    let mut parts = vec![status.to_string()];
    let mut comfy = format!(
        "comfyui {} ({up}/{} servers",
        word(&h.services.comfyui.status),
        servers.len()
    );
    if !not_up.is_empty() {
        comfy.push_str(&format!("; {}", not_up.join(", ")));
    }
    comfy.push(')');
    parts.push(comfy);
    if h.services.database.status == UpDown::Down {
        parts.push("database down".into());
    }
    let s = &h.statistics;
    parts.push(format!(
        "queue {}: {} pending, {} processing{}",
        word(&s.queue_health),
        s.pending,
        s.processing,
        if s.paused { ", paused" } else { "" }
    ));
    format!(
        "COMFYDASH {state} - {} | pending={} processing={} completed={} failed={} cancelled={}",
        parts.join("; "),
        s.pending,
        s.processing,
        s.completed,
        s.failed,
        s.cancelled
    )
}

/// The wire name of a unit enum: serde writes them in lowercase, as their Debug name lowered.
fn word(v: &impl std::fmt::Debug) -> String {
    format!("{v:?}").to_lowercase()
}
