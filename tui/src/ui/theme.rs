//! Styles. Only the 16 ANSI colours are used, so a 16-colour terminal shows the console as
//! designed; with `NO_COLOR` every colour is dropped and bold and reverse video carry emphasis.

use comfydash_wire::{AlertState, HealthStatus, JobStatus, ServerStatus, Severity};
use ratatui::style::{Color, Modifier, Style};

/// The styles of one frame.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// Colours on or off.
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    /// Good news.
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Needs a look.
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Broken.
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    /// Keys and headings.
    pub fn accent(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Column headers.
    pub fn header(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// The selected row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// Borders.
    pub fn border(self) -> Style {
        self.fg(Color::Blue)
    }

    /// A job status word.
    pub fn job(self, s: JobStatus) -> Style {
        match s {
            JobStatus::Pending => self.fg(Color::Yellow),
            JobStatus::Processing => self.fg(Color::Cyan),
            JobStatus::Completed => self.ok(),
            JobStatus::Failed => self.bad(),
            JobStatus::Cancelled => self.dim(),
        }
    }

    /// A server status word.
    pub fn server(self, s: ServerStatus) -> Style {
        match s {
            ServerStatus::Up => self.ok(),
            ServerStatus::Draining | ServerStatus::Unknown => self.warn(),
            ServerStatus::Disabled => self.dim(),
            ServerStatus::Down | ServerStatus::Stuck => self.bad(),
        }
    }

    /// The daemon's health word.
    pub fn health(self, s: HealthStatus) -> Style {
        match s {
            HealthStatus::Healthy => self.ok(),
            HealthStatus::Degraded => self.bad(),
        }
    }

    /// An alert's severity word.
    pub fn severity(self, s: Severity) -> Style {
        match s {
            Severity::Critical => self.bad(),
            Severity::Warning => self.warn(),
            Severity::Info => self.fg(Color::Cyan),
        }
    }

    /// An alert's state word (muted alerts are drawn dim instead).
    pub fn alert(self, s: AlertState) -> Style {
        match s {
            AlertState::Firing => self.bad(),
            AlertState::Pending => self.warn(),
            AlertState::Resolved => self.ok(),
        }
    }

    /// A success rate: green from 95 %, yellow from 80 %, else red.
    pub fn rate(self, percent: f64) -> Style {
        if percent >= 95.0 {
            self.ok()
        } else if percent >= 80.0 {
            self.warn()
        } else {
            self.bad()
        }
    }
}

/// A text bar of `width` cells, `ratio` of them filled (readable without colour).
pub fn bar(ratio: f64, width: usize) -> String {
    let filled = ((ratio.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}
