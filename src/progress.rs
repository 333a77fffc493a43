//! Progress bars for `--wait` and downloads, drawn on stderr only when stdout is a terminal, so
//! scripts and pipes see none.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

fn interactive() -> bool {
    std::io::stdout().is_terminal()
}

/// A spinner with a message (hidden when not interactive).
pub fn spinner(message: String) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Shows `value` of `max` steps on a spinner made by [`spinner`].
pub fn set_steps(bar: &ProgressBar, value: u64, max: u64) {
    if bar.length() != Some(max) {
        bar.set_length(max);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg} [{wide_bar}] {pos}/{len} steps")
        {
            bar.set_style(style.progress_chars("=> "));
        }
    }
    bar.set_position(value);
}

/// A byte counter for a download of `size` bytes (hidden when not interactive).
pub fn bytes(size: u64, name: &str) -> ProgressBar {
    if !interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size).with_message(name.to_string());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
