//! Standard output that ends the process quietly, with exit code 0, when
//! the reader has gone away (`tandem project show X | head -1`), as Unix
//! tools do. Rust ignores SIGPIPE, so a write to a closed pipe fails, and
//! `std`'s `println!` panics on that failure.
//!
//! `lib.rs` declares this module first with `#[macro_use]`, so the
//! `println!` and `print!` below replace `std`'s throughout the crate;
//! they take the same arguments.

use std::io::{self, Write};

/// Writes to stdout (flushing, so a closed pipe is noticed now, not at
/// exit). A closed pipe ends the process with exit code 0; any other
/// failure (a full disk behind a redirect, say) is reported and ends it
/// with exit code 1, since the output is incomplete.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(io::stderr(), "error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `std::println!`, ending the process quietly when stdout is closed.
macro_rules! println {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `std::print!`, ending the process quietly when stdout is closed.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}
