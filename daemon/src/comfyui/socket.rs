//! The WebSocket to one ComfyUI server, kept open with reconnects.
//!
//! Each connection uses a fresh `clientId` (daemon run id + connection number). ComfyUI keeps one
//! socket per client id, and a reconnect with the same id can leave the new socket orphaned when
//! the old one's close arrives late (protocol notes §3); a new id per connection cannot hit that.
//! The old socket is still closed first. Prompts submitted under an older id get no more events;
//! the worker's `/history` polling covers them.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::protocol::{WsEvent, parse_ws};

/// What the socket task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketMsg {
    /// Connected with this client id: submit new prompts with it.
    Connected(String),
    /// The connection dropped.
    Disconnected,
    /// A parsed event.
    Event(WsEvent),
}

/// Turns `http://host:port` into `ws://host:port/ws?clientId=ID`.
pub fn ws_url(base: &str, client_id: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_string());
    format!("{}/ws?clientId={client_id}", rest.trim_end_matches('/'))
}

/// Keeps a socket open to `base` until shutdown, reporting on `tx`.
pub fn spawn(
    base: String,
    run_id: String,
    tx: mpsc::Sender<SocketMsg>,
    connected: watch::Sender<Option<String>>,
    backoff_max: Duration,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut n: u64 = 0;
        let mut backoff = Duration::from_millis(50);
        loop {
            n += 1;
            let client_id = format!("{run_id}-{n}");
            let url = ws_url(&base, &client_id);
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(&url)) => r,
            };
            let mut ws = match attempt {
                Ok(Ok((ws, _))) => ws,
                _ => {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(backoff_max);
                    continue;
                }
            };
            backoff = Duration::from_millis(50);
            connected.send_replace(Some(client_id.clone()));
            if tx.send(SocketMsg::Connected(client_id)).await.is_err() {
                return;
            }
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => {
                        let _ = ws.close(None).await;
                        return;
                    }
                    m = ws.next() => m,
                };
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        let ev = parse_ws(t.as_str());
                        if ev != WsEvent::Other && tx.send(SocketMsg::Event(ev)).await.is_err() {
                            return;
                        }
                    }
                    Some(Ok(Message::Ping(p))) => {
                        let _ = ws.send(Message::Pong(p)).await;
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                }
            }
            // Close our side fully before the next connection (see the module note).
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            connected.send_replace(None);
            if tx.send(SocketMsg::Disconnected).await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn ws_urls() {
        assert_eq!(
            super::ws_url("http://127.0.0.1:8188", "a"),
            "ws://127.0.0.1:8188/ws?clientId=a"
        );
        assert_eq!(
            super::ws_url("https://gpu/", "b"),
            "wss://gpu/ws?clientId=b"
        );
    }
}
