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
use super::gaps;
use super::lexer::{self, Scan};
use super::parse;
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
/// The delimiter scan stops narrowing its region below this many bytes.
const MIN_REGION: usize = 4096;
/// At most this many syntax diagnostics per text.
const MAX_FINDINGS: usize = 8;

/// Syntax findings of a parsed text, in text order. Empty when the tree has no error.
pub(crate) fn findings(language: Language, text: &str, tree: &Tree) -> Vec<Finding> {
    let root = tree.root_node();
    // When the parse ran out of time there is no tree to consult: the lexer reads everything.
    let gave_up = parse::gave_up(tree, text);
    let accepted = match language {
        _ if gave_up => Vec::new(),
        Language::Rust => accepted_rust_mistakes(text, tree),
        Language::Tsx | Language::JavaScript => accepted_jsx_mistakes(text, tree),
        Language::Python => statements_on_one_line(text, tree),
        _ => Vec::new(),
    };
    if !root.has_error() && !gave_up {
        return accepted;
    }
    if language == Language::Json
        && !gave_up
        && let Some(f) = json_missing_separator(text, tree)
    {
        return vec![f];
    }
    let region = if gave_up { 0..text.len() } else { error_region(tree, text) };
    let scan = lexer::scan(language, text, tree, region);
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

    // 2. Unbalanced brackets, unless a string left open on the bracket's line swallowed its
    //    partner (`f("abc)`): Python, V8 and gofmt all name the string there.
    if let Some(fix) = balance::explain(&scan, text) {
        let bracket = match fix {
            Fix::Close { open, .. } | Fix::Unclosed { open } | Fix::Mismatch { open, .. } => open,
            Fix::Remove { close } | Fix::Open { close, .. } => close,
        };
        let string_lines: Vec<u32> =
            scan.unterminated.iter().take(2).map(|u| scan.line_of(u.offset)).collect();
        if !string_lines.contains(&bracket.line) {
            out.push(delimiter_finding(&scan, text, &fix));
        }
    }

    // 3. Mistakes the grammar accepts.
    for f in accepted {
        let reach = f.range.clone();
        out.push((f, reach));
    }

    // 4. Python compound statements without their `:`. The tree's recovery from one often
    //    stumbles over the rest of the file, so the tree errors are then kept only where the
    //    text with the colons put back still has one.
    let mut colons_fixed: Option<(Vec<usize>, Tree)> = None;
    if language == Language::Python && !gave_up {
        let colons = missing_colons(text, tree, &scan);
        if !colons.is_empty() {
            let mut at: Vec<usize> = colons.iter().map(|(f, _)| f.range.start).collect();
            at.sort_unstable();
            let mut fixed = String::with_capacity(text.len() + at.len());
            let mut from = 0;
            for &a in &at {
                fixed.push_str(&text[from..a]);
                fixed.push(':');
                from = a;
            }
            fixed.push_str(&text[from..]);
            let fixed_tree = parse::parse(language, &fixed, None);
            if !parse::gave_up(&fixed_tree, &fixed) {
                colons_fixed = Some((at, fixed_tree));
            }
        }
        out.extend(colons);
    }

    // 5. What the tree reports, outside the regions explained above.
    let explained: Vec<Range<usize>> = out.iter().map(|(_, r)| r.clone()).collect();
    let mut checked = gaps::Checked::new(tree);
    for node in raw_errors(tree) {
        if gaps::grammar_gap(language, text, &scan, node, &mut checked) {
            continue;
        }
        let r = node.start_byte()..node.end_byte();
        if let Some((at, fixed)) = &colons_fixed {
            let shift = |o: usize| o + at.iter().filter(|&&a| a <= o).count();
            let (start, end) = (shift(r.start), shift(r.end));
            if !gaps::has_error_in(fixed.root_node(), start..end.max(start + 1)) {
                continue;
            }
        }
        let f = tree_finding(language, text, node);
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

/// Keywords that Rust never allows twice in a row, though the grammar does
/// (`async async fn`, `let mut mut x`).
const NEVER_TWICE: [&str; 8] = ["async", "mut", "unsafe", "const", "pub", "fn", "let", "move"];

/// Rust mistakes that tree-sitter-rust parses without error: a keyword repeated (`async async
/// fn`: the grammar takes any number of function modifiers; `let mut mut x`), and `#!` after the
/// first line (`#!allow(dead_code)]` with its `[` missing), which the grammar takes for a shebang
/// anywhere in the text; and a macro call in `(…)` or `[…]` used as a statement or an item with
/// no `;` before the next one (see [`macro_statements_without_semicolon`]). Found by passes over
/// the bytes, confirmed against the tree so that strings and comments do not count.
fn accepted_rust_mistakes(text: &str, tree: &Tree) -> Vec<Finding> {
    let root = tree.root_node();
    let mut out = macro_statements_without_semicolon(text, tree);
    out.extend(keywords_taken_for_names(text, tree));
    let word_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = text.as_bytes();
    // One pass over the bytes (this runs on every valid text): a space between two equal words,
    // and `#!` after the start.
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        // The hot loop: most bytes are neither.
        if b != b' ' && b != b'#' {
            continue;
        }
        match b {
            // First and last letters of the keywords, to skip most spaces at once.
            b' ' if matches!(bytes[i - 1], b'c' | b't' | b'e' | b'b' | b'n')
                && matches!(bytes.get(i + 1), Some(b'a' | b'm' | b'u' | b'c' | b'p' | b'f' | b'l')) =>
            {
                let mut start = i - 1;
                while start > 0 && i - start < 7 && word_char(bytes[start - 1]) {
                    start -= 1;
                }
                // The same word twice: first letters equal.
                if bytes.get(i + 1) != Some(&bytes[start]) {
                    continue;
                }
                let keyword = &text[start..i];
                let end = i + 1 + keyword.len();
                if !NEVER_TWICE.contains(&keyword)
                    || (start > 0 && word_char(bytes[start - 1]))
                    || bytes.get(i + 1..end) != Some(keyword.as_bytes())
                    || bytes.get(end).copied().is_some_and(word_char)
                {
                    continue;
                }
                let second = i + 1;
                let is_keyword = |from: usize| {
                    root.descendant_for_byte_range(from, from + keyword.len()).is_some_and(|n| {
                        n.start_byte() == from
                            && n.end_byte() == from + keyword.len()
                            && (n.kind() == keyword || n.kind() == "mutable_specifier")
                    })
                };
                // Macro input is any tokens: `(pub pub) => {}` in a `macro_rules!` is valid.
                let in_macro = root.descendant_for_byte_range(start, end).is_some_and(|n| {
                    std::iter::successors(Some(n), |n| n.parent())
                        .any(|a| matches!(a.kind(), "token_tree" | "macro_definition" | "macro_invocation"))
                });
                if is_keyword(start) && is_keyword(second) && !in_macro {
                    out.push(Finding {
                        range: second..end,
                        message: format!("duplicate `{keyword}`"),
                        related: Vec::new(),
                    });
                }
            }
            // `#![` opens an inner attribute; only other `#!` can be a shebang.
            b'#' if bytes.get(i + 1) == Some(&b'!')
                && !text[i + 2..].trim_start().starts_with('[')
                && root
                    .descendant_for_byte_range(i, i + 2)
                    .is_some_and(|n| n.kind() == "shebang" && n.start_byte() == i) =>
            {
                out.push(Finding {
                    range: i..i + 2,
                    message: "expected `[` after `#!` (a shebang is only allowed on the first line)"
                        .to_string(),
                    related: Vec::new(),
                });
            }
            _ => {}
        }
    }
    out.sort_by_key(|f| f.range.start);
    out.truncate(MAX_FINDINGS);
    out
}

/// Keywords that never stand before these characters: after one, the grammar's lexer (which
/// takes a keyword for a name where no keyword fits) has read it as a name.
const KEYWORDS_NOT_NAMES: [&str; 16] = [
    "fn", "impl", "struct", "enum", "trait", "mod", "let", "loop", "while", "match", "static", "const",
    "type", "use", "unsafe", "extern",
];

/// Whether `node` lies in a macro's tokens, where any word may stand.
fn in_macro_tokens(node: Node<'_>) -> bool {
    std::iter::successors(Some(node), |n| n.parent())
        .any(|a| matches!(a.kind(), "token_tree" | "macro_definition"))
}

/// Rust mistakes around keywords that tree-sitter-rust parses without error: a keyword left
/// where a name or the end of an expression belongs (`unwrap(fn )`, `fn }`, `into(impl )`),
/// which its lexer reads as a name; and an `impl` with no body (`impl m!(T);`), which the
/// grammar takes. rustc rejects both ("expected identifier, found keyword", "expected `{`").
/// Candidates are keywords followed by `)` `]` `}` `,` `;` `.` `=` (the `;` of an `impl`),
/// confirmed against the tree.
fn keywords_taken_for_names(text: &str, tree: &Tree) -> Vec<Finding> {
    let root = tree.root_node();
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    for keyword in KEYWORDS_NOT_NAMES {
        for (i, _) in text.match_indices(keyword) {
            let end = i + keyword.len();
            if (i > 0 && (word(b[i - 1]) || matches!(b[i - 1], b'\'' | b'#' | b'$')))
                || b.get(end).copied().is_some_and(word)
            {
                continue;
            }
            let next = b[end..].iter().position(|c| !c.is_ascii_whitespace()).map(|k| end + k);
            if !next.is_some_and(|n| b")]},;.=".contains(&b[n])) {
                // `impl T;`: the `;` ends the `impl` item.
                if keyword == "impl"
                    && let Some(item) = root
                        .descendant_for_byte_range(i, end)
                        .filter(|n| n.kind() == "impl")
                        .and_then(|n| n.parent())
                        .filter(|p| p.kind() == "impl_item" && !p.has_error())
                    && let Some(last) = item.child(item.child_count().saturating_sub(1))
                    && last.kind() == ";"
                    && !in_macro_tokens(item)
                {
                    out.push(Finding {
                        range: last.start_byte()..last.end_byte(),
                        message: "expected `{` after the `impl`'s type".to_string(),
                        related: Vec::new(),
                    });
                }
                continue;
            }
            let Some(node) = root.descendant_for_byte_range(i, end) else { continue };
            if node.start_byte() == i
                && node.end_byte() == end
                && matches!(node.kind(), "identifier" | "type_identifier" | "field_identifier")
                && !in_macro_tokens(node)
            {
                out.push(Finding {
                    range: i..end,
                    message: format!("unexpected keyword `{keyword}`"),
                    related: Vec::new(),
                });
            }
            if out.len() >= MAX_FINDINGS {
                return out;
            }
        }
    }
    out
}

/// Macro calls delimited by `(…)` or `[…]` that stand as a statement of a block or an item of a
/// file, `impl` or `mod`, followed by another statement with no `;` between (`a!(x) b!(y)`, a
/// `;` deleted between two calls). rustc and `syn` want the `;` ("expected `;`"): only a call in
/// braces, or the last expression of a block, may go without. The grammar takes any macro call
/// for a whole statement and parses these without error. Candidates are the `!` of a call, found
/// by one search of the bytes and confirmed against the tree; the `;` is reported where it
/// belongs, at the end of the call.
fn macro_statements_without_semicolon(text: &str, tree: &Tree) -> Vec<Finding> {
    let root = tree.root_node();
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for (i, _) in text.match_indices('!') {
        let called = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let delimiter = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
        if !called || !matches!(delimiter, Some(b'(' | b'[')) {
            continue;
        }
        let Some(call) = root
            .descendant_for_byte_range(i, i + 1)
            .filter(|n| n.kind() == "!")
            .and_then(|n| n.parent())
            .filter(|p| p.kind() == "macro_invocation")
        else {
            continue;
        };
        if !call.parent().is_some_and(|p| matches!(p.kind(), "block" | "source_file" | "declaration_list")) {
            continue;
        }
        let mut next = call.next_sibling();
        while let Some(n) = next.filter(|n| n.is_extra()) {
            next = n.next_sibling();
        }
        // A statement follows: not the block's `}`, a `;` or the end of the text.
        let Some(next) = next.filter(|n| n.is_named() && n.kind() != "empty_statement") else { continue };
        if next.has_error() || call.has_error() || next.start_byte() < call.end_byte() {
            continue;
        }
        let end = call.end_byte();
        out.push(Finding {
            range: end..end,
            message: "expected `;` after the macro call".to_string(),
            related: Vec::new(),
        });
        if out.len() == MAX_FINDINGS {
            break;
        }
    }
    out
}

/// Python statements that tree-sitter-python takes for a block or module's children, though
/// they need a `;` or a line break between them: each statement that starts on the line where
/// the one before it ended with no `;` between. Python rejects them ("invalid syntax"), but the
/// grammar parses `return x[0]' * y'` as `return x[0]` followed by a string, without error. Only
/// the statements are walked (blocks, compound statements and their clauses), not expressions.
fn statements_on_one_line(text: &str, tree: &Tree) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop()
        && out.len() < MAX_FINDINGS
    {
        let holds_statements = matches!(node.kind(), "module" | "block");
        let mut previous: Option<Node<'_>> = None;
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if child.is_extra() {
                continue;
            }
            let kind = child.kind();
            if kind == "block"
                || kind.ends_with("_statement")
                || kind.ends_with("_definition")
                || kind.ends_with("_clause")
            {
                stack.push(child);
            }
            if !holds_statements {
                continue;
            }
            if !child.is_named() {
                // The only unnamed child between statements: a `;`.
                previous = None;
                continue;
            }
            if let Some(before) = previous
                && before.end_position().row == child.start_position().row
                && !before.has_error()
                && !child.has_error()
            {
                let leaf = first_leaf(child);
                let token = if leaf.parent().is_some_and(|p| p.kind() == "string") {
                    leaf.parent().unwrap_or(leaf)
                } else {
                    leaf
                };
                let what = match token_text(text, token) {
                    Some(t) if token.kind() == "string" => format!("string {t}"),
                    Some(t) => format!("`{t}`"),
                    None => describe_kind(token),
                };
                out.push(Finding {
                    range: token.start_byte()..token.end_byte(),
                    message: format!("expected a line break or `;` before {what}"),
                    related: Vec::new(),
                });
            }
            previous = Some(child);
        }
    }
    out.sort_by_key(|f| f.range.start);
    out
}

