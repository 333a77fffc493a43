//! The console's model: everything on screen, and nothing that does I/O.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use comfydash_wire::{
    Alert, AlertList, AlertState, Health, Job, JobEvent, QueueState, ServerInfo, Silence,
    StatsHistory, Telemetry,
};

use crate::action::Act;
use crate::config::Setup;
use crate::jobs::JobsView;

/// Points kept per external metric.
pub const SERIES_POINTS: usize = 240;
/// External metrics kept (a misbehaving source must not grow memory without bound).
pub const MAX_SERIES: usize = 256;

/// An external metric: (source, metric name).
pub type MetricKey = (String, String);
/// Recent values of one metric, oldest first.
pub type Series = VecDeque<(DateTime<Utc>, f64)>;

/// The screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Daemon, servers, queue and success rates.
    Overview,
    /// The jobs table.
    Jobs,
    /// ComfyUI servers.
    Servers,
    /// External sources' metrics.
    Telemetry,
    /// Built-in alerts and silences.
    Alerts,
}

impl Screen {
    /// Tab order.
    pub const ALL: [Screen; 5] = [
        Screen::Overview,
        Screen::Jobs,
        Screen::Servers,
        Screen::Telemetry,
        Screen::Alerts,
    ];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            Screen::Overview => "Overview",
            Screen::Jobs => "Jobs",
            Screen::Servers => "Servers",
            Screen::Telemetry => "Telemetry",
            Screen::Alerts => "Alerts",
        }
    }

    /// Position in the tabs.
    pub fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// A window over the screen that takes the keys while open.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// The list of keys.
    Help,
    /// A destructive action waiting for `y`.
    Confirm(Confirm),
    /// The search line being typed.
    Search(String),
    /// The context picker, with the highlighted row.
    Contexts(usize),
    /// Silencing an alert: its name and the duration being chosen.
    Silence(SilenceDraft),
}

/// How long a silence from the console lasts: the choices, in order.
pub const SILENCE_DURATIONS: [&str; 4] = ["30m", "1h", "4h", "24h"];

/// A silence being set up for one alert, waiting for `y`.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceDraft {
    /// The alert's rule.
    pub rule: String,
    /// Its labels; the silence matches all of them.
    pub labels: BTreeMap<String, String>,
    /// Index into [`SILENCE_DURATIONS`].
    pub choice: usize,
}

/// A destructive action and the question that names its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// E.g. `Cancel job lensia-123?`.
    pub question: String,
    /// What `y` does.
    pub act: Act,
}

/// The event stream's state as the operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    /// First attempt in progress.
    Connecting,
    /// Events are flowing.
    Live,
    /// The daemon cannot be reached; shown data is as old as `App::heard_at`.
    Down {
        /// Why.
        error: String,
        /// When the next attempt starts.
        retry_at: DateTime<Utc>,
    },
    /// Retrying will not help (wrong key, other protocol version).
    Fatal(String),
}

/// What the key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not known yet.
    Unknown,
    /// Every action.
    Admin,
    /// Reads only: actions answer 403.
    ReadOnly,
}

/// The last action's result or error, under the screen.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    /// Text.
    pub text: String,
    /// Shown as an error.
    pub error: bool,
}

/// A daemon the console can switch to (never its key).
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// Context name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// Where its key comes from.
    pub key_source: String,
}

/// A row of the alerts screen.
#[derive(Debug, Clone, Copy)]
pub enum AlertRow<'a> {
    /// An active alert.
    Alert(&'a Alert),
    /// A silence in force.
    Silence(&'a Silence),
}

/// The job detail view.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    /// The job's id.
    pub id: String,
    /// The job once loaded.
    pub job: Option<Job>,
    /// Its log, oldest first.
    pub events: Vec<JobEvent>,
    /// Why it could not be loaded.
    pub error: Option<String>,
    /// Lines scrolled.
    pub scroll: usize,
}

/// The model.
#[derive(Debug, Clone)]
pub struct App {
    /// The time, as told by the last tick (never read from the clock here).
    pub now: DateTime<Utc>,
    /// Colours on (`NO_COLOR` turns them off).
    pub color: bool,
    /// Daemons to switch between.
    pub places: Vec<Place>,
    /// The one connected to.
    pub place: usize,
    /// The config file that defines contexts.
    pub config_path: Option<PathBuf>,
    /// Connection state.
    pub conn: Conn,
    /// The key's powers.
    pub role: Role,
    /// The screen shown.
    pub screen: Screen,
    /// A window over it.
    pub overlay: Option<Overlay>,
    /// Job detail, over the jobs screen.
    pub detail: Option<Detail>,
    /// The status line.
    pub status: Option<Status>,
    /// `GET /api/health`.
    pub health: Option<Health>,
    /// `GET /api/telemetry`, kept current by events where they exist.
    pub telemetry: Option<Telemetry>,
    /// `GET /api/queue` and `queue` events.
    pub queue: Option<QueueState>,
    /// `GET /api/servers` and `server` events.
    pub servers: Vec<ServerInfo>,
    /// `GET /api/stats/history`.
    pub history: Option<StatsHistory>,
    /// `GET /api/alerts`, kept current by `alert` events.
    pub alerts: Option<AlertList>,
    /// Selected row on the alerts screen: the active alerts, then the silences.
    pub alert_sel: usize,
    /// External metrics' recent values by (source, metric), oldest first.
    pub series: BTreeMap<MetricKey, Series>,
    /// The jobs table.
    pub jobs: JobsView,
    /// Selected server row.
    pub server_sel: usize,
    /// Selected metric row.
    pub metric_sel: usize,
    /// When the daemon last answered anything (the age of what is shown).
    pub heard_at: Option<DateTime<Utc>>,
    /// When health and telemetry are next refetched.
    pub next_refresh: Option<DateTime<Utc>>,
    /// When the queue history is next refetched.
    pub next_history: Option<DateTime<Utc>>,
    /// The operator asked to leave.
    pub quit: bool,
    /// Something changed since the last frame.
    pub dirty: bool,
}

