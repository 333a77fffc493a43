//! The `/ws` endpoint and the sid → socket map with ComfyUI's delivery rules, including the
//! reconnect quirk: closing an old socket deletes the map entry its replacement now owns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::process::Process;

/// The flags the server announces in `/features` and in reply to a client's `feature_flags`.
pub fn server_features() -> Value {
    json!({"supports_preview_metadata": true, "max_upload_size": 104_857_600u64})
}

#[derive(Debug)]
struct Client {
    tx: mpsc::UnboundedSender<Message>,
    wants_metadata: Arc<AtomicBool>,
}

/// Connected sockets by sid.
#[derive(Debug, Default)]
pub struct Sockets {
    map: Mutex<HashMap<String, Client>>,
    open: AtomicUsize,
}

impl Sockets {
    /// `send_sync(event, data, sid)`: to that sid if it is in the map, to everyone if `to` is None.
    pub fn send(&self, event: &str, data: Value, to: Option<&str>) {
        let text = json!({"type": event, "data": data}).to_string();
        let map = self.map.lock();
        let msg = || Message::Text(text.clone().into());
        match to {
            Some(sid) => {
                if let Some(c) = map.get(sid) {
                    let _ = c.tx.send(msg());
                }
            }
            None => {
                for c in map.values() {
                    let _ = c.tx.send(msg());
                }
            }
        }
    }

    /// Sends a PNG preview as a binary frame: type 4 with metadata to sockets that declared
    /// `supports_preview_metadata`, type 1 (format 2 = PNG) to the others.
    pub fn send_preview(&self, png: &[u8], metadata: &Value, to: Option<&str>) {
        let mut plain = Vec::with_capacity(png.len() + 8);
        plain.extend_from_slice(&1u32.to_be_bytes());
        plain.extend_from_slice(&2u32.to_be_bytes());
        plain.extend_from_slice(png);
        let meta = metadata.to_string();
        let mut rich = Vec::with_capacity(png.len() + meta.len() + 8);
        rich.extend_from_slice(&4u32.to_be_bytes());
        rich.extend_from_slice(&(meta.len() as u32).to_be_bytes());
        rich.extend_from_slice(meta.as_bytes());
        rich.extend_from_slice(png);
        let map = self.map.lock();
        let send = |c: &Client| {
            let frame = if c.wants_metadata.load(Ordering::Relaxed) {
                &rich
            } else {
                &plain
            };
            let _ = c.tx.send(Message::Binary(frame.clone().into()));
        };
        match to {
            Some(sid) => map.get(sid).into_iter().for_each(send),
            None => map.values().for_each(send),
        }
    }

    /// Sockets the server can deliver to (entries of its map).
    pub fn registered(&self) -> usize {
        self.map.lock().len()
    }

    /// Open WebSocket connections, including orphaned ones.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// Decrements the open-connection count however the session ends.
struct OpenGuard<'a>(&'a AtomicUsize);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one WebSocket session until the client leaves or `stop` fires (refuse/restart).
pub async fn session(
    process: Arc<Process>,
    socket: WebSocket,
    client_id: Option<String>,
    stop: CancellationToken,
) {
    let sid = client_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let wants_metadata = Arc::new(AtomicBool::new(false));
    process.sockets.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(&process.sockets.open);
    let info = process.queue_info();
    {
        // Registering and queueing the greeting under the map lock keeps every broadcast after it.
        let mut map = process.sockets.map.lock();
        map.insert(
            sid.clone(),
            Client {
                tx: tx.clone(),
                wants_metadata: wants_metadata.clone(),
            },
        );
        let hello = json!({"type": "status", "data": {"status": info, "sid": sid}});
        let _ = tx.send(Message::Text(hello.to_string().into()));
        let current = process.current.lock();
        if current.client_id.as_deref() == Some(sid.as_str())
            && let Some(node) = &current.last_node
        {
            let again = json!({"type": "executing", "data": {"node": node}});
            let _ = tx.send(Message::Text(again.to_string().into()));
        }
    }
    let (mut sink, mut stream) = socket.split();
    let mut first_message = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            out = rx.recv() => match out {
                Some(msg) => if sink.send(msg).await.is_err() { break },
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let Ok(data) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                    if first_message && data.get("type").and_then(Value::as_str) == Some("feature_flags") {
                        let flags = data.get("data").cloned().unwrap_or(Value::Null);
                        let on = flags.get("supports_preview_metadata").and_then(Value::as_bool).unwrap_or(false);
                        wants_metadata.store(on, Ordering::Relaxed);
                        process.sockets.send("feature_flags", server_features(), Some(&sid));
                    }
                    first_message = false;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    // ComfyUI pops by sid, whoever owns the entry now: this is what orphans a newer socket.
    process.sockets.map.lock().remove(&sid);
}
