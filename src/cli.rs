//! Command-line arguments: parsed once here, then handed to the command that runs them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use comfydash_wire::connect::DEFAULT_URL;
use comfydash_wire::{JobStatus, Timestamp, WebhookStatus};

use crate::exit::EXIT_CODES;

/// comfydash: a job daemon and operations console in front of ComfyUI.
#[derive(Debug, Parser)]
#[command(name = "comfydash", version, about, after_long_help = EXIT_CODES)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP API, job queue, ComfyUI worker.
    Daemon(DaemonArgs),
    /// Open the operations console.
    Tui(TuiArgs),
    /// Check the daemon's configuration, or have the running daemon reload it.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check that the daemon answers.
    Ping(Remote),
    /// Daemon health, Nagios-style (exit 0 healthy, 1 degraded, 3 unreachable).
    #[command(after_long_help = EXIT_CODES)]
    Health(Remote),
    /// Submit a job (a text prompt or an API-format workflow file).
    #[command(after_long_help = EXIT_CODES)]
    Submit(SubmitArgs),
    /// List, inspect, steer and wait for jobs.
    #[command(after_long_help = EXIT_CODES)]
    Jobs(JobsArgs),
    /// Queue status, pause and resume.
    Queue(QueueArgs),
    /// ComfyUI servers: list, drain, enable, disable, free memory.
    #[command(after_long_help = EXIT_CODES)]
    Servers(ServersArgs),
    /// Built-in alerts: list, test the channels, silence.
    #[command(after_long_help = EXIT_CODES)]
    Alerts(AlertsArgs),
    /// Webhook deliveries: list, redeliver, replay.
    #[command(after_long_help = EXIT_CODES)]
    Webhooks(WebhooksArgs),
}

/// `comfydash daemon` (and `comfydash config check`, which loads the same configuration).
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Address to listen on [default: 127.0.0.1:8190].
    #[arg(long, env = "COMFYDASH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// ComfyUI base URL; repeat (or comma-separate) for several servers [default: http://127.0.0.1:8188].
    #[arg(long = "comfyui-url", env = "COMFYUI_URL", value_delimiter = ',')]
    pub comfyui_url: Vec<String>,
    /// Where the database, admin key and outputs live [default: the platform data dir].
    #[arg(long, env = "COMFYDASH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (TOML) [default: <config dir>/config.toml when it exists].
    #[arg(long, env = "COMFYDASH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Webhook signing secret `whsec_…`; repeat (or comma-separate) to sign with several during rotation.
    #[arg(
        long = "webhook-secret",
        env = "COMFYDASH_WEBHOOK_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_secret: Vec<String>,
}

/// `comfydash tui`.
#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Daemon URL [default: the context's, else http://127.0.0.1:8190].
    #[arg(long, env = "COMFYDASH_URL")]
    pub url: Option<String>,
    /// API key [default: COMFYDASH_ADMIN_KEY, then <data-dir>/admin.key].
    #[arg(long, env = "COMFYDASH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The daemon's data dir, where its generated admin.key is.
    #[arg(long, env = "COMFYDASH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A named daemon from the console's config file.
    #[arg(long)]
    pub context: Option<String>,
}

/// `comfydash config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load the configuration as `comfydash daemon` would and print it, secrets masked.
    Check(ConfigCheckArgs),
    /// Ask the running daemon to re-read its configuration (as SIGHUP does) and print what changed.
    #[command(after_long_help = EXIT_CODES)]
    Reload(ConfigReloadArgs),
}

/// `comfydash config reload`.
#[derive(Debug, Args)]
pub struct ConfigReloadArgs {
    /// Daemon, key, output.
    #[command(flatten)]
    pub remote: Remote,
}

/// `comfydash config check`.
#[derive(Debug, Args)]
pub struct ConfigCheckArgs {
    /// The daemon's own flags.
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Print JSON instead of TOML.
    #[arg(long)]
    pub json: bool,
}

