//! Servers: every ComfyUI server and the selected one's detail, with the keys that steer it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Paragraph, Row, Table, TableState};

use super::{Theme, panel};
use crate::app::App;
use crate::units::{bytes, fit};

/// Draws the servers screen.
pub fn render(app: &App, t: Theme, f: &mut Frame, area: Rect) {
    let list_h = (app.servers.len() as u16 + 3).clamp(4, area.height.saturating_sub(9).max(4));
    let [list, detail] = area.layout(&Layout::vertical([
        Constraint::Length(list_h),
        Constraint::Fill(1),
    ]));
    let block = panel("ComfyUI servers", t);
    if app.servers.is_empty() {
        f.render_widget(
            Paragraph::new(Line::styled("none known yet", t.dim())).block(block),
            list,
        );
        return;
    }
    let rows = app.servers.iter().map(|s| {
        Row::new(vec![
            Span::raw(fit(&s.name, 12)),
            Span::styled(s.status.as_str(), t.server(s.status)),
            Span::raw(s.latency_ms.map_or("-".into(), |l| format!("{l}ms"))),
            Span::raw(s.in_flight.to_string()),
            Span::raw(s.url.clone()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["NAME", "STATUS", "LATENCY", "JOBS", "URL"]).style(t.header()))
    .row_highlight_style(t.selected())
    .block(block);
    let mut state = TableState::default().with_selected(Some(app.server_sel));
    f.render_stateful_widget(table, list, &mut state);
    if let Some(s) = app.selected_server() {
        render_detail(s, t, f, detail);
    }
}

fn render_detail(s: &comfydash_wire::ServerInfo, t: Theme, f: &mut Frame, area: Rect) {
    let block = panel(
        format!("{} · d drain · e enable · D disable · f free", s.name),
        t,
    );
    let inner = block.inner(area);
    f.render_widget(block, area);
    let key = |k: &str| Span::styled(format!("{k:<12}"), t.dim());
    let lines = vec![
        Line::from(vec![
            key("status"),
            Span::styled(s.status.as_str(), t.server(s.status)),
            Span::styled(
                format!("   failed probes {}", s.consecutive_failures),
                if s.consecutive_failures > 0 {
                    t.warn()
                } else {
                    t.dim()
                },
            ),
        ]),
        Line::from(vec![key("url"), Span::raw(s.url.clone())]),
        Line::from(vec![
            key("gpu"),
            Span::raw(s.device.clone().unwrap_or_else(|| "-".into())),
        ]),
        Line::from(vec![
            key("comfyui"),
            Span::raw(s.version.clone().unwrap_or_else(|| "-".into())),
            Span::styled("   latency ", t.dim()),
            Span::raw(s.latency_ms.map_or("-".into(), |l| format!("{l} ms"))),
            Span::styled("   jobs in flight ", t.dim()),
            Span::raw(s.in_flight.to_string()),
        ]),
    ];
    let n = lines.len() as u16;
    let [text, gauge] = inner.layout(&Layout::vertical([
        Constraint::Length(n),
        Constraint::Length(1),
    ]));
    f.render_widget(Paragraph::new(lines), text);
    if let (Some(total), Some(free)) = (s.vram_total, s.vram_free) {
        let used = total.saturating_sub(free);
        let ratio = if total == 0 {
            0.0
        } else {
            used as f64 / total as f64
        };
        let style = if ratio > 0.9 { t.warn() } else { t.ok() };
        f.render_widget(
            LineGauge::default()
                .ratio(ratio)
                .label(Line::from(vec![
                    key("vram"),
                    Span::raw(format!("{} / {} ", bytes(used), bytes(total))),
                ]))
                .filled_symbol("█")
                .unfilled_symbol("░")
                .filled_style(style)
                .unfilled_style(t.dim()),
            gauge,
        );
    }
}
