//! Writing results to stdout when the reader may go away (`comfydash jobs list | head`): a closed
//! pipe ends the process quietly instead of panicking as `println!` does.

use std::fmt;
use std::io::Write;

/// Like `print!`, through [`write`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write(format_args!($($arg)*)) };
}

/// Like `println!`, through [`write`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes to stdout and flushes; a closed pipe exits 0, any other write error exits 1.
pub fn write(args: fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("comfydash: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}
