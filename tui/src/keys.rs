//! The key map: one table that the help overlay and the footer show, and the dispatch that turns
//! a key into a change of the model and commands.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use comfydash_wire::NewSilence;

use crate::action::{Act, Command, Fetch, ServerAct};
use crate::app::{
    AlertRow, App, Confirm, Detail, Overlay, Role, SILENCE_DURATIONS, Screen, SilenceDraft,
};
use crate::jobs::SORTS;
use crate::units::{matcher, short_id};

/// One line of help.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys, as printed.
    pub keys: &'static str,
    /// What they do.
    pub what: &'static str,
}

const fn b(keys: &'static str, what: &'static str) -> Binding {
    Binding { keys, what }
}

/// Every key, in the order the help overlay lists them.
pub const BINDINGS: &[Binding] = &[
    b("q ^c", "quit"),
    b("?", "help"),
    b("tab 1-5", "switch screen"),
    b("j k ↓ ↑", "move / scroll"),
    b("PgDn PgUp", "move by 10 (also ^d ^u)"),
    b("g G", "first / last row"),
    b("enter", "job detail"),
    b("esc", "back / clear filter"),
    b("/", "search jobs (q=)"),
    b("s", "status filter"),
    b("o", "sort order"),
    b("r", "retry job"),
    b("c", "cancel job (asks)"),
    b("w", "redeliver webhook"),
    b("y", "copy job id"),
    b("p", "pause (asks) / resume"),
    b("d", "drain server (asks)"),
    b("e", "enable server"),
    b("D", "disable server (asks)"),
    b("f", "free server memory"),
    b("R", "reload config (asks)"),
    b("m", "silence alert (asks)"),
    b("u", "end silence (asks)"),
    b("C", "switch context"),
    b("ctrl-r", "refetch everything"),
];

/// The footer's hints for what is on screen, most useful first.
pub fn hints(app: &App) -> &'static [(&'static str, &'static str)] {
    match (&app.overlay, &app.detail, app.screen) {
        (Some(Overlay::Search(_)), _, _) => &[("enter", "apply"), ("esc", "cancel")],
        (Some(Overlay::Confirm(_)), _, _) => &[("y", "yes"), ("n esc", "no")],
        (Some(Overlay::Contexts(_)), _, _) => &[("enter", "connect"), ("esc", "close")],
        (Some(Overlay::Help), _, _) => &[("esc", "close")],
        (Some(Overlay::Silence(_)), _, _) => {
            &[("←/→", "duration"), ("y", "silence"), ("n esc", "no")]
        }
        (None, Some(_), _) => &[
            ("esc", "back"),
            ("r", "retry"),
            ("c", "cancel"),
            ("w", "webhook"),
            ("y", "copy id"),
            ("j/k", "scroll"),
        ],
        (None, None, Screen::Jobs) => &[
            ("enter", "detail"),
            ("/", "search"),
            ("s", "status"),
            ("o", "sort"),
            ("r", "retry"),
            ("c", "cancel"),
            ("y", "copy"),
            ("q", "quit"),
        ],
        (None, None, Screen::Servers) => &[
            ("d", "drain"),
            ("e", "enable"),
            ("D", "disable"),
            ("f", "free"),
            ("p", "pause"),
            ("R", "reload config"),
            ("q", "quit"),
        ],
        (None, None, Screen::Alerts) => &[
            ("j/k", "select"),
            ("m", "silence"),
            ("u", "end silence"),
            ("tab", "screens"),
            ("q", "quit"),
        ],
        (None, None, _) => &[
            ("tab", "screens"),
            ("p", "pause/resume"),
            ("C", "context"),
            ("q", "quit"),
        ],
    }
}

