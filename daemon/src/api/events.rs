//! `GET /api/events`: the event bus as Server-Sent Events, resumable with `Last-Event-ID`.

use comfydash_wire::ErrorBody;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use comfydash_wire::{Resync, StreamEvent};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{AnyKey, AppState, Authed};
use crate::events::{Backlog, Envelope};

fn sse(env: &Envelope) -> Event {
    Event::default()
        .event(env.event.name())
        .id(env.id.to_string())
        .data(env.event.data_json())
}

fn resync(reason: &str) -> Event {
    let ev = StreamEvent::Resync(Resync {
        reason: reason.into(),
    });
    Event::default().event("resync").data(ev.data_json())
}

/// Streams events; a missed gap or a slow reader gets `resync`. Closes on shutdown.
#[utoipa::path(get, path = "/api/events", operation_id = "event_stream", tag = "events", security(("api_key" = []), ("bearer" = [])), params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")), responses((status = 200, description = "text/event-stream of StreamEvent: events job, queue, server, telemetry, resync", content_type = "text/event-stream", body = StreamEvent), (status = 400, description = "Invalid request", body = ErrorBody), (status = 401, description = "Missing or unknown key", body = ErrorBody), (status = 403, description = "Key lacks the role", body = ErrorBody)))]
pub async fn stream(
    _: Authed<AnyKey>,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (backlog, mut rx) = state.events.subscribe(last_id);
    let shutdown = state.shutdown.clone();
    let stream = async_stream(move |tx| async move {
        match backlog {
            Backlog::Missed(v) => {
                for e in v {
                    if tx.send(sse(&e)).await.is_err() {
                        return;
                    }
                }
            }
            Backlog::Resync(r) => {
                if tx.send(resync(&r.reason)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let next: Result<Arc<Envelope>, RecvError> = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.recv() => r,
            };
            let ev = match next {
                Ok(e) => sse(&e),
                Err(RecvError::Lagged(_)) => resync("lagged"),
                Err(RecvError::Closed) => return,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(state.config.events.keepalive))
}

/// A stream fed by a task through a small channel, so a slow client only slows its own task.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