/// A JSX attribute missing its `=` before a `{` (`<img width{800} />`): the grammar reads the
/// `{800}` as an attribute of its own, though only a spread (`{...props}`) may stand there.
/// Candidates are the `{` right after a name character, confirmed against the tree.
fn accepted_jsx_mistakes(text: &str, tree: &Tree) -> Vec<Finding> {
    let root = tree.root_node();
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    for (at, _) in text.match_indices('{') {
        let name_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-');
        let name_start = (0..at).rev().take_while(|&k| name_char(bytes[k])).last().unwrap_or(at);
        // An attribute name follows a blank; keywords before a block (`else{`) are common.
        let name = &text[name_start..at];
        if name.is_empty()
            || name_start == 0
            || !bytes[name_start - 1].is_ascii_whitespace()
            || matches!(
                name,
                "try" | "else" | "finally" | "do" | "class" | "catch" | "import" | "export" | "return"
            )
        {
            continue;
        }
        let Some(brace) = root.descendant_for_byte_range(at, at + 1) else { continue };
        let Some(expression) = brace.parent().filter(|p| p.kind() == "jsx_expression") else { continue };
        let in_tag = expression
            .parent()
            .is_some_and(|p| matches!(p.kind(), "jsx_opening_element" | "jsx_self_closing_element"));
        let spread = expression.named_child(0).is_some_and(|c| c.kind() == "spread_element");
        if brace.kind() == "{" && in_tag && !spread {
            out.push(Finding {
                range: at..at + 1,
                message: "expected `=` before `{`".to_string(),
                related: Vec::new(),
            });
            if out.len() == MAX_FINDINGS {
                break;
            }
        }
    }
    out
}

