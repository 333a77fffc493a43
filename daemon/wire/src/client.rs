//! A typed HTTP client for the daemon, shared by the CLI and the console.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use chrono::SecondsFormat;

use crate::{
    ErrorBody, Health, Job, JobAccepted, JobEvents, JobPage, PROTOCOL_HEADER, PROTOCOL_VERSION,
    Ping, QueueState, SubmitJob, Telemetry, TelemetryAccepted, TelemetryReport, Timestamp,
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

    /// Adds the key, sends, and checks the protocol version of the answer.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let req = match &self.key {
            Some(k) => req.header("x-api-key", k),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        check_protocol(&resp)?;
        Ok(resp)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, T), ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.clone(),
                source,
            })?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &bytes));
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

    /// `POST /api/config/reload`: the daemon re-reads its own configuration.
    pub async fn reload_config(&self) -> Result<crate::ReloadReport, ClientError> {
        self.post("/api/config/reload").await
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
        if let Some(id) = last_id {
            req = req.header("last-event-id", id.to_string());
        }
        let base = self.base.clone();
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(api_error(status, &body));
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

/// Which webhook events `GET /api/webhooks` lists; the default is the daemon's (any status, 50).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookFilter {
    /// Only events in these states (none: every state).
    pub statuses: Vec<crate::WebhookStatus>,
    /// Only this job's events.
    pub job_id: Option<String>,
    /// Most events listed (1-500).
    pub limit: Option<usize>,
}

/// Alerts, silences, webhooks and external telemetry history.
impl Client {
    /// `GET /api/alerts?limit=`: active alerts, `limit` resolved ones, silences, channels.
    pub async fn alerts(&self, limit: Option<usize>) -> Result<crate::AlertList, ClientError> {
        let limit = limit.map(|l| l.to_string());
        self.get(&with_query("/api/alerts", &[("limit", limit.as_deref())]))
            .await
    }

    /// `POST /api/alerts/test`: a test message to every channel.
    pub async fn alert_test(&self) -> Result<crate::AlertTestResult, ClientError> {
        self.post("/api/alerts/test").await
    }

    /// `GET /api/alerts/silences`, with ended ones when `expired`.
    pub async fn silences(&self, expired: bool) -> Result<crate::SilenceList, ClientError> {
        self.get(if expired {
            "/api/alerts/silences?expired=true"
        } else {
            "/api/alerts/silences"
        })
        .await
    }

    /// `POST /api/alerts/silences`.
    pub async fn add_silence(
        &self,
        silence: &crate::NewSilence,
    ) -> Result<crate::Silence, ClientError> {
        Ok(self
            .call(Method::POST, "/api/alerts/silences", Some(silence))
            .await?
            .1)
    }

    /// `DELETE /api/alerts/silences/{id}`: ends it now.
    pub async fn end_silence(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/api/alerts/silences/{}", encode(id));
        self.call::<(), serde_json::Value>(Method::DELETE, &path, None)
            .await
            .map(|_| ())
    }

    /// `GET /api/webhooks`: events, newest first, with their attempts.
    pub async fn webhooks(
        &self,
        filter: &WebhookFilter,
    ) -> Result<crate::WebhookList, ClientError> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let statuses = statuses.join(",");
        let limit = filter.limit.map(|l| l.to_string());
        let path = with_query(
            "/api/webhooks",
            &[
                ("status", Some(statuses.as_str()).filter(|s| !s.is_empty())),
                ("job_id", filter.job_id.as_deref()),
                ("limit", limit.as_deref()),
            ],
        );
        self.get(&path).await
    }

    /// `POST /api/jobs/{id}/webhook/redeliver`: the job's latest event again, due now.
    pub async fn redeliver(&self, job_id: &str) -> Result<crate::WebhookEvent, ClientError> {
        self.post(&format!(
            "/api/jobs/{}/webhook/redeliver",
            path_segment(job_id)
        ))
        .await
    }

    /// `POST /api/webhooks/replay`: events created at or after `since` in `statuses` (none: the
    /// daemon's default, `dead`) back to pending.
    pub async fn replay(
        &self,
        since: Timestamp,
        statuses: &[crate::WebhookStatus],
    ) -> Result<crate::WebhookReplay, ClientError> {
        let since = since.to_rfc3339_opts(SecondsFormat::Millis, true);
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let statuses = statuses.join(",");
        let path = with_query(
            "/api/webhooks/replay",
            &[
                ("since", Some(since.as_str())),
                ("status", Some(statuses.as_str()).filter(|s| !s.is_empty())),
            ],
        );
        self.post(&path).await
    }

    /// `GET /api/telemetry/external`: stored reports, oldest first.
    pub async fn external_history(
        &self,
        source: Option<&str>,
        since: Option<Timestamp>,
        limit: Option<usize>,
    ) -> Result<crate::ExternalHistory, ClientError> {
        let since = since.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
        let limit = limit.map(|l| l.to_string());
        let path = with_query(
            "/api/telemetry/external",
            &[
                ("source", source),
                ("since", since.as_deref()),
                ("limit", limit.as_deref()),
            ],
        );
        self.get(&path).await
    }
}

/// `path?k=v&…` with the present values percent-encoded.
fn with_query(path: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = path.to_string();
    for (i, (k, v)) in pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .enumerate()
    {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for query values).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
        let req = self.stream_http.get(format!(
            "{}/api/jobs/{}/outputs/{index}",
            self.base,
            path_segment(id)
        ));
        let resp = self.send(req).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(api_error(status.as_u16(), &body));
        }
        Ok(OutputDownload {
            resp,
            base: self.base.clone(),
        })
    }
}

/// The daemon's error body as a [`ClientError`], or the start of whatever else it sent.
fn api_error(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Api {
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => ClientError::Api {
            status,
            code: "http_error".into(),
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_leave_out_absent_values_and_encode_the_rest() {
        assert_eq!(with_query("/a", &[("x", None)]), "/a");
        assert_eq!(
            with_query(
                "/a",
                &[
                    ("x", None),
                    ("since", Some("2025-01-01T00:00:00+01:00")),
                    ("q", Some("a b&c"))
                ]
            ),
            "/a?since=2025-01-01T00%3A00%3A00%2B01%3A00&q=a%20b%26c"
        );
    }
}
