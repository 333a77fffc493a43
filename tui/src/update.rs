//! `App::update`: how each action changes the model and which commands follow. No I/O here.

use chrono::{DateTime, Duration, Utc};
use comfydash_wire::{
    Alert, AlertState, ExternalValue, JobStatus, JobUpdate, ServerHealth, ServerInfo, ServerUpdate,
    StreamEvent, TelemetryUpdate,
};

use crate::action::{Act, Action, Command, Failure, Fetch, LinkState, Loaded};
use crate::app::{App, Conn, MAX_SERIES, Role, SERIES_POINTS, Screen};
use crate::jobs::apply_update;

/// Health and telemetry have no events of their own; they are refetched this often.
pub const REFRESH: Duration = Duration::seconds(5);
/// The queue history gains a sample every 10 s by default.
pub const HISTORY_REFRESH: Duration = Duration::seconds(10);
/// How far back the telemetry screen looks.
const EXTERNAL_WINDOW: Duration = Duration::hours(1);
/// Resolved alerts kept for the alerts screen.
pub const ALERT_HISTORY: usize = 20;

impl App {
    /// Applies one action; returns what the runtime should do next.
    pub fn update(&mut self, action: Action) -> Vec<Command> {
        // Every action can change what is drawn; the runtime bounds the frame rate.
        self.dirty = true;
        match action {
            Action::Key(k) => self.on_key(k),
            Action::Resize => Vec::new(),
            Action::Tick(now) => self.on_tick(now),
            Action::Link(state) => self.on_link(state),
            Action::Event(e) => {
                self.heard_at = Some(self.now);
                self.on_event(e)
            }
            Action::Loaded(l) => self.on_loaded(*l),
            Action::Done { act, result } => {
                let what = act.describe();
                match result {
                    Ok(msg) => {
                        self.say(format!("{what}: {msg}"));
                        // Silences have no events of their own: read them back now, and at
                        // the next tick, after the daemon's next evaluation has (un)muted alerts.
                        if matches!(act, Act::Silence(_) | Act::EndSilence(_)) {
                            self.next_refresh = Some(self.now);
                            return vec![Command::Fetch(Fetch::Alerts)];
                        }
                        // Channels, servers and templates may all have changed.
                        if act == Act::Reload {
                            return self.fetch_all();
                        }
                    }
                    Err(f) => {
                        if f.status == Some(403) {
                            self.role = Role::ReadOnly;
                        }
                        self.complain(format!("{what} failed: {f}"));
                    }
                }
                Vec::new()
            }
            Action::Quit => {
                self.quit = true;
                Vec::new()
            }
        }
    }

    /// Everything the screens show, fetched again (on connect and on `resync`).
    pub fn fetch_all(&mut self) -> Vec<Command> {
        let mut f = vec![
            Fetch::Health,
            Fetch::Telemetry,
            Fetch::Queue,
            Fetch::Servers,
            Fetch::History,
            Fetch::External {
                since: self.now - EXTERNAL_WINDOW,
            },
            Fetch::Alerts,
        ];
        if self.role == Role::Unknown {
            f.push(Fetch::Role);
        }
        if self.jobs.loaded {
            f.extend(self.jobs.refresh_top());
        } else if !self.jobs.loading() {
            f.push(self.jobs.reset());
        }
        if let Some(d) = &self.detail {
            f.push(Fetch::Job(d.id.clone()));
            f.push(Fetch::JobEvents(d.id.clone()));
        }
        self.next_refresh = Some(self.now + REFRESH);
        self.next_history = Some(self.now + HISTORY_REFRESH);
        f.into_iter().map(Command::Fetch).collect()
    }

    fn on_tick(&mut self, now: DateTime<Utc>) -> Vec<Command> {
        self.now = now;
        if self.conn != Conn::Live {
            return Vec::new();
        }
        let mut f = Vec::new();
        if self.next_refresh.is_none_or(|t| t <= now) {
            self.next_refresh = Some(now + REFRESH);
            f.extend([Fetch::Health, Fetch::Telemetry]);
            // Others' silences and changed mutes have no events; refetch while they are shown.
            if self.screen == Screen::Alerts {
                f.push(Fetch::Alerts);
            }
        }
        if self.next_history.is_none_or(|t| t <= now) {
            self.next_history = Some(now + HISTORY_REFRESH);
            f.push(Fetch::History);
        }
        // New jobs arrive as events without their full rows: refetch the top at most once a tick.
        if self.jobs.stale && self.screen == Screen::Jobs {
            f.extend(self.jobs.refresh_top());
        }
        f.into_iter().map(Command::Fetch).collect()
    }

