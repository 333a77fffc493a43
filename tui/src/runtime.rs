//! The one task that runs the console: it turns keys, ticks, signals and daemon results into
//! actions, feeds them to the model, runs the commands that come back, and draws at a bounded
//! rate and only after a change.

use std::io;
use std::time::Duration;

use chrono::Utc;
use crossterm::event::Event;
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::buffer::Buffer;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::TuiError;
use crate::action::{Action, Command};
use crate::app::App;
use crate::config::Setup;
use crate::daemon::Link;

/// Clock tick: ages, countdowns and the slow refresh timers move this often.
const TICK: Duration = Duration::from_secs(1);
/// Least time between two frames, so a burst of events costs at most 10 frames a second.
const MIN_FRAME: Duration = Duration::from_millis(100);
/// Actions handled before the next frame is considered, so a burst is drawn once.
const BATCH: usize = 512;
/// Actions queued from the daemon before its readers wait (the daemon then sends `resync`).
const QUEUE: usize = 4096;

/// Runs the console on `terminal`, reading terminal events from `input` and calling `on_frame`
/// with each drawn frame, until the operator quits or `input` ends.
pub async fn run_on<B, S, F>(
    terminal: &mut Terminal<B>,
    setup: Setup,
    input: S,
    mut on_frame: F,
) -> Result<(), TuiError>
where
    B: Backend,
    S: Stream<Item = io::Result<Event>>,
    F: FnMut(&Buffer),
{
    let mut app = App::new(&setup, Utc::now());
    let (mut link, mut rx) = connect(&setup, setup.current);
    let mut input = std::pin::pin!(input);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut signals = Signals::new(setup.interactive)?;
    draw(terminal, &mut app, &mut on_frame)?;
    let mut last_frame = Instant::now();
    loop {
        let frame_at = last_frame + MIN_FRAME;
        let action = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(k))) => Some(Action::Key(k)),
                Some(Ok(Event::Resize(..))) => Some(Action::Resize),
                Some(Ok(_)) => None,
                Some(Err(e)) => return Err(e.into()),
                None => Some(Action::Quit),
            },
            Some(a) = rx.recv() => Some(a),
            _ = tick.tick() => Some(Action::Tick(Utc::now())),
            _ = signals.recv() => Some(Action::Quit),
            _ = tokio::time::sleep_until(frame_at), if app.dirty => None,
        };
        if let Some(a) = action {
            let mut cmds = app.update(a);
            // Take whatever else is already queued, so a burst of events becomes one frame.
            for _ in 0..BATCH {
                match rx.try_recv() {
                    Ok(a) => cmds.extend(app.update(a)),
                    Err(_) => break,
                }
            }
            for c in cmds {
                if let Command::SwitchContext(i) = c {
                    (link, rx) = connect(&setup, i);
                } else {
                    run_command(&link, &setup, c);
                }
            }
        }
        if app.quit {
            return Ok(());
        }
        if app.dirty && last_frame.elapsed() >= MIN_FRAME {
            draw(terminal, &mut app, &mut on_frame)?;
            last_frame = Instant::now();
        }
    }
}

/// A link to context `i`, with its own channel so answers from a previous context are dropped.
fn connect(setup: &Setup, i: usize) -> (Link, mpsc::Receiver<Action>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let ctx = &setup.contexts[i.min(setup.contexts.len() - 1)];
    (Link::start(ctx, tx), rx)
}

fn run_command(link: &Link, setup: &Setup, c: Command) {
    match c {
        Command::Fetch(f) => link.fetch(f),
        Command::Act(a) => link.act(a),
        Command::Reconnect => link.reconnect(),
        Command::Copy(text) => {
            if setup.interactive {
                // A terminal without OSC 52 ignores it; nothing useful to do on failure.
                let _ = crate::terminal::copy(&text);
            }
        }
        Command::SwitchContext(_) => {}
    }
}

fn draw<B: Backend, F: FnMut(&Buffer)>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    on_frame: &mut F,
) -> Result<(), TuiError> {
    let frame = terminal
        .draw(|f| crate::ui::render(app, f))
        .map_err(|e| TuiError::Terminal(io::Error::other(e.to_string())))?;
    on_frame(frame.buffer);
    app.dirty = false;
    Ok(())
}

/// SIGTERM, SIGHUP (the SSH session went away) and SIGINT, when the console owns the terminal.
struct Signals {
    #[cfg(unix)]
    unix: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    fn new(on: bool) -> io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let unix = if on {
                Some([
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::hangup())?,
                    signal(SignalKind::interrupt())?,
                ])
            } else {
                None
            };
            Ok(Signals { unix })
        }
        #[cfg(not(unix))]
        {
            let _ = on;
            Ok(Signals {})
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some([term, hup, int]) = &mut self.unix {
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        std::future::pending::<()>().await
    }
}
