//! `comfydash jobs wait ID` (and `submit --wait`): follows the live event stream until the job
//! ends. A dropped stream is resumed with `Last-Event-ID`, and the job is refetched on every
//! connect and every `resync`, so an end that happened while nobody listened is still seen.

use std::time::Duration;

use comfydash_wire::client::{Client, ClientError};
use comfydash_wire::{Job, JobStatus, Progress, StreamEvent};
use futures_util::StreamExt;
use indicatif::ProgressBar;

use crate::cli::WaitArgs;
use crate::commands::print_json;
use crate::exit::{Exit, TimedOut};
use crate::progress;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Waits for the job and reports how it ended; the exit code says it too.
pub async fn run(client: &Client, args: &WaitArgs, json: bool) -> anyhow::Result<Exit> {
    let job = until_done(client, &args.id, args.timeout).await?;
    report(&job, json)
}

/// The job once it is completed, failed or cancelled; [`TimedOut`] after `limit`.
pub async fn until_done(client: &Client, id: &str, limit: Option<Duration>) -> anyhow::Result<Job> {
    let bar = progress::spinner(id.to_string());
    let result = match limit {
        Some(after) => tokio::time::timeout(after, follow(client, id, &bar))
            .await
            .unwrap_or_else(|_| {
                Err(TimedOut {
                    job_id: id.to_string(),
                    after,
                }
                .into())
            }),
        None => follow(client, id, &bar).await,
    };
    bar.finish_and_clear();
    result
}

/// Prints the job's end (JSON: the job) and returns its exit code.
pub fn report(job: &Job, json: bool) -> anyhow::Result<Exit> {
    let id = &job.job_id;
    if json {
        print_json(job)?;
    }
    Ok(match job.status {
        JobStatus::Completed => {
            if !json {
                let took = job
                    .timings
                    .processing_ms
                    .map(|ms| format!(" in {ms} ms"))
                    .unwrap_or_default();
                outln!("job {id} completed{took}: {} outputs", job.outputs.len());
            }
            Exit::Success
        }
        JobStatus::Cancelled => {
            if !json {
                eprintln!("comfydash: job {id} was cancelled");
            }
            Exit::Cancelled
        }
        status => {
            if !json {
                match &job.error {
                    Some(e) => eprintln!("comfydash: job {id} failed: {}: {}", e.code, e.message),
                    None => eprintln!("comfydash: job {id} is {status}"),
                }
            }
            Exit::Failure
        }
    })
}

async fn follow(client: &Client, id: &str, bar: &ProgressBar) -> anyhow::Result<Job> {
    // A plain read first: an unknown job or an unreachable daemon fails at once, not in the loop.
    if let Some(job) = refetch(client, id, bar).await? {
        return Ok(job);
    }
    let mut last_id = None;
    let mut retry = FIRST_RETRY;
    loop {
        match client.events(last_id).await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                // Whatever happened before the stream opened shows in the job itself.
                if let Some(job) = refetch(client, id, bar).await? {
                    return Ok(job);
                }
                while let Some(item) = stream.next().await {
                    let live = match item {
                        Ok(live) => live,
                        // An event this client cannot read (a newer daemon's kind) is not ours.
                        Err(ClientError::Decode(_)) => continue,
                        Err(_) => break,
                    };
                    retry = FIRST_RETRY;
                    last_id = live.id.or(last_id);
                    if let Some(job) = on_event(client, id, bar, &live.event).await? {
                        return Ok(job);
                    }
                }
            }
            // The daemon may be restarting: keep trying; the caller's time limit bounds this.
            Err(ClientError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        bar.set_message(format!("{id} (reconnecting)"));
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// The job if this event shows it ended (or asks for a refetch that shows it).
async fn on_event(
    client: &Client,
    id: &str,
    bar: &ProgressBar,
    event: &StreamEvent,
) -> anyhow::Result<Option<Job>> {
    let check = match event {
        StreamEvent::Job(u) if u.job_id.0 == id => {
            show(bar, id, u.status, u.progress.as_ref());
            u.status.is_terminal()
        }
        StreamEvent::Resync(_) => true,
        _ => false,
    };
    // The event says little (no outputs, no error detail): the job itself is what we report.
    if check {
        refetch(client, id, bar).await
    } else {
        Ok(None)
    }
}

/// The job if it has ended; else updates the bar and returns `None`.
async fn refetch(client: &Client, id: &str, bar: &ProgressBar) -> anyhow::Result<Option<Job>> {
    let job = client.job(id).await?;
    if job.status.is_terminal() {
        return Ok(Some(job));
    }
    show(bar, id, job.status, job.progress.as_ref());
    Ok(None)
}

fn show(bar: &ProgressBar, id: &str, status: JobStatus, progress: Option<&Progress>) {
    bar.set_message(format!("{id} {status}"));
    if let Some(p) = progress.filter(|p| p.max > 0) {
        progress::set_steps(bar, p.value, p.max);
    }
}
