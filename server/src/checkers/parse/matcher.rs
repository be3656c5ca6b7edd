//! Any other tool's output, read with a problem-matcher-style regular expression: each line that
//! matches is one problem.

use std::path::PathBuf;

use super::{Parser, Stream};
use crate::checkers::{Matcher, Point, Problem, Span};
use crate::classify::Severity;

/// Reads lines with a [`Matcher`].
pub struct MatcherParser {
    matcher: Matcher,
}

impl MatcherParser {
    pub fn new(matcher: Matcher) -> Self {
        Self { matcher }
    }
}

/// The severity a tool's word names, if it names one.
pub fn severity_named(word: &str) -> Option<Severity> {
    match word.trim().to_ascii_lowercase().as_str() {
        "error" | "err" | "e" | "fatal" | "failure" | "failed" => Some(Severity::Error),
        "warning" | "warn" | "w" => Some(Severity::Warning),
        "info" | "information" | "note" | "i" => Some(Severity::Information),
        "hint" | "help" | "suggestion" => Some(Severity::Hint),
        _ => None,
    }
}

impl Parser for MatcherParser {
    fn line(&mut self, _: Stream, line: &str, out: &mut Vec<Problem>) {
        let Some(c) = self.matcher.pattern.captures(line) else { return };
        let text = |name: &str| c.name(name).map(|m| m.as_str()).filter(|s| !s.is_empty());
        let number = |name: &str| text(name).and_then(|s| s.trim().parse::<u32>().ok()).filter(|n| *n > 0);
        let (Some(file), Some(line)) = (text("file"), number("line")) else { return };
        let start = Point { line, column: number("column").unwrap_or(1) };
        let end = number("end_line")
            .map(|line| Point { line, column: number("end_column").unwrap_or(1) })
            .or_else(|| number("end_column").map(|column| Point { line: start.line, column }))
            .filter(|end| *end >= start);
        let severity = text("severity").and_then(severity_named).unwrap_or(self.matcher.severity);
        out.push(Problem {
            span: Span { path: PathBuf::from(file.trim()), start, end, columns: self.matcher.columns },
            severity,
            code: text("code").map(str::to_owned),
            message: text("message").unwrap_or("").trim().to_owned(),
            source: self.matcher.source.clone(),
            category: None,
            related: Vec::new(),
            fixes: Vec::new(),
        });
    }

    fn finish(&mut self, _: &mut Vec<Problem>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::ColumnUnit;

    fn matcher(pattern: &str) -> MatcherParser {
        MatcherParser::new(Matcher {
            pattern: regex::Regex::new(pattern).unwrap(),
            source: "shellcheck".to_owned(),
            severity: Severity::Warning,
            columns: ColumnUnit::Bytes,
        })
    }

    #[test]
    fn a_matching_line_is_a_problem_with_its_groups() {
        let mut parser = matcher(
            r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<severity>\w+) (?P<code>SC\d+): (?P<message>.*)$",
        );
        let mut out = Vec::new();
        parser.line(
            Stream::Stdout,
            "deploy.sh:3:7: error SC2086: Double quote to prevent globbing",
            &mut out,
        );
        parser.line(Stream::Stdout, "In deploy.sh line 3:", &mut out);
        assert_eq!(out.len(), 1);
        let p = &out[0];
        assert_eq!(p.span.path, PathBuf::from("deploy.sh"));
        assert_eq!(p.span.start, Point { line: 3, column: 7 });
        assert_eq!(p.span.end, None);
        assert_eq!(p.severity, Severity::Error);
        assert_eq!(p.code.as_deref(), Some("SC2086"));
        assert_eq!(p.message, "Double quote to prevent globbing");
    }

    #[test]
    fn a_match_without_a_file_or_a_line_number_is_skipped() {
        let mut parser = matcher(r"^(?P<file>[^:]*):(?P<line>[^:]*): (?P<message>.*)$");
        let mut out = Vec::new();
        parser.line(Stream::Stdout, ":3: no file", &mut out);
        parser.line(Stream::Stdout, "a.sh:x: no line", &mut out);
        parser.line(Stream::Stdout, "a.sh:0: line zero", &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn an_unknown_severity_word_takes_the_matchers_default() {
        let mut parser = matcher(r"^(?P<file>\S+):(?P<line>\d+): (?P<severity>\w+): (?P<message>.*)$");
        let mut out = Vec::new();
        parser.line(Stream::Stderr, "a.sh:1: style: prefer $(..)", &mut out);
        assert_eq!(out[0].severity, Severity::Warning);
    }
}
