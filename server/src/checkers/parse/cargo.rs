//! `cargo check|clippy|build|test --message-format=json`: each `compiler-message` line is one of
//! rustc's JSON diagnostics. The primary span is the problem's place (moved out of a macro's
//! expansion to the outermost call inside the workspace), the other spans and the children that
//! have spans are related places, and the children whose suggestions rustc marks
//! `MachineApplicable` are fixes. The rendered text and the summaries (`aborting due to …`,
//! `Some errors have detailed explanations`) are skipped, and so is every line that is not JSON.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Parser, Stream};
use crate::checkers::{ColumnUnit, Edit, Fix, Point, Problem, Related, Span};
use crate::classify::Severity;

#[derive(Default)]
pub struct CargoParser;

#[derive(Deserialize)]
struct Line {
    reason: String,
    message: Option<Diagnostic>,
}

#[derive(Deserialize)]
struct Diagnostic {
    message: String,
    code: Option<Code>,
    level: String,
    #[serde(default)]
    spans: Vec<JsonSpan>,
    #[serde(default)]
    children: Vec<Diagnostic>,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

#[derive(Deserialize, Clone)]
struct JsonSpan {
    file_name: String,
    line_start: u32,
    line_end: u32,
    column_start: u32,
    column_end: u32,
    is_primary: bool,
    label: Option<String>,
    suggested_replacement: Option<String>,
    suggestion_applicability: Option<String>,
    expansion: Option<Box<Expansion>>,
}

#[derive(Deserialize, Clone)]
struct Expansion {
    span: JsonSpan,
    macro_decl_name: Option<String>,
}

impl Parser for CargoParser {
    fn line(&mut self, stream: Stream, line: &str, out: &mut Vec<Problem>) {
        if stream != Stream::Stdout || !line.starts_with('{') || !line.contains("\"compiler-message\"") {
            return;
        }
        let Ok(parsed) = serde_json::from_str::<Line>(line) else { return };
        if parsed.reason != "compiler-message" {
            return;
        }
        if let Some(problem) = parsed.message.and_then(problem) {
            out.push(problem);
        }
    }

    fn finish(&mut self, _: &mut Vec<Problem>) {}
}

/// Whether a span's file is the project's: rustc names the workspace's files relative to it and
/// the standard library's and dependencies' absolutely (or as `<…>` for generated code).
fn in_workspace(file: &str) -> bool {
    !(file.starts_with('/') || file.starts_with('<') || file.contains(":\\"))
}

fn severity(level: &str) -> Option<Severity> {
    Some(match level {
        "error" | "error: internal compiler error" => Severity::Error,
        "warning" => Severity::Warning,
        "note" | "failure-note" => Severity::Information,
        "help" => Severity::Hint,
        _ => return None,
    })
}

fn span(s: &JsonSpan) -> Span {
    let start = Point { line: s.line_start.max(1), column: s.column_start.max(1) };
    let end = Point { line: s.line_end.max(1), column: s.column_end.max(1) };
    Span {
        path: PathBuf::from(&s.file_name),
        start,
        end: (end >= start).then_some(end),
        columns: ColumnUnit::Chars,
    }
}

/// The span to show for `s`: itself, or, when it is inside macro expansions, the outermost
/// place in that chain that is in the workspace.
fn placed(s: &JsonSpan) -> (&JsonSpan, Option<&str>) {
    let mut best = s;
    let mut macro_name = None;
    let mut current = s;
    while let Some(expansion) = &current.expansion {
        current = &expansion.span;
        if in_workspace(&current.file_name) {
            best = current;
            macro_name = expansion.macro_decl_name.as_deref();
        }
    }
    if !in_workspace(&s.file_name) || !std::ptr::eq(best, s) { (best, macro_name) } else { (s, None) }
}

fn problem(d: Diagnostic) -> Option<Problem> {
    let severity = severity(&d.level)?;
    if d.level == "failure-note" || d.message.starts_with("aborting due to") {
        return None;
    }
    let primary = d.spans.iter().find(|s| s.is_primary).or(d.spans.first())?;
    let (place, macro_name) = placed(primary);
    let mut related = Vec::new();
    if !std::ptr::eq(place, primary) && in_workspace(&primary.file_name) {
        let what = macro_name
            .map(|m| format!("inside the expansion of `{m}`"))
            .unwrap_or_else(|| "inside a macro expansion".to_owned());
        related.push(Related {
            span: span(primary),
            message: primary.label.clone().map(|l| format!("{l} ({what})")).unwrap_or(what),
        });
    }
    for other in d.spans.iter().filter(|s| !std::ptr::eq(*s, primary)) {
        let at = if in_workspace(&other.file_name) { other } else { placed(other).0 };
        related.push(Related { span: span(at), message: other.label.clone().unwrap_or_default() });
    }
    let mut fixes = Vec::new();
    for child in &d.children {
        let applicable = !child.spans.is_empty()
            && child.spans.iter().all(|s| {
                s.suggested_replacement.is_some()
                    && s.suggestion_applicability.as_deref() == Some("MachineApplicable")
            });
        if applicable {
            fixes.push(Fix {
                title: child.message.clone(),
                edits: child
                    .spans
                    .iter()
                    .map(|s| Edit {
                        span: span(s),
                        replacement: s.suggested_replacement.clone().unwrap_or_default(),
                    })
                    .collect(),
            });
            continue;
        }
        for s in &child.spans {
            let at = if in_workspace(&s.file_name) { s } else { placed(s).0 };
            let message = match (&s.label, &s.suggested_replacement) {
                (_, Some(replacement)) => format!("{}: `{replacement}`", child.message),
                (Some(label), None) => format!("{}: {label}", child.message),
                (None, None) => child.message.clone(),
            };
            related.push(Related { span: span(at), message });
        }
    }
    let code = d.code.map(|c| c.code);
    let source = if code.as_deref().is_some_and(|c| c.starts_with("clippy::")) { "clippy" } else { "rustc" };
    let message = match primary.label.as_deref() {
        Some(label) if !label.is_empty() => format!("{}\n{label}", d.message),
        _ => d.message,
    };
    Some(Problem {
        span: span(place),
        severity,
        code,
        message,
        source: source.to_owned(),
        category: None,
        related,
        fixes,
    })
}
