//! `cargo test` and `cargo nextest run`: libtest's output. Each failed test's panic is a problem
//! at the panic's location (`panicked at src/lib.rs:12:5:`, or before Rust 1.73
//! `panicked at 'message', src/lib.rs:12:5`), with the panic's message (an assertion's `left`
//! and `right`) and the test's name as its message; with `RUST_BACKTRACE` set, the backtrace's
//! frames inside the workspace are related places. Compiler errors that stop the tests from
//! building are read from rustc's human format (`error[E0308]: …` then ` --> src/x.rs:1:2`).

use std::sync::LazyLock;

use regex::Regex;

use super::crash::RustcReader;
use super::frames::{self, RustReader, Trace, Workspace};
use super::{Parser, Stream};
use crate::checkers::Problem;
use crate::classify::Category;

static LIBTEST_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^---- (?P<name>.+) std(?:out|err) ----$").unwrap());
static NEXTEST_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:FAIL|SIGSEGV|SIGABRT|SIGBUS|SIGILL|TIMEOUT|ABORT|LEAK-FAIL)\s+\[[^\]]*\]\s+(?:\(\s*\d+/\d+\)\s+)?(?P<binary>\S+)\s+(?P<name>\S+)\s*$").unwrap()
});

#[derive(Default)]
pub struct CargoTestParser {
    reader: RustReader,
    rustc: RustcReader,
    test: Option<String>,
    traces: Vec<Trace>,
}

impl CargoTestParser {
    fn emit(&mut self, out: &mut Vec<Problem>) {
        let workspace = Workspace::default();
        for trace in self.traces.drain(..) {
            let thread =
                trace.thread.as_deref().filter(|t| !t.is_empty() && *t != "main" && *t != "<unnamed>");
            let test = thread.map(str::to_owned).or_else(|| self.test.clone());
            if let Some(problem) =
                frames::problem(&trace, &workspace, "cargo test", Category::Test, test.as_deref())
            {
                out.push(problem);
            }
        }
    }
}

impl Parser for CargoTestParser {
    fn line(&mut self, _: Stream, line: &str, out: &mut Vec<Problem>) {
        let header = if line.starts_with("---- ") {
            LIBTEST_HEADER.captures(line)
        } else if line.contains(" [") && line.contains(']') {
            NEXTEST_HEADER.captures(line)
        } else {
            None
        };
        if let Some(c) = header {
            self.reader.finish(&mut self.traces);
            self.emit(out);
            self.test = Some(c["name"].to_owned());
            return;
        }
        self.reader.line(line, &mut self.traces);
        self.emit(out);
        self.rustc.line(line, out);
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        self.reader.finish(&mut self.traces);
        self.emit(out);
    }
}
