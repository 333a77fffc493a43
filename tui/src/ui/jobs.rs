//! The jobs table: the daemon's page window with status, age, duration, attempts, progress.

use comfydash_wire::{Job, JobStatus, Prompt};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

use super::theme::bar;
use super::{Theme, panel};
use crate::app::App;
use crate::units::{age, fit, millis, one_line};

/// Columns after the id: status, age, duration, attempts, progress, server.
const NARROW: [u16; 6] = [10, 5, 7, 3, 11, 8];
/// From this width the priority and the prompt are shown too.
const WIDE: u16 = 120;

/// Draws the jobs screen.
pub fn render(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let v = &app.jobs;
    let mut title = vec![
        Span::raw("Jobs"),
        Span::styled(" · status ", t.dim()),
        Span::raw(v.filter.map_or("all".into(), |s| s.to_string())),
        Span::styled(" · sort ", t.dim()),
        Span::raw(v.sort_name()),
    ];
    if !v.search.is_empty() {
        title.push(Span::styled(" · search ", t.dim()));
        title.push(Span::raw(format!("\"{}\"", fit(&v.search, 20))));
    }
    if v.len() > 0 {
        title.push(Span::styled(format!(" · {}", v.position()), t.dim()));
    }
    if v.loading() {
        title.push(Span::styled(" · loading…", t.warn()));
    }
    render_table(app, t, f, area, Line::from(title), Some(v.selected));
}

/// The table of the window's rows, with the selected row highlighted when there is one.
pub fn render_table(
    app: &App,
    t: Theme,
    f: &mut Frame,
    area: Rect,
    title: impl Into<Line<'static>>,
    selected: Option<usize>,
) {
    let v = &app.jobs;
    let block = panel(title, t);
    if v.len() == 0 {
        let msg = if v.loaded {
            "no jobs match"
        } else if v.loading() {
            "loading…"
        } else {
            "no jobs loaded"
        };
        f.render_widget(
            Paragraph::new(Line::styled(msg, t.dim())).block(block),
            area,
        );
        return;
    }
    let wide = area.width >= WIDE;
    let inner_w = area.width.saturating_sub(2);
    let fixed: u16 = NARROW.iter().sum::<u16>() + NARROW.len() as u16;
    let (id_w, prompt_w) = if wide {
        let rest = inner_w.saturating_sub(fixed + 9);
        let id = (rest / 3).clamp(16, 40);
        (id, rest.saturating_sub(id + 1))
    } else {
        (inner_w.saturating_sub(fixed).max(8), 0)
    };
    let rows = v
        .rows()
        .map(|j| row(app, t, j, id_w as usize, wide.then_some(prompt_w as usize)));
    let mut widths = vec![Constraint::Length(id_w)];
    widths.extend(NARROW.iter().map(|w| Constraint::Length(*w)));
    let mut header = vec!["ID", "STATUS", "AGE", "RAN", "TRY", "PROGRESS", "SERVER"];
    if wide {
        widths.push(Constraint::Length(8));
        widths.push(Constraint::Fill(1));
        header.extend(["PRIO", "PROMPT"]);
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.header()))
        .row_highlight_style(t.selected())
        .block(block);
    let mut state = TableState::default().with_selected(selected);
    f.render_stateful_widget(table, area, &mut state);
}

fn row(app: &App, t: Theme, j: &Job, id_w: usize, prompt_w: Option<usize>) -> Row<'static> {
    let mut cells = vec![
        Cell::from(fit(&j.job_id.0, id_w)),
        Cell::from(Span::styled(j.status.to_string(), t.job(j.status))),
        Cell::from(age(app.now, j.created_at)),
        Cell::from(ran(app, j)),
        Cell::from(j.attempt.to_string()),
        Cell::from(progress(t, j)),
        Cell::from(fit(j.server.as_deref().unwrap_or("-"), 8)),
    ];
    if let Some(w) = prompt_w {
        cells.push(Cell::from(j.priority.to_string()));
        cells.push(Cell::from(Span::styled(
            fit(&prompt_text(&j.prompt), w),
            t.dim(),
        )));
    }
    Row::new(cells)
}

/// How long the job ran (or has been running).
pub fn ran(app: &App, j: &Job) -> String {
    if let Some(ms) = j.timings.processing_ms {
        return millis(ms);
    }
    match (j.started_at, j.finished_at) {
        (Some(s), Some(e)) => millis((e - s).num_milliseconds().max(0) as u64),
        (Some(s), None) if j.status == JobStatus::Processing => {
            millis((app.now - s).num_milliseconds().max(0) as u64)
        }
        _ => "-".into(),
    }
}

fn progress(t: Theme, j: &Job) -> Line<'static> {
    match (&j.progress, j.status) {
        (Some(p), JobStatus::Processing) if p.max > 0 => {
            let r = p.value as f64 / p.max as f64;
            Line::from(vec![
                Span::styled(bar(r, 6), t.job(j.status)),
                Span::raw(format!("{:>4.0}%", r * 100.0)),
            ])
        }
        (_, JobStatus::Processing) => Line::styled("started", t.job(j.status)),
        (_, JobStatus::Completed) => Line::styled(bar(1.0, 6), t.ok()),
        _ => Line::styled("-", t.dim()),
    }
}

/// A prompt on one line: the text, or what the graph is.
pub fn prompt_text(p: &Prompt) -> String {
    match p {
        Prompt::Text(s) => one_line(s),
        Prompt::Graph(g) => format!("(graph of {} nodes)", g.len()),
    }
}
