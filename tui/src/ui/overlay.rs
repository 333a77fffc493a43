//! Windows over the screen: help, confirmation, silencing an alert, the context picker and the
//! fatal-error notice.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{Theme, panel};
use crate::app::{App, Confirm, SILENCE_DURATIONS, SilenceDraft};
use crate::keys::BINDINGS;
use unicode_width::UnicodeWidthStr;

/// The list of every key, in two columns when the width allows.
pub fn help(t: Theme, f: &mut Frame, area: Rect) {
    let two = area.width >= 70;
    let per_col = if two {
        BINDINGS.len().div_ceil(2)
    } else {
        BINDINGS.len()
    };
    let width = if two { 70 } else { 36 };
    let popup = area.centered(
        Constraint::Length(width.min(area.width)),
        Constraint::Length((per_col as u16 + 2).min(area.height)),
    );
    f.render_widget(Clear, popup);
    let block = panel("Keys · esc closes", t);
    let inner = block.inner(popup);
    f.render_widget(block, popup);
    let cols: Vec<Rect> = if two {
        inner
            .layout::<2>(&Layout::horizontal([Constraint::Fill(1); 2]))
            .to_vec()
    } else {
        vec![inner]
    };
    for (col, chunk) in cols.iter().zip(BINDINGS.chunks(per_col)) {
        let lines: Vec<Line> = chunk
            .iter()
            .map(|b| {
                Line::from(vec![
                    Span::styled(format!(" {:<10}", b.keys), t.accent()),
                    Span::raw(b.what),
                ])
            })
            .collect();
        f.render_widget(Paragraph::new(lines), *col);
    }
}

/// The question before a destructive action.
pub fn confirm(c: &Confirm, t: Theme, f: &mut Frame, area: Rect) {
    let width = 60.min(area.width);
    // Long job ids wrap; the dialog grows so the answer keys always show.
    let inner_w = width.saturating_sub(2).max(1) as usize;
    let question_lines = UnicodeWidthStr::width(c.question.as_str()).div_ceil(inner_w) as u16;
    let popup = area.centered(
        Constraint::Length(width),
        Constraint::Length((question_lines + 3).min(area.height)),
    );
    f.render_widget(Clear, popup);
    // The answer keys sit in the border, so they show however the question wraps.
    let keys = Line::from(vec![
        Span::styled(" y", t.accent()),
        Span::raw(" yes · "),
        Span::styled("n", t.accent()),
        Span::raw("/"),
        Span::styled("esc", t.accent()),
        Span::raw(" no "),
    ]);
    f.render_widget(
        Paragraph::new(Line::from(Span::styled(c.question.clone(), t.warn())))
            .wrap(Wrap { trim: false })
            .block(panel("Confirm", t).title_bottom(keys.right_aligned())),
        popup,
    );
}

/// Silencing an alert: the question names it, the duration is chosen with ←/→.
pub fn silence(d: &SilenceDraft, t: Theme, f: &mut Frame, area: Rect) {
    let width = 64.min(area.width);
    let question = format!(
        "Silence {} for {}? Its notifications are held until the silence ends.",
        crate::units::matcher(Some(&d.rule), &d.labels),
        SILENCE_DURATIONS[d.choice]
    );
    let inner_w = width.saturating_sub(2).max(1) as usize;
    let question_lines = UnicodeWidthStr::width(question.as_str()).div_ceil(inner_w) as u16;
    let popup = area.centered(
        Constraint::Length(width),
        Constraint::Length((question_lines + 5).min(area.height)),
    );
    f.render_widget(Clear, popup);
    let mut choices = vec![Span::raw("for ")];
    for (i, c) in SILENCE_DURATIONS.iter().enumerate() {
        let style = if i == d.choice {
            t.accent().add_modifier(ratatui::style::Modifier::REVERSED)
        } else {
            t.dim()
        };
        choices.push(Span::styled(format!(" {c} "), style));
        choices.push(Span::raw(" "));
    }
    let keys = Line::from(vec![
        Span::styled(" ←/→", t.accent()),
        Span::raw(" duration · "),
        Span::styled("y", t.accent()),
        Span::raw(" silence · "),
        Span::styled("n", t.accent()),
        Span::raw("/"),
        Span::styled("esc", t.accent()),
        Span::raw(" no "),
    ]);
    let text = vec![
        Line::from(Span::styled(question, t.warn())),
        Line::default(),
        Line::from(choices),
    ];
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(panel("Silence alert", t).title_bottom(keys.right_aligned())),
        popup,
    );
}

/// The daemons to switch between.
pub fn contexts(app: &App, highlighted: usize, t: Theme, f: &mut Frame, area: Rect) {
    let popup = area.centered(
        Constraint::Length(72.min(area.width)),
        Constraint::Length((app.places.len() as u16 + 2).min(area.height)),
    );
    f.render_widget(Clear, popup);
    let lines: Vec<Line> = app
        .places
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mark = if i == app.place { "● " } else { "  " };
            let line = Line::from(vec![
                Span::raw(format!("{mark}{:<12} ", p.name)),
                Span::raw(p.url.clone()),
                Span::styled(format!("  key: {}", p.key_source), t.dim()),
            ]);
            if i == highlighted {
                line.style(t.selected())
            } else {
                line
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(panel("Contexts · enter connects", t)),
        popup,
    );
}

/// Why the console cannot work with this daemon, instead of a screen.
pub fn fatal(app: &App, t: Theme, f: &mut Frame, area: Rect, msg: &str) {
    let text = vec![
        Line::styled(msg.to_string(), t.bad()),
        Line::default(),
        Line::styled(format!("daemon: {}", app.place().url), t.dim()),
        Line::styled(format!("key from: {}", app.place().key_source), t.dim()),
        Line::default(),
        Line::raw("Give the right key with --api-key or COMFYDASH_ADMIN_KEY, or point --data-dir"),
        Line::raw("at the daemon's data dir (admin.key). C switches context, q quits."),
    ];
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(panel("Cannot use this daemon", t)),
        area,
    );
}
