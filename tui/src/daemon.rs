//! Talking to the daemon: the event-stream link (with resume and backoff) and the HTTP calls that
//! carry out [`Fetch`]es and [`Act`]s. Every result comes back to the model as an [`Action`].

use std::sync::Arc;
use std::time::Duration;

use comfydash_wire::client::{Client, ClientError};
use comfydash_wire::{ErrorBody, PROTOCOL_HEADER, PROTOCOL_VERSION};
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::action::{Act, Action, Failure, Fetch, LinkState, Loaded};
use crate::config::Context;

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
            calls: Calls {
                client,
                ctx: ctx.clone(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .no_proxy()
                    .build()
                    .unwrap_or_default(),
            },
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
            let what = a.describe();
            let result = calls.act(a).await;
            let _ = tx.send(Action::Done { what, result }).await;
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
    /// For the few calls the wire client does not have yet.
    http: reqwest::Client,
    ctx: Context,
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
            Fetch::External { since } => {
                let path = format!(
                    "/api/telemetry/external?since={}&limit=10000",
                    since.timestamp_millis()
                );
                let r = self
                    .call(reqwest::Method::GET, &path)
                    .await
                    .and_then(decode);
                Loaded::External(r)
            }
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
                // Not in the wire client yet (webhooks are being built); same request by hand.
                let path = format!("/api/jobs/{id}/webhook/redeliver");
                self.call(reqwest::Method::POST, &path).await?;
                Ok("webhook queued for redelivery".into())
            }
            Act::Server(name, s) => {
                let info = c.server_action(&name, s.as_str()).await.map_err(e)?;
                Ok(format!(
                    "{} is {}",
                    info.name,
                    crate::units::server_status(info.status)
                ))
            }
        }
    }

    /// `method {url}{path}` (a POST with `{}`), with the wire client's checks.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<serde_json::Value, Failure> {
        let url = format!("{}{path}", self.ctx.url.trim_end_matches('/'));
        let mut req = self.http.request(method.clone(), url);
        if method == reqwest::Method::POST {
            req = req.json(&serde_json::json!({}));
        }
        if let Some(k) = &self.ctx.key {
            req = req.header("x-api-key", k);
        }
        send(req).await
    }
}

fn decode<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| Failure {
        status: None,
        code: "decode".into(),
        message: e.to_string(),
    })
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

/// Sends a request built by hand, with the same checks as the wire client.
async fn send(req: reqwest::RequestBuilder) -> Result<serde_json::Value, Failure> {
    let resp = req
        .send()
        .await
        .map_err(|e| Failure::unreachable(&format!("daemon unreachable: {e}")))?;
    if let Some(v) = resp.headers().get(PROTOCOL_HEADER)
        && v.to_str().ok().and_then(|s| s.parse::<u32>().ok()) != Some(PROTOCOL_VERSION)
    {
        return Err(Failure {
            status: None,
            code: "protocol".into(),
            message: format!(
                "protocol mismatch: daemon speaks {v:?}, this console {PROTOCOL_VERSION}"
            ),
        });
    }
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Failure::unreachable(&e.to_string()))?;
    if !(200..300).contains(&status) {
        return Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => Failure::api(status, &b.error.code, &b.error.message),
            Err(_) => Failure::api(status, "http_error", &String::from_utf8_lossy(&body)),
        });
    }
    if body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&body).map_err(|e| Failure {
        status: None,
        code: "decode".into(),
        message: e.to_string(),
    })
}
