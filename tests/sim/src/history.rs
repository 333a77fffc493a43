//! Finished jobs by prompt_id, in insertion order, with ComfyUI's cap rule: the oldest entry is
//! dropped only when a job finishes while the history is already over the cap.

use indexmap::IndexMap;
use serde_json::Value;

/// The in-memory history dict.
#[derive(Debug)]
pub struct History {
    entries: IndexMap<String, Value>,
    cap: usize,
}

impl History {
    /// An empty history with ComfyUI's MAXIMUM_HISTORY_SIZE replaced by `cap`.
    pub fn new(cap: usize) -> History {
        History {
            entries: IndexMap::new(),
            cap,
        }
    }

    /// Records a finished job; a reused prompt_id overwrites in place, keeping its position.
    pub fn insert(&mut self, prompt_id: String, entry: Value) {
        if self.entries.len() > self.cap {
            self.entries.shift_remove_index(0);
        }
        self.entries.insert(prompt_id, entry);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// One entry.
    pub fn get(&self, prompt_id: &str) -> Option<&Value> {
        self.entries.get(prompt_id)
    }

    /// Deletes one entry.
    pub fn delete(&mut self, prompt_id: &str) {
        self.entries.shift_remove(prompt_id);
    }

    /// Deletes everything.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// GET /history as a JSON text in insertion order (serde_json maps would sort the ids):
    /// `max_items` alone gives the last N, `offset` skips the first K.
    pub fn page_json(&self, max_items: Option<i64>, offset: Option<i64>) -> String {
        let len = self.entries.len() as i64;
        let start = match (offset, max_items) {
            (Some(o), _) if o >= 0 => o,
            (_, Some(m)) => len - m,
            _ => -1,
        }
        .max(0);
        let mut out = String::from("{");
        let mut taken = 0i64;
        for (i, (id, entry)) in self.entries.iter().enumerate() {
            if (i as i64) < start {
                continue;
            }
            if taken > 0 {
                out.push_str(", ");
            }
            out.push_str(&Value::String(id.clone()).to_string());
            out.push_str(": ");
            out.push_str(&entry.to_string());
            taken += 1;
            if max_items.is_some_and(|m| taken >= m) {
                break;
            }
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cap_and_pages() {
        let mut h = History::new(2);
        for i in 0..5 {
            h.insert(format!("p{i}"), json!(i));
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.page_json(Some(2), None), r#"{"p3": 3, "p4": 4}"#);
        assert_eq!(h.page_json(Some(1), Some(0)), r#"{"p2": 2}"#);
        // Already over the cap, so the oldest goes even though p3 only overwrites.
        h.insert("p3".into(), json!(9));
        assert_eq!(h.page_json(None, None), r#"{"p3": 9, "p4": 4}"#);
    }
}
