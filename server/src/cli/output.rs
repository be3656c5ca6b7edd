//! The one place that writes to the terminal.
//!
//! Stdout belongs to JSON-RPC while `acas serve` runs, so printing is denied everywhere else.
//! A closed pipe (`acas check | head`) ends the output quietly instead of panicking.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

/// Writes a line to stdout. Returns false once stdout is closed.
pub fn line(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").and_then(|_| stdout.flush()).is_ok()
}

/// Writes a line to stderr, for messages meant for a person.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
