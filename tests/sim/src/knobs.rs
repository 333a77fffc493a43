//! Fault and speed settings that tests turn at run time: execution time, failure rate, hang and
//! unresponsive mode.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// The live settings shared by the executor and the HTTP layer.
#[derive(Debug)]
pub struct Knobs {
    exec_time_us: AtomicU64,
    failure_rate_bits: AtomicU64,
    unresponsive: AtomicBool,
    hang: watch::Sender<bool>,
}

impl Knobs {
    /// Knobs with the initial execution time and failure rate.
    pub fn new(exec_time: Duration, failure_rate: f64) -> Knobs {
        let knobs = Knobs {
            exec_time_us: AtomicU64::new(0),
            failure_rate_bits: AtomicU64::new(0),
            unresponsive: AtomicBool::new(false),
            hang: watch::Sender::new(false),
        };
        knobs.set_exec_time(exec_time);
        knobs.set_failure_rate(failure_rate);
        knobs
    }

    /// Total execution time of a job, spread over the nodes it really runs.
    pub fn exec_time(&self) -> Duration {
        Duration::from_micros(self.exec_time_us.load(Ordering::Relaxed))
    }

    /// Sets the execution time of later jobs.
    pub fn set_exec_time(&self, d: Duration) {
        self.exec_time_us.store(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Chance (0..1) that a job fails at run time.
    pub fn failure_rate(&self) -> f64 {
        f64::from_bits(self.failure_rate_bits.load(Ordering::Relaxed))
    }

    /// Sets the failure chance of later jobs (clamped to 0..1).
    pub fn set_failure_rate(&self, r: f64) {
        let r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
        self.failure_rate_bits.store(r.to_bits(), Ordering::Relaxed);
    }

    /// Whether HTTP requests are left unanswered.
    pub fn unresponsive(&self) -> bool {
        self.unresponsive.load(Ordering::Relaxed)
    }

    /// Turns unresponsive mode on or off.
    pub fn set_unresponsive(&self, on: bool) {
        self.unresponsive.store(on, Ordering::Relaxed);
    }

    /// Whether the running job is frozen.
    pub fn hang(&self) -> bool {
        *self.hang.borrow()
    }

    /// Freezes or releases the running job.
    pub fn set_hang(&self, on: bool) {
        self.hang.send_replace(on);
    }

    /// Waits while the job is frozen.
    pub async fn wait_unhung(&self) {
        let mut rx = self.hang.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we are borrowed.
        let _ = rx.wait_for(|hung| !*hung).await;
    }
}
