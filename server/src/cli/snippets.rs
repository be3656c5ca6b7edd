//! Diagnostics as people read them: the title, the source lines with a caret under the span and
//! under each related span, and the source and symbol at the foot, as rustc and Ruff print them
//! (`annotate-snippets`). Coloured only when asked; [`colour_stdout`] says when: stdout is a
//! terminal and `NO_COLOR` is unset or empty.

use std::io::IsTerminal;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::analysis::FileDiagnostic;
use crate::checkers::ColumnUnit;
use crate::classify::Severity;
use crate::text::{LineIndex, PositionEncoding};

/// Whether text for stdout should be coloured.
pub fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn renderer(colour: bool) -> Renderer {
    if colour { Renderer::styled() } else { Renderer::plain() }
}

fn level(severity: Severity) -> Level<'static> {
    match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
        Severity::Information => Level::INFO,
        Severity::Hint => Level::HELP,
    }
}

/// One diagnostic of the file shown as `path`, whose text is `text` (`None`: unreadable, the
/// place is named without its lines). Columns of `d` are UTF-16, as in the report.
#[cfg(test)]
pub fn render(path: &str, text: Option<&str>, d: &FileDiagnostic, colour: bool) -> String {
    let index = text.map(LineIndex::new);
    render_in(path, text.zip(index.as_ref()), d, None, colour)
}

/// [`render`] with the file's text already indexed, so that the diagnostics of one file cost
/// one indexing of its text, not one each.
///
/// `columns` is how the tool that reported it counts columns: the place is then named in that
/// unit (`a.ts:1:24` as tsc says it, `main.go:4:29` in bytes as Go says it), so that it can be
/// pasted into anything that reads the tool's own output. Without it, columns count characters,
/// as rustc and Ruff count them.
pub fn render_in(
    path: &str,
    text: Option<(&str, &LineIndex)>,
    d: &FileDiagnostic,
    columns: Option<ColumnUnit>,
    colour: bool,
) -> String {
    let mut lines = d.message.lines();
    let title = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    let mut foot = format!("source: {}", d.source);
    if let Some(symbol) = &d.symbol {
        foot.push_str(&format!(", in {symbol}"));
    }
    let level = level(d.severity);
    let title = level.primary_title(title).id(d.category.as_str());
    let mut relocated: Option<(String, String)> = None;
    let mut group = match text {
        Some((text, index)) => {
            let offset = |p| index.offset(text, p, PositionEncoding::Utf16);
            let first =
                d.related.iter().map(|(r, _)| r.start.line).chain([d.range.start.line]).min().unwrap_or(0);
            let last = d.related.iter().map(|(r, _)| r.end.line).chain([d.range.end.line]).max().unwrap_or(0);
            let from = index.line_range(first).map_or(text.len(), |r| r.start);
            let to = index.line_range(last).map_or(text.len(), |r| r.end);
            let source = &text[from..to.max(from)];
            let clip = |start: usize, end: usize| {
                let start = start.clamp(from, to) - from;
                let end = end.clamp(from, to) - from;
                start..end.max(start)
            };
            let mut snippet = Snippet::source(source).line_start(first as usize + 1).path(path).fold(true);
            // annotate-snippets names the place with a column in characters; the tool's own
            // replaces it below.
            relocated = columns.map(|unit| {
                let start = offset(d.range.start);
                let line_start = index.line_range(d.range.start.line).map_or(start, |r| r.start);
                let before = text.get(line_start..start).unwrap_or("");
                let column = match unit {
                    ColumnUnit::Bytes => before.len(),
                    ColumnUnit::Chars => before.chars().count(),
                    ColumnUnit::Utf16 => before.encode_utf16().count(),
                };
                let line = d.range.start.line + 1;
                let chars = before.chars().count();
                (format!("{path}:{line}:{}", chars + 1), format!("{path}:{line}:{}", column + 1))
            });
            snippet = snippet
                .annotation(AnnotationKind::Primary.span(clip(offset(d.range.start), offset(d.range.end))));
            for (range, message) in &d.related {
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(clip(offset(range.start), offset(range.end)))
                        .label(message.as_str()),
                );
            }
            title.element(snippet)
        }
        None => title.element(Level::NOTE.message(format!(
            "at {path}:{}:{}",
            d.range.start.line + 1,
            d.range.start.character + 1
        ))),
    };
    for line in rest.iter().filter(|l| !l.trim().is_empty()) {
        group = group.element(Level::NOTE.message(*line));
    }
    group = group.element(Level::NOTE.no_name().message(foot));
    let shown = renderer(colour).render(&[group]);
    match relocated {
        // The place is named after the title line, which is the tool's message.
        Some((chars, own)) if chars != own => match shown.split_once('\n') {
            Some((title, rest)) => format!("{title}\n{}", rest.replacen(&chars, &own, 1)),
            None => shown,
        },
        _ => shown,
    }
}

