//! comfydash integration tests: real daemons, simulators and receivers on 127.0.0.1.

/// Starts daemons in-process or as the real binary, in temporary data dirs.
mod harness;

/// Built-in alerts: outage and resolve, restarts, inhibition, silences, 429s, and each channel's format.
mod alerts;
/// Bad input: every rejection has the right status and code and changes nothing.
mod bad_input;
/// The scripting CLI, run as the real binary against in-process daemons.
mod cli;
/// The Lensia quick-start contract, call by call and field by field.
mod contract;
/// Crash safety and signals with the real binary.
mod crash;
/// The live event stream: delivery, resume, resync, shutdown.
mod events;
/// Jobs API: idempotency, listing, cancel, retry, delete, pause, limits.
mod jobs;
/// Prometheus metrics, the Grafana and Prometheus assets, systemd notifications.
mod metrics;
/// The OpenAPI document: golden file, coverage of every route, an independent validator.
mod openapi;
/// Reloading the server list while jobs run: added, removed, moved and revived servers.
mod reload;
/// Several servers: load sharing, failover, drain, watchdog, crash reconciliation.
mod servers;
/// The whole system under load and injected faults: nothing lost, nothing twice.
mod soak;
/// Webhook delivery: signatures, retries, limits, crash safety, redelivery and replay.
mod webhooks;
/// The worker on one simulated ComfyUI: templates, images, progress, errors, cancel, pause, restarts.
mod worker;
