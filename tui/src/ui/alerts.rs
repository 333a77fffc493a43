//! Alerts: what is pending or firing, the silences in force and what resolved lately, with the
//! keys that silence an alert (`m`) or end a silence (`u`).

use comfydash_wire::{Alert, AlertDeliveryStatus, AlertList};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::{Theme, panel};
use crate::app::App;
use crate::units::{age, fit, matcher, millis, one_line, short_id};

/// Draws the alerts screen.
pub fn render(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let Some(list) = &app.alerts else {
        f.render_widget(
            Paragraph::new(Line::styled("waiting for /api/alerts…", t.dim()))
                .block(panel("Alerts", t)),
            area,
        );
        return;
    };
    let active_h = (list.active.len() as u16 + 3).clamp(4, (area.height / 2).max(4));
    let silences_h =
        (list.silences.len() as u16 + 3).clamp(4, area.height.saturating_sub(active_h + 3).max(4));
    let [active, silences, resolved] = area.layout(&Layout::vertical([
        Constraint::Length(active_h),
        Constraint::Length(silences_h),
        Constraint::Fill(1),
    ]));
    render_active(app, list, t, f, active);
    render_silences(app, list, t, f, silences);
    // A wide screen also shows whether the channels took the latest messages.
    if area.width >= 120 {
        let [resolved, sent] = resolved.layout(&Layout::horizontal([
            Constraint::Percentage(60),
            Constraint::Percentage(40),
        ]));
        render_resolved(app, list, t, f, resolved);
        render_deliveries(app, list, t, f, sent);
    } else {
        render_resolved(app, list, t, f, resolved);
    }
}

/// Width of the alert-name column: room for `server_down{server=…}` when the screen is wide.
fn name_width(area: Rect) -> u16 {
    if area.width >= 120 { 36 } else { 26 }
}

/// The state word: muted alerts say why they are quiet instead.
fn state_word(a: &Alert) -> &'static str {
    match a.muted.as_deref() {
        Some(m) if m.starts_with("silenced") => "silenced",
        Some(_) => "inhibited",
        None => a.state.as_str(),
    }
}