impl App {
    /// Handles one key.
    pub fn on_key(&mut self, k: KeyEvent) -> Vec<Command> {
        if k.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && k.code == KeyCode::Char('c') {
            self.quit = true;
            return Vec::new();
        }
        match self.overlay.take() {
            None => self.screen_key(k.code, ctrl),
            Some(Overlay::Help) => Vec::new(),
            Some(Overlay::Confirm(c)) => match k.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => self.act(c.act),
                KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => {
                    self.say("not done");
                    Vec::new()
                }
                _ => {
                    self.overlay = Some(Overlay::Confirm(c));
                    Vec::new()
                }
            },
            Some(Overlay::Search(mut text)) => match k.code {
                KeyCode::Enter => {
                    self.jobs.search = text.trim().to_string();
                    self.detail = None;
                    vec![Command::Fetch(self.jobs.reset())]
                }
                KeyCode::Esc => Vec::new(),
                code => {
                    match code {
                        KeyCode::Backspace => {
                            text.pop();
                        }
                        KeyCode::Char('u') if ctrl => text.clear(),
                        // The daemon takes at most 256 bytes.
                        KeyCode::Char(c) if !ctrl && text.len() + c.len_utf8() <= 256 => {
                            text.push(c)
                        }
                        _ => {}
                    }
                    self.overlay = Some(Overlay::Search(text));
                    Vec::new()
                }
            },
            Some(Overlay::Silence(mut d)) => match k.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => {
                    let act = Act::Silence(NewSilence {
                        rule: Some(d.rule),
                        labels: d.labels,
                        duration: Some(SILENCE_DURATIONS[d.choice].to_string()),
                        ends_at: None,
                        comment: Some("from the console".into()),
                    });
                    self.act(act)
                }
                KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => {
                    self.say("not done");
                    Vec::new()
                }
                code => {
                    let n = SILENCE_DURATIONS.len();
                    match code {
                        KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => {
                            d.choice = (d.choice + 1) % n
                        }
                        KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => {
                            d.choice = (d.choice + n - 1) % n
                        }
                        _ => {}
                    }
                    self.overlay = Some(Overlay::Silence(d));
                    Vec::new()
                }
            },
            Some(Overlay::Contexts(i)) => match k.code {
                KeyCode::Char('j') | KeyCode::Down => {
                    self.overlay = Some(Overlay::Contexts((i + 1).min(self.places.len() - 1)));
                    Vec::new()
                }
                KeyCode::Char('k') | KeyCode::Up => {
                    self.overlay = Some(Overlay::Contexts(i.saturating_sub(1)));
                    Vec::new()
                }
                KeyCode::Enter if i != self.place => {
                    self.place = i;
                    self.forget();
                    self.say(format!("switching to {}", self.place().name));
                    vec![Command::SwitchContext(i)]
                }
                _ => Vec::new(),
            },
        }
    }

    fn screen_key(&mut self, code: KeyCode, ctrl: bool) -> Vec<Command> {
        match code {
            KeyCode::Char('r') if ctrl => {
                let mut cmds = self.fetch_all();
                if !matches!(self.conn, crate::app::Conn::Live) {
                    cmds.push(Command::Reconnect);
                }
                cmds
            }
            KeyCode::Char('d') if ctrl => self.move_sel(10),
            KeyCode::Char('u') if ctrl => self.move_sel(-10),
            KeyCode::Char('q') => {
                self.quit = true;
                Vec::new()
            }
            KeyCode::Char('?') => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            KeyCode::Tab => {
                let n = Screen::ALL.len();
                self.show(Screen::ALL[(self.screen.index() + 1) % n])
            }
            KeyCode::BackTab => {
                let n = Screen::ALL.len();
                self.show(Screen::ALL[(self.screen.index() + n - 1) % n])
            }
            KeyCode::Char(c @ '1'..='5') => self.show(Screen::ALL[c as usize - '1' as usize]),
            KeyCode::Char('C') => {
                if self.places.len() > 1 {
                    self.overlay = Some(Overlay::Contexts(self.place));
                } else {
                    let path = self
                        .config_path
                        .as_ref()
                        .map_or("tui.toml".into(), |p| p.display().to_string());
                    self.say(format!("no other daemons: add [contexts.NAME] to {path}"));
                }
                Vec::new()
            }
            KeyCode::Char('j') | KeyCode::Down => self.move_sel(1),
            KeyCode::Char('k') | KeyCode::Up => self.move_sel(-1),
            KeyCode::PageDown => self.move_sel(10),
            KeyCode::PageUp => self.move_sel(-10),
            KeyCode::Char('g') | KeyCode::Home => self.move_end(false),
            KeyCode::Char('G') | KeyCode::End => self.move_end(true),
            KeyCode::Enter => self.open_detail(),
            KeyCode::Esc => {
                if self.detail.take().is_none()
                    && self.screen == Screen::Jobs
                    && (self.jobs.filter.is_some() || !self.jobs.search.is_empty())
                {
                    self.jobs.filter = None;
                    self.jobs.search.clear();
                    return vec![Command::Fetch(self.jobs.reset())];
                }
                Vec::new()
            }
            KeyCode::Char('/') => {
                self.screen = Screen::Jobs;
                self.overlay = Some(Overlay::Search(self.jobs.search.clone()));
                Vec::new()
            }
            KeyCode::Char('s') => {
                use comfydash_wire::JobStatus;
                let all = JobStatus::ALL;
                self.jobs.filter = match self.jobs.filter {
                    None => Some(all[0]),
                    Some(s) => all
                        .iter()
                        .position(|x| *x == s)
                        .and_then(|i| all.get(i + 1))
                        .copied(),
                };
                self.screen = Screen::Jobs;
                self.detail = None;
                vec![Command::Fetch(self.jobs.reset())]
            }
            KeyCode::Char('o') => {
                self.jobs.sort = (self.jobs.sort + 1) % SORTS.len();
                self.screen = Screen::Jobs;
                self.detail = None;
                vec![Command::Fetch(self.jobs.reset())]
            }
            KeyCode::Char('r') => self.job_act(|id| (None, Act::Retry(id))),
            KeyCode::Char('c') => {
                self.job_act(|id| (Some(format!("Cancel job {id}?")), Act::Cancel(id)))
            }
            KeyCode::Char('w') => self.job_act(|id| (None, Act::Redeliver(id))),
            KeyCode::Char('y') => match self.target_id() {
                Some(id) => {
                    self.say(format!("copied {id}"));
                    vec![Command::Copy(id)]
                }
                None => Vec::new(),
            },
            KeyCode::Char('p') => match self.paused() {
                Some(true) => self.guarded(None, Act::Pause(false)),
                Some(false) => self.guarded(
                    Some(format!(
                        "Pause the queue of {}? Running jobs finish; no new job starts.",
                        self.place().name
                    )),
                    Act::Pause(true),
                ),
                None => {
                    self.complain("queue state not known yet");
                    Vec::new()
                }
            },
            KeyCode::Char('d') => self.server_act(ServerAct::Drain),
            KeyCode::Char('e') => self.server_act(ServerAct::Enable),
            KeyCode::Char('D') => self.server_act(ServerAct::Disable),
            KeyCode::Char('f') => self.server_act(ServerAct::Free),
            KeyCode::Char('R') => {
                let question = format!(
                    "Reload the configuration of {}? It re-reads its file as on SIGHUP: keys, templates, servers, alerts, webhook secrets.",
                    self.place().name
                );
                self.guarded(Some(question), Act::Reload)
            }
            KeyCode::Char('m') => self.silence_alert(),
            KeyCode::Char('u') => self.end_silence(),
            _ => Vec::new(),
        }
    }

    fn show(&mut self, screen: Screen) -> Vec<Command> {
        self.screen = screen;
        self.detail = None;
        if screen == Screen::Jobs && !self.jobs.loaded && !self.jobs.loading() {
            return vec![Command::Fetch(self.jobs.reset())];
        }
        if screen == Screen::Alerts {
            return vec![Command::Fetch(Fetch::Alerts)];
        }
        if screen == Screen::Jobs && self.jobs.stale {
            return self
                .jobs
                .refresh_top()
                .map(Command::Fetch)
                .into_iter()
                .collect();
        }
        Vec::new()
    }

    fn move_sel(&mut self, delta: isize) -> Vec<Command> {
        if let Some(d) = &mut self.detail {
            d.scroll = d.scroll.saturating_add_signed(delta);
            return Vec::new();
        }
        let step =
            |sel: usize, len: usize| sel.saturating_add_signed(delta).min(len.saturating_sub(1));
        match self.screen {
            Screen::Jobs => {
                return self
                    .jobs
                    .move_by(delta)
                    .map(Command::Fetch)
                    .into_iter()
                    .collect();
            }
            Screen::Servers => self.server_sel = step(self.server_sel, self.servers.len()),
            Screen::Overview => {}
            Screen::Telemetry => self.metric_sel = step(self.metric_sel, self.series.len()),
            Screen::Alerts => self.alert_sel = step(self.alert_sel, self.alert_rows()),
        }
        Vec::new()
    }

    fn move_end(&mut self, last: bool) -> Vec<Command> {
        if let Some(d) = &mut self.detail {
            d.scroll = if last { usize::MAX / 2 } else { 0 };
            return Vec::new();
        }
        let pick = |len: usize| if last { len.saturating_sub(1) } else { 0 };
        match self.screen {
            Screen::Jobs => {
                let f = if last {
                    self.jobs.bottom()
                } else {
                    self.jobs.top()
                };
                return f.map(Command::Fetch).into_iter().collect();
            }
            Screen::Servers => self.server_sel = pick(self.servers.len()),
            Screen::Overview => {}
            Screen::Telemetry => self.metric_sel = pick(self.series.len()),
            Screen::Alerts => self.alert_sel = pick(self.alert_rows()),
        }
        Vec::new()
    }

    fn open_detail(&mut self) -> Vec<Command> {
        if self.screen != Screen::Jobs || self.detail.is_some() {
            return Vec::new();
        }
        let Some(job) = self.jobs.selected_job() else {
            return Vec::new();
        };
        let id = job.job_id.0.clone();
        self.detail = Some(Detail {
            id: id.clone(),
            job: Some(job.clone()),
            ..Detail::default()
        });
        vec![
            Command::Fetch(Fetch::Job(id.clone())),
            Command::Fetch(Fetch::JobEvents(id)),
        ]
    }

    fn job_act(&mut self, f: impl FnOnce(String) -> (Option<String>, Act)) -> Vec<Command> {
        match self.target_id() {
            Some(id) => {
                let (question, act) = f(id);
                self.guarded(question, act)
            }
            None => {
                self.complain("no job selected (open the Jobs screen: 2)");
                Vec::new()
            }
        }
    }

    fn server_act(&mut self, a: ServerAct) -> Vec<Command> {
        if self.screen != Screen::Servers {
            self.complain(format!(
                "{} acts on a server: open the Servers screen (3)",
                a.as_str()
            ));
            return Vec::new();
        }
        let Some(name) = self.selected_server().map(|s| s.name.clone()) else {
            self.complain("no server selected");
            return Vec::new();
        };
        let question = match a {
            ServerAct::Drain => Some(format!(
                "Drain server {name}? It finishes its jobs and takes no new ones."
            )),
            ServerAct::Disable => Some(format!("Disable server {name}? It gets no jobs at all.")),
            ServerAct::Enable | ServerAct::Free => None,
        };
        self.guarded(question, Act::Server(name, a))
    }

    fn alert_rows(&self) -> usize {
        self.active_alerts().len() + self.silences().len()
    }

    /// Opens the silence dialog for the selected alert (its rule and all its labels).
    fn silence_alert(&mut self) -> Vec<Command> {
        if self.screen != Screen::Alerts {
            self.complain("m silences an alert: open the Alerts screen (5)");
            return Vec::new();
        }
        let draft = match self.selected_alert_row() {
            Some(AlertRow::Alert(a)) => SilenceDraft {
                rule: a.rule.clone(),
                labels: a.labels.clone(),
                choice: 1,
            },
            Some(AlertRow::Silence(_)) => {
                self.complain("select an alert to silence (u ends the selected silence)");
                return Vec::new();
            }
            None => {
                self.complain("no alert selected");
                return Vec::new();
            }
        };
        if self.role == Role::ReadOnly {
            self.complain(format!(
                "read-only key: silence {} needs an admin key",
                matcher(Some(&draft.rule), &draft.labels)
            ));
            return Vec::new();
        }
        self.overlay = Some(Overlay::Silence(draft));
        Vec::new()
    }

    /// Asks to end the selected silence, or the one that mutes the selected alert.
    fn end_silence(&mut self) -> Vec<Command> {
        if self.screen != Screen::Alerts {
            self.complain("u ends a silence: open the Alerts screen (5)");
            return Vec::new();
        }
        let id = match self.selected_alert_row() {
            Some(AlertRow::Silence(s)) => s.id.clone(),
            Some(AlertRow::Alert(a)) => {
                match a.muted.as_deref().and_then(|m| m.strip_prefix("silenced:")) {
                    Some(id) => id.to_string(),
                    None => {
                        let name = matcher(Some(&a.rule), &a.labels);
                        self.complain(format!("{name} is not silenced"));
                        return Vec::new();
                    }
                }
            }
            None => {
                self.complain("no silence selected");
                return Vec::new();
            }
        };
        let what = self
            .silences()
            .iter()
            .find(|s| s.id == id)
            .map(|s| format!(" ({})", matcher(s.rule.as_deref(), &s.labels)))
            .unwrap_or_default();
        let question = format!(
            "End silence {}{what}? Alerts it mutes notify again.",
            short_id(&id)
        );
        self.guarded(Some(question), Act::EndSilence(id))
    }

    /// Runs `act`, or asks first when there is a question; refuses on a read-only key.
    fn guarded(&mut self, question: Option<String>, act: Act) -> Vec<Command> {
        if self.role == Role::ReadOnly {
            self.complain(format!(
                "read-only key: {} needs an admin key",
                act.describe()
            ));
            return Vec::new();
        }
        match question {
            Some(question) => {
                self.overlay = Some(Overlay::Confirm(Confirm { question, act }));
                Vec::new()
            }
            None => self.act(act),
        }
    }

    fn act(&mut self, act: Act) -> Vec<Command> {
        self.say(format!("{}…", act.describe()));
        vec![Command::Act(act)]
    }
}
