//! Errors of the outbound guard; every message is safe to show to the client that supplied the URL.

use std::time::Duration;

/// Why an outbound URL was refused or a request to it failed.
///
/// Messages name only the host, never the full URL: webhook URLs often carry tokens in the path or query.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// An allow-list entry or ComfyUI URL in the configuration could not be understood.
    #[error("invalid {what} `{entry}`: {reason}")]
    Config {
        what: &'static str,
        entry: String,
        reason: String,
    },
    /// The URL is malformed, too long, or carries credentials.
    #[error("invalid URL: {reason}")]
    InvalidUrl { reason: String },
    /// The URL scheme is not http or https.
    #[error("URL scheme `{scheme}` is not allowed; use http or https")]
    Scheme { scheme: String },
    /// The host (or an address it resolves to) is not one the daemon may contact.
    #[error("host {host} {reason}")]
    Refused { host: String, reason: String },
    /// A request header name or value is not valid HTTP.
    #[error("invalid request header `{name}`")]
    InvalidHeader { name: String },
    /// The response body is larger than the configured limit.
    #[error("response body exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The whole request took longer than the configured timeout.
    #[error("request timed out after {after:?}")]
    Timeout { after: Duration },
    /// More redirects than allowed.
    #[error("too many redirects (more than {limit})")]
    TooManyRedirects { limit: usize },
    /// The final response had a non-success status.
    #[error("host {host} answered with HTTP status {status}")]
    Status { status: u16, host: String },
    /// The connection could not be established (name resolution, TCP, TLS, connect timeout).
    #[error("could not connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    /// The request failed after connecting (protocol error, reset while reading the body).
    #[error("request to {host} failed: {reason}")]
    Http { host: String, reason: String },
}

impl OutboundError {
    /// Stable machine-readable code for API error bodies and attempt records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "config",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::Scheme { .. } => "url_scheme",
            Self::Refused { .. } => "url_refused",
            Self::InvalidHeader { .. } => "invalid_header",
            Self::TooLarge { .. } => "too_large",
            Self::Timeout { .. } => "timeout",
            Self::TooManyRedirects { .. } => "too_many_redirects",
            Self::Status { .. } => "http_status",
            Self::Connect { .. } => "connect_failed",
            Self::Http { .. } => "request_failed",
        }
    }

    /// Turns a reqwest error into ours without its URL; a refusal raised by the guarding resolver
    /// travels inside reqwest's error chain and is surfaced as itself.
    pub(super) fn from_reqwest(err: reqwest::Error, host: &str, connect_timeout: Duration) -> Self {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = cause {
            if let Some(ours) = e.downcast_ref::<OutboundError>() {
                return ours.clone();
            }
            cause = e.source();
        }
        let host = host.to_owned();
        if err.is_connect() && err.is_timeout() {
            return Self::Connect {
                host,
                reason: format!("connect timed out after {connect_timeout:?}"),
            };
        }
        let is_connect = err.is_connect();
        let reason = causes(&err.without_url());
        if is_connect {
            Self::Connect { host, reason }
        } else {
            Self::Http { host, reason }
        }
    }
}

/// The error's causes joined, innermost last ("tcp connect error: Connection refused (os error 111)").
fn causes(err: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        let text = e.to_string();
        // hyper's "client error (Connect)" wrapper repeats what the inner causes say.
        if !text.starts_with("client error (") {
            parts.push(text);
        }
        cause = e.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}