/// The bytes the delimiter scan must read: the items that contain an error, with one neighbour
/// on each side. An item that parsed without error has balanced brackets and closed literals by
/// construction, so leaving it out changes no finding but saves lexing the whole text on every
/// keystroke.
///
/// Starts with the top-level items and narrows down while a single item holds all the errors and
/// its own delimiters parsed cleanly: when an item's opening or closing token is itself in error
/// (a MISSING `}`), the recovery may have paired brackets wrongly anywhere inside it, so the whole
/// item is scanned. ERROR nodes are never entered.
fn error_region(tree: &Tree, text: &str) -> Range<usize> {
    let root = tree.root_node();
    let mut region = 0..text.len();
    let mut node = root;
    let mut bounds = 0..text.len();
    for _ in 0..64 {
        let Some((range, only)) = error_children(text, node, bounds) else { break };
        // A region must start where the lexer can start: at the first token of a line.
        if node.id() != root.id() && indent_at(text, range.start).is_none() {
            break;
        }
        region = range;
        match only {
            // Narrowing further saves little below this size.
            Some(child) if !child.is_error() && !child.is_missing() && region.len() > MIN_REGION => {
                node = child;
                bounds = child.start_byte()..child.end_byte();
            }
            _ => break,
        }
    }
    region
}

