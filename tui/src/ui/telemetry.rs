//! Telemetry: what external sources reported (`POST /api/telemetry`), latest value and trend.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Sparkline};

use super::{Theme, panel};
use crate::app::App;
use crate::units::{age, fit, value};

/// Name column width.
const NAME: u16 = 28;
/// Value and age columns.
const VALUE: u16 = 11;
const AGE: u16 = 6;

/// Draws the telemetry screen.
pub fn render(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    if app.series.is_empty() {
        let block = panel("External telemetry", t);
        let text = vec![
            Line::styled("no source has reported yet", t.dim()),
            Line::styled(
                "sources POST /api/telemetry {\"source\",\"metrics\":{...}} with a submit key",
                t.dim(),
            ),
        ];
        f.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    // A chart of the selected metric when there is room for one.
    let rows = app.series.len() as u16 + 2;
    let (list, chart) = if area.height >= rows + 10 || area.height >= 18 {
        let list_h = rows.min(area.height / 2);
        let [a, b] = area.layout(&Layout::vertical([
            Constraint::Length(list_h),
            Constraint::Fill(1),
        ]));
        (a, Some(b))
    } else {
        (area, None)
    };
    render_list(app, t, f, list);
    if let Some(area) = chart {
        render_chart(app, t, f, area);
    }
}

fn render_list(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel(
        format!(
            "External telemetry · {} metrics · last hour",
            app.series.len()
        ),
        t,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let visible = inner.height as usize;
    let first = app.metric_sel.saturating_sub(visible.saturating_sub(1));
    for (i, ((source, metric), points)) in app.series.iter().enumerate().skip(first).take(visible) {
        let y = inner.y + (i - first) as u16;
        let row = Rect::new(inner.x, y, inner.width, 1);
        let [name, val, when, spark] = row.layout(&Layout::horizontal([
            Constraint::Length(NAME),
            Constraint::Length(VALUE),
            Constraint::Length(AGE),
            Constraint::Fill(1),
        ]));
        let selected = i == app.metric_sel;
        let style = if selected {
            t.selected()
        } else {
            Default::default()
        };
        let last = points.back();
        f.render_widget(
            Line::styled(fit(&format!("{source}.{metric}"), NAME as usize - 1), style),
            name,
        );
        f.render_widget(
            Line::styled(last.map_or("-".into(), |p| value(p.1)), style).right_aligned(),
            Rect::new(val.x, val.y, val.width.saturating_sub(1), 1),
        );
        f.render_widget(
            Line::styled(last.map_or("-".into(), |p| age(app.now, p.0)), t.dim()).right_aligned(),
            Rect::new(when.x, when.y, when.width.saturating_sub(1), 1),
        );
        let data = scaled(points.iter().map(|p| p.1), spark.width as usize);
        f.render_widget(Sparkline::default().data(&data).style(t.accent()), spark);
    }
}

/// The last `width` values mapped onto 0..=100 between their minimum and maximum.
fn scaled(values: impl DoubleEndedIterator<Item = f64>, width: usize) -> Vec<u64> {
    let mut v: Vec<f64> = values.rev().take(width).collect();
    v.reverse();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    v.iter()
        .map(|x| {
            if hi > lo {
                (1.0 + (x - lo) / (hi - lo) * 99.0) as u64
            } else {
                50
            }
        })
        .collect()
}

fn render_chart(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let Some(((source, metric), points)) = app.selected_metric() else {
        return;
    };
    let Some(first) = points.front() else {
        return;
    };
    let data: Vec<(f64, f64)> = points
        .iter()
        .map(|(at, v)| ((*at - first.0).num_milliseconds() as f64 / 60_000.0, *v))
        .collect();
    let x_max = data.last().map_or(1.0, |p| p.0).max(1.0 / 60.0);
    let lo = data.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = data.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(t.accent())
        .data(&data);
    let chart = Chart::new(vec![dataset])
        .block(panel(
            Line::from(vec![
                Span::raw(format!("{source}.{metric}")),
                Span::styled(format!(" · {} points", points.len()), t.dim()),
            ]),
            t,
        ))
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels([Line::from("0"), Line::from(format!("{x_max:.0} min"))])
                .style(t.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels([Line::from(value(lo)), Line::from(value(hi))])
                .style(t.dim()),
        );
    f.render_widget(chart, area);
}
