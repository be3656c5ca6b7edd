//! `pyright --outputjson` (and basedpyright's): one JSON document, printed when Pyright is
//! done, whose `generalDiagnostics` are the problems: `file`, `severity` (`error`, `warning`,
//! `information`), `message`, `range` (0-based lines, columns in UTF-16 code units) and `rule`
//! (the code). A diagnostic without a range is placed at the start of its file.

use std::path::PathBuf;

use serde::Deserialize;

use super::matcher::severity_named;
use super::{Document, Parser, Stream};
use crate::checkers::{ColumnUnit, Point, Problem, Span};
use crate::classify::Severity;

#[derive(Default)]
pub struct PyrightParser {
    document: Document,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    #[serde(default)]
    general_diagnostics: Vec<Diagnostic>,
}

#[derive(Deserialize)]
struct Diagnostic {
    file: Option<String>,
    severity: String,
    message: String,
    range: Option<Range>,
    rule: Option<String>,
}

#[derive(Deserialize)]
struct Range {
    start: Position,
    end: Position,
}

#[derive(Deserialize)]
struct Position {
    line: u32,
    character: u32,
}

impl Parser for PyrightParser {
    fn line(&mut self, stream: Stream, line: &str, _: &mut Vec<Problem>) {
        if stream == Stream::Stdout {
            self.document.push(line);
        }
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        let Some(text) = self.document.json_start('{') else { return };
        let Ok(report) = serde_json::from_str::<Report>(text) else { return };
        for d in report.general_diagnostics {
            let Some(file) = d.file.filter(|f| !f.is_empty()) else { continue };
            let point = |p: &Position| Point {
                line: p.line.saturating_add(1),
                column: p.character.saturating_add(1),
            };
            let (start, end) = match &d.range {
                Some(r) => (point(&r.start), Some(point(&r.end))),
                None => (Point { line: 1, column: 1 }, None),
            };
            out.push(Problem {
                span: Span {
                    path: PathBuf::from(file),
                    start,
                    end: end.filter(|e| *e >= start),
                    columns: ColumnUnit::Utf16,
                },
                severity: severity_named(&d.severity).unwrap_or(Severity::Error),
                code: d.rule.filter(|r| !r.is_empty()),
                message: d.message,
                source: "pyright".to_owned(),
                category: None,
                related: Vec::new(),
                fixes: Vec::new(),
            });
        }
    }
}