impl App {
    /// A model for `setup`, before anything is known about the daemon.
    pub fn new(setup: &Setup, now: DateTime<Utc>) -> App {
        App {
            now,
            color: setup.color,
            places: setup
                .contexts
                .iter()
                .map(|c| Place {
                    name: c.name.clone(),
                    url: c.url.clone(),
                    key_source: c.key_source.clone(),
                })
                .collect(),
            place: setup.current,
            config_path: setup.config_path.clone(),
            conn: Conn::Connecting,
            role: Role::Unknown,
            screen: Screen::Overview,
            overlay: None,
            detail: None,
            status: None,
            health: None,
            telemetry: None,
            queue: None,
            servers: Vec::new(),
            history: None,
            alerts: None,
            alert_sel: 0,
            series: BTreeMap::new(),
            jobs: JobsView::default(),
            server_sel: 0,
            metric_sel: 0,
            heard_at: None,
            next_refresh: None,
            next_history: None,
            quit: false,
            dirty: true,
        }
    }

    /// The daemon connected to.
    pub fn place(&self) -> &Place {
        &self.places[self.place.min(self.places.len() - 1)]
    }

    /// Forgets everything about the daemon (on a context switch).
    pub fn forget(&mut self) {
        self.conn = Conn::Connecting;
        self.role = Role::Unknown;
        self.detail = None;
        self.health = None;
        self.telemetry = None;
        self.queue = None;
        self.servers.clear();
        self.history = None;
        self.alerts = None;
        self.alert_sel = 0;
        self.series.clear();
        self.jobs = JobsView::default();
        self.server_sel = 0;
        self.metric_sel = 0;
        self.heard_at = None;
        self.next_refresh = None;
        self.next_history = None;
    }

    /// Sets the status line.
    pub fn say(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
        });
    }

    /// Sets the status line to an error.
    pub fn complain(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
        });
    }

    /// The selected server.
    pub fn selected_server(&self) -> Option<&ServerInfo> {
        self.servers.get(self.server_sel)
    }

    /// The selected external metric.
    pub fn selected_metric(&self) -> Option<(&MetricKey, &Series)> {
        self.series.iter().nth(self.metric_sel)
    }

    /// Active alerts, oldest first (none before the first answer).
    pub fn active_alerts(&self) -> &[Alert] {
        self.alerts.as_ref().map_or(&[], |l| &l.active)
    }

    /// Silences in force.
    pub fn silences(&self) -> &[Silence] {
        self.alerts.as_ref().map_or(&[], |l| &l.silences)
    }

    /// Alerts that are firing now, muted or not.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.active_alerts()
            .iter()
            .filter(|a| a.state == AlertState::Firing)
    }

    /// What the selected row of the alerts screen holds.
    pub fn selected_alert_row(&self) -> Option<AlertRow<'_>> {
        let active = self.active_alerts();
        match active.get(self.alert_sel) {
            Some(a) => Some(AlertRow::Alert(a)),
            None => self
                .silences()
                .get(self.alert_sel - active.len())
                .map(AlertRow::Silence),
        }
    }

    /// Whether the queue is paused, as far as the console knows.
    pub fn paused(&self) -> Option<bool> {
        self.queue
            .as_ref()
            .map(|q| q.paused)
            .or_else(|| self.health.as_ref().map(|h| h.statistics.paused))
    }

    /// The job the action keys act on: the detail view's, else the selected row's.
    pub fn target_job(&self) -> Option<&Job> {
        match &self.detail {
            Some(d) => d.job.as_ref(),
            None if self.screen == Screen::Jobs => self.jobs.selected_job(),
            None => None,
        }
    }

    /// The target job's id, even before the detail view has loaded it.
    pub fn target_id(&self) -> Option<String> {
        match &self.detail {
            Some(d) => Some(d.id.clone()),
            None => self.target_job().map(|j| j.job_id.0.clone()),
        }
    }
}
