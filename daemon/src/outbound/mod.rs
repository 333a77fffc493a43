//! Guarded outbound HTTP: whether a client-supplied URL (webhook, input image) may be contacted, and requests to it with limits.

mod error;
mod policy;
mod resolver;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Request, Response, StatusCode};
use url::Url;

pub use error::OutboundError;
pub use policy::{MAX_URL_LEN, OutboundPolicy};

const USER_AGENT: &str = concat!("comfydash/", env!("CARGO_PKG_VERSION"));

/// Limits applied to one outbound call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total time for the call, redirects and body included.
    pub timeout: Duration,
    /// Time allowed to establish each connection.
    pub connect_timeout: Duration,
    /// Most response body bytes read.
    pub max_bytes: u64,
    /// Most redirects `fetch` follows.
    pub max_redirects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_bytes: 50 * 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// A successful `fetch`.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// URL of the last hop, after redirects.
    pub final_url: Url,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// The answer to a `post`, whatever its status.
#[derive(Clone, Debug)]
pub struct Posted {
    pub status: u16,
    pub headers: HeaderMap,
    /// At most `Limits::max_bytes` of the response body; the rest is not read.
    pub body: Vec<u8>,
    /// From sending the request to the end of the body read.
    pub latency: Duration,
}

/// Outbound HTTP client that only reaches URLs its policy allows.
#[derive(Clone, Debug)]
pub struct Outbound {
    policy: OutboundPolicy,
    /// One client per connect timeout in use (normally one): reqwest sets that timeout per client, not per request.
    clients: Arc<Mutex<Vec<(Duration, Client)>>>,
}

impl Outbound {
    /// Builds the client with the guarding resolver, no automatic redirects and no proxy.
    pub fn new(policy: OutboundPolicy) -> Result<Self, OutboundError> {
        let connect_timeout = Limits::default().connect_timeout;
        let client = build_client(&policy, connect_timeout)?;
        Ok(Self {
            policy,
            clients: Arc::new(Mutex::new(vec![(connect_timeout, client)])),
        })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// GET with redirects followed manually (each hop re-checked), body capped at `limits.max_bytes`.
    pub async fn fetch(&self, url: &str, limits: &Limits) -> Result<Fetched, OutboundError> {
        let url = self.policy.check_url(url)?;
        tokio::time::timeout(limits.timeout, self.fetch_checked(url, limits))
            .await
            .unwrap_or(Err(OutboundError::Timeout {
                after: limits.timeout,
            }))
    }

    /// POST a body with headers, no redirects, response body read up to `limits.max_bytes` and truncated past it.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        limits: &Limits,
    ) -> Result<Posted, OutboundError> {
        let url = self.policy.check_url(url)?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let invalid = || OutboundError::InvalidHeader { name: name.clone() };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            map.append(name, value);
        }
        let client = self.client(limits.connect_timeout)?;
        let host = host_of(&url);
        let request = client
            .post(url)
            .headers(map)
            .body(body)
            .build()
            .map_err(|e| OutboundError::from_reqwest(e, &host, limits.connect_timeout))?;
        let started = Instant::now();
        let exchange = async {
            let response = self.send(&client, request, limits).await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = read_body(response, limits, Overflow::Truncate, &host).await?;
            Ok(Posted {
                status,
                headers,
                body,
                latency: started.elapsed(),
            })
        };
        tokio::time::timeout(limits.timeout, exchange)
            .await
            .unwrap_or(Err(OutboundError::Timeout {
                after: limits.timeout,
            }))
    }

    async fn fetch_checked(&self, mut url: Url, limits: &Limits) -> Result<Fetched, OutboundError> {
        let client = self.client(limits.connect_timeout)?;
        let mut redirects = 0;
        loop {
            let host = host_of(&url);
            let request = client
                .get(url.clone())
                .build()
                .map_err(|e| OutboundError::from_reqwest(e, &host, limits.connect_timeout))?;
            let response = self.send(&client, request, limits).await?;
            let status = response.status();
            if let Some(next) = redirect_target(&url, &response)? {
                if redirects == limits.max_redirects {
                    return Err(OutboundError::TooManyRedirects {
                        limit: limits.max_redirects,
                    });
                }
                redirects += 1;
                url = self.policy.check_url(next.as_str())?;
                continue;
            }
            if !status.is_success() {
                return Err(OutboundError::Status {
                    status: status.as_u16(),
                    host,
                });
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_body(response, limits, Overflow::Fail, &host).await?;
            return Ok(Fetched {
                final_url: url,
                status: status.as_u16(),
                content_type,
                body,
            });
        }
    }

    /// Sends one hop whose URL already passed `check_url`; names are checked by the resolver while connecting.
    async fn send(
        &self,
        client: &Client,
        request: Request,
        limits: &Limits,
    ) -> Result<Response, OutboundError> {
        let url = request.url().clone();
        self.policy.check_literal_hop(&url).await?;
        let port = url.port_or_known_default().unwrap_or(0);
        // Build the future inside the scope too, so no part of the request runs without the port.
        resolver::with_port(port, async { client.execute(request).await })
            .await
            .map_err(|e| OutboundError::from_reqwest(e, &host_of(&url), limits.connect_timeout))
    }

    fn client(&self, connect_timeout: Duration) -> Result<Client, OutboundError> {
        // A poisoned lock only means another caller panicked mid-push; the list is still valid.
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, client)) = clients.iter().find(|(t, _)| *t == connect_timeout) {
            return Ok(client.clone());
        }
        let client = build_client(&self.policy, connect_timeout)?;
        clients.push((connect_timeout, client.clone()));
        Ok(client)
    }
}

