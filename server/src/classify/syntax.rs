//! Turns a syntax tree with errors into a few readable, well-placed diagnostics.
//!
//! tree-sitter's error recovery is built to keep parsing, not to explain: one missing brace can
//! become an ERROR node that swallows a whole block, or a cascade of small ones. So this module
//! first asks the delimiter lexer whether a string is unterminated or the brackets are
//! unbalanced (and where, by indentation); only the errors that those findings do not explain
//! are reported from the tree, each as the first token that could not continue, and
//! diagnostics close to each other are merged.

use std::ops::Range;

use tree_sitter::{Node, Tree};

use super::balance::{self, Fix};
use super::lexer::{self, Scan};
use super::{Language, Related};

/// A syntax problem before symbol and fingerprint are attached.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub range: Range<usize>,
    pub message: String,
    pub related: Vec<Related>,
}

/// At most this many tree errors are examined; the rest are cascades.
const MAX_RAW: usize = 64;
/// Findings this close (in lines) to an earlier one describe the same mistake.
const MERGE_LINES: u32 = 3;
/// At most this many syntax diagnostics per text.
const MAX_FINDINGS: usize = 8;

/// Syntax findings of a parsed text, in text order. Empty when the tree has no error.
pub(crate) fn findings(language: Language, text: &str, tree: &Tree) -> Vec<Finding> {
    let root = tree.root_node();
    if !root.has_error() {
        return Vec::new();
    }
    let scan = lexer::scan(language, text, tree);
    let mut out: Vec<(Finding, Range<usize>)> = Vec::new();

    // 1. Unterminated literals: they explain everything on their line and, for literals that
    //    may span lines, everything after them.
    for u in scan.unterminated.iter().take(2) {
        let line = scan.line_of(u.offset);
        let line_end = line_end(&scan, text, line);
        let end = next_char(text, u.offset);
        out.push((
            Finding {
                range: u.offset..end,
                message: format!("unterminated {}", u.what),
                related: Vec::new(),
            },
            u.offset..line_end,
        ));
    }

    // 2. Unbalanced brackets.
    if let Some(fix) = balance::explain(&scan) {
        out.push(delimiter_finding(&scan, text, &fix));
    }

    // 3. What the tree reports, outside the regions explained above.
    let explained: Vec<Range<usize>> = out.iter().map(|(_, r)| r.clone()).collect();
    for node in raw_errors(tree) {
        let f = tree_finding(language, text, node);
        let r = node.start_byte()..node.end_byte();
        if explained.iter().any(|e| r.start < e.end.max(e.start + 1) && e.start < r.end.max(r.start + 1)) {
            continue;
        }
        let reach = f.range.clone();
        out.push((f, reach));
    }

    out.sort_by_key(|(f, _)| f.range.start);
    let mut kept: Vec<Finding> = Vec::new();
    let mut last_line: Option<u32> = None;
    for (f, _) in out {
        let line = scan.line_of(f.range.start);
        if last_line.is_some_and(|l| line <= l + MERGE_LINES) {
            continue;
        }
        last_line = Some(line);
        kept.push(f);
        if kept.len() == MAX_FINDINGS {
            break;
        }
    }
    kept
}

fn line_end(scan: &Scan, text: &str, line: u32) -> usize {
    scan.lines.get(line as usize + 1).map_or(text.len(), |l| l.start)
}

