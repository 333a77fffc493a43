//! Integration tests: a real simulator over HTTP and WebSocket on 127.0.0.1:0.

mod common;

/// Restart, refused connections, unresponsive mode, hang and the /sim/ routes.
mod faults;
/// Upload naming and /view rules.
mod files;
/// Job lifecycle: F1/F2 end to end, runtime failures, the text-to-image template, cache, history cap.
mod jobs;
/// Priority order, queue delete and interrupts.
mod queue;
/// Validation bodies: exact 400s, partial 200s, malformed bodies.
mod validation;
/// WebSocket recipient rules and the reconnect quirks.
mod ws;
