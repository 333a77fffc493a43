//! Who hears about a running job: ComfyUI's recipient rules for each event, the status messages
//! kept for history, and the `progress_state` map.

use std::time::{SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::process::Process;

/// Milliseconds since the epoch, as in every event's `timestamp`.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Event delivery for one job.
pub struct Report<'p> {
    process: &'p Process,
    client: Option<String>,
    prompt_id: String,
    /// `[event, data]` pairs for `history.status.messages`.
    pub messages: Vec<Value>,
    states: IndexMap<String, Value>,
}

impl<'p> Report<'p> {
    /// Delivery for a job reporting to `client` (the job's `client_id`).
    pub fn new(process: &'p Process, client: Option<String>, prompt_id: &str) -> Report<'p> {
        Report {
            process,
            client,
            prompt_id: prompt_id.to_string(),
            messages: Vec::new(),
            states: IndexMap::new(),
        }
    }

    /// The job's prompt_id.
    pub fn prompt_id(&self) -> &str {
        &self.prompt_id
    }

    /// Whether the job has a client (events like `executing` exist only then).
    pub fn has_client(&self) -> bool {
        self.client.is_some()
    }

    /// `add_message`: stamps, records for history, and sends to the client, or to everyone when
    /// `broadcast` and there is no client; otherwise not at all.
    pub fn add(&mut self, event: &str, mut data: Value, broadcast: bool) {
        data["timestamp"] = json!(now_ms());
        self.messages.push(json!([event, data]));
        if self.client.is_some() || broadcast {
            self.process
                .sockets
                .send(event, data, self.client.as_deref());
        }
    }

    /// Sends only to the job's client; nothing when it has none.
    pub fn to_client(&self, event: &str, data: Value) {
        if let Some(sid) = &self.client {
            self.process.sockets.send(event, data, Some(sid));
        }
    }

    /// Sends to the job's client, or to everyone when it has none (progress-type events).
    pub fn to_client_or_all(&self, event: &str, data: Value) {
        self.process
            .sockets
            .send(event, data, self.client.as_deref());
    }

    /// `progress` for a node.
    pub fn progress(&self, node: &str, value: u64, max: u64) {
        let data = json!({"value": value, "max": max, "prompt_id": self.prompt_id, "node": node});
        self.to_client_or_all("progress", data);
    }

    /// A binary preview frame for a node.
    pub fn preview(&self, node: &str, png: &[u8]) {
        let meta = json!({
            "node_id": node, "prompt_id": self.prompt_id, "display_node_id": node,
            "parent_node_id": null, "real_node_id": node, "image_type": "image/png",
        });
        self.process
            .sockets
            .send_preview(png, &meta, self.client.as_deref());
    }

    /// Updates one node in the `progress_state` map and sends the whole map.
    pub fn node_state(&mut self, node: &str, state: &str, value: u64, max: u64) {
        let entry = json!({
            "value": value, "max": max, "state": state, "node_id": node, "prompt_id": self.prompt_id,
            "display_node_id": node, "parent_node_id": null, "real_node_id": node,
        });
        self.states.insert(node.to_string(), entry);
        let nodes: serde_json::Map<String, Value> = self.states.clone().into_iter().collect();
        self.to_client_or_all(
            "progress_state",
            json!({"prompt_id": self.prompt_id, "nodes": nodes}),
        );
    }
}
