//! A webhook receiver for tests: records every request and answers from a script.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static str,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: "",
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Reply {
        Reply::status(200)
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn body(mut self, body: &'static str) -> Reply {
        self.body = body;
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Hit {
    pub at: Instant,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub content_type: String,
    pub body: String,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn job_id(&self) -> String {
        self.json()["data"]["job_id"].as_str().unwrap().to_string()
    }
}

#[derive(Default)]
struct Recorded {
    hits: Mutex<Vec<Hit>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    inflight: AtomicUsize,
    max_inflight: AtomicUsize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Recorded>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers `default` to every request not taken by a script.
    pub async fn start(default: Reply) -> Receiver {
        Self::start_on("127.0.0.1:0".parse().unwrap(), default).await
    }

    pub async fn start_on(addr: SocketAddr, default: Reply) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Recorded::default());
        *state.default.lock().unwrap() = Some(default);
        let app = axum::Router::new().fallback(hook).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state, task }
    }

    /// A URL on this receiver (with a query, as real webhook URLs often carry tokens).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}?token=t0k3n", self.addr)
    }

    /// Answers these first, in order.
    pub fn script(&self, replies: Vec<Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = Some(reply);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Requests being answered now.
    pub fn inflight(&self) -> usize {
        self.state.inflight.load(Ordering::SeqCst)
    }

    /// Most requests answered at once so far.
    pub fn max_inflight(&self) -> usize {
        self.state.max_inflight.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests came, returning them all.
    pub async fn wait_hits(&self, n: usize, limit: Duration) -> Vec<Hit> {
        let deadline = Instant::now() + limit;
        loop {
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} requests, expected {n}",
                hits.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(State(st): State<Arc<Recorded>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    st.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        content_type: h("content-type"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = st
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| st.default.lock().unwrap().clone())
        .unwrap_or_else(Reply::ok);
    let now = st.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_inflight.fetch_max(now, Ordering::SeqCst);
    // Decremented on drop too: a sender that hangs up mid-answer is no longer in flight.
    let _guard = Leaving(&st.inflight);
    tokio::time::sleep(reply.delay).await;
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap(),
        reply.body.to_string(),
    )
        .into_response();
    for (k, v) in reply.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

struct Leaving<'a>(&'a AtomicUsize);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
