//! Overview: is ComfyUI up, does any alert fire, how deep is the queue and where is it heading,
//! do jobs and webhooks succeed.

use comfydash_wire::{StatsSample, UpDown};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph, Row, Sparkline, Table};

use super::{Theme, panel};
use crate::app::App;
use crate::units::{bytes, count, fit, millis};

/// Draws the overview.
pub fn render(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let servers_h = (app.servers.len() as u16 + 3).clamp(4, 12);
    // The chart needs 4 rows; what the firing alerts leave of the rest is theirs.
    let firing_h = super::alerts::firing_height(app, area.height.saturating_sub(6 + 4 + servers_h));
    // A tall terminal gets the latest jobs under the rest instead of a taller chart.
    let roomy = area.height >= 6 + firing_h + 12 + servers_h + 6;
    let [top, firing, spark, servers, latest] = area.layout(&Layout::vertical([
        Constraint::Length(6),
        Constraint::Length(firing_h),
        if roomy {
            Constraint::Length(12)
        } else {
            Constraint::Min(4)
        },
        Constraint::Length(servers_h),
        Constraint::Fill(u16::from(roomy)),
    ]));
    let [daemon, rates] = top.layout(&Layout::horizontal([
        Constraint::Percentage(50),
        Constraint::Percentage(50),
    ]));
    render_daemon(app, t, f, daemon);
    render_rates(app, t, f, rates);
    if firing_h > 0 {
        super::alerts::render_firing(app, t, f, firing);
    }
    render_depth(app, t, f, spark);
    render_servers(app, t, f, servers);
    if roomy {
        super::jobs::render_table(app, t, f, latest, "Latest jobs · 2 for all", None);
    }
}

fn field(name: &str, t: Theme) -> Span<'static> {
    Span::styled(format!("{name:<9}"), t.dim())
}

