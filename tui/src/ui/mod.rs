//! Drawing: `render(&App, &mut Frame)` lays out the header, tabs, the screen, the status line
//! and the footer, then any overlay. Nothing here does I/O or changes the model.

mod alerts;
mod detail;
mod jobs;
mod overlay;
mod overview;
mod servers;
mod telemetry;
mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Tabs, Wrap};

pub use theme::Theme;

use crate::app::{App, Conn, Overlay, Role, Screen};
use crate::keys::hints;
use crate::units::{age, millis};

/// Draws the whole console.
pub fn render(app: &App, f: &mut Frame) {
    let t = Theme::new(app.color);
    let [header, tabs, body, status, footer] = f.area().layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ]));
    render_header(app, t, f, header);
    render_tabs(app, t, f, tabs);
    match (&app.conn, &app.detail) {
        (Conn::Fatal(msg), _) => overlay::fatal(app, t, f, body, msg),
        (_, Some(d)) => detail::render(app, d, t, f, body),
        _ => match app.screen {
            Screen::Overview => overview::render(app, t, f, body),
            Screen::Jobs => jobs::render(app, t, f, body),
            Screen::Servers => servers::render(app, t, f, body),
            Screen::Telemetry => telemetry::render(app, t, f, body),
            Screen::Alerts => alerts::render(app, t, f, body),
        },
    }
    render_status(app, t, f, status);
    render_footer(app, t, f, footer);
    match &app.overlay {
        Some(Overlay::Help) => overlay::help(t, f, f.area()),
        Some(Overlay::Confirm(c)) => overlay::confirm(c, t, f, f.area()),
        Some(Overlay::Contexts(i)) => overlay::contexts(app, *i, t, f, f.area()),
        Some(Overlay::Silence(d)) => overlay::silence(d, t, f, f.area()),
        Some(Overlay::Search(_)) | None => {}
    }
}

/// A bordered block with a title, as every panel uses.
fn panel(title: impl Into<Line<'static>>, t: Theme) -> Block<'static> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border())
        .title(title.into().style(t.accent()))
}

fn render_header(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let sep = || Span::styled(" │ ", t.dim());
    let mut spans = vec![
        Span::styled(" comfydash ", t.accent().add_modifier(Modifier::REVERSED)),
        Span::raw(" "),
        Span::styled(app.place().name.clone(), t.accent()),
        sep(),
    ];
    spans.extend(conn_spans(app, t));
    if let Some(h) = &app.health
        && app.conn == Conn::Live
    {
        spans.push(sep());
        spans.push(Span::styled(h.status.as_str(), t.health(h.status)));
    }
    let firing = app.firing().count();
    if firing > 0 {
        spans.push(sep());
        spans.push(Span::styled(
            format!(
                "▲ {firing} alert{} firing",
                if firing == 1 { "" } else { "s" }
            ),
            t.bad(),
        ));
    }
    if let Some(p) = app.paused() {
        spans.push(sep());
        spans.push(if p {
            Span::styled("queue PAUSED", t.warn().add_modifier(Modifier::BOLD))
        } else {
            Span::styled("queue running", t.ok())
        });
    }
    if app.role == Role::ReadOnly {
        spans.push(sep());
        spans.push(Span::styled(
            "read-only",
            t.warn().add_modifier(Modifier::BOLD),
        ));
    }
    f.render_widget(Line::from(spans), area);
}

fn conn_spans(app: &App, t: Theme) -> Vec<Span<'static>> {
    match &app.conn {
        Conn::Connecting => vec![Span::styled(
            format!("◌ connecting to {}", app.place().url),
            t.warn(),
        )],
        Conn::Live => vec![Span::styled("● live", t.ok())],
        Conn::Down { retry_at, .. } => {
            let wait = (*retry_at - app.now).num_milliseconds().max(0) as u64;
            let secs = wait.div_ceil(1000);
            let mut v = vec![Span::styled(
                format!("○ disconnected, retrying in {secs}s"),
                t.bad(),
            )];
            v.push(Span::styled(
                match app.heard_at {
                    Some(h) => format!(" · data {} old", age(app.now, h)),
                    None => " · no data yet".into(),
                },
                t.warn(),
            ));
            v
        }
        Conn::Fatal(_) => vec![Span::styled("✖ not connected", t.bad())],
    }
}

fn render_tabs(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let titles: Vec<Line> = Screen::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| Line::from(format!("{} {}", i + 1, s.title())))
        .collect();
    // Each title is padded by a space on both sides; one divider between two.
    let tabs_w: usize = titles.iter().map(|l| l.width() + 3).sum();
    let tabs = Tabs::new(titles)
        .select(app.screen.index())
        .style(t.dim())
        .highlight_style(t.accent().add_modifier(Modifier::REVERSED))
        .divider(Span::styled("│", t.dim()));
    f.render_widget(tabs, area);
    // Uptime and version fill the right end of the tab row when there is room.
    if let Some(h) = &app.health {
        let text = format!(
            "v{} · up {} ",
            h.version,
            millis(h.uptime_seconds.saturating_mul(1000))
        );
        let w = text.chars().count() as u16;
        if area.width as usize > tabs_w + w as usize {
            let r = Rect::new(area.right() - w, area.y, w, 1);
            f.render_widget(Span::styled(text, t.dim()), r);
        }
    }
}

fn render_status(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let line = match &app.status {
        Some(s) if s.error => Line::from(vec![
            Span::styled(" ✖ ", t.bad()),
            Span::styled(s.text.clone(), t.bad()),
        ]),
        Some(s) => Line::from(vec![
            Span::styled(" › ", t.accent()),
            Span::raw(s.text.clone()),
        ]),
        None => Line::default(),
    };
    f.render_widget(Paragraph::new(line).wrap(Wrap { trim: true }), area);
}

fn render_footer(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    if let Some(Overlay::Search(text)) = &app.overlay {
        let line = Line::from(vec![
            Span::styled(" / ", t.accent()),
            Span::raw(text.clone()),
            Span::styled("▏", t.accent()),
            Span::styled("   enter apply · esc cancel", t.dim()),
        ]);
        f.render_widget(line, area);
        return;
    }
    // "? help" always shows at the right end; other hints fill what is left, whole or not at all.
    let help = Line::from(vec![
        Span::styled("?", t.accent()),
        Span::styled(" help ", t.dim()),
    ]);
    let room = (area.width as usize).saturating_sub(help.width());
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for (k, what) in hints(app) {
        let w = k.chars().count() + what.chars().count() + 3;
        if used + w > room {
            break;
        }
        used += w;
        spans.push(Span::styled(*k, t.accent()));
        spans.push(Span::styled(format!(" {what}  "), t.dim()));
    }
    f.render_widget(Line::from(spans), area);
    if app.overlay.is_none() {
        f.render_widget(help.right_aligned(), area);
    }
}
