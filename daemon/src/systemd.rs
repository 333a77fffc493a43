//! systemd integration: `READY=1` once the daemon listens, `WATCHDOG=1` pings while the store
//! still takes writes, `STOPPING=1` on shutdown. Does nothing unless `NOTIFY_SOCKET` is set.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Sends one notification; false when not run by systemd or the send failed.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    send(&path.to_string_lossy(), state).is_ok()
}

#[cfg(target_os = "linux")]
fn send(path: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let sock = UnixDatagram::unbound()?;
    // A leading '@' names a socket in the abstract namespace.
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(path)?,
    };
    sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

#[cfg(all(unix, not(target_os = "linux")))]
fn send(path: &str, state: &str) -> std::io::Result<()> {
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    sock.send_to(state.as_bytes(), path).map(|_| ())
}

#[cfg(not(unix))]
fn send(_: &str, _: &str) -> std::io::Result<()> {
    Ok(())
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the systemd watchdog at half its interval while the store answers a write check.
pub fn spawn_watchdog(store: Store, shutdown: CancellationToken) {
    let Some(every) = watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every / 2);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            // A daemon whose database stopped taking writes is not healthy: let systemd restart it.
            if store.check_writable().await {
                notify("WATCHDOG=1");
            }
        }
    });
}
