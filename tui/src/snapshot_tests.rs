//! Every screen drawn on a `TestBackend` at 80x24 and 160x48 and compared with committed
//! snapshots (`cargo insta review` after an intended change).

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::action::{Action, Loaded};
use crate::app::{App, Conn, Role, Screen};
use crate::fixtures::{self, now};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn draw(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| crate::ui::render(app, f)).unwrap();
    term.backend().to_string()
}

fn snap(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(app, w, h));
    }
}

fn key(app: &mut App, c: KeyCode) {
    app.update(Action::Key(KeyEvent::new(c, KeyModifiers::NONE)));
}

#[test]
fn overview() {
    snap("overview", &fixtures::app());
}

#[test]
fn overview_huge_counts() {
    snap("overview_huge", &fixtures::app_huge());
}

#[test]
fn overview_before_anything_loaded() {
    snap("overview_connecting", &fixtures::fresh());
}

#[test]
fn jobs() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('j'));
    snap("jobs", &app);
}

#[test]
fn jobs_searching() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('/'));
    for c in "猫 bike".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    snap("jobs_search", &app);
}

#[test]
fn job_detail() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Enter);
    let id = app.detail.as_ref().unwrap().id.clone();
    let events = vec![
        comfydash_wire::JobEvent {
            id: 1,
            job_id: comfydash_wire::JobId(id.clone()),
            at: now() - Duration::seconds(60),
            kind: "submitted".into(),
            from: None,
            to: Some(comfydash_wire::JobStatus::Pending),
            actor: "lensia".into(),
            detail: None,
        },
        comfydash_wire::JobEvent {
            id: 2,
            job_id: comfydash_wire::JobId(id.clone()),
            at: now() - Duration::seconds(14),
            kind: "state".into(),
            from: Some(comfydash_wire::JobStatus::Pending),
            to: Some(comfydash_wire::JobStatus::Processing),
            actor: "worker".into(),
            detail: Some(serde_json::json!({"server": "gpu0", "prompt_id": "5f0c…"})),
        },
    ];
    app.update(Action::loaded(Loaded::JobEvents(id, Ok(events))));
    snap("detail", &app);
}

/// Presses `G` on the jobs screen and answers its fetch of the last page (the fixture's jobs,
/// as the daemon sends them in the reversed sort).
fn go_to_end(app: &mut App) {
    key(app, KeyCode::Char('2'));
    let cmds = app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('G'),
        KeyModifiers::NONE,
    )));
    let (generation, page) = cmds
        .iter()
        .find_map(|c| match c {
            crate::action::Command::Fetch(crate::action::Fetch::Jobs {
                generation,
                page,
                query,
            }) => {
                assert!(query.starts_with("sort=created_at&"), "{query}");
                Some((*generation, *page))
            }
            _ => None,
        })
        .expect("G fetches the last page");
    let mut tail = fixtures::jobs();
    tail.reverse();
    app.update(Action::loaded(Loaded::Jobs {
        generation,
        page,
        result: Ok(comfydash_wire::JobPage {
            jobs: tail,
            next_cursor: Some("t1".into()),
        }),
    }));
}

#[test]
fn jobs_at_the_end() {
    let mut app = fixtures::app();
    go_to_end(&mut app);
    snap("jobs_end", &app);
}

#[test]
fn completed_job_detail_with_outputs() {
    let mut app = fixtures::app();
    go_to_end(&mut app);
    key(&mut app, KeyCode::Enter);
    snap("detail_completed", &app);
}

#[test]
fn servers() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('3'));
    key(&mut app, KeyCode::Char('j'));
    snap("servers", &app);
}

#[test]
fn telemetry() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('4'));
    snap("telemetry", &app);
}

#[test]
fn overview_with_firing_alerts() {
    snap("overview_alerting", &fixtures::app_alerting());
}

#[test]
fn alerts() {
    let mut app = fixtures::app_alerting();
    key(&mut app, KeyCode::Char('5'));
    key(&mut app, KeyCode::Char('j'));
    snap("alerts", &app);
}

#[test]
fn alerts_when_all_is_quiet() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('5'));
    snap("alerts_quiet", &app);
}

#[test]
fn silence_asks_for_how_long() {
    let mut app = fixtures::app_alerting();
    key(&mut app, KeyCode::Char('5'));
    key(&mut app, KeyCode::Char('m'));
    key(&mut app, KeyCode::Right);
    snap("silence", &app);
}

#[test]
fn help() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('?'));
    snap("help", &app);
}

#[test]
fn confirm_cancel() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::Char('c'));
    snap("confirm_cancel", &app);
}

#[test]
fn contexts() {
    let mut app = fixtures::app();
    key(&mut app, KeyCode::Char('C'));
    snap("contexts", &app);
}

#[test]
fn disconnected_shows_age_and_retry() {
    let mut app = fixtures::app();
    app.heard_at = Some(now() - Duration::seconds(42));
    app.conn = Conn::Down {
        error: "connection refused".into(),
        retry_at: now() + Duration::seconds(4),
    };
    app.screen = Screen::Jobs;
    snap("disconnected", &app);
}

#[test]
fn wrong_key() {
    let mut app = fixtures::fresh();
    app.conn =
        Conn::Fatal("the daemon refused the key: invalid API key (unauthorized, HTTP 401)".into());
    snap("fatal", &app);
}

#[test]
fn read_only_says_so() {
    let mut app = fixtures::app();
    app.role = Role::ReadOnly;
    app.color = false;
    key(&mut app, KeyCode::Char('p'));
    snap("read_only", &app);
}

#[test]
fn colours_are_the_16_ansi_ones_or_none() {
    use ratatui::style::Color;
    let mut app = fixtures::app_alerting();
    for (color, screen) in [
        (true, '1'),
        (true, '2'),
        (true, '5'),
        (false, '1'),
        (false, '4'),
        (false, '5'),
    ] {
        app.color = color;
        key(&mut app, KeyCode::Char(screen));
        let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
        term.draw(|f| crate::ui::render(&app, f)).unwrap();
        for cell in term.backend().buffer().content() {
            for c in [cell.fg, cell.bg] {
                if color {
                    assert!(
                        !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                        "{c:?} needs more than 16 colours"
                    );
                } else {
                    assert_eq!(c, Color::Reset, "NO_COLOR drawn in colour");
                }
            }
        }
    }
}
