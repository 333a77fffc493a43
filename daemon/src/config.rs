//! Effective configuration: flags over environment over config file over defaults.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::auth::Role;

/// The daemon's default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8190";
/// ComfyUI's default address.
pub const DEFAULT_COMFYUI_URL: &str = "http://127.0.0.1:8188";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// No data directory could be determined.
    #[error("no data directory: set --data-dir or COMFYDASH_DATA_DIR")]
    NoDataDir,
}

/// What the command line (and the environment, through clap) sets; `None` leaves the file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen` / `COMFYDASH_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--comfyui-url` (repeated) / `COMFYUI_URL` (comma-separated).
    pub comfyui_urls: Vec<String>,
    /// `--data-dir` / `COMFYDASH_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--config` / `COMFYDASH_CONFIG`.
    pub config: Option<PathBuf>,
    /// `--webhook-secret` (repeated or comma-separated) / `COMFYDASH_WEBHOOK_SECRET`.
    pub webhook_secrets: Vec<String>,
}

/// One ComfyUI server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Name shown in health and the console (never the URL).
    pub name: String,
    /// Base URL, e.g. `http://127.0.0.1:8188`.
    pub url: String,
    /// Shell command the watchdog runs to restart a stuck server (e.g. `systemctl restart comfyui@0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_command: Option<String>,
}

/// One API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Name recorded as the actor in job logs.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The secret itself.
    pub key: String,
}

/// SQLite durability level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit reaches the disk: a 2xx survives power loss.
    Full,
    /// Commits survive a process crash; the last ones may be lost on power loss.
    Normal,
}

/// Store settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `full` (default) or `normal`.
    pub synchronous: Synchronous,
    /// Most writes committed together in one transaction.
    pub max_batch: usize,
    /// How long a write waits for a lock another process holds (e.g. an open `sqlite3` shell)
    /// before it fails and the database counts as not writable.
    #[serde(with = "duration")]
    pub busy_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            synchronous: Synchronous::Full,
            max_batch: 256,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// Queue limits and health levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Above this many pending jobs, submits get 429.
    pub max_pending: u64,
    /// Pending count from which health is `moderate`.
    pub moderate_at: u64,
    /// Pending count from which health is `high`.
    pub high_at: u64,
    /// Seconds a client is told to wait after a 429.
    pub retry_after_s: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_pending: 10_000,
            moderate_at: 10,
            high_at: 50,
            retry_after_s: 5,
        }
    }
}

/// HTTP server limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest a request may take (event streams excepted).
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// ComfyUI health probing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// Time between probes of one server.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Time limit of one probe.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Consecutive failures before a server is `down`.
    pub failures_before_down: u32,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            failures_before_down: 3,
        }
    }
}

/// Pruning of old terminal jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Terminal jobs older than this are deleted; `0` keeps everything.
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// Time between pruning passes.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Jobs deleted per transaction, so pruning never blocks submits for long.
    pub batch: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_age: Duration::from_secs(30 * 24 * 3600),
            interval: Duration::from_secs(600),
            batch: 500,
        }
    }
}

/// Rules for URLs supplied by clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// CIDRs, addresses and host names opened despite being private.
    pub allow: Vec<String>,
    /// Time limit of one request.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Time limit to connect.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Largest body read (input images).
    pub max_bytes: u64,
    /// Redirects followed for downloads.
    pub max_redirects: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            allow: Vec::new(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_bytes: 50 * 1024 * 1024,
            max_redirects: 3,
        }
    }
}

/// The live event stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Events kept for clients resuming with `Last-Event-ID`.
    pub ring: usize,
    /// Unread events a subscriber may fall behind before it is told to resync.
    pub per_subscriber: usize,
    /// Keep-alive comment interval.
    #[serde(with = "duration")]
    pub keepalive: Duration,
    /// Least time between two progress events of one job.
    #[serde(with = "duration")]
    pub progress_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            ring: 4096,
            per_subscriber: 1024,
            keepalive: Duration::from_secs(15),
            progress_interval: Duration::from_millis(250),
        }
    }
}

/// Queue-depth history kept for charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// Time between samples.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// How far back samples are kept.
    #[serde(with = "duration")]
    pub window: Duration,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            interval: Duration::from_secs(10),
            window: Duration::from_secs(3600),
        }
    }
}