fn render_daemon(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel("Daemon", t);
    let mut lines = Vec::new();
    match &app.health {
        Some(h) => {
            let up = |u: UpDown| match u {
                UpDown::Up => Span::styled("up", t.ok()),
                UpDown::Down => Span::styled("down", t.bad()),
            };
            lines.push(Line::from(vec![
                field("status", t),
                Span::styled(h.status.as_str(), t.health(h.status)),
                Span::raw("  "),
                // The URL only fits beside the status on a wide terminal.
                Span::styled(
                    if area.width >= 52 {
                        app.place().url.clone()
                    } else {
                        String::new()
                    },
                    t.dim(),
                ),
            ]));
            lines.push(Line::from(vec![
                field("comfyui", t),
                up(h.services.comfyui.status),
                Span::styled("   database ", t.dim()),
                up(h.services.database.status),
            ]));
        }
        None => lines.push(Line::styled("waiting for /api/health…", t.dim())),
    }
    if let Some(q) = &app.queue {
        lines.push(Line::from(vec![
            field("queue", t),
            if q.paused {
                Span::styled("PAUSED", t.warn())
            } else {
                Span::styled("running", t.ok())
            },
            Span::styled("   level ", t.dim()),
            Span::raw(q.health.as_str()),
        ]));
        lines.push(Line::from(vec![
            field("pending", t),
            Span::raw(count(q.pending)),
            Span::styled("   processing ", t.dim()),
            Span::raw(count(q.processing)),
            Span::styled("   max ", t.dim()),
            Span::raw(count(q.max_pending)),
        ]));
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_rates(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel("Jobs", t);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(tel) = &app.telemetry else {
        f.render_widget(Line::styled("waiting for /api/telemetry…", t.dim()), inner);
        return;
    };
    let rows = inner.layout::<4>(&Layout::vertical([Constraint::Length(1); 4]));
    let gauge = |label: &str, percent: f64| {
        LineGauge::default()
            .ratio((percent / 100.0).clamp(0.0, 1.0))
            .label(Line::from(vec![
                Span::styled(format!("{label:<8}"), t.dim()),
                Span::styled(format!("{percent:>5.1}% "), t.rate(percent)),
            ]))
            .filled_symbol("█")
            .unfilled_symbol("░")
            .filled_style(t.rate(percent))
            .unfilled_style(t.dim())
    };
    let perf = &tel.jobs.performance;
    f.render_widget(gauge("jobs ok", perf.success_rate), rows[0]);
    f.render_widget(gauge("webhooks", tel.webhooks.success_rate), rows[1]);
    f.render_widget(
        Line::from(vec![
            Span::styled("avg ", t.dim()),
            Span::raw(millis(perf.average_processing_time as u64)),
            Span::styled("  p50 ", t.dim()),
            Span::raw(millis(perf.p50_processing_time as u64)),
            Span::styled("  p95 ", t.dim()),
            Span::raw(millis(perf.p95_processing_time as u64)),
        ]),
        rows[2],
    );
    let s = &tel.jobs.by_status;
    let mut counts = vec![
        Span::styled("done ", t.dim()),
        Span::styled(count(s.completed), t.ok()),
        Span::styled("  failed ", t.dim()),
        Span::styled(
            count(s.failed),
            if s.failed > 0 { t.bad() } else { t.dim() },
        ),
        Span::styled("  cancelled ", t.dim()),
        Span::raw(count(s.cancelled)),
    ];
    if rows[3].width >= 48 {
        counts.push(Span::styled("  total ", t.dim()));
        counts.push(Span::raw(count(tel.jobs.total)));
    }
    f.render_widget(Line::from(counts), rows[3]);
}

/// Jobs finished per minute over the samples (cumulative counters, so last minus first).
pub fn throughput(samples: &[StatsSample]) -> Option<f64> {
    let (first, last) = (samples.first()?, samples.last()?);
    let minutes = (last.at - first.at).num_milliseconds() as f64 / 60_000.0;
    (minutes > 0.0).then(|| {
        (last.completed + last.failed).saturating_sub(first.completed + first.failed) as f64
            / minutes
    })
}

/// Change of the pending count over the last five minutes of samples.
fn trend(samples: &[StatsSample]) -> Option<i64> {
    let last = samples.last()?;
    let cutoff = last.at - chrono::Duration::minutes(5);
    let then = samples.iter().find(|s| s.at >= cutoff)?;
    Some(last.pending as i64 - then.pending as i64)
}

fn render_depth(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let samples = app.history.as_ref().map_or(&[][..], |h| &h.samples[..]);
    let depth: Vec<u64> = samples.iter().map(|s| s.pending + s.processing).collect();
    let mut title = vec![Span::raw("Queue depth, last hour")];
    if let Some(peak) = depth.iter().max() {
        title.push(Span::styled(format!(" · peak {}", count(*peak)), t.dim()));
    }
    if let Some(tp) = throughput(samples) {
        title.push(Span::styled(format!(" · {tp:.1} jobs/min"), t.dim()));
    }
    match trend(samples) {
        Some(d) if d > 0 => title.push(Span::styled(format!(" · ↑ {d} in 5m"), t.warn())),
        Some(d) if d < 0 => title.push(Span::styled(format!(" · ↓ {} in 5m", -d), t.ok())),
        Some(_) => title.push(Span::styled(" · steady", t.dim())),
        None => {}
    }
    let block = panel(Line::from(title), t);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if depth.is_empty() {
        f.render_widget(Line::styled("no samples yet", t.dim()), inner);
        return;
    }
    // Fit the whole hour into the width: each column shows the deepest sample of its slice.
    let width = inner.width.max(1) as usize;
    let data: Vec<u64> = if depth.len() <= width {
        depth
    } else {
        (0..width)
            .map(|i| {
                let a = i * depth.len() / width;
                let b = ((i + 1) * depth.len() / width).max(a + 1);
                depth[a..b].iter().copied().max().unwrap_or(0)
            })
            .collect()
    };
    f.render_widget(Sparkline::default().data(&data).style(t.warn()), inner);
}

fn render_servers(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel("ComfyUI servers", t);
    if app.servers.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("none known yet", t.dim())).block(block),
            area,
        );
        return;
    }
    let rows = app.servers.iter().map(|s| {
        let vram = match (s.vram_total, s.vram_free) {
            (Some(total), Some(free)) => {
                format!("{} / {}", bytes(total.saturating_sub(free)), bytes(total))
            }
            _ => "-".into(),
        };
        Row::new(vec![
            Span::raw(fit(&s.name, 10)),
            Span::styled(s.status.as_str(), t.server(s.status)),
            Span::raw(s.latency_ms.map_or("-".into(), |l| format!("{l}ms"))),
            Span::raw(s.in_flight.to_string()),
            Span::raw(vram),
            Span::raw(s.device.clone().unwrap_or_else(|| "-".into())),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(4),
            Constraint::Length(21),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new([
            "NAME",
            "STATUS",
            "LATENCY",
            "JOBS",
            "VRAM USED / TOTAL",
            "GPU",
        ])
        .style(t.header()),
    )
    .block(block);
    f.render_widget(table, area);
}
