//! `comfydash servers [list|drain|enable|disable|free NAME]`.

use comfydash_wire::ServerInfo;

use super::{client, print_json};
use crate::cli::{Remote, ServersCommand};
use crate::exit::Exit;
use crate::table::Table;

/// Lists the servers, or acts on one and prints its state after.
pub async fn run(remote: &Remote, command: Option<ServersCommand>) -> anyhow::Result<Exit> {
    let client = client(remote);
    let (name, action) = match command.unwrap_or(ServersCommand::List) {
        ServersCommand::List => {
            let list = client.servers().await?;
            if remote.json {
                print_json(&list)?;
            } else {
                out!("{}", table(&list.servers));
            }
            return Ok(Exit::Success);
        }
        ServersCommand::Drain { name } => (name, "drain"),
        ServersCommand::Enable { name } => (name, "enable"),
        ServersCommand::Disable { name } => (name, "disable"),
        ServersCommand::Free { name } => (name, "free"),
    };
    let server = client.server_action(&name, action).await?;
    if remote.json {
        print_json(&server)?;
    } else {
        let done = if action == "free" {
            "asked to free memory; "
        } else {
            ""
        };
        outln!(
            "server {}: {done}{}, {} in flight",
            server.name,
            status(&server),
            server.in_flight
        );
    }
    Ok(Exit::Success)
}

fn table(servers: &[ServerInfo]) -> String {
    let mut t = Table::new(&[
        "NAME",
        "STATUS",
        "LATENCY",
        "IN_FLIGHT",
        "DEVICE",
        "VRAM_USED",
        "VERSION",
    ]);
    for s in servers {
        t.row(vec![
            s.name.clone(),
            status(s),
            s.latency_ms.map_or("-".into(), |ms| format!("{ms} ms")),
            s.in_flight.to_string(),
            s.device.clone().unwrap_or_else(|| "-".into()),
            vram(s),
            s.version.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t.render()
}

/// The status as the API spells it, with the failed probes when it is not answering.
fn status(s: &ServerInfo) -> String {
    let name = s.status.as_str();
    match s.consecutive_failures {
        0 => name.to_string(),
        n => format!("{name} ({n} failed probes)"),
    }
}

/// Used / total VRAM in GiB.
fn vram(s: &ServerInfo) -> String {
    match (s.vram_total, s.vram_free) {
        (Some(total), Some(free)) => {
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            format!(
                "{:.1}/{:.1} GiB",
                gib(total.saturating_sub(free)),
                gib(total)
            )
        }
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use comfydash_wire::ServerStatus;

    fn server(name: &str, status: ServerStatus) -> ServerInfo {
        ServerInfo {
            name: name.into(),
            url: "http://127.0.0.1:8188".into(),
            status,
            latency_ms: Some(3),
            device: Some("cuda:0 NVIDIA RTX 4090".into()),
            vram_total: Some(24 << 30),
            vram_free: Some(18 << 30),
            version: Some("0.3.40".into()),
            in_flight: 2,
            consecutive_failures: 0,
        }
    }

    #[test]
    fn table_shows_status_vram_and_failures() {
        let mut down = server("gpu1", ServerStatus::Down);
        down.consecutive_failures = 4;
        (down.latency_ms, down.vram_total, down.vram_free) = (None, None, None);
        let text = table(&[server("gpu0", ServerStatus::Draining), down]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME  STATUS"), "{text}");
        assert!(
            lines[1].contains("draining") && lines[1].contains("6.0/24.0 GiB"),
            "{text}"
        );
        assert!(lines[2].contains("down (4 failed probes)"), "{text}");
        assert!(lines[2].contains(" - "), "{text}");
    }
}