/// How jobs are run on ComfyUI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Prompts handed to one server at once: one running, the rest waiting in ComfyUI's queue.
    pub pipeline_depth: usize,
    /// How often in-flight prompts are checked over HTTP (the WebSocket is the fast path).
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Time limit of one HTTP call to ComfyUI.
    #[serde(with = "duration")]
    pub comfyui_timeout: Duration,
    /// Execution time limit of a job without `timeout_s`.
    #[serde(with = "duration")]
    pub job_timeout: Duration,
    /// Longest wait between WebSocket reconnects.
    #[serde(with = "duration")]
    pub reconnect_max: Duration,
    /// Submissions of one attempt to ComfyUI (server lost, restarted) before it fails.
    pub max_tries: u32,
    /// Automatic re-runs after an execution error (validation errors never re-run).
    pub execution_retries: u32,
    /// Template for text jobs without an image.
    pub default_workflow: String,
    /// Template for text jobs with an image.
    pub default_image_workflow: String,
    /// Folder of user templates (`*.json`); default `<config dir>/workflows`.
    pub workflows_dir: Option<PathBuf>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            pipeline_depth: 2,
            poll_interval: Duration::from_secs(1),
            comfyui_timeout: Duration::from_secs(30),
            job_timeout: Duration::from_secs(30 * 60),
            reconnect_max: Duration::from_secs(5),
            max_tries: 3,
            execution_retries: 0,
            default_workflow: "text2img".into(),
            default_image_workflow: "img2img".into(),
            workflows_dir: None,
        }
    }
}

/// The stuck-server watchdog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchdogConfig {
    /// After interrupting a timed-out job, how long ComfyUI has to stop it before the server is stuck.
    #[serde(with = "duration")]
    pub interrupt_grace: Duration,
    /// A busy server silent this long (no WebSocket message, no change in its queue) is stuck.
    #[serde(with = "duration")]
    pub silence: Duration,
    /// Least time between two runs of a server's restart command.
    #[serde(with = "duration")]
    pub restart_cooldown: Duration,
    /// Time limit of the restart command.
    #[serde(with = "duration")]
    pub restart_timeout: Duration,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            interrupt_grace: Duration::from_secs(30),
            silence: Duration::from_secs(600),
            restart_cooldown: Duration::from_secs(300),
            restart_timeout: Duration::from_secs(60),
        }
    }
}

/// Webhook delivery: signing, retries and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Base of the output URLs in payloads; default `http://<listen addr>`.
    pub public_url: Option<String>,
    /// Signing secrets (`whsec_…`), each signs every attempt; empty: generated into `<data-dir>/webhook.secret`.
    #[serde(skip_serializing)]
    pub secrets: Vec<String>,
    /// Time limit of one attempt, body included.
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// Time limit to connect.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Response bytes read and kept with each attempt.
    pub max_response_bytes: u64,
    /// Waits between attempts; the last repeats until `max_age`.
    #[serde(with = "durations")]
    pub schedule: Vec<Duration>,
    /// Age after which an undelivered event is `dead`.
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// Longest `Retry-After` honoured.
    #[serde(with = "duration")]
    pub max_retry_after: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to one host.
    pub per_host: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let m = |n: u64| Duration::from_secs(60 * n);
        WebhookConfig {
            public_url: None,
            secrets: Vec::new(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_response_bytes: 512,
            schedule: vec![
                Duration::from_secs(5),
                Duration::from_secs(30),
                m(2),
                m(10),
                m(30),
                m(60),
                m(180),
            ],
            max_age: m(24 * 60),
            max_retry_after: m(60),
            concurrency: 32,
            per_host: 4,
        }
    }
}

/// `GET /metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` without a key (for a scraper on a private network).
    pub open: bool,
}

/// The config file's schema (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// ComfyUI servers.
    pub servers: Vec<ServerConfig>,
    /// API keys.
    pub keys: Vec<KeyConfig>,
    /// Store.
    pub store: StoreConfig,
    /// Queue.
    pub queue: QueueConfig,
    /// HTTP.
    pub http: HttpConfig,
    /// Probing.
    pub probe: ProbeConfig,
    /// Retention.
    pub retention: RetentionConfig,
    /// Outbound URLs.
    pub outbound: OutboundConfig,
    /// Event stream.
    pub events: EventsConfig,
    /// Queue history.
    pub stats: StatsConfig,
    /// Running jobs.
    pub worker: WorkerConfig,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Stuck servers.
    pub watchdog: WatchdogConfig,
    /// Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Built-in alerts.
    pub alerts: crate::alerts::AlertsConfig,
}

/// The effective configuration the daemon runs with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (database, admin key, outputs).
    pub data_dir: PathBuf,
    /// Config file read, if any.
    pub config_file: Option<PathBuf>,
    /// ComfyUI servers.
    pub servers: Vec<ServerConfig>,
    /// API keys from file and environment (the generated admin key is added at start).
    #[serde(skip)]
    pub keys: Vec<KeyConfig>,
    /// Store.
    pub store: StoreConfig,
    /// Queue.
    pub queue: QueueConfig,
    /// HTTP.
    pub http: HttpConfig,
    /// Probing.
    pub probe: ProbeConfig,
    /// Retention.
    pub retention: RetentionConfig,
    /// Outbound URLs.
    pub outbound: OutboundConfig,
    /// Event stream.
    pub events: EventsConfig,
    /// Queue history.
    pub stats: StatsConfig,
    /// Running jobs.
    pub worker: WorkerConfig,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Stuck servers.
    pub watchdog: WatchdogConfig,
    /// Prometheus endpoint.
    pub metrics: MetricsConfig,
    /// Built-in alerts.
    pub alerts: crate::alerts::AlertsConfig,
}