/// A checker that gave no result, as an error of its own: `message` says which and what to do.
pub fn checker_failure(message: &str, colour: bool) -> String {
    renderer(colour).render(&[Group::with_title(Level::ERROR.primary_title(message))])
}

/// A limit a checker's run hit, as a warning.
pub fn checker_note(message: &str, colour: bool) -> String {
    renderer(colour).render(&[Group::with_title(Level::WARNING.primary_title(message))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Category;
    use crate::text::{Position, TextRange};

    fn at(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn a_diagnostic_shows_its_line_a_caret_and_related_spans() {
        let text = "fn main() {\n    let x: u32 = \"a\";\n    drop(x);\n}\n";
        let d = FileDiagnostic {
            range: TextRange { start: at(1, 17), end: at(1, 20) },
            severity: Severity::Error,
            category: Category::Type,
            message: "mismatched types\nexpected `u32`".to_owned(),
            source: "rustc".to_owned(),
            code: Some("E0308".to_owned()),
            fingerprint: String::new(),
            symbol: Some("main".to_owned()),
            related: vec![(
                TextRange { start: at(1, 11), end: at(1, 14) },
                "expected due to this".to_owned(),
            )],
            fix_id: None,
        };
        let shown = render("src/main.rs", Some(text), &d, false);
        expect_test::expect![[r#"
            error[type]: mismatched types
             --> src/main.rs:2:18
              |
            2 |     let x: u32 = "a";
              |            ---   ^^^
              |            |
              |            expected due to this
              |
              = note: expected `u32`
              = source: rustc, in main"#]]
        .assert_eq(&shown);
    }

    #[test]
    fn the_place_is_named_in_the_tools_own_columns() {
        // tsc's column 24 is `n` after "😀é" (two UTF-16 units, then one); Go's would be 27.
        let text = "const s = \"😀é\"; const n: number = \"x\";\n";
        let d = FileDiagnostic {
            range: TextRange { start: at(0, 23), end: at(0, 24) },
            severity: Severity::Error,
            category: Category::Type,
            message: "Type 'string' is not assignable to type 'number'.".to_owned(),
            source: "tsc".to_owned(),
            code: Some("TS2322".to_owned()),
            fingerprint: String::new(),
            symbol: None,
            related: Vec::new(),
            fix_id: None,
        };
        let index = LineIndex::new(text);
        let shown = |unit| render_in("a.ts", Some((text, &index)), &d, Some(unit), false);
        // A message that names the same place in characters is left as the tool wrote it.
        let named = FileDiagnostic { message: "see a.ts:1:23".to_owned(), ..d.clone() };
        let in_dir = render_in("dé 😀/a.ts", Some((text, &index)), &named, Some(ColumnUnit::Utf16), false);
        assert!(in_dir.starts_with("error[type]: see a.ts:1:23\n --> dé 😀/a.ts:1:24\n"), "{in_dir}");
        for (unit, place) in [
            (ColumnUnit::Utf16, "a.ts:1:24"),
            (ColumnUnit::Bytes, "a.ts:1:27"),
            (ColumnUnit::Chars, "a.ts:1:23"),
        ] {
            let shown = shown(unit);
            assert!(shown.contains(&format!(" --> {place}\n")), "{unit:?}: {shown}");
            assert!(shown.contains("^"), "{shown}");
        }
        expect_test::expect![[r#"
            error[type]: Type 'string' is not assignable to type 'number'.
             --> a.ts:1:24
              |
            1 | const s = "😀é"; const n: number = "x";
              |                        ^
              |
              = source: tsc"#]]
        .assert_eq(&shown(ColumnUnit::Utf16));
    }
}
