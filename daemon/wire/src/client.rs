//! A typed HTTP client for the daemon, shared by the CLI and the console.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    ErrorBody, Health, Job, JobAccepted, JobEvents, JobPage, PROTOCOL_HEADER, PROTOCOL_VERSION,
    Ping, QueueState, SubmitJob, Telemetry, TelemetryAccepted, TelemetryReport,
};

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon could not be reached (refused, timed out, reset).
    #[error("daemon unreachable at {url}: {source}")]
    Unreachable {
        /// Base URL tried.
        url: String,
        /// Transport error.
        source: reqwest::Error,
    },
    /// The daemon answered with an error body.
    #[error("{message} ({code}, HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// The daemon's error code.
        code: String,
        /// The daemon's message.
        message: String,
    },
    /// The daemon speaks another protocol version.
    #[error(
        "protocol mismatch: daemon speaks version {daemon}, this client {client}; upgrade the older side"
    )]
    Protocol {
        /// Daemon's version.
        daemon: u32,
        /// Ours.
        client: u32,
    },
    /// The answer was not what the contract says.
    #[error("unexpected answer from daemon: {0}")]
    Decode(String),
}

/// Client for one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    stream_http: reqwest::Client,
    base: String,
    key: Option<String>,
}

/// A live event with its stream id.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    /// Stream id, for `Last-Event-ID` on reconnect (none on `resync`).
    pub id: Option<u64>,
    /// The event.
    pub event: crate::StreamEvent,
}

