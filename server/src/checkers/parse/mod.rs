//! Reading what tools print into [`Problem`]s, line by line as the output streams.
//!
//! Each format is a [`Parser`]: it is given every line of stdout and stderr as it arrives and
//! hands over each problem as soon as its last line was read, so the first errors reach the
//! editor before the tool finishes. Formats that print one document at the end (ESLint's and
//! Ruff's JSON arrays, a JUnit XML file) hand theirs over in [`Parser::finish`]. A parser never
//! fails: what it cannot read is skipped, and the runner reports a tool that failed without a
//! problem that could be read.

mod matcher;

use super::{Format, Problem};

pub use matcher::{MatcherParser, severity_named};

/// Which of a process's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A tool's output, read as it streams.
pub trait Parser: Send {
    /// Takes the next line (without its line ending) of `stream` and pushes the problems it
    /// completes onto `out`.
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Problem>);

    /// The output ended: pushes what is left onto `out`.
    fn finish(&mut self, out: &mut Vec<Problem>);
}

/// The parser of `format`.
pub fn parser(format: &Format) -> Box<dyn Parser> {
    match format {
        Format::Matcher(matcher) => Box::new(MatcherParser::new(matcher.clone())),
        Format::Cargo
        | Format::CargoTest
        | Format::Tsc
        | Format::Eslint
        | Format::Ruff
        | Format::Mypy
        | Format::Pyright
        | Format::Go
        | Format::GoTest
        | Format::Pytest { .. }
        | Format::Jest
        | Format::Crash { .. } => Box::new(Nothing),
    }
}

/// Reads nothing.
struct Nothing;

impl Parser for Nothing {
    fn line(&mut self, _: Stream, _: &str, _: &mut Vec<Problem>) {}
    fn finish(&mut self, _: &mut Vec<Problem>) {}
}
