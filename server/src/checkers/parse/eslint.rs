//! `eslint --format json`: one JSON array, printed when ESLint is done, of files and their
//! messages. Each message is a problem (`ruleId` its code, severity 2 an error and 1 a warning,
//! columns in UTF-16 code units); a fatal message (a parsing error) has no rule and is a syntax
//! error. A message's `fix` replaces a range of UTF-16 offsets in the file's text as ESLint read
//! it; ESLint prints that text as the file's `source`, so the range becomes lines and columns
//! here. A fix whose file has no `source` in the output is dropped, and so are `suggestions`,
//! which ESLint itself does not apply without a person choosing one.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Document, Parser, Stream};
use crate::checkers::{ColumnUnit, Edit, Fix, Point, Problem, Span};
use crate::classify::{Category, Severity};

#[derive(Default)]
pub struct EslintParser {
    document: Document,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileResult {
    file_path: String,
    #[serde(default)]
    messages: Vec<Message>,
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    rule_id: Option<String>,
    #[serde(default)]
    fatal: bool,
    severity: u8,
    message: String,
    line: Option<u32>,
    column: Option<u32>,
    end_line: Option<u32>,
    end_column: Option<u32>,
    fix: Option<JsonFix>,
}

#[derive(Deserialize)]
struct JsonFix {
    range: [usize; 2],
    text: String,
}

impl Parser for EslintParser {
    fn line(&mut self, stream: Stream, line: &str, _: &mut Vec<Problem>) {
        if stream == Stream::Stdout {
            self.document.push(line);
        }
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        let Some(text) = self.document.json_start('[') else { return };
        let Ok(files) = serde_json::from_str::<Vec<FileResult>>(text) else { return };
        for file in files {
            let path = PathBuf::from(&file.file_path);
            for m in file.messages {
                out.push(problem(&path, file.source.as_deref(), m));
            }
        }
    }
}

fn problem(path: &std::path::Path, source: Option<&str>, m: Message) -> Problem {
    let start = Point { line: m.line.unwrap_or(1).max(1), column: m.column.unwrap_or(1).max(1) };
    let end = m
        .end_line
        .map(|line| Point { line, column: m.end_column.unwrap_or(1).max(1) })
        .filter(|end| *end >= start);
    let span = |start, end| Span { path: path.to_path_buf(), start, end, columns: ColumnUnit::Utf16 };
    let fixes = match (&m.fix, source) {
        (Some(fix), Some(source)) => {
            match (utf16_point(source, fix.range[0]), utf16_point(source, fix.range[1])) {
                (Some(from), Some(to)) if from <= to => vec![Fix {
                    // Two problems of one rule on a line have fixes that the title tells apart.
                    title: format!(
                        "{}: {}",
                        m.rule_id.as_deref().unwrap_or("ESLint"),
                        m.message.lines().next().unwrap_or("")
                    ),
                    edits: vec![Edit { span: span(from, Some(to)), replacement: fix.text.clone() }],
                }],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    Problem {
        span: span(start, end),
        severity: if m.severity >= 2 || m.fatal { Severity::Error } else { Severity::Warning },
        category: (m.fatal && m.rule_id.is_none()).then_some(Category::Syntax),
        code: m.rule_id,
        message: m.message,
        source: "eslint".to_owned(),
        related: Vec::new(),
        fixes,
    }
}

/// The 1-based line and UTF-16 column of the UTF-16 `offset` in `text`, if it is inside it.
/// Lines end at `\n` (a `\r` before it counts as a column of its line).
pub fn utf16_point(text: &str, offset: usize) -> Option<Point> {
    let (mut line, mut column, mut at) = (1u32, 1u32, 0usize);
    for c in text.chars() {
        if at >= offset {
            break;
        }
        at += c.len_utf16();
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += c.len_utf16() as u32;
        }
    }
    (at == offset).then_some(Point { line, column })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_offsets_become_lines_and_columns() {
        let text = "a🛒b\ncd";
        assert_eq!(utf16_point(text, 0), Some(Point { line: 1, column: 1 }));
        assert_eq!(utf16_point(text, 3), Some(Point { line: 1, column: 4 }));
        assert_eq!(utf16_point(text, 5), Some(Point { line: 2, column: 1 }));
        assert_eq!(utf16_point(text, 7), Some(Point { line: 2, column: 3 }));
        // Inside the emoji's surrogate pair, and past the end.
        assert_eq!(utf16_point(text, 2), None);
        assert_eq!(utf16_point(text, 8), None);
    }
}