/// The children of `node` that hold an error, with their neighbours, within `bounds` (the
/// node's own extent); and the erroneous child when there is only one. `None` when the node's
/// own first or last token is erroneous, or no child is.
///
/// A neighbour is the nearest clean sibling on each side that starts a line at the indentation
/// of the node's children; the indented siblings between are taken too. They are what is left
/// of a block that a stray `}` closed early: the grammars accept statements at top level, so
/// they parse cleanly, but the delimiter scan needs them to see the block.
fn error_children<'t>(
    text: &str,
    node: Node<'t>,
    bounds: Range<usize>,
) -> Option<(Range<usize>, Option<Node<'t>>)> {
    let mut cursor = node.walk();
    if !cursor.goto_first_child() {
        return None;
    }
    // In an ERROR node, loose tokens are part of the error even though they are not errors.
    let erroneous = |n: Node<'_>| {
        n.has_error() || n.is_missing() || (node.is_error() && n.child_count() == 0 && !n.is_extra())
    };
    let last = node.child_count() - 1;
    // Start offsets of the clean siblings since the last boundary (a sibling at `base` indent).
    let mut base: Option<u32> = None;
    let mut boundary = bounds.start;
    let mut start: Option<usize> = None;
    let mut end = bounds.end;
    let mut after_error = false;
    let mut count = 0;
    let mut only = None;
    let mut index = 0;
    loop {
        let child = cursor.node();
        let punctuation = child.child_count() == 0 && !child.is_named();
        // Indentation of the child if it starts a line.
        let indent = if punctuation || child.is_extra() { None } else { indent_at(text, child.start_byte()) };
        if base.is_none() && !node.is_error() {
            base = indent;
        }
        let at_base = indent.is_some_and(|i| i <= base.unwrap_or(0));
        if erroneous(child) {
            if (index == 0 || index == last)
                && (child.child_count() == 0 || child.is_missing())
                && !node.is_error()
            {
                return None;
            }
            start.get_or_insert(boundary);
            end = bounds.end;
            after_error = true;
            count += 1;
            only = Some(child);
        } else if after_error {
            if index == last && punctuation {
                // `node`'s closing delimiter: scanned without its opener it looks unbalanced.
                end = child.start_byte();
                after_error = false;
            } else {
                end = child.end_byte();
                after_error = !at_base;
            }
        }
        if at_base {
            boundary = child.start_byte();
        }
        index += 1;
        if !cursor.goto_next_sibling() {
            break;
        }
    }
    let start = start?.max(bounds.start);
    Some((start..end.min(bounds.end).max(start), if count == 1 { only } else { None }))
}