fn next_char(text: &str, offset: usize) -> usize {
    let mut end = (offset + 1).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

/// 1-based `line:column` (column in characters) for messages.
fn line_col(scan: &Scan, text: &str, offset: usize) -> String {
    let line = scan.line_of(offset);
    let start = scan.lines[line as usize].start;
    let col = text.get(start..offset).map_or(offset - start, |s| s.chars().count());
    format!("{}:{}", line + 1, col + 1)
}

fn delimiter_finding(scan: &Scan, text: &str, fix: &Fix) -> (Finding, Range<usize>) {
    let at = |offset: usize| offset..next_char(text, offset);
    let opened_here = |open: lexer::Delim| Related {
        range: at(open.offset),
        message: format!("`{}` opened here", open.ch as char),
    };
    let (finding, from) = match *fix {
        Fix::Close { open, at: pos } => (
            Finding {
                range: at(pos),
                message: format!(
                    "missing `{}` to close `{}` at {}",
                    balance::closer(open.ch) as char,
                    open.ch as char,
                    line_col(scan, text, open.offset)
                ),
                related: vec![opened_here(open)],
            },
            open.offset.min(pos),
        ),
        Fix::Unclosed { open } => (
            Finding {
                range: at(open.offset),
                message: format!("unclosed `{}`", open.ch as char),
                related: Vec::new(),
            },
            open.offset,
        ),
        Fix::Remove { close } => (
            Finding {
                range: at(close.offset),
                message: format!("unexpected `{}`", close.ch as char),
                related: Vec::new(),
            },
            close.offset,
        ),
        Fix::Open { close, at: pos } => (
            Finding {
                range: at(pos),
                message: format!(
                    "missing `{}` before the `{}` at {}",
                    balance::opener(close.ch) as char,
                    close.ch as char,
                    line_col(scan, text, close.offset)
                ),
                related: vec![Related {
                    range: at(close.offset),
                    message: format!("`{}` closes here", close.ch as char),
                }],
            },
            pos.min(close.offset),
        ),
        Fix::Mismatch { open, close } => (
            Finding {
                range: at(close.offset),
                message: format!(
                    "mismatched `{}`: expected `{}` to close `{}` at {}",
                    close.ch as char,
                    balance::closer(open.ch) as char,
                    open.ch as char,
                    line_col(scan, text, open.offset)
                ),
                related: vec![opened_here(open)],
            },
            open.offset,
        ),
    };
    // An imbalance disturbs the parse from a little before it to the end of the text.
    let line = scan.line_of(from).saturating_sub(1);
    let start = scan.lines[line as usize].start;
    (finding, start..text.len())
}

/// Outermost ERROR nodes and all MISSING nodes, in text order, visiting only subtrees that
/// contain an error.
fn raw_errors(tree: &Tree) -> Vec<Node<'_>> {
    let mut out = Vec::new();
    let mut cursor = tree.walk();
    'walk: loop {
        let node = cursor.node();
        let descend = if node.is_error() || node.is_missing() {
            out.push(node);
            false
        } else {
            node.has_error()
        };
        if out.len() >= MAX_RAW {
            break;
        }
        if descend && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    out
}

/// The first leaf of `node` that is not a comment.
fn first_leaf(node: Node<'_>) -> Node<'_> {
    let mut cursor = node.walk();
    let mut depth = 0;
    loop {
        let n = cursor.node();
        if n.child_count() == 0 || depth > 256 {
            if n.is_extra() && cursor.goto_next_sibling() {
                continue;
            }
            return n;
        }
        if !cursor.goto_first_child() {
            return n;
        }
        depth += 1;
    }
}

fn token_text<'a>(text: &'a str, node: Node<'_>) -> Option<&'a str> {
    let t = text.get(node.start_byte()..node.end_byte())?;
    (!t.is_empty() && t.len() <= 24 && !t.contains('\n')).then_some(t)
}

/// Readable description of a node kind: `identifier` for `identifier`, `` `)` `` for `)`.
pub(crate) fn describe_kind(node: Node<'_>) -> String {
    let kind = node.kind();
    if node.is_named() { kind.replace('_', " ") } else { format!("`{kind}`") }
}

fn tree_finding(language: Language, text: &str, node: Node<'_>) -> Finding {
    let _ = language;
    if node.is_missing() {
        let kind = node.kind();
        let what = describe_kind(node);
        let message = if matches!(kind, ")" | "]" | "}" | "\"" | "'" | "`") {
            format!("missing {what}")
        } else {
            format!("expected {what}")
        };
        let start = node.start_byte();
        return Finding { range: start..start, message, related: Vec::new() };
    }
    let start = node.start_byte();
    if start >= text.len() || node.start_byte() == node.end_byte() {
        return Finding {
            range: start..start,
            message: "unexpected end of file".to_string(),
            related: Vec::new(),
        };
    }
    let leaf = first_leaf(node);
    let message = match token_text(text, leaf) {
        Some(t) if leaf.kind().contains("string") => format!("unexpected string {t}"),
        Some(t) => format!("unexpected `{t}`"),
        None => format!("unexpected {}", describe_kind(leaf)),
    };
    let single_line = node.start_position().row == node.end_position().row;
    let range =
        if single_line { node.start_byte()..node.end_byte() } else { leaf.start_byte()..leaf.end_byte() };
    Finding { range, message, related: Vec::new() }
}
