//! mypy, in both of its outputs:
//! - `--output json` (mypy 1.11 and later): one object per line, `file`, `line`, `column`
//!   (0-based, `-1` when unknown), `end_line`, `end_column` (0-based, exclusive), `severity`,
//!   `code`, `message` and `hint` (appended to the message);
//! - the plain `file:line: error: message  [code]`, with `:col` and `:end_line:end_col` (1-based,
//!   inclusive) when `--show-column-numbers` and `--show-error-end` are on.
//!
//! A `note` right after a problem in the same file belongs to it: on the same line it is
//! appended to the message, elsewhere it is a related place; a note after nothing is a problem of
//! its own, as information. mypy counts columns in characters, but miscounts them on lines that
//! hold non-ASCII text.

use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::matcher::severity_named;
use super::{Parser, Stream};
use crate::checkers::{ColumnUnit, Point, Problem, Related, Span};
use crate::classify::Severity;

static PLAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+)(?::(?P<col>\d+))?(?::(?P<end_line>\d+):(?P<end_col>\d+))?: (?P<severity>error|warning|note): (?P<message>.*?)(?:  \[(?P<code>[a-z0-9-]+)\])?$").unwrap()
});

#[derive(Default)]
pub struct MypyParser {
    pending: Option<Problem>,
}

#[derive(Deserialize)]
struct JsonLine {
    file: String,
    line: i64,
    column: Option<i64>,
    end_line: Option<i64>,
    end_column: Option<i64>,
    message: String,
    hint: Option<String>,
    code: Option<String>,
    severity: String,
}

fn positive(n: i64) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| *n > 0)
}

impl MypyParser {
    /// Takes a problem or a note: a note joins the pending problem when it follows one in the
    /// same file.
    fn take(&mut self, problem: Problem, is_note: bool, out: &mut Vec<Problem>) {
        if is_note
            && let Some(pending) = &mut self.pending
            && pending.span.path == problem.span.path
        {
            if pending.span.start.line == problem.span.start.line {
                pending.message.push('\n');
                pending.message.push_str(&problem.message);
            } else {
                pending.related.push(Related { span: problem.span, message: problem.message });
            }
            return;
        }
        out.extend(self.pending.take());
        self.pending = Some(problem);
    }
}

fn problem(
    path: &str,
    start: Point,
    end: Option<Point>,
    severity: Severity,
    code: Option<String>,
    message: String,
) -> Problem {
    Problem {
        span: Span {
            path: PathBuf::from(path),
            start,
            end: end.filter(|e| *e >= start),
            columns: ColumnUnit::Chars,
        },
        severity,
        code,
        message,
        source: "mypy".to_owned(),
        category: None,
        related: Vec::new(),
        fixes: Vec::new(),
    }
}

impl Parser for MypyParser {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Problem>) {
        if stream != Stream::Stdout {
            return;
        }
        if line.starts_with('{') {
            let Ok(j) = serde_json::from_str::<JsonLine>(line) else { return };
            let Some(line_number) = positive(j.line) else { return };
            let start = Point {
                line: line_number,
                column: j.column.and_then(|c| positive(c.saturating_add(1))).unwrap_or(1),
            };
            let end = match (
                j.end_line.and_then(positive),
                j.end_column.and_then(|c| positive(c.saturating_add(1))),
            ) {
                (Some(line), Some(column)) => Some(Point { line, column }),
                _ => None,
            };
            let is_note = j.severity == "note";
            let severity = if is_note {
                Severity::Information
            } else {
                severity_named(&j.severity).unwrap_or(Severity::Error)
            };
            let message = match j.hint.filter(|h| !h.is_empty()) {
                Some(hint) => format!("{}\n{hint}", j.message),
                None => j.message,
            };
            let code = j.code.filter(|c| !c.is_empty());
            self.take(problem(&j.file, start, end, severity, code, message), is_note, out);
            return;
        }
        if !line.contains(": ") {
            return;
        }
        let Some(c) = PLAIN.captures(line) else { return };
        let number =
            |name: &str| c.name(name).and_then(|m| m.as_str().parse::<u32>().ok()).filter(|n| *n > 0);
        let Some(line_number) = number("line") else { return };
        let start = Point { line: line_number, column: number("col").unwrap_or(1) };
        // The plain end column is inclusive.
        let end = match (number("end_line"), number("end_col")) {
            (Some(line), Some(column)) => Some(Point { line, column: column.saturating_add(1) }),
            _ => None,
        };
        let is_note = &c["severity"] == "note";
        let severity = if is_note {
            Severity::Information
        } else {
            severity_named(&c["severity"]).unwrap_or(Severity::Error)
        };
        let code = c.name("code").map(|m| m.as_str().to_owned());
        self.take(problem(&c["file"], start, end, severity, code, c["message"].to_owned()), is_note, out);
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        out.extend(self.pending.take());
    }
}
