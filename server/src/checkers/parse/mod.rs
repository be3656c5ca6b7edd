//! Reading what tools print into [`Problem`]s, line by line as the output streams.
//!
//! Each format is a [`Parser`]: it is given every line of stdout and stderr as it arrives and
//! hands over each problem as soon as its last line was read, so the first errors reach the
//! editor before the tool finishes. Formats that print one document at the end (ESLint's and
//! Ruff's JSON arrays, a JUnit XML file) hand theirs over in [`Parser::finish`]. A parser never
//! fails: what it cannot read is skipped, and the runner reports a tool that failed without a
//! problem that could be read.
//!
//! [`crash`] reads any command's output for crashes and compiler messages; it needs the
//! workspace's root to tell the project's frames from its libraries'.

mod cargo;
mod cargo_test;
mod crash;
mod eslint;
mod frames;
mod go;
mod go_test;
mod jest;
mod matcher;
mod mypy;
mod pyright;
mod pytest;
mod ruff;
mod tsc;

use std::path::Path;

use super::{Format, Problem};

pub use eslint::utf16_point;
pub use matcher::{MatcherParser, severity_named};
pub use pytest::{JUNIT_LIMIT, JunitFailure, junit_failures};

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

/// The parser of `format`, for a tool run in `cwd` (absolute; some formats name files relative
/// to what they find there, such as a Go package's directory below its `go.mod`).
pub fn parser(format: &Format, cwd: &Path) -> Box<dyn Parser> {
    match format {
        Format::Matcher(matcher) => Box::new(MatcherParser::new(matcher.clone())),
        Format::Cargo => Box::<cargo::CargoParser>::default(),
        Format::CargoTest => Box::<cargo_test::CargoTestParser>::default(),
        Format::Tsc => Box::<tsc::TscParser>::default(),
        Format::Eslint => Box::<eslint::EslintParser>::default(),
        Format::Ruff => Box::<ruff::RuffParser>::default(),
        Format::Mypy => Box::<mypy::MypyParser>::default(),
        Format::Pyright => Box::<pyright::PyrightParser>::default(),
        Format::Go => Box::<go::GoParser>::default(),
        Format::GoTest => Box::new(go_test::GoTestParser::new(cwd)),
        Format::Pytest { junit_xml } => Box::new(pytest::PytestParser::new(junit_xml.clone(), cwd)),
        Format::Jest => Box::<jest::JestParser>::default(),
        Format::Crash { root } => crash(root),
    }
}

/// The parser that recognises crashes (Python tracebacks, Rust panics, Node stack traces, Go
/// panics) and compiler messages (rustc, tsc, Go) in any command's output, placing each crash on
/// its innermost frame under `root` (the workspace) outside installed libraries. Relative paths
/// in the output count as inside. Each stream is read on its own: a program's stdout and stderr
/// are read by separate threads, so their lines interleave however the program flushed them.
pub fn crash(root: &Path) -> Box<dyn Parser> {
    Box::new(PerStream {
        stdout: Box::new(crash::CrashParser::new(root)),
        stderr: Box::new(crash::CrashParser::new(root)),
    })
}

/// One parser per stream, so that a trace on one stream never takes lines of the other.
struct PerStream {
    stdout: Box<dyn Parser>,
    stderr: Box<dyn Parser>,
}

impl Parser for PerStream {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Problem>) {
        match stream {
            Stream::Stdout => self.stdout.line(stream, line, out),
            Stream::Stderr => self.stderr.line(stream, line, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        self.stdout.finish(out);
        self.stderr.finish(out);
    }
}

/// The largest JSON document (ESLint's, Ruff's, Pyright's, Jest's) read; the output past it is
/// dropped, and a document cut there cannot be read.
pub const DOCUMENT_LIMIT: usize = 256 * 1024 * 1024;

/// The lines of a document printed whole, kept until the tool ends.
#[derive(Default)]
struct Document {
    text: String,
}

impl Document {
    fn push(&mut self, line: &str) {
        if self.text.len() + line.len() < DOCUMENT_LIMIT {
            self.text.push_str(line);
            self.text.push('\n');
        }
    }

    /// The document from its first line that starts with `open` (`[` or `{`): what a tool or
    /// a script around it printed before (`> eslint .`) is skipped.
    fn json_start(&self, open: char) -> Option<&str> {
        if self.text.starts_with(open) {
            return Some(&self.text);
        }
        let at = self.text.find(&format!("\n{open}"))?;
        Some(&self.text[at + 1..])
    }
}

#[cfg(test)]
mod tests;
