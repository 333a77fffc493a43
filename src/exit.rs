//! Exit codes: the contract scripts rely on, and how an error maps to one.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use comfydash_wire::client::ClientError;

/// The exit code table shown in `--help` (keep in step with [`Exit`] and `docs/cli.md`).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success; health healthy; job completed
  1  health degraded; job failed; a channel failed `alerts test`; invalid configuration;
     any other failure (bad local file, output checksum mismatch)
  2  usage error (bad arguments)
  3  daemon unreachable
  4  the daemon refused the request (4xx/5xx); its error code and message are printed
  5  job cancelled
  6  timed out waiting
  7  protocol mismatch (daemon and client versions differ, or an answer this client cannot read)";

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; healthy; job completed.
    Success = 0,
    /// 1: degraded; job failed; anything not covered below.
    Failure = 1,
    /// 3: nothing answered at the daemon's URL.
    Unreachable = 3,
    /// 4: the daemon answered with an error.
    Api = 4,
    /// 5: the job was cancelled.
    Cancelled = 5,
    /// 6: a wait ran out of time.
    Timeout = 6,
    /// 7: the daemon speaks another protocol version.
    Protocol = 7,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// A wait for a job ran out of time.
#[derive(Debug)]
pub struct TimedOut {
    /// The job waited for.
    pub job_id: String,
    /// How long we waited.
    pub after: Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for job {}",
            self.after, self.job_id
        )
    }
}

impl std::error::Error for TimedOut {}

/// The exit code for a client error.
pub fn of_client(e: &ClientError) -> Exit {
    match e {
        ClientError::Unreachable { .. } => Exit::Unreachable,
        ClientError::Api { .. } => Exit::Api,
        ClientError::Protocol { .. } | ClientError::Decode(_) => Exit::Protocol,
    }
}

/// The exit code for an error: the first cause that has one of its own, else 1.
pub fn of(e: &anyhow::Error) -> Exit {
    e.chain()
        .find_map(|cause| {
            if let Some(c) = cause.downcast_ref::<ClientError>() {
                Some(of_client(c))
            } else if cause.is::<TimedOut>() {
                Some(Exit::Timeout)
            } else {
                None
            }
        })
        .unwrap_or(Exit::Failure)
}

/// The error's causes on one line, leaving out a cause its parent already quoted.
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
