//! What a scenario hands back: titled tables of figures and notes, printed as Markdown (so a run
//! pastes straight into `BENCHMARKS.md`) and serialised for `--json`.

use std::fmt;

use serde::Serialize;

/// One scenario's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name (`--only`).
    pub name: &'static str,
    /// What it measures.
    pub title: String,
    /// Its tables.
    pub tables: Vec<Table>,
    /// Settings and caveats worth reading beside the figures.
    pub notes: Vec<String>,
    /// Wall time the scenario took, in seconds.
    pub seconds: f64,
}

impl Report {
    /// An empty report.
    pub fn new(name: &'static str, title: impl Into<String>) -> Report {
        Report {
            name,
            title: title.into(),
            tables: Vec::new(),
            notes: Vec::new(),
            seconds: 0.0,
        }
    }

    /// Adds a note.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "## {}: {}", self.name, self.title)?;
        for t in &self.tables {
            writeln!(f)?;
            write!(f, "{t}")?;
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
        }
        for n in &self.notes {
            writeln!(f, "- {n}")?;
        }
        writeln!(f)?;
        writeln!(f, "({:.1} s)", self.seconds)
    }
}

/// A table: column names and rows of cells.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Caption.
    pub title: String,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Table {
        Table {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::to_string).collect())
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for r in &text {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        writeln!(f, "**{}**", self.title)?;
        writeln!(f)?;
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            write!(f, "|")?;
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                write!(f, " {c:<w$} |")?;
            }
            writeln!(f)
        };
        line(f, &self.columns)?;
        write!(f, "|")?;
        for (i, w) in widths.iter().enumerate() {
            // Text columns left, figures right (a first row decides).
            let numeric = self
                .rows
                .first()
                .and_then(|r| r.get(i))
                .is_some_and(|c| !matches!(c, Cell::Text(_)));
            if numeric {
                write!(f, "{}:|", "-".repeat(w + 1))?;
            } else {
                write!(f, "{}|", "-".repeat(w + 2))?;
            }
        }
        writeln!(f)?;
        for r in &text {
            line(f, r)?;
        }
        Ok(())
    }
}

/// One figure or label.
#[derive(Debug, Clone)]
pub enum Cell {
    /// A label.
    Text(String),
    /// A number shown with this many decimals.
    Num(f64, usize),
    /// A ratio, shown as `1.23×`.
    Ratio(f64),
    /// Nothing to show.
    Empty,
}

impl Cell {
    /// A label.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// A count.
    pub fn int(n: impl Into<u64>) -> Cell {
        Cell::Num(n.into() as f64, 0)
    }

    /// Milliseconds, with decimals suited to the size.
    pub fn ms(v: f64) -> Cell {
        let d = if v < 1.0 {
            3
        } else if v < 10.0 {
            2
        } else if v < 100.0 {
            1
        } else {
            0
        };
        Cell::Num(v, d)
    }

    /// A rate per second.
    pub fn rate(v: f64) -> Cell {
        Cell::Num(v, if v < 100.0 { 1 } else { 0 })
    }

    /// `a / b`, empty when either is not a positive number.
    pub fn ratio(a: f64, b: f64) -> Cell {
        if a.is_finite() && b.is_finite() && b > 0.0 {
            Cell::Ratio(a / b)
        } else {
            Cell::Empty
        }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Num(v, _) if !v.is_finite() => f.write_str("–"),
            Cell::Num(v, d) => write!(f, "{v:.d$}"),
            Cell::Ratio(r) => write!(f, "{r:.2}×"),
            Cell::Empty => f.write_str("–"),
        }
    }
}

impl Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Text(t) => s.serialize_str(t),
            Cell::Num(v, _) | Cell::Ratio(v) if v.is_finite() => s.serialize_f64(*v),
            _ => s.serialize_none(),
        }
    }
}
