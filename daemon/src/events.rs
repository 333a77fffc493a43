//! The in-process event bus behind `GET /api/events`: every change is emitted once, kept in a
//! bounded ring for resuming clients, and broadcast to live subscribers without ever waiting
//! for them (a lagging subscriber is told to resync).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use comfydash_wire::{JobUpdate, Progress, Resync, StreamEvent};
use tokio::sync::broadcast;

/// An event with its stream id.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Increasing id, also across daemon restarts (the first id is derived from the start time).
    pub id: u64,
    /// The event.
    pub event: StreamEvent,
}

/// What a new subscriber gets before live events.
pub enum Backlog {
    /// Every event after the client's last id, in order.
    Missed(Vec<Arc<Envelope>>),
    /// Too old (or from another daemon run): refetch, then follow live events.
    Resync(Resync),
}

struct Ring {
    next_id: u64,
    buf: VecDeque<Arc<Envelope>>,
    cap: usize,
}

/// The bus; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    ring: Arc<Mutex<Ring>>,
    tx: broadcast::Sender<Arc<Envelope>>,
    progress_gate: Arc<Mutex<HashMap<String, Instant>>>,
    progress_every: Duration,
}

impl Bus {
    /// A bus keeping `ring` events for resuming clients and `per_subscriber` unread events per reader.
    pub fn new(ring: usize, per_subscriber: usize, progress_every: Duration) -> Bus {
        let first = (chrono::Utc::now().timestamp_millis().max(0) as u64) << 20;
        let (tx, _) = broadcast::channel(per_subscriber.max(1));
        Bus {
            ring: Arc::new(Mutex::new(Ring {
                next_id: first + 1,
                buf: VecDeque::with_capacity(ring.min(65_536)),
                cap: ring.max(1),
            })),
            tx,
            progress_gate: Arc::new(Mutex::new(HashMap::new())),
            progress_every,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emits an event to the ring and every subscriber.
    pub fn emit(&self, event: StreamEvent) {
        let mut ring = self.lock();
        let env = Arc::new(Envelope {
            id: ring.next_id,
            event,
        });
        ring.next_id += 1;
        if ring.buf.len() == ring.cap {
            ring.buf.pop_front();
        }
        ring.buf.push_back(env.clone());
        // Sending under the lock keeps ring order and broadcast order the same for subscribe().
        let _ = self.tx.send(env);
    }

    /// Emits a job's progress, at most once per `progress_every` per job (the final state always goes through [`Bus::emit`]).
    pub fn progress(&self, mut update: JobUpdate, progress: Progress) {
        let now = Instant::now();
        {
            let mut gate = self.progress_gate.lock().unwrap_or_else(|e| e.into_inner());
            let done = progress.value >= progress.max;
            if let Some(last) = gate.get(&update.job_id.0)
                && now.duration_since(*last) < self.progress_every
                && !done
            {
                return;
            }
            gate.insert(update.job_id.0.clone(), now);
            if gate.len() > 10_000 {
                let every = self.progress_every;
                gate.retain(|_, t| now.duration_since(*t) < every * 10);
            }
        }
        update.progress = Some(progress);
        self.emit(StreamEvent::Job(update));
    }

    /// Subscribes; `last_id` is the client's `Last-Event-ID`.
    pub fn subscribe(&self, last_id: Option<u64>) -> (Backlog, broadcast::Receiver<Arc<Envelope>>) {
        let ring = self.lock();
        let rx = self.tx.subscribe();
        let backlog = match last_id {
            None => Backlog::Missed(Vec::new()),
            Some(id) => {
                let oldest = ring.buf.front().map(|e| e.id).unwrap_or(ring.next_id);
                if id + 1 < oldest || id >= ring.next_id {
                    Backlog::Resync(Resync {
                        reason: if id >= ring.next_id { "restart" } else { "gap" }.into(),
                    })
                } else {
                    Backlog::Missed(ring.buf.iter().filter(|e| e.id > id).cloned().collect())
                }
            }
        };
        (backlog, rx)
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.lock().next_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use comfydash_wire::TelemetryUpdate;

    fn ev(n: u64) -> StreamEvent {
        StreamEvent::Telemetry(TelemetryUpdate {
            source: "s".into(),
            metrics: [("n".to_string(), n as f64)].into(),
            timestamp: chrono::Utc::now(),
        })
    }

    #[tokio::test]
    async fn resume_gap_and_restart() {
        let bus = Bus::new(4, 16, Duration::from_millis(100));
        let first = bus.next_id();
        for n in 0..6 {
            bus.emit(ev(n));
        }
        // Ring keeps ids first+2 ..= first+5.
        let (b, _) = bus.subscribe(Some(first + 2));
        match b {
            Backlog::Missed(v) => {
                assert_eq!(
                    v.iter().map(|e| e.id).collect::<Vec<_>>(),
                    [first + 3, first + 4, first + 5]
                )
            }
            Backlog::Resync(_) => panic!("expected missed events"),
        }
        assert!(matches!(bus.subscribe(Some(first)).0, Backlog::Resync(r) if r.reason == "gap"));
        assert!(matches!(bus.subscribe(Some(first + 1)).0, Backlog::Missed(v) if v.len() == 4));
        assert!(matches!(bus.subscribe(Some(first + 5)).0, Backlog::Missed(v) if v.is_empty()));
        assert!(
            matches!(bus.subscribe(Some(first + 99)).0, Backlog::Resync(r) if r.reason == "restart")
        );
    }

    #[tokio::test]
    async fn a_subscriber_sees_everything_after_subscribing_in_order() {
        let bus = Bus::new(100, 100, Duration::from_millis(100));
        bus.emit(ev(0));
        let (_, mut rx) = bus.subscribe(None);
        for n in 1..5 {
            bus.emit(ev(n));
        }
        let mut last = 0;
        for _ in 1..5 {
            let e = rx.recv().await.unwrap();
            assert!(e.id > last);
            last = e.id;
        }
    }

    #[tokio::test]
    async fn progress_is_coalesced_per_job() {
        let bus = Bus::new(100, 100, Duration::from_secs(60));
        let (_, mut rx) = bus.subscribe(None);
        let upd = JobUpdate {
            job_id: comfydash_wire::JobId("j".into()),
            status: comfydash_wire::JobStatus::Processing,
            attempt: 1,
            progress: None,
            server: None,
            error: None,
            at: chrono::Utc::now(),
        };
        for v in 1..=20 {
            let p = Progress {
                value: v,
                max: 20,
                node: None,
            };
            bus.progress(upd.clone(), p);
        }
        let mut got = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if let StreamEvent::Job(j) = &e.event {
                got.push(j.progress.as_ref().unwrap().value);
            }
        }
        // The first and the final step pass; everything between is coalesced.
        assert_eq!(got, [1, 20]);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use comfydash_wire::TelemetryUpdate;
    use proptest::prelude::*;

    proptest! {
        /// Resume: the backlog is exactly the events after `last` in order, or a resync when `last`
        /// is older than the ring or from the future; never a gap, never a duplicate.
        #[test]
        fn resume_is_exact(ring in 1usize..20, emitted in 0usize..60, back in 0u64..80) {
            let bus = Bus::new(ring, 128, Duration::from_millis(1));
            let first = bus.next_id();
            for n in 0..emitted {
                bus.emit(StreamEvent::Telemetry(TelemetryUpdate {
                    source: "s".into(),
                    metrics: [("n".to_string(), n as f64)].into(),
                    timestamp: chrono::Utc::now(),
                }));
            }
            let next = bus.next_id();
            let last = next.saturating_sub(back + 1);
            let oldest_kept = next - (emitted.min(ring) as u64);
            match bus.subscribe(Some(last)).0 {
                Backlog::Missed(v) => {
                    let ids: Vec<u64> = v.iter().map(|e| e.id).collect();
                    let want: Vec<u64> = (last + 1..next).collect();
                    prop_assert_eq!(ids, want);
                    prop_assert!(last + 1 >= oldest_kept);
                }
                Backlog::Resync(r) => {
                    prop_assert!(last + 1 < oldest_kept || last >= next, "{} {} {}", r.reason, last, first);
                }
            }
        }
    }
}
