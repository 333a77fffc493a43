//! Simulated node run time: sleeps in small slices so a hang freezes the job mid-node, and
//! checks the interrupt flag at each progress step the way ComfyUI's progress hook does.

use std::time::Duration;

use tokio::time::Instant;

use crate::knobs::Knobs;
use crate::process::Process;

/// Longest single sleep, so hang takes effect promptly.
const SLICE: Duration = Duration::from_millis(5);

/// How a paced node ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Paced {
    /// It used up its time.
    Done,
    /// The interrupt flag was seen at a progress step.
    Interrupted,
}

/// Waits until `deadline`; time spent hung does not count, so the deadline moves with it.
async fn sleep_until(knobs: &Knobs, deadline: &mut Instant) {
    loop {
        if knobs.hang() {
            let hung_at = Instant::now();
            knobs.wait_unhung().await;
            *deadline += hung_at.elapsed();
            continue;
        }
        let now = Instant::now();
        if now >= *deadline {
            return;
        }
        tokio::time::sleep((*deadline - now).min(SLICE)).await;
    }
}

/// Spends `budget` on a node. With `steps > 0` the time is split into steps; before each step
/// the interrupt flag is checked, then `on_step(i)` (1-based) reports it.
pub async fn run(
    knobs: &Knobs,
    process: &Process,
    budget: Duration,
    steps: u64,
    mut on_step: impl FnMut(u64),
) -> Paced {
    let start = Instant::now();
    if steps == 0 {
        let mut deadline = start + budget;
        sleep_until(knobs, &mut deadline).await;
        return Paced::Done;
    }
    let mut shift = Duration::ZERO;
    for i in 1..=steps {
        let share = budget.mul_f64(i as f64 / steps as f64);
        let mut deadline = start + shift + share;
        let planned = deadline;
        sleep_until(knobs, &mut deadline).await;
        shift += deadline - planned;
        if process.interrupted() {
            return Paced::Interrupted;
        }
        on_step(i);
    }
    Paced::Done
}
