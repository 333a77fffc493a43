//! The prompt queue: ComfyUI's priority counter, its heapq of pending jobs (kept in heap order,
//! as GET /queue shows it) and the job currently running.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

/// A job's priority: the server counter (an int) or a client `number` (a float).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// From the server counter, possibly negated by `front`.
    Counter(i64),
    /// Given by the client, cast with `float()`.
    Given(f64),
}

impl Number {
    fn key(self) -> f64 {
        match self {
            Number::Counter(n) => n as f64,
            Number::Given(f) => f,
        }
    }

    /// As echoed in responses and queue items (`42` or `42.0`).
    pub fn to_json(self) -> Value {
        match self {
            Number::Counter(n) => json!(n),
            Number::Given(f) => json!(f),
        }
    }
}

/// One queued job: the queue tuple `[number, prompt_id, prompt, extra_data, outputs_to_execute]`.
#[derive(Clone, Debug)]
pub struct Job {
    /// Priority.
    pub number: Number,
    /// Client- or server-chosen id.
    pub prompt_id: String,
    /// The validated (normalised) graph.
    pub prompt: Map<String, Value>,
    /// `extra_data`, with `client_id` copied in.
    pub extra_data: Map<String, Value>,
    /// Output nodes to run.
    pub outputs: Vec<String>,
    /// Submission order; breaks ties Python would crash on.
    pub seq: u64,
}

impl Job {
    /// The 5-element queue tuple.
    pub fn tuple(&self) -> Value {
        json!([
            self.number.to_json(),
            self.prompt_id,
            self.prompt,
            self.extra_data,
            self.outputs
        ])
    }

    fn lt(&self, other: &Job) -> bool {
        let by_number = self
            .number
            .key()
            .partial_cmp(&other.number.key())
            .unwrap_or(Ordering::Equal);
        by_number
            .then_with(|| self.prompt_id.cmp(&other.prompt_id))
            .then_with(|| self.seq.cmp(&other.seq))
            == Ordering::Less
    }

    /// The sid the job's events go to: `extra_data.client_id` (`None` when absent or null).
    pub fn client_id(&self) -> Option<String> {
        match self.extra_data.get("client_id")? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            // A non-string id never equals a socket's string sid, so events to it are dropped.
            other => Some(format!("\u{0}{other}")),
        }
    }
}

/// Pending jobs, the running job and the priority counter.
#[derive(Debug, Default)]
pub struct PromptQueue {
    heap: Vec<Job>,
    running: Option<Job>,
    counter: i64,
    seq: u64,
}

impl PromptQueue {
    /// The priority for a submission: the given number, or the counter (negated for `front`),
    /// which then advances.
    pub fn next_number(&mut self, given: Option<f64>, front: bool) -> Number {
        if let Some(f) = given {
            return Number::Given(f);
        }
        let n = if front { -self.counter } else { self.counter };
        self.counter += 1;
        Number::Counter(n)
    }

    /// heapq.heappush.
    pub fn push(&mut self, mut job: Job) {
        job.seq = self.seq;
        self.seq += 1;
        self.heap.push(job);
        let last = self.heap.len() - 1;
        self.sift_down(0, last);
    }

    /// heapq.heappop into the running slot; returns a copy of the job now running.
    pub fn start_next(&mut self) -> Option<Job> {
        let last = self.heap.pop()?;
        let job = if self.heap.is_empty() {
            last
        } else {
            let top = std::mem::replace(&mut self.heap[0], last);
            self.sift_up(0);
            top
        };
        self.running = Some(job.clone());
        Some(job)
    }

    /// Clears the running slot when its job is done.
    pub fn finish_running(&mut self) {
        self.running = None;
    }

    /// Pending + running.
    pub fn remaining(&self) -> usize {
        self.heap.len() + usize::from(self.running.is_some())
    }

    /// Pending jobs only.
    pub fn pending_len(&self) -> usize {
        self.heap.len()
    }

    /// Whether `prompt_id` is the running job.
    pub fn is_running(&self, prompt_id: &str) -> bool {
        self.running
            .as_ref()
            .is_some_and(|j| j.prompt_id == prompt_id)
    }

    /// Removes all pending jobs.
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Removes the first pending job (in heap order) with this id; true if one was removed.
    pub fn delete(&mut self, prompt_id: &str) -> bool {
        let Some(i) = self.heap.iter().position(|j| j.prompt_id == prompt_id) else {
            return false;
        };
        self.heap.remove(i);
        for start in (0..self.heap.len() / 2).rev() {
            self.sift_up(start);
        }
        true
    }

    /// The GET /queue body.
    pub fn snapshot(&self) -> Value {
        let running: Vec<Value> = self.running.iter().map(Job::tuple).collect();
        let pending: Vec<Value> = self.heap.iter().map(Job::tuple).collect();
        json!({"queue_running": running, "queue_pending": pending})
    }

    /// Python's `heapq._siftdown`.
    fn sift_down(&mut self, start: usize, mut pos: usize) {
        while pos > start {
            let parent = (pos - 1) >> 1;
            if self.heap[pos].lt(&self.heap[parent]) {
                self.heap.swap(pos, parent);
                pos = parent;
            } else {
                break;
            }
        }
    }

    /// Python's `heapq._siftup`: walk the smaller child to a leaf, then sift down.
    fn sift_up(&mut self, mut pos: usize) {
        let (end, start) = (self.heap.len(), pos);
        let mut child = 2 * pos + 1;
        while child < end {
            let right = child + 1;
            if right < end && !self.heap[child].lt(&self.heap[right]) {
                child = right;
            }
            self.heap.swap(pos, child);
            pos = child;
            child = 2 * pos + 1;
        }
        self.sift_down(start, pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(q: &mut PromptQueue, id: &str, given: Option<f64>, front: bool) {
        let number = q.next_number(given, front);
        q.push(Job {
            number,
            prompt_id: id.into(),
            prompt: Map::new(),
            extra_data: Map::new(),
            outputs: vec![],
            seq: 0,
        });
    }

    #[test]
    fn observed_front_order() {
        let mut q = PromptQueue::default();
        job(&mut q, "A", None, false);
        assert_eq!(q.start_next().map(|j| j.prompt_id), Some("A".into()));
        job(&mut q, "B", None, false);
        job(&mut q, "C", None, true);
        job(&mut q, "D", None, false);
        job(&mut q, "E", Some(-100.0), false);
        let order: Vec<String> =
            std::iter::from_fn(|| q.start_next().map(|j| j.prompt_id)).collect();
        assert_eq!(order, ["E", "C", "B", "D"]);
    }

    #[test]
    fn delete_first_match_only() {
        let mut q = PromptQueue::default();
        job(&mut q, "X", None, false);
        job(&mut q, "X", None, false);
        job(&mut q, "Y", None, false);
        assert!(q.delete("X"));
        assert_eq!(q.remaining(), 2);
        assert!(!q.delete("nope"));
    }
}
