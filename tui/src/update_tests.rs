//! Key sequences and daemon events produce the right commands.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::action::{Act, Action, Command, Failure, Fetch, LinkState, ServerAct};
use crate::app::{App, Conn, Overlay, Role, Screen};
use crate::fixtures;

fn press(app: &mut App, keys: &str) -> Vec<Command> {
    let mut out = Vec::new();
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        out.extend(app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE))));
    }
    out
}

fn acts(cmds: &[Command]) -> Vec<Act> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Act(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn retry_acts_on_the_selected_job() {
    let mut app = fixtures::app();
    let cmds = press(&mut app, "2jjjr");
    assert_eq!(acts(&cmds), vec![Act::Retry("lensia-8790".into())]);
}

#[test]
fn cancel_only_after_confirmation() {
    let mut app = fixtures::app();
    let cmds = press(&mut app, "2jc");
    assert!(acts(&cmds).is_empty(), "asked first: {cmds:?}");
    match &app.overlay {
        Some(Overlay::Confirm(c)) => assert_eq!(c.question, "Cancel job lensia-8812?"),
        other => panic!("expected a confirmation, got {other:?}"),
    }
    // Keys other than yes and no leave the question open.
    assert!(acts(&press(&mut app, "jx")).is_empty());
    assert!(matches!(app.overlay, Some(Overlay::Confirm(_))));
    assert_eq!(
        acts(&press(&mut app, "y")),
        vec![Act::Cancel("lensia-8812".into())]
    );
    assert!(app.overlay.is_none());
}

#[test]
fn declining_does_nothing() {
    let mut app = fixtures::app();
    let cmds = press(&mut app, "2c\x1b");
    assert!(acts(&cmds).is_empty());
    assert!(app.overlay.is_none());
    let cmds = press(&mut app, "cn");
    assert!(acts(&cmds).is_empty());
}

#[test]
fn pause_asks_and_resume_does_not() {
    let mut app = fixtures::app();
    assert!(acts(&press(&mut app, "p")).is_empty());
    assert_eq!(acts(&press(&mut app, "y")), vec![Act::Pause(true)]);
    app.queue.as_mut().unwrap().paused = true;
    assert_eq!(acts(&press(&mut app, "p")), vec![Act::Pause(false)]);
}

#[test]
fn drain_names_the_server_and_asks() {
    let mut app = fixtures::app();
    assert!(acts(&press(&mut app, "3jd")).is_empty());
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("expected a confirmation")
    };
    assert!(c.question.contains("gpu1-h100-west"), "{}", c.question);
    assert_eq!(
        acts(&press(&mut app, "y")),
        vec![Act::Server("gpu1-h100-west".into(), ServerAct::Drain)]
    );
    assert_eq!(
        acts(&press(&mut app, "e")),
        vec![Act::Server("gpu1-h100-west".into(), ServerAct::Enable)]
    );
}

#[test]
fn read_only_key_refuses_before_asking() {
    let mut app = fixtures::app();
    app.role = Role::ReadOnly;
    assert!(acts(&press(&mut app, "2crp")).is_empty());
    assert!(app.overlay.is_none());
    assert!(app.status.as_ref().unwrap().text.contains("read-only"));
}

#[test]
fn forbidden_answer_makes_the_console_read_only() {
    let mut app = fixtures::app();
    app.update(Action::Done {
        what: "cancel x".into(),
        result: Err(Failure::api(403, "forbidden", "key has role read")),
    });
    assert_eq!(app.role, Role::ReadOnly);
    assert!(app.status.as_ref().unwrap().error);
}

#[test]
fn search_and_filter_refetch_from_the_daemon() {
    let mut app = fixtures::app();
    let cmds = press(&mut app, "/cat\n");
    let [Command::Fetch(Fetch::Jobs { query, page: 0, .. })] = &cmds[..] else {
        panic!("{cmds:?}")
    };
    assert!(query.contains("q=cat"), "{query}");
    let cmds = press(&mut app, "ss");
    let Some(Command::Fetch(Fetch::Jobs { query, .. })) = cmds.last() else {
        panic!("{cmds:?}")
    };
    assert!(query.contains("status=processing"), "{query}");
    let cmds = press(&mut app, "o");
    let Some(Command::Fetch(Fetch::Jobs { query, .. })) = cmds.last() else {
        panic!("{cmds:?}")
    };
    assert!(query.starts_with("sort=created_at"), "{query}");
}

