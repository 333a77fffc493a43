//! The real terminal: raw mode and the alternate screen, always undone (drop, error, panic), and
//! the clipboard escape.

use std::io::Write;

use base64::Engine;
use ratatui::DefaultTerminal;

/// Owns the terminal while the console runs; dropping it restores the terminal.
pub struct Guard {
    terminal: DefaultTerminal,
}

impl Guard {
    /// Enters raw mode and the alternate screen; installs a panic hook that restores both.
    pub fn enter() -> std::io::Result<Guard> {
        // try_init installs ratatui's panic hook (restore, then the previous hook) first.
        match ratatui::try_init() {
            Ok(terminal) => Ok(Guard { terminal }),
            Err(e) => {
                ratatui::restore();
                Err(e)
            }
        }
    }

    /// The terminal to draw on.
    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}

/// Puts `text` on the clipboard of the operator's terminal (OSC 52), which works over SSH.
pub fn copy(text: &str) -> std::io::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout().lock();
    write!(out, "\x1b]52;c;{b64}\x07")?;
    out.flush()
}