fn render_active(app: &App, list: &AlertList, t: Theme, f: &mut Frame, area: Rect) {
    let channels = if list.channels.is_empty() {
        Span::styled(" no channels configured ", t.warn())
    } else {
        Span::styled(format!(" channels: {} ", list.channels.join(", ")), t.dim())
    };
    let block = panel("Active alerts · m silence · u end silence", t)
        .title_top(Line::from(channels).right_aligned());
    if list.active.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("nothing pending or firing", t.ok())).block(block),
            area,
        );
        return;
    }
    let name_w = name_width(area);
    let rows = list.active.iter().map(|a| {
        let state = if a.muted.is_some() {
            t.dim()
        } else {
            t.alert(a.state)
        };
        Row::new(vec![
            Span::styled(a.severity.as_str(), t.severity(a.severity)),
            Span::styled(state_word(a), state),
            Span::raw(fit(&matcher(Some(&a.rule), &a.labels), name_w as usize)),
            Span::raw(age(app.now, a.fired_at.unwrap_or(a.started_at))),
            Span::raw(one_line(&a.summary)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(name_w),
            Constraint::Length(5),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["SEVERITY", "STATE", "ALERT", "SINCE", "SUMMARY"]).style(t.header()))
    .row_highlight_style(t.selected())
    .block(block);
    let sel = (app.alert_sel < list.active.len()).then_some(app.alert_sel);
    f.render_stateful_widget(table, area, &mut TableState::default().with_selected(sel));
}

fn render_silences(app: &App, list: &AlertList, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel("Silences in force", t);
    if list.silences.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("none · m on an alert silences it", t.dim())).block(block),
            area,
        );
        return;
    }
    let name_w = name_width(area);
    let rows = list.silences.iter().map(|s| {
        Row::new(vec![
            Span::raw(short_id(&s.id).to_string()),
            Span::raw(fit(&matcher(s.rule.as_deref(), &s.labels), name_w as usize)),
            Span::raw(format!("in {}", age(s.ends_at, app.now))),
            Span::raw(fit(&s.created_by, 10)),
            Span::styled(one_line(&s.comment), t.dim()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(name_w),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["ID", "MATCHES", "ENDS", "BY", "COMMENT"]).style(t.header()))
    .row_highlight_style(t.selected())
    .block(block);
    let sel = app.alert_sel.checked_sub(list.active.len());
    f.render_stateful_widget(table, area, &mut TableState::default().with_selected(sel));
}

fn render_resolved(app: &App, list: &AlertList, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel("Resolved lately", t);
    if list.history.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("none", t.dim())).block(block),
            area,
        );
        return;
    }
    let name_w = name_width(area);
    let rows = list.history.iter().map(|a| {
        let ended = a.resolved_at.unwrap_or(a.started_at);
        let lasted = (ended - a.started_at).num_milliseconds().max(0) as u64;
        Row::new(vec![
            Span::styled(a.severity.as_str(), t.severity(a.severity)),
            Span::raw(fit(&matcher(Some(&a.rule), &a.labels), name_w as usize)),
            Span::raw(format!("{} ago", age(app.now, ended))),
            Span::raw(millis(lasted)),
            Span::styled(one_line(&a.summary), t.dim()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(name_w),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["SEVERITY", "ALERT", "RESOLVED", "LASTED", "SUMMARY"]).style(t.header()))
    .block(block);
    f.render_widget(table, area);
}

fn render_deliveries(app: &App, list: &AlertList, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel("Notifications", t);
    if list.deliveries.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("none sent yet", t.dim())).block(block),
            area,
        );
        return;
    }
    let rows = list.deliveries.iter().map(|d| {
        let status = match d.status {
            AlertDeliveryStatus::Sent => t.ok(),
            AlertDeliveryStatus::Queued => t.warn(),
            AlertDeliveryStatus::Failed | AlertDeliveryStatus::Dropped => t.bad(),
        };
        let why = match d.status {
            AlertDeliveryStatus::Sent => String::new(),
            _ => d
                .error
                .as_deref()
                .map(one_line)
                .or_else(|| d.status_code.map(|c| format!("HTTP {c}")))
                .unwrap_or_default(),
        };
        Row::new(vec![
            Span::raw(age(app.now, d.at)),
            Span::raw(fit(&d.channel, 8)),
            Span::raw(fit(&d.kind, 8)),
            Span::styled(d.status.as_str(), status),
            Span::styled(why, t.dim()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["AGE", "CHANNEL", "KIND", "STATUS", "ERROR"]).style(t.header()))
    .block(block);
    f.render_widget(table, area);
}

/// Most firing alerts the overview lists, so servers and the queue chart keep their room.
const FIRING_ROWS: usize = 4;

/// Height of the overview's firing-alerts panel when `spare` rows are left: none when nothing
/// fires, fewer alerts on a short screen.
pub fn firing_height(app: &App, spare: u16) -> u16 {
    match app.firing().count() {
        0 => 0,
        n => {
            n.min(FIRING_ROWS)
                .min(spare.saturating_sub(2).max(1) as usize) as u16
                + 2
        }
    }
}

/// Firing alerts on the overview, the ones still notifying first: severity, name, since when,
/// what.
pub fn render_firing(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let mut firing: Vec<&Alert> = app.firing().collect();
    firing.sort_by_key(|a| (a.muted.is_some(), std::cmp::Reverse(a.severity)));
    let title = Line::from(vec![
        Span::styled(format!("Firing alerts ({})", firing.len()), t.bad()),
        Span::styled(" · 5 for all", t.dim()),
    ]);
    let name_w = name_width(area);
    let rows = firing.iter().map(|a| {
        let muted = if a.muted.is_some() {
            format!("({}) ", state_word(a))
        } else {
            String::new()
        };
        Row::new(vec![
            Cell::from(Span::styled(a.severity.as_str(), t.severity(a.severity))),
            Cell::from(fit(&matcher(Some(&a.rule), &a.labels), name_w as usize)),
            Cell::from(format!(
                "since {}",
                age(app.now, a.fired_at.unwrap_or(a.started_at))
            )),
            Cell::from(Line::from(vec![
                Span::styled(muted, t.dim()),
                Span::raw(one_line(&a.summary)),
            ])),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(name_w),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .block(panel(title, t));
    f.render_widget(table, area);
}
