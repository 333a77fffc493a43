//! Key sequences and daemon events produce the right commands.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::action::{Act, Action, Command, Failure, Fetch, LinkState, ServerAct};
use crate::app::{App, Conn, Overlay, Role, Screen};
use crate::fixtures;
use comfydash_wire::{AlertEvent, AlertState, NewSilence, StreamEvent};

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
fn reload_asks_then_reports_and_refetches() {
    let mut app = fixtures::app();
    assert!(acts(&press(&mut app, "R")).is_empty());
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("expected a confirmation")
    };
    assert!(
        c.question.starts_with("Reload the configuration of"),
        "{}",
        c.question
    );
    assert_eq!(acts(&press(&mut app, "y")), vec![Act::Reload]);
    let cmds = app.update(Action::Done {
        act: Act::Reload,
        result: Ok("server gpu2 added".into()),
    });
    assert_eq!(
        app.status.as_ref().unwrap().text,
        "reload configuration: server gpu2 added"
    );
    assert!(cmds.contains(&Command::Fetch(Fetch::Servers)), "{cmds:?}");
    assert!(acts(&press(&mut app, "Rn")).is_empty());
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
        act: Act::Cancel("x".into()),
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

fn key(app: &mut App, code: KeyCode) -> Vec<Command> {
    app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

#[test]
fn tab_goes_round_all_five_screens() {
    let mut app = fixtures::app();
    let mut seen = Vec::new();
    for _ in 0..5 {
        key(&mut app, KeyCode::Tab);
        seen.push(app.screen);
    }
    assert_eq!(
        seen,
        Screen::ALL[1..]
            .iter()
            .chain(&Screen::ALL[..1])
            .copied()
            .collect::<Vec<_>>()
    );
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.screen, Screen::Alerts);
}

#[test]
fn the_alerts_screen_refetches_alerts() {
    let mut app = fixtures::app_alerting();
    assert_eq!(press(&mut app, "5"), vec![Command::Fetch(Fetch::Alerts)]);
    let cmds = app.update(Action::Tick(fixtures::now() + chrono::Duration::seconds(5)));
    assert!(cmds.contains(&Command::Fetch(Fetch::Alerts)), "{cmds:?}");
}

#[test]
fn silence_names_the_alert_lets_the_duration_change_and_sends_only_after_yes() {
    let mut app = fixtures::app_alerting();
    press(&mut app, "5");
    assert!(acts(&press(&mut app, "m")).is_empty(), "asked first");
    let Some(Overlay::Silence(d)) = &app.overlay else {
        panic!("expected the silence dialog, got {:?}", app.overlay)
    };
    assert_eq!(d.rule, "server_down");
    assert_eq!(d.labels["server"], "gpu2");
    // Longer, longer, back: 1h → 4h → 24h → 4h; other keys leave the dialog open.
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Left);
    assert!(acts(&press(&mut app, "jx")).is_empty());
    let cmds = press(&mut app, "y");
    let expected = Act::Silence(NewSilence {
        rule: Some("server_down".into()),
        labels: [("server".to_string(), "gpu2".to_string())].into(),
        duration: Some("4h".into()),
        ends_at: None,
        comment: Some("from the console".into()),
    });
    assert_eq!(acts(&cmds), vec![expected.clone()]);
    assert!(app.overlay.is_none());
    assert_eq!(
        app.status.as_ref().unwrap().text,
        "silence server_down{server=gpu2} for 4h…"
    );
    // Done: the status line says so and the silences are read back.
    let cmds = app.update(Action::Done {
        act: expected,
        result: Ok("silenced until 20:00 UTC (silence 0a1b2c3d)".into()),
    });
    assert_eq!(cmds, vec![Command::Fetch(Fetch::Alerts)]);
}

#[test]
fn declining_a_silence_sends_nothing() {
    let mut app = fixtures::app_alerting();
    press(&mut app, "5");
    assert!(acts(&press(&mut app, "m\x1b")).is_empty());
    assert!(app.overlay.is_none());
    assert!(acts(&press(&mut app, "mn")).is_empty());
    assert_eq!(app.status.as_ref().unwrap().text, "not done");
}

#[test]
fn ending_a_silence_asks_and_names_it() {
    let mut app = fixtures::app_alerting();
    press(&mut app, "5");
    // The last row is the server_stuck silence.
    assert!(acts(&press(&mut app, "Gu")).is_empty());
    let Some(Overlay::Confirm(c)) = &app.overlay else {
        panic!("expected a confirmation, got {:?}", app.overlay)
    };
    assert!(
        c.question
            .starts_with("End silence c0ffee00 (server_stuck{server=gpu1-h100-west})?"),
        "{}",
        c.question
    );
    assert_eq!(
        acts(&press(&mut app, "y")),
        vec![Act::EndSilence(
            "c0ffee00-1111-4222-8333-944455556666".into()
        )]
    );
    // On a silenced alert, u ends the silence that mutes it; m on a silence says what to do.
    press(&mut app, "gj");
    assert!(acts(&press(&mut app, "u")).is_empty());
    assert_eq!(
        acts(&press(&mut app, "y")),
        vec![Act::EndSilence(fixtures::QUEUE_SILENCE.into())]
    );
    press(&mut app, "G");
    assert!(acts(&press(&mut app, "m")).is_empty());
    assert!(app.overlay.is_none());
    assert!(app.status.as_ref().unwrap().error);
}

#[test]
fn silence_keys_need_the_alerts_screen_and_an_admin_key() {
    let mut app = fixtures::app_alerting();
    press(&mut app, "m");
    assert!(app.overlay.is_none());
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .text
            .contains("Alerts screen (5)")
    );
    app.role = Role::ReadOnly;
    press(&mut app, "5m");
    assert!(app.overlay.is_none());
    assert!(app.status.as_ref().unwrap().text.contains("read-only"));
    assert!(acts(&press(&mut app, "Gu")).is_empty());
    assert!(app.overlay.is_none());
}

#[test]
fn alert_events_keep_the_lists_current() {
    let mut app = fixtures::app_alerting();
    let mut a = fixtures::alerts().active[3].clone();
    assert_eq!(a.rule, "disk_low");
    assert_eq!(app.firing().count(), 3);
    a.state = AlertState::Firing;
    a.fired_at = Some(fixtures::now());
    let ev = |a: &comfydash_wire::Alert| {
        Action::Event(StreamEvent::Alert(AlertEvent { alert: a.clone() }))
    };
    assert!(app.update(ev(&a)).is_empty());
    assert_eq!(app.firing().count(), 4);
    assert_eq!(app.active_alerts().len(), 4, "replaced, not added");
    let status = app.status.clone().unwrap();
    assert!(
        status.error
            && status
                .text
                .starts_with("alert disk_low firing: Disk space low")
    );

    a.state = AlertState::Resolved;
    a.resolved_at = Some(fixtures::now());
    app.update(ev(&a));
    assert_eq!(app.active_alerts().len(), 3);
    let list = app.alerts.as_ref().unwrap();
    assert_eq!(list.history[0].id, a.id);
    assert_eq!(app.status.as_ref().unwrap().text, "alert disk_low resolved");

    // A new alert is added at the end.
    let mut new = a.clone();
    new.id = 99;
    new.rule = "webhook_failure_rate".into();
    new.state = AlertState::Pending;
    app.update(ev(&new));
    assert_eq!(app.active_alerts().last().unwrap().id, 99);
}
