//! The one place that writes to the terminal.
//!
//! Stdout belongs to JSON-RPC while `acas serve` runs, so printing is denied everywhere else.
//! A closed pipe (`acas check | head`) ends the output quietly instead of panicking. Questions to
//! a person ([`ask`]) are asked here too.

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

/// Asks a person on the terminal: writes `question` to stderr, without a newline, and reads one
/// line from stdin. `None` when stdin is closed.
pub fn ask(question: &str) -> Option<String> {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question}").and_then(|_| stderr.flush());
    drop(stderr);
    let mut answer = String::new();
    match std::io::stdin().read_line(&mut answer) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(answer.trim().to_owned()),
    }
}

/// Writes bytes to stdout as they are, for a command's output passed through. Returns false
/// once stdout is closed.
pub fn raw_stdout(bytes: &[u8]) -> bool {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|_| stdout.flush()).is_ok()
}

/// Writes bytes to stderr as they are, for a command's output passed through.
pub fn raw_stderr(bytes: &[u8]) -> bool {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(bytes).and_then(|_| stderr.flush()).is_ok()
}

/// Text from agents or files, escaped for the terminal: every printer shows such text through these.
pub use crate::display::{shown, shown_lines};
