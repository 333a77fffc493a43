//! Which nodes a job runs and in what order: ComfyUI's ExecutionList, where cached inputs are
//! not scheduled and, among ready nodes, output nodes and their near parents go first.

use std::collections::HashMap;

use indexmap::{IndexMap, IndexSet};
use serde_json::{Map, Value};

use crate::nodes::NodeClass;

/// The order in which the worker visits nodes (cached output nodes included, to replay them).
pub fn order(
    graph: &Map<String, Value>,
    outputs: &[String],
    is_cached: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut list = ExecutionList {
        graph,
        pending: IndexMap::new(),
        blocking: HashMap::new(),
    };
    for o in outputs {
        list.add_node(o, &is_cached);
    }
    let mut order = Vec::new();
    loop {
        let ready: Vec<&String> = list
            .pending
            .iter()
            .filter(|(_, blocks)| **blocks == 0)
            .map(|(id, _)| id)
            .collect();
        let Some(pick) = list.pick(&ready) else { break };
        list.pending.shift_remove(&pick);
        for to in list.blocking.get(&pick).into_iter().flatten() {
            if let Some(count) = list.pending.get_mut(to) {
                *count -= 1;
            }
        }
        order.push(pick);
    }
    order
}

struct ExecutionList<'g> {
    graph: &'g Map<String, Value>,
    /// Pending nodes in insertion order, with how many unfinished inputs block each.
    pending: IndexMap<String, usize>,
    /// Node → nodes waiting for it.
    blocking: HashMap<String, IndexSet<String>>,
}

impl ExecutionList<'_> {
    fn links(&self, id: &str) -> Vec<String> {
        let Some(Value::Object(inputs)) = self.graph.get(id).and_then(|n| n.get("inputs")) else {
            return Vec::new();
        };
        inputs
            .values()
            .filter_map(|v| match v.as_array().map(Vec::as_slice) {
                Some([Value::String(src), _]) if self.graph.contains_key(src) => Some(src.clone()),
                _ => None,
            })
            .collect()
    }

    fn add_node(&mut self, start: &str, is_cached: &impl Fn(&str) -> bool) {
        let mut stack = vec![start.to_string()];
        let mut links = Vec::new();
        while let Some(id) = stack.pop() {
            if self.pending.contains_key(&id) {
                continue;
            }
            self.pending.insert(id.clone(), 0);
            self.blocking.entry(id.clone()).or_default();
            for src in self.links(&id) {
                if !is_cached(&src) {
                    stack.push(src.clone());
                }
                links.push((src, id.clone()));
            }
        }
        for (from, to) in links {
            if is_cached(&from) {
                continue;
            }
            if self.blocking.entry(from).or_default().insert(to.clone())
                && let Some(count) = self.pending.get_mut(&to)
            {
                *count += 1;
            }
        }
    }

    fn is_output(&self, id: &str) -> bool {
        self.graph[id]["class_type"]
            .as_str()
            .and_then(NodeClass::from_name)
            .is_some_and(NodeClass::is_output)
    }

    /// `ux_friendly_pick_node`.
    fn pick(&self, ready: &[&String]) -> Option<String> {
        let blocked = |id: &str| self.blocking.get(id).into_iter().flatten();
        let feeds_output = |id: &str| blocked(id).any(|b| self.is_output(b));
        ready
            .iter()
            .find(|id| self.is_output(id))
            .or_else(|| ready.iter().find(|id| feeds_output(id)))
            .or_else(|| ready.iter().find(|id| blocked(id).any(|b| feeds_output(b))))
            .or_else(|| ready.first())
            .map(|id| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_to_image_order() {
        let graph = json!({
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
            "5": {"class_type": "EmptyLatentImage", "inputs": {}},
            "6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1]}},
            "7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["4", 1]}},
            "3": {"class_type": "KSampler", "inputs": {"model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
            "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
            "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}
        });
        let Value::Object(graph) = graph else {
            unreachable!()
        };
        let order = order(&graph, &["9".to_string()], |_| false);
        assert_eq!(order.len(), 7);
        let pos = |id: &str| order.iter().position(|x| x == id).expect("scheduled");
        assert!(
            pos("4") < pos("6")
                && pos("6") < pos("3")
                && pos("3") < pos("8")
                && pos("8") < pos("9")
        );
        let cached = super::order(&graph, &["9".to_string()], |id| id != "9");
        assert_eq!(cached, ["9"]);
    }
}
