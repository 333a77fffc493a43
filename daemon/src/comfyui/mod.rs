//! Speaking ComfyUI's API: HTTP calls, the WebSocket, and the parsing of both.

pub mod client;
pub mod protocol;
pub mod socket;

pub use client::{ComfyClient, ComfyError, QueuePlace};
pub use protocol::{Outcome, OutputFile, WsEvent};
