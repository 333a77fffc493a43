//! Job detail: every field, a live progress bar, outputs with their URLs and the job's log.

use comfydash_wire::{Job, JobEvent, JobStatus, Prompt};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph, Wrap};

use super::jobs::ran;
use super::{Theme, panel};
use crate::app::{App, Detail};
use crate::units::{age, bytes, millis, one_line};

/// Draws the detail of one job.
pub fn render(app: &App, d: &Detail, t: Theme, f: &mut Frame, area: Rect) {
    let mut title = vec![Span::raw(format!("Job {}", d.id))];
    if let Some(j) = &d.job {
        title.push(Span::styled(" · ", t.dim()));
        title.push(Span::styled(j.status.to_string(), t.job(j.status)));
    }
    let block = panel(Line::from(title), t);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(job) = &d.job else {
        let msg = d.error.clone().unwrap_or_else(|| "loading…".into());
        f.render_widget(Line::styled(msg, t.dim()), inner);
        return;
    };
    let running = job.status == JobStatus::Processing;
    let [gauge, text] = inner.layout(&Layout::vertical([
        Constraint::Length(u16::from(running)),
        Constraint::Fill(1),
    ]));
    if running {
        let (ratio, label) = match &job.progress {
            Some(p) if p.max > 0 => (
                p.value as f64 / p.max as f64,
                format!(
                    "step {}/{}{} ",
                    p.value,
                    p.max,
                    p.node
                        .as_ref()
                        .map_or(String::new(), |n| format!(" node {n}"))
                ),
            ),
            _ => (0.0, "started ".into()),
        };
        f.render_widget(
            LineGauge::default()
                .ratio(ratio.clamp(0.0, 1.0))
                .label(Span::styled(label, t.accent()))
                .filled_symbol("█")
                .unfilled_symbol("░")
                .filled_style(t.job(job.status))
                .unfilled_style(t.dim()),
            gauge,
        );
    }
    let lines = lines(app, job, &d.events, t);
    // Scrolling stops at the last line.
    let max = (lines.len() as u16).saturating_sub(text.height);
    let scroll = (d.scroll.min(u16::MAX as usize) as u16).min(max);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        text,
    );
}

fn lines(app: &App, j: &Job, events: &[JobEvent], t: Theme) -> Vec<Line<'static>> {
    let key = |k: &str| Span::styled(format!("{k:<10}"), t.dim());
    let when = |at: Option<chrono::DateTime<chrono::Utc>>| match at {
        Some(at) => format!(
            "{} ({} ago)",
            at.format("%Y-%m-%d %H:%M:%S"),
            age(app.now, at)
        ),
        None => "-".into(),
    };
    let mut out = vec![
        Line::from(vec![
            key("status"),
            Span::styled(j.status.to_string(), t.job(j.status)),
            Span::styled("  attempt ", t.dim()),
            Span::raw(j.attempt.to_string()),
            Span::styled("  priority ", t.dim()),
            Span::raw(j.priority.to_string()),
            Span::styled("  server ", t.dim()),
            Span::raw(j.server.clone().unwrap_or_else(|| "-".into())),
            if j.cancel_requested {
                Span::styled("  cancel requested", t.warn())
            } else {
                Span::raw("")
            },
        ]),
        Line::from(vec![
            key("prompt"),
            Span::raw(match &j.prompt {
                Prompt::Text(s) => one_line(s),
                Prompt::Graph(g) => format!("API graph of {} nodes", g.len()),
            }),
        ]),
        Line::from(vec![
            key("workflow"),
            Span::raw(j.workflow.clone().unwrap_or_else(|| "-".into())),
            Span::styled("  timeout ", t.dim()),
            Span::raw(j.timeout_s.map_or("-".into(), |s| format!("{s}s"))),
            Span::styled("  waited ", t.dim()),
            Span::raw(j.timings.queued_ms.map_or("-".into(), millis)),
            Span::styled("  ran ", t.dim()),
            Span::raw(ran(app, j)),
        ]),
        Line::from(vec![key("created"), Span::raw(when(Some(j.created_at)))]),
        Line::from(vec![key("started"), Span::raw(when(j.started_at))]),
        Line::from(vec![key("finished"), Span::raw(when(j.finished_at))]),
    ];
    if let Some(p) = &j.params {
        out.push(Line::from(vec![key("params"), Span::raw(p.to_string())]));
    }
    if let Some(u) = &j.input_image_url {
        out.push(Line::from(vec![key("image"), Span::raw(u.clone())]));
    } else if j.has_input_image {
        out.push(Line::from(vec![key("image"), Span::raw("inline")]));
    }
    if let Some(u) = &j.webhook_url {
        out.push(Line::from(vec![key("webhook"), Span::raw(u.clone())]));
    }
    if let Some(e) = &j.error {
        let node = e
            .node
            .as_ref()
            .map_or(String::new(), |n| format!(" at node {n}"));
        out.push(Line::from(vec![
            key("error"),
            Span::styled(format!("{}{node}: {}", e.code, e.message), t.bad()),
        ]));
    }
    out.push(Line::default());
    out.push(Line::styled(
        format!("Outputs ({})", j.outputs.len()),
        t.header(),
    ));
    let base = app.place().url.trim_end_matches('/').to_string();
    for o in &j.outputs {
        out.push(Line::from(vec![
            Span::raw(format!(" {:>2} {} ", o.index, o.filename)),
            Span::styled(format!("{} {} ", o.content_type, bytes(o.size)), t.dim()),
            Span::styled(
                format!("{base}/api/jobs/{}/outputs/{}", j.job_id, o.index),
                t.accent(),
            ),
        ]));
    }
    out.push(Line::default());
    out.push(Line::styled(format!("Log ({})", events.len()), t.header()));
    for e in events {
        out.push(event_line(e, t));
    }
    out
}

fn event_line(e: &JobEvent, t: Theme) -> Line<'static> {
    let mut spans = vec![
        Span::styled(format!(" {} ", e.at.format("%H:%M:%S%.3f")), t.dim()),
        Span::raw(e.kind.clone()),
    ];
    match (e.from, e.to) {
        (Some(a), Some(b)) => {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(a.to_string(), t.job(a)));
            spans.push(Span::raw("→"));
            spans.push(Span::styled(b.to_string(), t.job(b)));
        }
        (None, Some(b)) => {
            spans.push(Span::raw(" → "));
            spans.push(Span::styled(b.to_string(), t.job(b)));
        }
        _ => {}
    }
    spans.push(Span::styled(format!(" by {}", e.actor), t.dim()));
    if let Some(d) = &e.detail
        && !d.is_null()
    {
        spans.push(Span::raw(format!("  {}", detail_text(d))));
    }
    Line::from(spans)
}

/// Any detail, generically: `key=value` for flat objects, compact JSON otherwise.
fn detail_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={}", one_line(s)),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        serde_json::Value::String(s) => one_line(s),
        other => other.to_string(),
    }
}
