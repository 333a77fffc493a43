//! Every JSON body the comfydash daemon accepts or sends: one definition shared by the daemon,
//! the console and the CLI. The Lensia quick-start's camelCase names live here and nowhere else.

#[macro_use]
mod names;

pub mod alerts;
pub mod config;
pub mod error;
pub mod events;
pub mod health;
pub mod jobs;
pub mod servers;
pub mod sse;
pub mod telemetry;
pub mod webhooks;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod connect;

pub use alerts::*;
pub use config::ReloadReport;
pub use error::{ErrorBody, ErrorDetail};
pub use events::*;
pub use health::*;
pub use jobs::*;
pub use servers::*;
pub use telemetry::*;
pub use webhooks::*;

/// Version of the HTTP contract; a client that sees another major version refuses to talk.
pub const PROTOCOL_VERSION: u32 = 1;

/// Response header carrying [`PROTOCOL_VERSION`] on every daemon answer.
pub const PROTOCOL_HEADER: &str = "x-comfydash-protocol";

/// Timestamps on the wire: RFC 3339, UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
