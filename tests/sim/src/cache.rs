//! ComfyUI's default ("classic") execution cache: node results keyed by an input signature
//! (class, IS_CHANGED, literal inputs and the signatures of linked nodes, not the node id),
//! trimmed to the nodes of the job being run.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::files::Dirs;
use crate::nodes::{Datum, NodeClass, is_changed};

/// A node's cached result.
#[derive(Debug)]
pub struct CachedNode {
    /// Output values.
    pub outputs: Vec<Datum>,
    /// UI dict, replayed in `executed` and history.
    pub ui: Option<Value>,
}

/// Cached results by signature.
#[derive(Debug, Default)]
pub struct ExecCache {
    entries: HashMap<u64, Arc<CachedNode>>,
}

impl ExecCache {
    /// Keeps only entries whose signature occurs in the job about to run (`clean_unused`).
    pub fn retain(&mut self, keep: &HashSet<u64>) {
        self.entries.retain(|sig, _| keep.contains(sig));
    }

    /// A cached result.
    pub fn get(&self, sig: u64) -> Option<Arc<CachedNode>> {
        self.entries.get(&sig).cloned()
    }

    /// Stores a result.
    pub fn insert(&mut self, sig: u64, node: Arc<CachedNode>) {
        self.entries.insert(sig, node);
    }

    /// Forgets everything (`/free` with `free_memory`).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Signatures of every node of a graph.
pub fn signatures(graph: &Map<String, Value>, dirs: &Dirs) -> HashMap<String, u64> {
    let mut memo = HashMap::new();
    let mut visiting = HashSet::new();
    for id in graph.keys() {
        signature(graph, dirs, id, &mut memo, &mut visiting);
    }
    memo
}

fn signature(
    graph: &Map<String, Value>,
    dirs: &Dirs,
    id: &str,
    memo: &mut HashMap<String, u64>,
    visiting: &mut HashSet<String>,
) -> u64 {
    if let Some(sig) = memo.get(id) {
        return *sig;
    }
    let mut h = DefaultHasher::new();
    if !visiting.insert(id.to_string()) {
        // A cycle cannot be cached; give it a signature nothing else has.
        uuid::Uuid::new_v4().hash(&mut h);
        return h.finish();
    }
    let node = &graph[id];
    let class_type = node["class_type"].as_str().unwrap_or_default();
    class_type.hash(&mut h);
    if let Some(class) = NodeClass::from_name(class_type) {
        let image = node["inputs"].get("image").and_then(Value::as_str);
        is_changed(class, image, dirs).hash(&mut h);
    }
    if let Some(Value::Object(inputs)) = node.get("inputs") {
        // serde_json maps iterate in sorted key order, like ComfyUI's sorted(inputs.keys()).
        for (name, value) in inputs {
            name.hash(&mut h);
            match value.as_array().map(Vec::as_slice) {
                Some([Value::String(src), slot]) if graph.contains_key(src) => {
                    signature(graph, dirs, src, memo, visiting).hash(&mut h);
                    slot.to_string().hash(&mut h);
                }
                _ => value.to_string().hash(&mut h),
            }
        }
    }
    visiting.remove(id);
    let sig = h.finish();
    memo.insert(id.to_string(), sig);
    sig
}