    fn on_link(&mut self, state: LinkState) -> Vec<Command> {
        match state {
            LinkState::Up => {
                if matches!(self.conn, Conn::Down { .. }) {
                    self.say("reconnected");
                }
                self.conn = Conn::Live;
                self.heard_at = Some(self.now);
                self.fetch_all()
            }
            LinkState::Down { error, retry_in } => {
                self.conn = Conn::Down {
                    error,
                    retry_at: self.now
                        + Duration::from_std(retry_in).unwrap_or(Duration::seconds(1)),
                };
                Vec::new()
            }
            LinkState::Fatal(m) => {
                self.conn = Conn::Fatal(m);
                Vec::new()
            }
        }
    }

    fn on_event(&mut self, e: StreamEvent) -> Vec<Command> {
        match e {
            StreamEvent::Job(u) => return self.on_job(&u),
            StreamEvent::Queue(q) => {
                if let Some(h) = &mut self.health {
                    h.statistics.pending = q.pending;
                    h.statistics.processing = q.processing;
                    h.statistics.paused = q.paused;
                }
                self.queue = Some(q);
            }
            StreamEvent::Server(s) => self.on_server(s),
            StreamEvent::Telemetry(t) => self.on_external(t),
            StreamEvent::Alert(a) => self.on_alert(a.alert),
            StreamEvent::Webhooks(w) => {
                // The webhook gauge follows deliveries live instead of waiting for the slow refresh.
                if let Some(t) = &mut self.telemetry {
                    t.webhooks = w;
                }
            }
            StreamEvent::Resync(r) => {
                self.say(format!("resynchronising ({})", r.reason));
                return self.fetch_all();
            }
        }
        Vec::new()
    }

    fn on_job(&mut self, u: &JobUpdate) -> Vec<Command> {
        let shown = self.jobs.apply(u);
        if !shown && self.jobs.shows_new_jobs() {
            let matches = self.jobs.filter.is_none_or(|f| f == u.status);
            let new_at_top = match self.jobs.sort_name() {
                "-created_at" => u.status == JobStatus::Pending,
                "-updated_at" => true,
                _ => !self.jobs.more(),
            };
            if matches && new_at_top {
                self.jobs.stale = true;
            }
        }
        let mut cmds = Vec::new();
        if let Some(d) = &mut self.detail
            && d.id == u.job_id.0
        {
            let before = d.job.as_ref().map(|j| j.status);
            if let Some(job) = &mut d.job {
                apply_update(job, u);
            }
            if before != Some(u.status) {
                // A new state means a new log line and, at the end, outputs.
                cmds.push(Command::Fetch(Fetch::JobEvents(d.id.clone())));
                cmds.push(Command::Fetch(Fetch::Job(d.id.clone())));
            }
        }
        cmds
    }

    /// An alert changed: keep the lists current and say so when it fires or resolves.
    fn on_alert(&mut self, a: Alert) {
        let name = crate::units::matcher(Some(&a.rule), &a.labels);
        match a.state {
            AlertState::Firing => self.complain(format!("alert {name} firing: {}", a.summary)),
            AlertState::Resolved => self.say(format!("alert {name} resolved")),
            AlertState::Pending => {}
        }
        // Before the first answer there is nothing to keep current; that answer includes it.
        let Some(list) = &mut self.alerts else {
            return;
        };
        let at = list.active.iter().position(|x| x.id == a.id);
        match (a.state, at) {
            (AlertState::Resolved, at) => {
                if let Some(i) = at {
                    list.active.remove(i);
                }
                list.history.retain(|x| x.id != a.id);
                list.history.insert(0, a);
                list.history.truncate(ALERT_HISTORY);
            }
            (_, Some(i)) => list.active[i] = a,
            (_, None) => list.active.push(a),
        }
        let rows = list.active.len() + list.silences.len();
        self.alert_sel = self.alert_sel.min(rows.saturating_sub(1));
    }

    fn on_server(&mut self, s: ServerUpdate) {
        if let Some(h) = &mut self.health {
            match h
                .services
                .comfyui
                .servers
                .iter_mut()
                .find(|x| x.name == s.name)
            {
                Some(x) => {
                    x.status = s.status;
                    x.latency_ms = s.latency_ms;
                }
                None => h.services.comfyui.servers.push(ServerHealth {
                    name: s.name.clone(),
                    status: s.status,
                    latency_ms: s.latency_ms,
                }),
            }
        }
        match self.servers.iter_mut().find(|x| x.name == s.name) {
            Some(x) => {
                if s.status.is_up() {
                    x.consecutive_failures = 0;
                }
                x.status = s.status;
                x.latency_ms = s.latency_ms;
                x.device = s.device.or(x.device.take());
                x.vram_total = s.vram_total.or(x.vram_total);
                x.vram_free = s.vram_free.or(x.vram_free);
                x.in_flight = s.in_flight;
            }
            None => self.servers.push(ServerInfo {
                name: s.name,
                url: String::new(),
                status: s.status,
                latency_ms: s.latency_ms,
                device: s.device,
                vram_total: s.vram_total,
                vram_free: s.vram_free,
                version: None,
                in_flight: s.in_flight,
                consecutive_failures: 0,
            }),
        }
    }

