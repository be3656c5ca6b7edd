//! `ruff check --output-format json`: one JSON array, printed when Ruff is done (or, with
//! `--output-format json-lines`, one object per line, read as it streams). Each entry is a
//! problem: `code` (`F401`; `null` or `invalid-syntax` for a syntax error), `location` and
//! `end_location` (1-based rows and columns counted in characters), the message (`message`, or
//! `body` in the first versions), and a `fix` whose edits become a fix when Ruff calls it safe
//! (`applicability: "safe"`; `"Automatic"` before Ruff 0.1). Rule violations are warnings and
//! syntax errors errors, whatever `severity` recent versions print (always `error`).

use std::path::PathBuf;

use serde::Deserialize;

use super::{Document, Parser, Stream};
use crate::checkers::{ColumnUnit, Edit, Fix, Point, Problem, Span};
use crate::classify::{Category, Severity};

#[derive(Default)]
pub struct RuffParser {
    document: Document,
    /// Entries already read line by line (`json-lines`): the document is then not read.
    streamed: bool,
}

#[derive(Deserialize)]
struct Entry {
    code: Option<String>,
    filename: String,
    location: Option<Location>,
    end_location: Option<Location>,
    message: Option<String>,
    body: Option<String>,
    fix: Option<JsonFix>,
}

#[derive(Deserialize, Clone, Copy)]
struct Location {
    row: u32,
    column: u32,
}

#[derive(Deserialize)]
struct JsonFix {
    applicability: Option<String>,
    message: Option<String>,
    #[serde(default)]
    edits: Vec<JsonEdit>,
}

#[derive(Deserialize)]
struct JsonEdit {
    content: Option<String>,
    location: Location,
    end_location: Location,
}

impl Parser for RuffParser {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Problem>) {
        if stream != Stream::Stdout {
            return;
        }
        let trimmed = line.trim();
        if trimmed.starts_with('{')
            && trimmed.ends_with('}')
            && trimmed.contains("\"filename\"")
            && let Ok(entry) = serde_json::from_str::<Entry>(trimmed)
        {
            self.streamed = true;
            out.extend(problem(entry));
            return;
        }
        if !self.streamed {
            self.document.push(line);
        }
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        if self.streamed {
            return;
        }
        let Some(text) = self.document.json_start('[') else { return };
        let Ok(entries) = serde_json::from_str::<Vec<Entry>>(text) else { return };
        out.extend(entries.into_iter().filter_map(problem));
    }
}

fn point(l: Location) -> Point {
    Point { line: l.row.max(1), column: l.column.max(1) }
}

fn problem(e: Entry) -> Option<Problem> {
    let path = PathBuf::from(&e.filename);
    let span = |start: Location, end: Option<Location>| {
        let start = point(start);
        Span {
            path: path.clone(),
            start,
            end: end.map(point).filter(|end| *end >= start),
            columns: ColumnUnit::Chars,
        }
    };
    let message = e.message.or(e.body).unwrap_or_default();
    let syntax = match e.code.as_deref() {
        None | Some("") => true,
        Some(code) => code == "invalid-syntax" || code == "E999" || code == "syntax-error",
    };
    let fixes = e
        .fix
        .filter(|f| {
            f.applicability
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("safe") || a.eq_ignore_ascii_case("automatic"))
        })
        .filter(|f| !f.edits.is_empty())
        .map(|f| Fix {
            title: f
                .message
                .clone()
                .unwrap_or_else(|| format!("Fix {}", e.code.as_deref().unwrap_or("this problem"))),
            edits: f
                .edits
                .iter()
                .map(|edit| Edit {
                    span: span(edit.location, Some(edit.end_location)),
                    replacement: edit.content.clone().unwrap_or_default(),
                })
                .collect(),
        })
        .into_iter()
        .collect();
    Some(Problem {
        span: span(e.location.unwrap_or(Location { row: 1, column: 1 }), e.end_location),
        severity: if syntax { Severity::Error } else { Severity::Warning },
        code: e.code.filter(|c| !c.is_empty()),
        message,
        source: "ruff".to_owned(),
        category: syntax.then_some(Category::Syntax),
        related: Vec::new(),
        fixes,
    })
}