/// Outcome of a submit: a new job (202) or the same request seen before (200).
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    /// True when the daemon created the job now.
    pub created: bool,
    /// The answer body.
    pub job: JobAccepted,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8190`) with an optional API key.
    pub fn new(base: &str, key: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .unwrap_or_default();
        // Event streams are long-lived: only the connect is bounded.
        let stream_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_default();
        Client {
            http,
            stream_http,
            base: base.trim_end_matches('/').to_string(),
            key,
        }
    }

    /// The daemon's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, T), ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(k) = &self.key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        check_protocol(&resp)?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => ClientError::Api {
                    status: status.as_u16(),
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: "http_error".into(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                },
            });
        }
        // A 204 (delete) has no body: read it as JSON null.
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        let value = serde_json::from_slice(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok((status, value))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Ok(self.call::<(), T>(Method::GET, path, None).await?.1)
    }

    async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        Ok(self
            .call::<serde_json::Value, T>(Method::POST, path, Some(&serde_json::json!({})))
            .await?
            .1)
    }

    /// `GET /api/ping`.
    pub async fn ping(&self) -> Result<Ping, ClientError> {
        self.get("/api/ping").await
    }

    /// `GET /api/health`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/api/health").await
    }

    /// `GET /api/telemetry`.
    pub async fn telemetry(&self) -> Result<Telemetry, ClientError> {
        self.get("/api/telemetry").await
    }

    /// `POST /api/telemetry`.
    pub async fn report(&self, r: &TelemetryReport) -> Result<TelemetryAccepted, ClientError> {
        Ok(self.call(Method::POST, "/api/telemetry", Some(r)).await?.1)
    }

    /// `POST /api/jobs`.
    pub async fn submit(&self, job: &SubmitJob) -> Result<Submitted, ClientError> {
        let (status, job) = self.call(Method::POST, "/api/jobs", Some(job)).await?;
        Ok(Submitted {
            created: status == StatusCode::ACCEPTED,
            job,
        })
    }

    /// `GET /api/jobs` with a raw query string (`status=failed&limit=10`).
    pub async fn jobs(&self, query: &str) -> Result<JobPage, ClientError> {
        self.get(&format!("/api/jobs?{query}")).await
    }

    /// `GET /api/jobs/{id}`.
    pub async fn job(&self, id: &str) -> Result<Job, ClientError> {
        self.get(&format!("/api/jobs/{}", path_segment(id))).await
    }

    /// `GET /api/jobs/{id}/events`.
    pub async fn job_events(&self, id: &str) -> Result<JobEvents, ClientError> {
        self.get(&format!("/api/jobs/{}/events", path_segment(id)))
            .await
    }

    /// `POST /api/jobs/{id}/cancel`.
    pub async fn cancel(&self, id: &str) -> Result<Job, ClientError> {
        self.post(&format!("/api/jobs/{}/cancel", path_segment(id)))
            .await
    }

    /// `POST /api/jobs/{id}/retry`.
    pub async fn retry(&self, id: &str) -> Result<Job, ClientError> {
        self.post(&format!("/api/jobs/{}/retry", path_segment(id)))
            .await
    }

    /// `DELETE /api/jobs/{id}`.
    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/api/jobs/{}", path_segment(id));
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await
            .map(|_| ())
    }

    /// `GET /api/servers`.
    pub async fn servers(&self) -> Result<crate::ServerList, ClientError> {
        self.get("/api/servers").await
    }

    /// `POST /api/servers/{name}/{action}` with action `drain`, `enable`, `disable` or `free`.
    pub async fn server_action(
        &self,
        name: &str,
        action: &str,
    ) -> Result<crate::ServerInfo, ClientError> {
        self.post(&format!("/api/servers/{name}/{action}")).await
    }

    /// `GET /api/stats/history`.
    pub async fn stats_history(&self) -> Result<crate::StatsHistory, ClientError> {
        self.get("/api/stats/history").await
    }

    /// `GET /api/queue`.
    pub async fn queue(&self) -> Result<QueueState, ClientError> {
        self.get("/api/queue").await
    }

    /// `POST /api/queue/pause` or `/resume`.
    pub async fn set_paused(&self, paused: bool) -> Result<QueueState, ClientError> {
        self.post(if paused {
            "/api/queue/pause"
        } else {
            "/api/queue/resume"
        })
        .await
    }
}

impl Client {
    /// Opens `GET /api/events`, resuming after `last_id`; yields events until the stream ends.
    pub async fn events(
        &self,
        last_id: Option<u64>,
    ) -> Result<impl futures_util::Stream<Item = Result<LiveEvent, ClientError>> + use<>, ClientError>
    {
        use futures_util::StreamExt;
        let mut req = self
            .stream_http
            .get(format!("{}/api/events", self.base))
            .header("accept", "text/event-stream");
        if let Some(k) = &self.key {
            req = req.header("x-api-key", k);
        }
        if let Some(id) = last_id {
            req = req.header("last-event-id", id.to_string());
        }
        let base = self.base.clone();
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: base.clone(),
                source,
            })?;
        check_protocol(&resp)?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => ClientError::Api {
                    status,
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => ClientError::Api {
                    status,
                    code: "http_error".into(),
                    message: String::new(),
                },
            });
        }
        let mut parser = crate::sse::SseParser::new();
        let stream = resp
            .bytes_stream()
            .map(move |chunk| match chunk {
                Ok(bytes) => parser
                    .push(&bytes)
                    .into_iter()
                    .map(|m| {
                        let event = crate::StreamEvent::parse(&m.event, &m.data)
                            .map_err(|e| ClientError::Decode(format!("{} event: {e}", m.event)))?;
                        let id = match event {
                            crate::StreamEvent::Resync(_) => None,
                            _ => m.id.and_then(|i| i.parse().ok()),
                        };
                        Ok(LiveEvent { id, event })
                    })
                    .collect::<Vec<_>>(),
                Err(source) => vec![Err(ClientError::Unreachable {
                    url: base.clone(),
                    source,
                })],
            })
            .flat_map(futures_util::stream::iter);
        Ok(stream)
    }
}

/// A job output being downloaded: headers known, body read chunk by chunk.
#[derive(Debug)]
pub struct OutputDownload {
    resp: reqwest::Response,
    base: String,
}

impl OutputDownload {
    /// Body length announced by the daemon, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.resp.content_length()
    }

    /// The content type the daemon sent.
    pub fn content_type(&self) -> Option<&str> {
        self.resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// The next piece of the body; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<impl AsRef<[u8]> + use<>>, ClientError> {
        self.resp
            .chunk()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })
    }
}

impl Client {
    /// `GET /api/jobs/{id}/outputs/{index}`: the file, streamed (no overall time limit).
    pub async fn output(&self, id: &str, index: u32) -> Result<OutputDownload, ClientError> {
        let mut req = self.stream_http.get(format!(
            "{}/api/jobs/{}/outputs/{index}",
            self.base,
            path_segment(id)
        ));
        if let Some(k) = &self.key {
            req = req.header("x-api-key", k);
        }
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        check_protocol(&resp)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(e) => ClientError::Api {
                    status: status.as_u16(),
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => ClientError::Api {
                    status: status.as_u16(),
                    code: "http_error".into(),
                    message: String::from_utf8_lossy(&body).chars().take(200).collect(),
                },
            });
        }
        Ok(OutputDownload {
            resp,
            base: self.base.clone(),
        })
    }
}

/// Job ids are `[A-Za-z0-9._:-]`, all safe in a path except a lone `.` or `..`.
fn path_segment(id: &str) -> String {
    match id {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => id.into(),
    }
}

fn check_protocol(resp: &reqwest::Response) -> Result<(), ClientError> {
    let Some(v) = resp.headers().get(PROTOCOL_HEADER) else {
        return Ok(());
    };
    let daemon: u32 = v
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Decode("bad protocol header".into()))?;
    if daemon != PROTOCOL_VERSION {
        return Err(ClientError::Protocol {
            daemon,
            client: PROTOCOL_VERSION,
        });
    }
    Ok(())
}
