//! `go build`, `go vet` and `staticcheck`: `file.go:line:col: message` (the column is optional;
//! columns are bytes). `# package` headers are skipped, `vet: ` before a type-checking error is
//! dropped, and a trailing `(SA1000)` is staticcheck's code. A message continued on the next
//! lines (indented by a tab) is joined to its problem.

use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;

use super::{Parser, Stream};
use crate::checkers::{ColumnUnit, Point, Problem, Span};
use crate::classify::Severity;

static GO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:vet: )?(?P<file>[^\s:][^:]*\.go):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<message>.+?)(?: \((?P<code>[A-Z]+\d+)\))?$").unwrap()
});

#[derive(Default)]
pub struct GoParser {
    pending: Option<Problem>,
}

/// The problem a Go tool's line is, if it is one.
pub fn go_line(line: &str) -> Option<Problem> {
    if !line.contains(".go:") {
        return None;
    }
    let c = GO.captures(line)?;
    let line_number = c["line"].parse::<u32>().ok().filter(|n| *n > 0)?;
    let column = c.name("col").and_then(|m| m.as_str().parse::<u32>().ok()).filter(|n| *n > 0).unwrap_or(1);
    let code = c.name("code").map(|m| m.as_str().to_owned());
    Some(Problem {
        span: Span {
            path: PathBuf::from(&c["file"]),
            start: Point { line: line_number, column },
            end: None,
            columns: ColumnUnit::Bytes,
        },
        severity: Severity::Error,
        source: if code.is_some() { "staticcheck" } else { "go" }.to_owned(),
        code,
        message: c["message"].to_owned(),
        category: None,
        related: Vec::new(),
        fixes: Vec::new(),
    })
}

impl Parser for GoParser {
    fn line(&mut self, _: Stream, line: &str, out: &mut Vec<Problem>) {
        if let Some(pending) = &mut self.pending {
            if line.starts_with('\t') && !line.trim().is_empty() && pending.message.len() < 64 * 1024 {
                pending.message.push('\n');
                pending.message.push_str(line.trim());
                return;
            }
            out.extend(self.pending.take());
        }
        self.pending = go_line(line);
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        out.extend(self.pending.take());
    }
}