fn build_client(
    policy: &OutboundPolicy,
    connect_timeout: Duration,
) -> Result<Client, OutboundError> {
    Client::builder()
        .dns_resolver(Arc::new(resolver::GuardResolver::new(policy.clone())))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| OutboundError::Config {
            what: "outbound HTTP client",
            entry: "reqwest".into(),
            reason: e.to_string(),
        })
}

/// The next URL when the response is a redirect with a Location; a 3xx without one is a final answer.
fn redirect_target(current: &Url, response: &Response) -> Result<Option<Url>, OutboundError> {
    let redirecting = matches!(
        response.status(),
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    );
    if !redirecting {
        return Ok(None);
    }
    let Some(location) = response.headers().get(reqwest::header::LOCATION) else {
        return Ok(None);
    };
    let invalid = |reason: String| OutboundError::InvalidUrl {
        reason: format!(
            "redirect from {} has an invalid Location: {reason}",
            host_of(current)
        ),
    };
    let location = location.to_str().map_err(|_| invalid("not text".into()))?;
    current
        .join(location)
        .map(Some)
        .map_err(|e| invalid(e.to_string()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// A body past the limit is an error (fetched files must be whole).
    Fail,
    /// A body past the limit is cut (webhook answers are only recorded).
    Truncate,
}

/// Streams the body so a huge or endless answer never sits in memory past the limit.
async fn read_body(
    mut response: Response,
    limits: &Limits,
    overflow: Overflow,
    host: &str,
) -> Result<Vec<u8>, OutboundError> {
    let limit = limits.max_bytes;
    let declared = response.content_length();
    if overflow == Overflow::Fail && declared.is_some_and(|n| n > limit) {
        return Err(OutboundError::TooLarge { limit });
    }
    let capacity = declared.unwrap_or(0).min(limit).min(1024 * 1024);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| OutboundError::from_reqwest(e, host, limits.connect_timeout))?
    {
        let room = usize::try_from(limit.saturating_sub(body.len() as u64)).unwrap_or(usize::MAX);
        if chunk.len() > room {
            if overflow == Overflow::Fail {
                return Err(OutboundError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Host (and explicit port) for messages; never the path or query, which may hold tokens.
fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "(no host)".to_owned(),
    }
}