    fn on_external(&mut self, t: TelemetryUpdate) {
        for (metric, value) in t.metrics {
            if let Some(tel) = &mut self.telemetry {
                tel.external.entry(t.source.clone()).or_default().insert(
                    metric.clone(),
                    ExternalValue {
                        value,
                        timestamp: t.timestamp,
                    },
                );
            }
            self.push_point(t.source.clone(), metric, t.timestamp, value);
        }
    }

    fn push_point(&mut self, source: String, metric: String, at: DateTime<Utc>, value: f64) {
        let key = (source, metric);
        if !self.series.contains_key(&key) && self.series.len() >= MAX_SERIES {
            return;
        }
        let s = self.series.entry(key).or_default();
        s.push_back((at, value));
        while s.len() > SERIES_POINTS {
            s.pop_front();
        }
    }

    /// Adds telemetry's latest external values to the series where they are newer (the two
    /// answers arrive in either order, and a report may come between them).
    fn merge_latest(&mut self) {
        let Some(tel) = &self.telemetry else {
            return;
        };
        let mut newer = Vec::new();
        for (source, metrics) in &tel.external {
            for (metric, x) in metrics {
                let known = self
                    .series
                    .get(&(source.clone(), metric.clone()))
                    .and_then(|s| s.back())
                    .is_some_and(|p| p.0 >= x.timestamp);
                if !known {
                    newer.push((source.clone(), metric.clone(), x.timestamp, x.value));
                }
            }
        }
        for (source, metric, at, value) in newer {
            self.push_point(source, metric, at, value);
        }
    }

    fn on_loaded(&mut self, l: Loaded) -> Vec<Command> {
        let mut cmds = Vec::new();
        let failure = match l {
            Loaded::Health(r) => r.map(|v| self.health = Some(v)).err(),
            Loaded::Telemetry(r) => r
                .map(|v| {
                    self.telemetry = Some(v);
                    self.merge_latest();
                })
                .err(),
            Loaded::Queue(r) => r.map(|v| self.queue = Some(v)).err(),
            Loaded::Servers(r) => r
                .map(|v| {
                    self.servers = v.servers;
                    self.server_sel = self.server_sel.min(self.servers.len().saturating_sub(1));
                })
                .err(),
            Loaded::History(r) => r.map(|v| self.history = Some(v)).err(),
            Loaded::Alerts(r) => r
                .map(|v| {
                    let rows = v.active.len() + v.silences.len();
                    self.alert_sel = self.alert_sel.min(rows.saturating_sub(1));
                    self.alerts = Some(v);
                })
                .err(),
            Loaded::External(r) => r
                .map(|v| {
                    self.series.clear();
                    for p in v.points {
                        self.push_point(p.source, p.metric, p.timestamp, p.value);
                    }
                    self.merge_latest();
                })
                .err(),
            Loaded::Jobs {
                generation,
                page,
                result,
            } => match result {
                Ok(p) => {
                    self.jobs.on_page(generation, page, p);
                    None
                }
                Err(f) => {
                    self.jobs.on_error(generation);
                    Some(f)
                }
            },
            Loaded::Job(id, r) => match r {
                Ok(job) => {
                    self.jobs.replace(&job);
                    if let Some(d) = &mut self.detail
                        && d.id == id
                    {
                        d.job = Some(job);
                        d.error = None;
                    }
                    None
                }
                Err(f) => {
                    if let Some(d) = &mut self.detail
                        && d.id == id
                    {
                        d.error = Some(f.to_string());
                    }
                    Some(f)
                }
            },
            Loaded::JobEvents(id, r) => r
                .map(|events| {
                    if let Some(d) = &mut self.detail
                        && d.id == id
                    {
                        d.events = events;
                    }
                })
                .err(),
            Loaded::Role(r) => r
                .map(|admin| {
                    self.role = if admin { Role::Admin } else { Role::ReadOnly };
                })
                .err(),
        };
        match failure {
            None => self.heard_at = Some(self.now),
            Some(f) => cmds.extend(self.on_failure(f)),
        }
        cmds
    }

    fn on_failure(&mut self, f: Failure) -> Vec<Command> {
        match (f.status, f.code.as_str()) {
            (Some(401), _) => {
                self.conn = Conn::Fatal(format!(
                    "the daemon refused the key ({}): {}",
                    self.place().key_source,
                    f.message
                ));
                Vec::new()
            }
            (None, "protocol") => {
                self.conn = Conn::Fatal(f.message);
                Vec::new()
            }
            // The stream may still look open on a half-dead connection; make the link check.
            (None, "unreachable") if self.conn == Conn::Live => vec![Command::Reconnect],
            (None, "unreachable") => Vec::new(),
            _ => {
                self.complain(f.to_string());
                Vec::new()
            }
        }
    }
}