impl Config {
    /// Defaults for a daemon keeping its data in `data_dir`, with no keys and one server.
    pub fn new(data_dir: PathBuf) -> Self {
        Self::merge(FileConfig::default(), None, data_dir)
    }

    fn merge(file: FileConfig, config_file: Option<PathBuf>, data_dir: PathBuf) -> Self {
        let listen = file
            .listen
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        let servers = if file.servers.is_empty() {
            servers_from_urls(&[DEFAULT_COMFYUI_URL.to_string()])
        } else {
            file.servers
        };
        Config {
            listen,
            data_dir,
            config_file,
            servers,
            keys: file.keys,
            store: file.store,
            queue: file.queue,
            http: file.http,
            probe: file.probe,
            retention: file.retention,
            outbound: file.outbound,
            events: file.events,
            stats: file.stats,
            worker: file.worker,
            webhooks: file.webhooks,
            watchdog: file.watchdog,
            metrics: file.metrics,
            alerts: file.alerts,
        }
    }

    /// Loads the file (if any), applies the environment's keys and allow list, then the overrides.
    pub fn load(ov: &Overrides, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let dirs = directories::ProjectDirs::from("", "", "comfydash");
        let (path, explicit) = match &ov.config {
            Some(p) => (Some(p.clone()), true),
            None => (
                dirs.as_ref().map(|d| d.config_dir().join("config.toml")),
                false,
            ),
        };
        let file = match &path {
            Some(p) if explicit || p.exists() => Some((p.clone(), read_file(p)?)),
            _ => None,
        };
        let (config_file, file) = match file {
            Some((p, f)) => (Some(p), f),
            None => (None, FileConfig::default()),
        };
        let data_dir = ov
            .data_dir
            .clone()
            .or_else(|| file.data_dir.clone())
            .or_else(|| dirs.as_ref().map(|d| d.data_dir().to_path_buf()))
            .ok_or(ConfigError::NoDataDir)?;
        let mut cfg = Self::merge(file, config_file, data_dir);
        if cfg.worker.workflows_dir.is_none() {
            cfg.worker.workflows_dir = dirs.as_ref().map(|d| d.config_dir().join("workflows"));
        }
        if let Some(l) = ov.listen {
            cfg.listen = l;
        }
        if !ov.comfyui_urls.is_empty() {
            cfg.servers = servers_from_urls(&ov.comfyui_urls);
        }
        if let Some(k) = env.get("DASHBOARD_API_KEY").filter(|k| !k.is_empty()) {
            cfg.keys.push(KeyConfig {
                name: "lensia".into(),
                role: Role::Submit,
                key: k.clone(),
            });
        }
        if let Some(k) = env.get("COMFYDASH_ADMIN_KEY").filter(|k| !k.is_empty()) {
            cfg.keys.push(KeyConfig {
                name: "admin-env".into(),
                role: Role::Admin,
                key: k.clone(),
            });
        }
        if let Some(a) = env.get("COMFYDASH_OUTBOUND_ALLOW") {
            cfg.outbound.allow.extend(
                a.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        if let Some(s) = env
            .get("COMFYDASH_WEBHOOK_SECRET")
            .filter(|s| !s.trim().is_empty())
        {
            cfg.webhooks.secrets = s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if !ov.webhook_secrets.is_empty() {
            cfg.webhooks.secrets = ov.webhook_secrets.clone();
        }
        cfg.alerts.apply_env(env);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.servers.is_empty() {
            return bad("at least one ComfyUI server is needed".into());
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.servers {
            let u = url::Url::parse(&s.url)
                .map_err(|e| ConfigError::Invalid(format!("server {}: bad url: {e}", s.name)))?;
            if !matches!(u.scheme(), "http" | "https") {
                return bad(format!("server {}: url must be http or https", s.name));
            }
            if s.name.is_empty() || !names.insert(s.name.as_str()) {
                return bad(format!("server name {:?} is empty or repeated", s.name));
            }
        }
        let mut key_names = std::collections::HashSet::new();
        for k in &self.keys {
            if k.key.trim().is_empty() {
                return bad(format!("key {:?} is empty", k.name));
            }
            if !key_names.insert(k.name.as_str()) {
                return bad(format!("key name {:?} is repeated", k.name));
            }
        }
        if self.queue.moderate_at > self.queue.high_at {
            return bad("queue.moderate_at must not exceed queue.high_at".into());
        }
        if self.probe.failures_before_down == 0 {
            return bad("probe.failures_before_down must be at least 1".into());
        }
        if self.worker.pipeline_depth == 0 || self.worker.max_tries == 0 {
            return bad("worker.pipeline_depth and worker.max_tries must be at least 1".into());
        }
        if self.store.max_batch == 0 || self.retention.batch == 0 {
            return bad("store.max_batch and retention.batch must be at least 1".into());
        }
        let w = &self.webhooks;
        if w.schedule.is_empty() || w.concurrency == 0 || w.per_host == 0 {
            return bad("webhooks.schedule must not be empty; webhooks.concurrency and webhooks.per_host must be at least 1".into());
        }
        for s in &w.secrets {
            crate::webhook::check_secret(s)
                .map_err(|e| ConfigError::Invalid(format!("webhooks.secrets: {e}")))?;
        }
        self.alerts.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Where the generated admin key lives.
    pub fn admin_key_path(&self) -> PathBuf {
        self.data_dir.join("admin.key")
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("comfydash.db")
    }
}

/// Names servers `comfyui-0`, `comfyui-1`, … in the order given.
pub fn servers_from_urls(urls: &[String]) -> Vec<ServerConfig> {
    urls.iter()
        .flat_map(|u| u.split(','))
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .enumerate()
        .map(|(i, u)| ServerConfig {
            name: format!("comfyui-{i}"),
            url: u.trim_end_matches('/').to_string(),
            restart_command: None,
        })
        .collect()
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Parses `1500` (milliseconds), `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 500ms, 30s, 5m, 2h, 7d"))?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        other => return Err(format!("bad duration unit {other:?} in {s:?}")),
    };
    Ok(Duration::from_millis(ms))
}

/// Serde for durations written as milliseconds or as strings with a unit.
pub mod duration {
    use super::*;

    /// Writes milliseconds.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    /// Reads an integer (milliseconds) or a string such as `"30s"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Ms(ms) => Ok(Duration::from_millis(ms)),
            Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Serde for lists of durations, each written as [`duration`] reads it.
pub mod durations {
    use super::*;

    /// Writes milliseconds.
    pub fn serialize<S: serde::Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|d| d.as_millis() as u64))
    }

    /// Reads a list of integers (milliseconds) or strings such as `"30s"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct One(#[serde(with = "duration")] Duration);
        Ok(Vec::<One>::deserialize(d)?
            .into_iter()
            .map(|o| o.0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1500").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:9000"
[[servers]]
name = "gpu0"
url = "http://10.0.0.5:8188"
[probe]
interval = 250
timeout = "100ms"
"#,
        )
        .unwrap();
        let env: HashMap<String, String> = [
            ("DASHBOARD_API_KEY", "lensia-key-0123456789"),
            ("COMFYDASH_OUTBOUND_ALLOW", "10.0.0.0/8, example.internal"),
        ]
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
        let ov = Overrides {
            config: Some(path.clone()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let c = Config::load(&ov, &env).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.servers[0].name, "gpu0");
        assert_eq!(c.probe.interval, Duration::from_millis(250));
        assert_eq!(c.probe.timeout, Duration::from_millis(100));
        assert_eq!(c.keys[0].role, Role::Submit);
        assert_eq!(c.outbound.allow, vec!["10.0.0.0/8", "example.internal"]);

        let ov = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            comfyui_urls: vec!["http://a:1,http://b:2".into()],
            ..ov
        };
        let c = Config::load(&ov, &env).unwrap();
        assert_eq!(c.listen.port(), 9100);
        // The flag wins over COMFYDASH_WEBHOOK_SECRET.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let mut env2 = env.clone();
        env2.insert(
            "COMFYDASH_WEBHOOK_SECRET".into(),
            "whsec_c2VjcmV0LWZyb20tdGhlLWVudmlyb25tZW50".into(),
        );
        let ov2 = Overrides {
            webhook_secrets: vec![secret.into()],
            ..ov.clone()
        };
        assert_eq!(
            Config::load(&ov2, &env2).unwrap().webhooks.secrets,
            vec![secret.to_string()]
        );
        assert_eq!(
            Config::load(&ov, &env2).unwrap().webhooks.secrets,
            vec!["whsec_c2VjcmV0LWZyb20tdGhlLWVudmlyb25tZW50".to_string()]
        );
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[1].name, "comfyui-1");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[queue]\nmax_pendng = 3\n").unwrap();
        let ov = Overrides {
            config: Some(path),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let err = Config::load(&ov, &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("max_pendng"), "{err}");
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../assets/config.example.toml");
        let f: FileConfig = toml::from_str(text).unwrap();
        let mut c = Config::merge(f, None, PathBuf::from("/tmp"));
        c.keys.clear();
        c.validate().unwrap();
    }
}