/// Indentation (a tab counts as four) of the line of `offset` if only blanks precede `offset`
/// on it. Reads back from `offset` only over blanks, so that asking about every node of one long
/// line stays linear.
fn indent_at(text: &str, offset: usize) -> Option<u32> {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let mut indent = 0;
    for &c in before.iter().rev() {
        match c {
            b'\n' => return Some(indent),
            b' ' => indent += 1,
            b'\t' => indent += 4,
            _ => return None,
        }
    }
    Some(indent)
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

/// Where a construct opened at `open` and left unclosed ends, given `pos`, where its closer
/// belongs. When `pos` starts a line (the next line's `}`, which the indentation says ends the
/// block), the construct is the opener's line and the lines after it that are indented deeper
/// (its continuation), and it ends at the last token of those; else at `pos`. That is the line a
/// reader has to fix; the opener is named in the message.
fn construct_end(scan: &Scan, text: &str, open: usize, pos: usize) -> usize {
    let line = scan.line_of(pos) as usize;
    if scan.lines[line].first != Some(pos) {
        return pos;
    }
    let open_line = scan.line_of(open) as usize;
    let indent = scan.lines[open_line].indent;
    let mut end = scan.lines[open_line].last;
    for (k, layout) in scan.lines.iter().enumerate().take(line).skip(open_line + 1) {
        // The lexer reads only the region around the errors; elsewhere its lines look blank,
        // so the text says where a line's code ends.
        let next = scan.lines.get(k + 1).map_or(text.len(), |n| n.start);
        let code = text[layout.start..next].trim_end();
        if code.trim_start().is_empty() {
            continue;
        }
        if layout.indent <= indent {
            break;
        }
        end = layout.last.or(code.char_indices().last().map(|(i, _)| layout.start + i));
    }
    end.filter(|&e| e >= open && e < pos).unwrap_or(pos)
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
                range: at(construct_end(scan, text, open.offset, pos)),
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
        // A closer of the wrong kind that starts a later line (`foo(1, 2;` then `}`): the
        // construct the opener started ended before it, unclosed.
        Fix::Mismatch { open, close }
            if close.line > open.line && scan.lines[close.line as usize].first == Some(close.offset) =>
        {
            (
                Finding {
                    range: at(construct_end(scan, text, open.offset, close.offset)),
                    message: format!(
                        "missing `{}` to close `{}` at {}",
                        balance::closer(open.ch) as char,
                        open.ch as char,
                        line_col(scan, text, open.offset)
                    ),
                    related: vec![opened_here(open)],
                },
                open.offset,
            )
        }
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

/// Where parsing really stopped inside an ERROR node. Error recovery often wraps complete
/// statements (even whole definitions) together with the fragment that failed: skip the
/// complete subtrees, descend into the first child that holds an error, and stop at the first
/// loose token of an ERROR node.
pub(crate) fn culprit(error: Node<'_>) -> Node<'_> {
    let mut node = error;
    for _ in 0..256 {
        let mut next = None;
        let mut last = None;
        let mut cursor = node.walk();
        // An ERROR node that wraps a JSX element with an error of its own (a broken attribute,
        // the element wrapped with the property it is the value of): the inner error is where
        // parsing stopped, not the ERROR's first token. (Measured: elsewhere the first token
        // places better.)
        if node.is_error()
            && let Some(inner) = node
                .children(&mut cursor)
                .find(|c| !c.is_error() && c.has_error() && !c.is_extra() && c.kind().starts_with("jsx_"))
        {
            node = inner;
            continue;
        }
        for child in node.children(&mut cursor) {
            // Comments are extras, but so are ERROR nodes of skipped tokens.
            if child.is_extra() && !child.is_error() && !child.has_error() {
                continue;
            }
            if child.is_missing() {
                return child;
            }
            if child.is_error() || child.has_error() {
                next = Some(child);
                break;
            }
            if child.child_count() == 0 && node.is_error() {
                return child;
            }
            last = Some(child);
        }
        match next {
            Some(child) => node = child,
            None if node.is_error() => return last.unwrap_or(node),
            None => return node,
        }
    }
    node
}

/// The first leaf of `node` that is not a comment.
pub(crate) fn first_leaf(node: Node<'_>) -> Node<'_> {
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

/// Python compound statements whose header has no `:` (`if x` at the end of a line), each
/// reported where the `:` belongs, as Python itself does ("expected ':'"), with the lines up to
/// the next code line as its reach. A header is a line that starts with one of [`COMPOUND`]
/// outside brackets and is not continued from the line before; it is taken only when the tree
/// has an error on it or on the next code line, so valid code is never flagged.
fn missing_colons(text: &str, tree: &Tree, scan: &Scan) -> Vec<(Finding, Range<usize>)> {
    let errors: Vec<Range<usize>> = raw_errors(tree).iter().map(|n| n.start_byte()..n.end_byte()).collect();
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0i64;
    let mut next = 0;
    for (l, line) in scan.lines.iter().enumerate() {
        while next < scan.delims.len() && scan.delims[next].offset < line.start {
            depth += if scan.delims[next].is_open() { 1 } else { -1 };
            next += 1;
        }
        let Some(first) = line.first else { continue };
        let continued = text[..line.start].trim_end_matches(['\n', '\r']).ends_with('\\');
        if depth != 0 || continued {
            continue;
        }
        let word_end = b[first..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
            .map_or(b.len(), |k| first + k);
        let Some(at) = missing_colon(text, first..word_end) else { continue };
        // The tree must disagree somewhere from the header to the end of the next code line.
        let following = scan.lines[l + 1..]
            .iter()
            .find(|n| !n.is_blank())
            .map_or(text.len(), |n| scan.line_of(n.start) as usize + 1);
        let until = scan.lines.get(following).map_or(text.len(), |n| n.start);
        if !errors.iter().any(|e| e.start < until && first < e.end.max(e.start + 1)) {
            continue;
        }
        let finding = Finding { range: at..at, message: "expected `:`".to_string(), related: Vec::new() };
        out.push((finding, first..until));
        if out.len() == MAX_FINDINGS {
            break;
        }
    }
    out
}

/// The longest JSON text that [`json_missing_separator`] reparses.
const MAX_JSON_REPAIR: usize = 64 * 1024;

/// JSON: a `,` or `:` left out (`"a": 1` then `"b": 2` on the next line), which the grammar's
/// recovery turns into a cascade of unexpected tokens down the file. Each place around the first
/// error where a separator may belong (after the token before it, after the error and after each
/// of its first tokens) is tried in turn; the first insertion that makes the whole text parse is the mistake, reported
/// where the separator belongs, as "expected `,`" (Python's `json` says "Expecting ','
/// delimiter").
fn json_missing_separator(text: &str, tree: &Tree) -> Option<Finding> {
    if text.len() > MAX_JSON_REPAIR {
        return None;
    }
    let error = *raw_errors(tree).first()?;
    let before = text[..error.start_byte()].trim_end().len();
    let mut places = vec![before, error.end_byte()];
    let mut cursor = error.walk();
    let mut leaves = vec![error];
    while let Some(n) = leaves.pop() {
        if n.child_count() == 0 {
            places.push(n.end_byte());
        } else {
            leaves.extend(n.children(&mut cursor).collect::<Vec<_>>().into_iter().rev());
        }
        if places.len() > 8 {
            break;
        }
    }
    places.dedup();
    for at in places {
        let at = text[..at].trim_end().len();
        for sep in [",", ":"] {
            let fixed = format!("{}{sep}{}", &text[..at], &text[at..]);
            let tree = parse::parse(Language::Json, &fixed, None);
            if !tree.root_node().has_error() && !parse::gave_up(&tree, &fixed) {
                return Some(Finding {
                    range: at..at,
                    message: format!("expected `{sep}`"),
                    related: Vec::new(),
                });
            }
        }
    }
    None
}

/// Python keywords that open a compound statement, whose header ends with `:`.
const COMPOUND: [&str; 13] = [
    "if", "elif", "else", "for", "while", "def", "class", "try", "except", "finally", "with", "async",
    "match",
];

/// Where the `:` of the compound statement whose keyword is at `keyword` belongs, when its
/// header (the line, with what its brackets continue) has no `:` outside brackets and strings:
/// the end of the header's last token.
fn missing_colon(text: &str, keyword: Range<usize>) -> Option<usize> {
    let word = text.get(keyword.clone())?;
    if !COMPOUND.contains(&word) {
        return None;
    }
    let b = text.as_bytes();
    let mut depth = 0i32;
    let mut end = keyword.end;
    let mut i = keyword.end;
    while i < b.len() {
        match b[i] {
            b'\n' if depth <= 0 => break,
            b'\\' if b.get(i + 1) == Some(&b'\n') => i += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b':' if depth == 0 => return None,
            _ if depth < 0 => return None,
            quote @ (b'"' | b'\'') => {
                let triple = b[i..].starts_with(&[quote; 3]);
                let close: &[u8] = if triple { &b[i..i + 3] } else { &b[i..i + 1] };
                let mut k = i + close.len();
                while k < b.len() && !b[k..].starts_with(close) && (triple || b[k] != b'\n') {
                    k += if b[k] == b'\\' { 2 } else { 1 };
                }
                i = (k + close.len()).min(b.len());
                end = i;
                continue;
            }
            _ => {}
        }
        if !b[i].is_ascii_whitespace() {
            end = i + 1;
        }
        i += 1;
    }
    if depth != 0 {
        return None;
    }
    // A header is more than its keyword (`else` and the like excepted); `match` and `async`
    // are names too (`match = 1`) and must be followed by more than an operator.
    let bare = end == keyword.end;
    let rest = text[keyword.end..end].trim_start();
    match word {
        "else" | "try" | "finally" => rest.is_empty().then_some(end),
        "except" if bare => Some(end),
        "match" | "async"
            if rest.starts_with(|c: char| !(c.is_alphanumeric() || c == '_' || c == '(' || c == '[')) =>
        {
            None
        }
        _ if bare => None,
        _ if rest.starts_with(['=', '.', ',', ')']) => None,
        _ => Some(end),
    }
}

/// Where the MISSING token `node` belongs: right after the code before it. The grammar puts it
/// before the next token, which may be past comments, lines further down (`use a::b` without
/// its `;` before a doc comment: rustc, Python and gofmt all point after `b`).
fn missing_at(text: &str, node: Node<'_>) -> usize {
    let start = node.start_byte();
    let mut prev = node.prev_sibling();
    while let Some(p) = prev.filter(|p| p.is_extra()) {
        prev = p.prev_sibling();
    }
    match prev {
        // Only past comments: across blank lines alone it already sits after the code.
        Some(p) if p.end_byte() < start && !text[p.end_byte()..start].trim().is_empty() => p.end_byte(),
        _ => start,
    }
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
        let start = missing_at(text, node);
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
    let culprit = culprit(node);
    if culprit.is_missing() {
        return tree_finding(language, text, culprit);
    }
    // A whole string is one token to a reader, not its opening quote.
    let leaf = if culprit.kind().contains("string") { culprit } else { first_leaf(culprit) };
    let message = match token_text(text, leaf) {
        Some(t) if leaf.kind().contains("string") => format!("unexpected string {t}"),
        Some(t) => format!("unexpected `{t}`"),
        None => format!("unexpected {}", describe_kind(leaf)),
    };
    let range = if culprit.id() == node.id() && node.start_position().row == node.end_position().row {
        node.start_byte()..node.end_byte()
    } else {
        leaf.start_byte()..leaf.end_byte()
    };
    Finding { range, message, related: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::indent_at;

    #[test]
    fn indentation_counts_blanks_before_the_offset_on_its_line_only() {
        let text = "fn a() {\n\t  x(1)\n}";
        assert_eq!(indent_at(text, 0), Some(0));
        assert_eq!(indent_at(text, text.find('x').unwrap()), Some(6));
        assert_eq!(indent_at(text, text.find('1').unwrap()), None);
        assert_eq!(indent_at(text, text.len() - 1), Some(0));
        assert_eq!(indent_at("   ", 99), Some(3));
    }
}
