//! Numbers as an operator reads them: ages, durations, bytes, counts, text cut to a width, and
//! what an alert matches.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use unicode_width::UnicodeWidthChar;

/// How long ago `t` was, relative to `now`: `0s`, `42s`, `5m`, `3h`, `12d`.
pub fn age(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// A duration in milliseconds: `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn millis(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// Bytes in binary units: `512 B`, `7.8 GiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A count short enough for a narrow column: `999`, `12.3k`, `4.6M`, `18.4E`.
pub fn count(n: u64) -> String {
    const UNITS: [&str; 6] = ["k", "M", "G", "T", "P", "E"];
    if n < 10_000 {
        return n.to_string();
    }
    let mut v = n as f64 / 1e3;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1e3;
        i += 1;
    }
    format!("{v:.1}{}", UNITS[i])
}

/// A metric value with as many digits as fit: `0.93`, `42`, `1.2e9`.
pub fn value(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.01..1e7).contains(&a) {
        format!("{v:.2e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// `s` cut to `width` columns, ending in `…` when cut (wide characters count as two).
pub fn fit(s: &str, width: usize) -> String {
    let total: usize = s.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// Text on one line: control characters (newlines in prompts) become spaces.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// What an alert or silence matches, as people write it: `server_down{server=gpu0}`.
pub fn matcher(rule: Option<&str>, labels: &BTreeMap<String, String>) -> String {
    let rule = rule.unwrap_or("*");
    if labels.is_empty() {
        return rule.to_string();
    }
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{rule}{{{}}}", labels.join(","))
}

/// The first 8 characters of a silence id (a uuid), enough to tell silences apart on screen.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// One status line for a configuration reload: the changes, then how many warnings.
pub fn reload_summary(r: &comfydash_wire::ReloadReport) -> String {
    let mut out = if r.applied.is_empty() {
        "nothing changed that applies live".to_string()
    } else {
        r.applied.join("; ")
    };
    match r.warnings.len() {
        0 => {}
        1 => out.push_str(&format!(" (warning: {})", r.warnings[0])),
        n => out.push_str(&format!(" ({n} warnings, first: {})", r.warnings[0])),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(millis(850), "850ms");
        assert_eq!(millis(12_345), "12.3s");
        assert_eq!(millis(245_000), "4m05s");
        assert_eq!(bytes(25_757_220_864), "24.0 GiB");
        assert_eq!(count(18_446_744_073_709_551_615), "18.4E");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(value(0.934), "0.93");
        assert_eq!(value(1.5e12), "1.50e12");
    }

    #[test]
    fn fit_counts_wide_characters() {
        assert_eq!(fit("自転車に乗る猫", 7), "自転車…");
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("abcdef", 4), "abc…");
    }

    #[test]
    fn reload_summary_names_changes_and_warnings() {
        let r = |applied: &[&str], warnings: &[&str]| comfydash_wire::ReloadReport {
            applied: applied.iter().map(|s| s.to_string()).collect(),
            warnings: warnings.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            reload_summary(&r(&[], &[])),
            "nothing changed that applies live"
        );
        assert_eq!(
            reload_summary(&r(&["server gpu1 added", "server gpu0 removed"], &["x"])),
            "server gpu1 added; server gpu0 removed (warning: x)"
        );
        assert!(reload_summary(&r(&[], &["a", "b"])).ends_with("(2 warnings, first: a)"));
    }
}
