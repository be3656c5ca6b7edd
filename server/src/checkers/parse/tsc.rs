//! `tsc --noEmit --pretty false`: `file(line,col): error TS2322: message`, with the indented
//! lines that elaborate it appended to its message. A problem is handed over when the next
//! line that does not continue it arrives. Columns are UTF-16 code units. `--pretty` output
//! (colours, source excerpts) is not read: tsc turns it off by itself when its output is not a
//! terminal, as under a checker.

use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;

use super::matcher::severity_named;
use super::{Parser, Stream};
use crate::checkers::{ColumnUnit, Point, Problem, Span};
use crate::classify::Severity;

static TSC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+),(?P<col>\d+)\): (?P<severity>error|warning|message|suggestion) (?P<code>TS\d+): (?P<message>.*)$").unwrap()
});

/// The most lines of elaboration kept for one problem.
const CONTINUATION_LINES: usize = 100;

#[derive(Default)]
pub struct TscParser {
    pending: Option<Problem>,
    continuation: usize,
}

/// The problem a `tsc` line starts, if it starts one.
pub fn tsc_line(line: &str) -> Option<Problem> {
    if !line.contains("): ") {
        return None;
    }
    let c = TSC.captures(line)?;
    let line_number = c["line"].parse::<u32>().ok().filter(|n| *n > 0)?;
    let column = c["col"].parse::<u32>().ok().filter(|n| *n > 0).unwrap_or(1);
    Some(Problem {
        span: Span {
            path: PathBuf::from(&c["file"]),
            start: Point { line: line_number, column },
            end: None,
            columns: ColumnUnit::Utf16,
        },
        severity: match &c["severity"] {
            "message" => Severity::Information,
            word => severity_named(word).unwrap_or(Severity::Error),
        },
        code: Some(c["code"].to_owned()),
        message: c["message"].to_owned(),
        source: "tsc".to_owned(),
        category: None,
        related: Vec::new(),
        fixes: Vec::new(),
    })
}

impl Parser for TscParser {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Problem>) {
        if stream != Stream::Stdout {
            return;
        }
        if let Some(pending) = &mut self.pending {
            if line.starts_with("  ") && !line.trim().is_empty() {
                if self.continuation < CONTINUATION_LINES {
                    pending.message.push('\n');
                    pending.message.push_str(line.trim_end());
                    self.continuation += 1;
                }
                return;
            }
            out.extend(self.pending.take());
        }
        self.pending = tsc_line(line);
        self.continuation = 0;
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        out.extend(self.pending.take());
    }
}
