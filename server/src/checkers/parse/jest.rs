//! `jest --json` and `vitest run --reporter=json`: one JSON document, printed when the run
//! ends. Each failed assertion result (`testResults[].assertionResults[]`) is a problem on the
//! innermost frame of its first failure message's stack trace that is not in `node_modules` or
//! Node itself (its test file's `location` when there is no such frame, else the file's first
//! line), with the test's full name and the failure's message; the source is `vitest` when the
//! stack traces go through Vitest's runner, else `jest`. A test file that failed without
//! a failed test (it did not compile, or threw while loading) is a problem of its own.

use std::path::PathBuf;

use serde::Deserialize;

use super::frames::{self, Trace, Workspace};
use super::{Document, Parser, Stream};
use crate::checkers::{ColumnUnit, Point, Problem, Span};
use crate::classify::{Category, Severity};

#[derive(Default)]
pub struct JestParser {
    document: Document,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    #[serde(default)]
    test_results: Vec<FileResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileResult {
    name: String,
    status: Option<String>,
    message: Option<String>,
    #[serde(default)]
    assertion_results: Vec<Assertion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assertion {
    full_name: Option<String>,
    title: Option<String>,
    status: String,
    #[serde(default)]
    failure_messages: Vec<String>,
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Location {
    line: u32,
    column: Option<u32>,
}

impl Parser for JestParser {
    fn line(&mut self, stream: Stream, line: &str, _: &mut Vec<Problem>) {
        if stream == Stream::Stdout {
            self.document.push(line);
        }
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        let Some(text) = self.document.json_start('{') else { return };
        let Ok(report) = serde_json::from_str::<Report>(text) else { return };
        // The two print the same document; Vitest's stack traces go through its runner.
        let source = if text.contains("/@vitest/") { "vitest" } else { "jest" };
        for file in report.test_results {
            let mut failed = false;
            for a in &file.assertion_results {
                if a.status != "failed" {
                    continue;
                }
                failed = true;
                let name = a.full_name.clone().or(a.title.clone()).unwrap_or_default();
                let text = a.failure_messages.first().map(String::as_str).unwrap_or("");
                let fallback = a
                    .location
                    .as_ref()
                    .map(|l| Point { line: l.line.max(1), column: l.column.unwrap_or(0).saturating_add(1) });
                out.push(problem(source, &file.name, &name, text, fallback));
            }
            let file_failed = file.status.as_deref() == Some("failed");
            if !failed && file_failed {
                let text = file.message.as_deref().unwrap_or("");
                out.push(problem(source, &file.name, "", text, None));
            }
        }
    }
}

fn problem(source: &str, file: &str, name: &str, text: &str, fallback: Option<Point>) -> Problem {
    let (message, frames) = frames::node_stack(text);
    let message = if message.is_empty() { "failed".to_owned() } else { message };
    let trace = Trace { message, frames, columns: ColumnUnit::Utf16, language: "node", thread: None };
    let placed = trace
        .frames
        .iter()
        .any(|f| Workspace::default().contains(&f.path))
        .then(|| frames::problem(&trace, &Workspace::default(), source, Category::Test, Some(name)))
        .flatten();
    placed.unwrap_or_else(|| Problem {
        span: Span {
            path: PathBuf::from(file),
            start: fallback.unwrap_or(Point { line: 1, column: 1 }),
            end: None,
            columns: ColumnUnit::Utf16,
        },
        severity: Severity::Error,
        code: None,
        message: if name.is_empty() { trace.message } else { format!("{name}: {}", trace.message) },
        source: source.to_owned(),
        category: Some(Category::Test),
        related: Vec::new(),
        fixes: Vec::new(),
    })
}