#[test]
fn copy_and_redeliver_target_the_detail_job() {
    let mut app = fixtures::app();
    let cmds = press(&mut app, "2j\n");
    assert!(cmds.contains(&Command::Fetch(Fetch::JobEvents("lensia-8812".into()))));
    assert_eq!(
        press(&mut app, "y"),
        vec![Command::Copy("lensia-8812".into())]
    );
    assert_eq!(
        acts(&press(&mut app, "w")),
        vec![Act::Redeliver("lensia-8812".into())]
    );
    press(&mut app, "\x1b");
    assert!(app.detail.is_none());
}

#[test]
fn quit_keys() {
    let mut app = fixtures::app();
    press(&mut app, "?q");
    assert!(!app.quit, "q closes help first");
    press(&mut app, "q");
    assert!(app.quit);
}

#[test]
fn disconnect_counts_down_and_reconnect_refetches() {
    let mut app = fixtures::app();
    app.update(Action::Link(LinkState::Down {
        error: "refused".into(),
        retry_in: std::time::Duration::from_secs(2),
    }));
    assert!(matches!(app.conn, Conn::Down { .. }));
    // No refresh while down.
    let cmds = app.update(Action::Tick(
        fixtures::now() + chrono::Duration::seconds(30),
    ));
    assert!(cmds.is_empty());
    let cmds = app.update(Action::Link(LinkState::Up));
    assert!(cmds.contains(&Command::Fetch(Fetch::Health)));
    assert!(cmds.contains(&Command::Fetch(Fetch::Servers)));
    assert_eq!(app.status.as_ref().unwrap().text, "reconnected");
}

#[test]
fn refresh_runs_on_the_slow_timer_only() {
    let mut app = fixtures::app();
    let t0 = fixtures::now();
    assert!(
        app.update(Action::Tick(t0 + chrono::Duration::seconds(1)))
            .is_empty()
    );
    let cmds = app.update(Action::Tick(t0 + chrono::Duration::seconds(5)));
    assert_eq!(
        cmds,
        vec![
            Command::Fetch(Fetch::Health),
            Command::Fetch(Fetch::Telemetry)
        ]
    );
}

#[test]
fn new_job_events_refetch_the_top_once_per_tick() {
    let mut app = fixtures::app();
    press(&mut app, "2");
    for i in 0..50 {
        let cmds = app.update(Action::Event(comfydash_wire::StreamEvent::Job(
            comfydash_wire::JobUpdate {
                job_id: comfydash_wire::JobId(format!("new-{i}")),
                status: comfydash_wire::JobStatus::Pending,
                attempt: 1,
                progress: None,
                server: None,
                error: None,
                at: fixtures::now(),
            },
        )));
        assert!(cmds.is_empty());
    }
    let cmds = app.update(Action::Tick(fixtures::now() + chrono::Duration::seconds(1)));
    let jobs = cmds
        .iter()
        .filter(|c| matches!(c, Command::Fetch(Fetch::Jobs { .. })))
        .count();
    assert_eq!(jobs, 1);
}

#[test]
fn wrong_key_is_fatal_with_a_clear_message() {
    let mut app = fixtures::fresh();
    app.update(Action::loaded(crate::action::Loaded::Health(Err(
        Failure::api(401, "unauthorized", "invalid API key"),
    ))));
    let Conn::Fatal(msg) = &app.conn else {
        panic!("{:?}", app.conn)
    };
    assert!(msg.contains("refused the key"), "{msg}");
}

#[test]
fn server_keys_need_the_servers_screen() {
    let mut app = fixtures::app();
    assert_eq!(app.screen, Screen::Overview);
    assert!(acts(&press(&mut app, "d")).is_empty());
    assert!(app.overlay.is_none());
}