/// Which daemon to talk to, with which key, and how to print; accepted before or after a subcommand.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Daemon options")]
pub struct Remote {
    /// Daemon URL.
    #[arg(long, env = "COMFYDASH_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// API key [default: COMFYDASH_ADMIN_KEY, then <data-dir>/admin.key].
    #[arg(long, env = "COMFYDASH_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// The daemon's data dir, where its generated admin.key is [default: the platform data dir].
    #[arg(long, env = "COMFYDASH_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `comfydash submit`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["prompt", "workflow_file"])))]
pub struct SubmitArgs {
    /// Text prompt (fills the workflow template).
    pub prompt: Option<String>,
    /// API-format workflow graph (JSON; a bare graph or a `{"prompt": {...}}` body).
    #[arg(long, value_name = "FILE")]
    pub workflow_file: Option<PathBuf>,
    /// Job id [default: cli-<uuid>]; submitting the same request again is harmless.
    #[arg(long)]
    pub job_id: Option<String>,
    /// Input image URL, fetched by the daemon.
    #[arg(long, value_name = "URL", conflicts_with = "image_file")]
    pub image: Option<String>,
    /// Input image file, sent inline (base64).
    #[arg(long, value_name = "PATH")]
    pub image_file: Option<PathBuf>,
    /// Webhook URL for the job's end.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,
    /// Parameter `key=value` (repeat); the value is JSON when it parses, else a string.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Priority; higher runs first [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i64>,
    /// Execution time limit of the job, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout_s: Option<u64>,
    /// Workflow template name, for a text prompt.
    #[arg(long, value_name = "NAME", conflicts_with = "workflow_file")]
    pub workflow: Option<String>,
    /// Ask for the outputs inline (base64) in the job and its webhook.
    #[arg(long)]
    pub output_base64: bool,
    /// Wait for the job to end; the exit code tells how it ended.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (`500ms`, `30s`, `5m`), exit 6.
    #[arg(long, value_name = "DURATION", requires = "wait", value_parser = parse_duration)]
    pub wait_timeout: Option<Duration>,
    /// Daemon, key, output (last: its help heading covers what follows it).
    #[command(flatten)]
    pub remote: Remote,
}

/// `comfydash jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Daemon, key, output.
    #[command(flatten)]
    pub remote: Remote,
    /// What to do.
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// `comfydash jobs ...`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first, as a table.
    List(ListArgs),
    /// Show one job.
    Show(JobRef),
    /// Show a job's log: every state change with time, actor and detail.
    Events(JobRef),
    /// Cancel a job (a running one is stopped by the worker).
    Cancel(JobRef),
    /// Run a failed or cancelled job again.
    Retry(JobRef),
    /// Delete a finished job and its files.
    Delete(JobRef),
    /// Wait until a job ends (exit 0 completed, 1 failed, 5 cancelled, 6 timeout).
    Wait(WaitArgs),
    /// Download a job's outputs, checking size and SHA-256.
    Outputs(OutputsArgs),
}

/// A job named by its id.
#[derive(Debug, Args)]
pub struct JobRef {
    /// Job id.
    pub id: String,
}

/// `comfydash jobs list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in these states (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<JobStatus>,
    /// Only jobs whose id or prompt contains this text.
    #[arg(long)]
    pub q: Option<String>,
    /// Only jobs created since (RFC 3339 or milliseconds since the epoch).
    #[arg(long)]
    pub since: Option<String>,
    /// Order: created_at, updated_at or priority; prefix `-` for descending [default: -created_at].
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
    /// Jobs per page (1-500) [default: 50].
    #[arg(long)]
    pub limit: Option<usize>,
    /// Follow the pages to the end.
    #[arg(long)]
    pub all: bool,
    /// One JSON object per line, printed as pages arrive.
    #[arg(long)]
    pub json_lines: bool,
}

/// `comfydash jobs wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Job id.
    pub id: String,
    /// Give up after this long (`500ms`, `30s`, `5m`), exit 6.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// `comfydash jobs outputs`.
#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// Job id.
    pub id: String,
    /// Directory to write the files to (created if missing).
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub dir: PathBuf,
}

/// `comfydash queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Daemon, key, output.
    #[command(flatten)]
    pub remote: Remote,
    /// What to do.
    #[command(subcommand)]
    pub command: QueueCommand,
}

/// `comfydash queue ...`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum QueueCommand {
    /// Pending and processing counts, health, pause.
    Status,
    /// Start no new job until resumed (persisted across restarts).
    Pause,
    /// Start jobs again.
    Resume,
}

/// `comfydash servers`.
#[derive(Debug, Args)]
pub struct ServersArgs {
    /// Daemon, key, output.
    #[command(flatten)]
    pub remote: Remote,
    /// What to do [default: list].
    #[command(subcommand)]
    pub command: Option<ServersCommand>,
}

