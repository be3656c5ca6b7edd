//! What can be recognised in any command's output: Python tracebacks, Rust panics (with or
//! without a backtrace), Node stack traces and Go panics, each a runtime problem on its
//! innermost frame inside the workspace; and the compiler messages of rustc (its human format:
//! `error[E0308]: …` then ` --> src/x.rs:1:2`), tsc and the Go tools. Every reader sees every
//! line, so output that mixes languages is read whole.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::frames::{self, GoReader, NodeReader, PythonReader, RustReader, Trace, Workspace};
use super::go::go_line;
use super::tsc::tsc_line;
use super::{Parser, Stream};
use crate::checkers::{ColumnUnit, Point, Problem, Span};
use crate::classify::{Category, Severity};

static RUSTC_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<level>error|warning)(?:\[(?P<code>[A-Za-z0-9_:]+)\])?: (?P<message>.+)$").unwrap()
});
static RUSTC_ARROW: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*--> (?P<file>.+?):(?P<line>\d+):(?P<col>\d+)$").unwrap());

/// Reads any command's output, choosing frames inside `root`.
pub struct CrashParser {
    workspace: Workspace,
    python: PythonReader,
    node: NodeReader,
    go: GoReader,
    rust: RustReader,
    rustc: RustcReader,
    traces: Vec<Trace>,
}

impl CrashParser {
    pub fn new(root: &Path) -> Self {
        Self {
            workspace: Workspace { root: Some(root.to_path_buf()) },
            python: PythonReader::default(),
            node: NodeReader::default(),
            go: GoReader::default(),
            rust: RustReader::default(),
            rustc: RustcReader::default(),
            traces: Vec::new(),
        }
    }

    fn emit(&mut self, out: &mut Vec<Problem>) {
        for trace in self.traces.drain(..) {
            out.extend(frames::problem(&trace, &self.workspace, trace.language, Category::Runtime, None));
        }
    }

    fn compiler(&mut self, line: &str, out: &mut Vec<Problem>) {
        if self.rustc.line(line, out) {
            return;
        }
        if let Some(problem) = tsc_line(line).or_else(|| go_line(line)) {
            out.push(problem);
        }
    }
}

/// Reads rustc's human format: a header (`error[E0308]: mismatched types`), then its place
/// (` --> src/lib.rs:18:21`). Summaries (`aborting due to …`, `could not compile …`) are not
/// problems.
#[derive(Default)]
pub struct RustcReader {
    /// The last header, waiting for its ` --> ` line.
    header: Option<(Severity, Option<String>, String)>,
}

impl RustcReader {
    /// Reads a line; whether it was a header or a place.
    pub fn line(&mut self, line: &str, out: &mut Vec<Problem>) -> bool {
        let header = (line.starts_with("error") || line.starts_with("warning"))
            .then(|| RUSTC_HEADER.captures(line))
            .flatten();
        if let Some(c) = header {
            let message = &c["message"];
            let summary = message.starts_with("aborting due to")
                || message.starts_with("could not compile")
                || message.contains("generated ") && message.contains(" warning");
            self.header = (!summary).then(|| {
                let severity = if &c["level"] == "error" { Severity::Error } else { Severity::Warning };
                (severity, c.name("code").map(|m| m.as_str().to_owned()), message.to_owned())
            });
            return true;
        }
        let Some((severity, code, message)) = self.header.take() else { return false };
        let Some(c) = RUSTC_ARROW.captures(line) else { return false };
        let Some(line_number) = c["line"].parse::<u32>().ok().filter(|n| *n > 0) else { return true };
        let column = c["col"].parse::<u32>().ok().filter(|n| *n > 0).unwrap_or(1);
        let source =
            if code.as_deref().is_some_and(|c| c.starts_with("clippy::")) { "clippy" } else { "rustc" };
        out.push(Problem {
            span: Span {
                path: PathBuf::from(&c["file"]),
                start: Point { line: line_number, column },
                end: None,
                columns: ColumnUnit::Chars,
            },
            severity,
            code,
            message,
            source: source.to_owned(),
            category: None,
            related: Vec::new(),
            fixes: Vec::new(),
        });
        true
    }
}

impl Parser for CrashParser {
    fn line(&mut self, _: Stream, line: &str, out: &mut Vec<Problem>) {
        let line = frames::strip_ansi(line);
        let line = line.as_ref();
        self.python.line(line, &mut self.traces);
        self.node.line(line, &mut self.traces);
        self.go.line(line, &mut self.traces);
        self.rust.line(line, &mut self.traces);
        self.emit(out);
        self.compiler(line, out);
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        self.python.finish(&mut self.traces);
        self.node.finish(&mut self.traces);
        self.go.finish(&mut self.traces);
        self.rust.finish(&mut self.traces);
        self.emit(out);
    }
}
