//! Talking to the daemon: the event-stream link (with resume and backoff) and the HTTP calls that
//! carry out [`Fetch`]es and [`Act`]s. Every result comes back to the model as an [`Action`].

use std::sync::Arc;
use std::time::Duration;

use comfydash_wire::client::{Client, ClientError};
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::action::{Act, Action, Failure, Fetch, LinkState, Loaded};
use crate::config::Context;
use crate::update::ALERT_HISTORY;

/// First wait after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between attempts, short enough to notice a restarted daemon quickly.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A job id the daemon can never have (`~` is outside `[A-Za-z0-9._:-]`), for the role probe.
const PROBE_ID: &str = "~comfydash-tui-role-probe";

/// The connection to one daemon: the event-stream task and a client for calls.
pub struct Link {
    calls: Calls,
    tx: mpsc::Sender<Action>,
    reconnect: Arc<Notify>,
    stream: JoinHandle<()>,
}

impl Link {
    /// Starts following `ctx`'s event stream; results go to `tx`.
    pub fn start(ctx: &Context, tx: mpsc::Sender<Action>) -> Link {
        let client = Client::new(&ctx.url, ctx.key.clone());
        let reconnect = Arc::new(Notify::new());
        let stream = tokio::spawn(follow(client.clone(), tx.clone(), reconnect.clone()));
        Link {
            calls: Calls { client },
            tx,
            reconnect,
            stream,
        }
    }

    /// Drops the stream and connects again at once.
    pub fn reconnect(&self) {
        self.reconnect.notify_one();
    }

    /// Runs a read in the background.
    pub fn fetch(&self, f: Fetch) {
        let calls = self.calls.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let loaded = calls.fetch(f).await;
            let _ = tx.send(Action::loaded(loaded)).await;
        });
    }

    /// Runs an action in the background.
    pub fn act(&self, a: Act) {
        let calls = self.calls.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = calls.act(a.clone()).await;
            let _ = tx.send(Action::Done { act: a, result }).await;
        });
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stream.abort();
    }
}

/// Follows `GET /api/events`, resuming with `Last-Event-ID`, until the link is dropped.
async fn follow(client: Client, tx: mpsc::Sender<Action>, reconnect: Arc<Notify>) {
    let mut last_id = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let error = match client.events(last_id).await {
            Ok(stream) => {
                backoff = FIRST_BACKOFF;
                if tx.send(Action::Link(LinkState::Up)).await.is_err() {
                    return;
                }
                let mut stream = std::pin::pin!(stream);
                loop {
                    let item = tokio::select! {
                        item = stream.next() => item,
                        _ = reconnect.notified() => break "reconnecting".to_string(),
                    };
                    match item {
                        Some(Ok(ev)) => {
                            last_id = ev.id.or(last_id);
                            if tx.send(Action::Event(ev.event)).await.is_err() {
                                return;
                            }
                        }
                        // One undecodable event is not worth a reconnect.
                        Some(Err(ClientError::Decode(_))) => {}
                        Some(Err(e)) => break Failure::from(e).message,
                        None => break "the daemon closed the event stream".into(),
                    }
                }
            }
            Err(e) => {
                let f = Failure::from(e);
                if f.status == Some(401) || f.code == "protocol" {
                    let msg = if f.status == Some(401) {
                        format!("the daemon refused the key: {}", f.message)
                    } else {
                        f.message
                    };
                    let _ = tx.send(Action::Link(LinkState::Fatal(msg))).await;
                    return;
                }
                f.to_string()
            }
        };
        let down = LinkState::Down {
            error,
            retry_in: backoff,
        };
        if tx.send(Action::Link(down)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = reconnect.notified() => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The HTTP side of a link, cloned into each call's task.
#[derive(Clone)]
struct Calls {
    client: Client,
}

impl Calls {
    async fn fetch(&self, f: Fetch) -> Loaded {
        let c = &self.client;
        let e = Failure::from;
        match f {
            Fetch::Health => Loaded::Health(c.health().await.map_err(e)),
            Fetch::Telemetry => Loaded::Telemetry(c.telemetry().await.map_err(e)),
            Fetch::Queue => Loaded::Queue(c.queue().await.map_err(e)),
            Fetch::Servers => Loaded::Servers(c.servers().await.map_err(e)),
            Fetch::History => Loaded::History(c.stats_history().await.map_err(e)),
            Fetch::External { since } => Loaded::External(
                c.external_history(None, Some(since), Some(10_000))
                    .await
                    .map_err(e),
            ),
            Fetch::Alerts => Loaded::Alerts(c.alerts(Some(ALERT_HISTORY)).await.map_err(e)),
            Fetch::Jobs {
                generation,
                page,
                query,
            } => Loaded::Jobs {
                generation,
                page,
                result: c.jobs(&query).await.map_err(e),
            },
            Fetch::Job(id) => {
                let r = c.job(&id).await.map_err(e);
                Loaded::Job(id, r)
            }
            Fetch::JobEvents(id) => {
                let r = c.job_events(&id).await.map(|x| x.events).map_err(e);
                Loaded::JobEvents(id, r)
            }
            Fetch::Role => Loaded::Role(probe_role(c).await),
        }
    }

    async fn act(&self, a: Act) -> Result<String, Failure> {
        let c = &self.client;
        let e = Failure::from;
        match a {
            Act::Retry(id) => {
                let j = c.retry(&id).await.map_err(e)?;
                Ok(format!("{} again (attempt {})", j.status, j.attempt))
            }
            Act::Cancel(id) => {
                let j = c.cancel(&id).await.map_err(e)?;
                Ok(if j.status == comfydash_wire::JobStatus::Cancelled {
                    "cancelled".into()
                } else {
                    "cancel requested; the worker stops it".into()
                })
            }
            Act::Pause(p) => {
                let q = c.set_paused(p).await.map_err(e)?;
                Ok(if q.paused {
                    "queue paused"
                } else {
                    "queue running"
                }
                .into())
            }
            Act::Redeliver(id) => {
                let ev = c.redeliver(&id).await.map_err(e)?;
                Ok(format!("webhook {} queued for redelivery", ev.id))
            }
            Act::Server(name, s) => {
                let info = c.server_action(&name, s.as_str()).await.map_err(e)?;
                Ok(format!("{} is {}", info.name, info.status.as_str()))
            }
            Act::Silence(new) => {
                let s = c.add_silence(&new).await.map_err(e)?;
                Ok(format!(
                    "silenced until {} (silence {})",
                    s.ends_at.format("%H:%M UTC"),
                    crate::units::short_id(&s.id)
                ))
            }
            Act::EndSilence(id) => {
                c.end_silence(&id).await.map_err(e)?;
                Ok("ended".into())
            }
            Act::Reload => {
                let r = c.reload_config().await.map_err(e)?;
                Ok(crate::units::reload_summary(&r))
            }
        }
    }
}

/// Whether the key may act, asked without changing anything: deleting a job id the daemon
/// cannot have answers 403 to a key below admin and 404 to an admin key (the role check comes
/// before the id check). Any 403 from a real action also marks the console read-only.
async fn probe_role(c: &Client) -> Result<bool, Failure> {
    match c.delete(PROBE_ID).await.map_err(Failure::from) {
        Ok(()) => Ok(true),
        Err(f) if f.status == Some(403) => Ok(false),
        Err(f) if f.status == Some(404) => Ok(true),
        Err(f) => Err(f),
    }
}