/// `comfydash servers ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ServersCommand {
    /// Every server: status, latency, GPU, VRAM, jobs in flight.
    List,
    /// Finish the jobs in flight, take nothing new (kept across restarts).
    Drain {
        /// Server name.
        name: String,
    },
    /// Take work again.
    Enable {
        /// Server name.
        name: String,
    },
    /// Take nothing (kept across restarts); jobs in flight finish.
    Disable {
        /// Server name.
        name: String,
    },
    /// Ask ComfyUI to unload its models and free memory (`/free`).
    Free {
        /// Server name.
        name: String,
    },
}

/// `comfydash alerts`.
#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Daemon, key, output.
    #[command(flatten)]
    pub remote: Remote,
    /// What to do.
    #[command(subcommand)]
    pub command: AlertsCommand,
}

/// `comfydash alerts ...`.
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Active alerts, silences in force, recently resolved alerts and the channels.
    List(AlertListArgs),
    /// Send a test message to every channel (exit 1 when any channel fails).
    Test,
    /// Mute the notifications of matching alerts for a while.
    Silence(SilenceArgs),
    /// End a silence now (held notifications go out).
    Unsilence(SilenceRef),
    /// Silences in force; with --expired, ended ones too.
    Silences(SilencesArgs),
}

/// `comfydash alerts list`.
#[derive(Debug, Args)]
pub struct AlertListArgs {
    /// Resolved alerts listed too, newest first (0-500).
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

/// `comfydash alerts silence`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("matcher").required(true).multiple(true).args(["rule", "labels"])))]
pub struct SilenceArgs {
    /// Rule to match (`server_down`, `queue_high`, ...; `*` for every rule).
    #[arg(long)]
    pub rule: Option<String>,
    /// Label to match, `key=value` (repeat; all must match), e.g. `server=gpu0`.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// How long (`30m`, `2h`, `1d`).
    #[arg(long, default_value = "1h", conflicts_with = "until")]
    pub duration: String,
    /// Or until when (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<Timestamp>,
    /// Why (shown in lists).
    #[arg(long)]
    pub comment: Option<String>,
}

/// A silence named by its id.
#[derive(Debug, Args)]
pub struct SilenceRef {
    /// Silence id (from `comfydash alerts list`).
    pub id: String,
}

/// `comfydash alerts silences`.
#[derive(Debug, Args)]
pub struct SilencesArgs {
    /// Include silences that have ended.
    #[arg(long)]
    pub expired: bool,
}

/// `comfydash webhooks`.
#[derive(Debug, Args)]
pub struct WebhooksArgs {
    /// Daemon, key, output.
    #[command(flatten)]
    pub remote: Remote,
    /// What to do.
    #[command(subcommand)]
    pub command: WebhooksCommand,
}

/// `comfydash webhooks ...`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Webhook events, newest first, with their last attempt.
    List(WebhookListArgs),
    /// Send a job's latest webhook event again now (same id), whatever its state.
    Redeliver(JobRef),
    /// Put dead (or failed) events created since a time back in the queue.
    Replay(ReplayArgs),
}

/// `comfydash webhooks list`.
#[derive(Debug, Args)]
pub struct WebhookListArgs {
    /// Only events in these states (comma-separated): pending, delivered, failed, dead.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<WebhookStatus>,
    /// Only this job's events.
    #[arg(long = "job", value_name = "JOB_ID")]
    pub job_id: Option<String>,
    /// Events listed (1-500) [default: 50].
    #[arg(long)]
    pub limit: Option<usize>,
}

/// `comfydash webhooks replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Events created at or after this time: RFC 3339, or a duration meaning that long ago (`2h`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Timestamp,
    /// Which states to replay (comma-separated): dead, failed [default: dead].
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<WebhookStatus>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    comfydash_daemon::config::parse_duration(s)
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, e.g. server=gpu0, not {s:?}")),
    }
}

/// An RFC 3339 time, or a duration before now.
fn parse_since(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_utc());
    }
    let ago = parse_duration(s).map_err(|_| {
        format!("expected an RFC 3339 time (2026-11-28T09:00:00Z) or a duration (2h), not {s:?}")
    })?;
    let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
    Ok(chrono::Utc::now() - ago)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
