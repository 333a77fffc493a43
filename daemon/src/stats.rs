//! The sampler: every `stats.interval` it records queue depth and cumulative counts in a
//! fixed-size ring, so a console that opens gets an hour of history at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfydash_wire::{StatsHistory, StatsSample};
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// The ring of samples; cheap to clone.
#[derive(Clone)]
pub struct Sampler {
    ring: Arc<Mutex<VecDeque<StatsSample>>>,
    interval: Duration,
    cap: usize,
}

impl Sampler {
    /// Keeps `window / interval` samples.
    pub fn new(interval: Duration, window: Duration) -> Sampler {
        let interval = interval.max(Duration::from_millis(10));
        let cap = (window.as_millis() / interval.as_millis()).clamp(1, 100_000) as usize;
        Sampler {
            ring: Arc::new(Mutex::new(VecDeque::with_capacity(cap.min(4096)))),
            interval,
            cap,
        }
    }

    fn sample(&self, store: &Store) {
        let s = store.snapshot();
        let sample = StatsSample {
            at: chrono::Utc::now(),
            pending: s.get("pending"),
            processing: s.get("processing"),
            completed: s.get("completed"),
            failed: s.get("failed"),
            cancelled: s.get("cancelled"),
        };
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == self.cap {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    /// Every sample, oldest first.
    pub fn history(&self) -> StatsHistory {
        StatsHistory {
            interval_s: self.interval.as_secs_f64(),
            samples: self
                .ring
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .copied()
                .collect(),
        }
    }

    /// Samples until shutdown.
    pub fn spawn(&self, store: Store, shutdown: CancellationToken) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.interval);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => me.sample(&store),
                }
            }
        });
    }
}
