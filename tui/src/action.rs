//! What can happen to the console (`Action`) and what it asks the outside world to do (`Command`).

use chrono::{DateTime, Utc};
use comfydash_wire::client::ClientError;
use comfydash_wire::{
    AlertList, ExternalHistory, Health, Job, JobEvent, JobPage, NewSilence, QueueState, ServerList,
    StatsHistory, StreamEvent, Telemetry,
};
use crossterm::event::KeyEvent;

/// An input to [`crate::app::App::update`].
#[derive(Debug, Clone)]
pub enum Action {
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal was resized (the next frame uses the new size).
    Resize,
    /// A second passed; carries the time so the model never reads the clock itself.
    Tick(DateTime<Utc>),
    /// The event stream's connection changed.
    Link(LinkState),
    /// The daemon sent an event.
    Event(StreamEvent),
    /// An HTTP read finished (boxed: events are the hot path and should stay small).
    Loaded(Box<Loaded>),
    /// An operator action finished: a message for the status line, or the daemon's error.
    Done {
        /// What was done.
        act: Act,
        /// Outcome.
        result: Result<String, Failure>,
    },
    /// Stop (SIGTERM, SIGHUP, end of input).
    Quit,
}

impl Action {
    /// Wraps an HTTP answer.
    pub fn loaded(l: Loaded) -> Action {
        Action::Loaded(Box::new(l))
    }
}

/// The event stream's connection.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkState {
    /// The stream is open.
    Up,
    /// The stream failed; the link retries after `retry_in`.
    Down {
        /// Why.
        error: String,
        /// Until the next attempt.
        retry_in: std::time::Duration,
    },
    /// Retrying cannot help: wrong key or another protocol version.
    Fatal(String),
}

/// The answer to a [`Fetch`].
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "each answer is built once and moved once, already inside a Box"
)]
pub enum Loaded {
    /// `GET /api/health`.
    Health(Result<Health, Failure>),
    /// `GET /api/telemetry`.
    Telemetry(Result<Telemetry, Failure>),
    /// `GET /api/queue`.
    Queue(Result<QueueState, Failure>),
    /// `GET /api/servers`.
    Servers(Result<ServerList, Failure>),
    /// `GET /api/stats/history`.
    History(Result<StatsHistory, Failure>),
    /// `GET /api/telemetry/external`.
    External(Result<ExternalHistory, Failure>),
    /// `GET /api/alerts`.
    Alerts(Result<AlertList, Failure>),
    /// One page of `GET /api/jobs`.
    Jobs {
        /// The query generation it was asked for (older answers are dropped).
        generation: u64,
        /// Page index in the current query.
        page: usize,
        /// The page.
        result: Result<JobPage, Failure>,
    },
    /// `GET /api/jobs/{id}`.
    Job(String, Result<Job, Failure>),
    /// `GET /api/jobs/{id}/events`.
    JobEvents(String, Result<Vec<JobEvent>, Failure>),
    /// The role probe: `Ok(true)` for an admin key.
    Role(Result<bool, Failure>),
}

/// Something for the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Read something over HTTP.
    Fetch(Fetch),
    /// Change something over HTTP.
    Act(Act),
    /// Put text on the operator's clipboard (OSC 52).
    Copy(String),
    /// Drop the event stream and connect again now.
    Reconnect,
    /// Connect to another context (index into the setup's contexts).
    SwitchContext(usize),
}

/// An HTTP read.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetch {
    /// `GET /api/health`.
    Health,
    /// `GET /api/telemetry`.
    Telemetry,
    /// `GET /api/queue`.
    Queue,
    /// `GET /api/servers`.
    Servers,
    /// `GET /api/stats/history`.
    History,
    /// `GET /api/telemetry/external?since=`.
    External {
        /// Oldest point wanted.
        since: DateTime<Utc>,
    },
    /// `GET /api/alerts`.
    Alerts,
    /// `GET /api/jobs?...`.
    Jobs {
        /// Query generation.
        generation: u64,
        /// Page index.
        page: usize,
        /// The query string (`status=&q=&sort=&limit=&cursor=`).
        query: String,
    },
    /// `GET /api/jobs/{id}`.
    Job(String),
    /// `GET /api/jobs/{id}/events`.
    JobEvents(String),
    /// Whether the key may change things (see `daemon::probe_role`).
    Role,
}

/// An operator action.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// `POST /api/jobs/{id}/retry`.
    Retry(String),
    /// `POST /api/jobs/{id}/cancel`.
    Cancel(String),
    /// `POST /api/queue/pause` (true) or `/resume` (false).
    Pause(bool),
    /// `POST /api/jobs/{id}/webhook/redeliver`.
    Redeliver(String),
    /// `POST /api/servers/{name}/{drain|enable|disable|free}`.
    Server(String, ServerAct),
    /// `POST /api/alerts/silences`.
    Silence(NewSilence),
    /// `DELETE /api/alerts/silences/{id}`.
    EndSilence(String),
    /// `POST /api/config/reload`.
    Reload,
}

/// What can be done to a ComfyUI server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAct {
    /// Finish in-flight jobs, take nothing new.
    Drain,
    /// Take jobs again.
    Enable,
    /// Stop using it.
    Disable,
    /// Ask ComfyUI to free memory.
    Free,
}

impl ServerAct {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerAct::Drain => "drain",
            ServerAct::Enable => "enable",
            ServerAct::Disable => "disable",
            ServerAct::Free => "free",
        }
    }
}

impl Act {
    /// Words for the status line, e.g. `cancel lensia-123`.
    pub fn describe(&self) -> String {
        match self {
            Act::Retry(id) => format!("retry {id}"),
            Act::Cancel(id) => format!("cancel {id}"),
            Act::Pause(true) => "pause queue".into(),
            Act::Pause(false) => "resume queue".into(),
            Act::Redeliver(id) => format!("redeliver webhook of {id}"),
            Act::Server(name, a) => format!("{} {name}", a.as_str()),
            Act::Silence(s) => format!(
                "silence {} for {}",
                crate::units::matcher(s.rule.as_deref(), &s.labels),
                s.duration.as_deref().unwrap_or("?")
            ),
            Act::EndSilence(id) => format!("end silence {}", crate::units::short_id(id)),
            Act::Reload => "reload configuration".into(),
        }
    }
}

/// A failed call, reduced to what the console shows (and comparable in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status, if the daemon answered.
    pub status: Option<u16>,
    /// The daemon's code, or `unreachable`, `protocol`, `decode`.
    pub code: String,
    /// For people.
    pub message: String,
}

impl Failure {
    /// A failure the daemon answered with.
    #[cfg(test)]
    pub fn api(status: u16, code: &str, message: &str) -> Failure {
        Failure {
            status: Some(status),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The daemon could not be reached.
    pub fn unreachable(message: &str) -> Failure {
        Failure {
            status: None,
            code: "unreachable".into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} ({}, HTTP {s})", self.message, self.code),
            None => f.write_str(&self.message),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        match e {
            ClientError::Api {
                status,
                code,
                message,
            } => Failure {
                status: Some(status),
                code,
                message,
            },
            ClientError::Unreachable { url, source } => Failure::unreachable(&format!(
                "daemon unreachable at {url}: {}",
                root_cause(&source)
            )),
            e @ ClientError::Protocol { .. } => Failure {
                status: None,
                code: "protocol".into(),
                message: e.to_string(),
            },
            ClientError::Decode(m) => Failure {
                status: None,
                code: "decode".into(),
                message: m,
            },
        }
    }
}

/// reqwest's top-level message is "error sending request"; the cause says what went wrong.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
