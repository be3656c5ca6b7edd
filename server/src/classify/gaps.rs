//! Valid constructs that the grammars cannot parse, measured on real code (see
//! `benches/syntax_eval.rs`).
//!
//! tree-sitter's grammars lag behind the languages: a few valid constructs parse with an ERROR
//! node. `syntax` asks [`grammar_gap`] about each tree error and leaves out those that lie in
//! such a construct. Only tree errors are left out: the delimiter and string checks of the lexer
//! still run there, so an unclosed bracket or string inside the construct is still reported.
//! Each gap is recognised by the smallest construct it occurs in, never by file, and has a
//! `fixtures/classify/<lang>/valid_*` file that keeps it fixed.

use tree_sitter::Node;

use super::Language;
use super::syntax::{culprit, first_leaf};

/// Whether the tree error `error` lies in a valid construct that the grammar cannot parse.
///
/// - Rust: macro bodies (`macro_rules!` definitions and macro token trees hold arbitrary
///   tokens, and the grammar trips on some of them), the 2015 `try!` macro, `safe fn` and
///   `safe static` in `unsafe extern` blocks (Rust 2024).
/// - TypeScript and TSX: `import("module")` types and `in`/`out` variance annotations on type
///   parameters (also after a comment). TSX: function types whose parameter has no type
///   annotation (`i: (string) => string`, a parameter named `string`).
pub(crate) fn grammar_gap(language: Language, text: &str, error: Node<'_>) -> bool {
    let node = culprit(error);
    let leaf = first_leaf(node);
    let word = text.get(leaf.start_byte()..leaf.end_byte()).unwrap_or("");
    let after = text.get(leaf.end_byte()..).unwrap_or("").trim_start();
    let before = text.get(..leaf.start_byte()).unwrap_or("").trim_end();
    match language {
        Language::Rust => {
            // `name![[...]]`-style invocations that the grammar fails to open.
            let macro_bang = word == "!" && before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if (word == "try" && after.starts_with('!')) || word == "safe" || macro_bang {
                return true;
            }
            let mut n = Some(error);
            for _ in 0..64 {
                let Some(p) = n else { break };
                if matches!(p.kind(), "macro_definition" | "token_tree" | "macro_invocation") {
                    return true;
                }
                n = p.parent();
            }
            false
        }
        Language::TypeScript | Language::Tsx => {
            let line_start = text[..error.start_byte().min(text.len())].rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[error.start_byte().min(text.len())..]
                .find('\n')
                .map_or(text.len(), |i| i + error.start_byte());
            let line = text.get(line_start..line_end).unwrap_or("");
            let import_type = line.contains(": import(") || (word == "import" && after.starts_with('('));
            let code_before = without_trailing_block_comments(before);
            let variance = (matches!(word, "in" | "out") && code_before.ends_with(['<', ',']))
                || before
                    .strip_suffix("out")
                    .or_else(|| before.strip_suffix(" in"))
                    .is_some_and(|b| without_trailing_block_comments(b.trim_end()).ends_with(['<', ',']));
            // `(name) => T` in a type: a parameter named without a type annotation.
            let untyped_param_type = language == Language::Tsx && word == "=>" && {
                let inner = before.strip_suffix(')').unwrap_or("");
                let open = inner.rfind('(').unwrap_or(0);
                let name = inner.get(open + 1..).unwrap_or("").trim();
                before.ends_with(')')
                    && !name.is_empty()
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$')
                    && inner[..open].trim_end().ends_with(':')
            };
            import_type || variance || untyped_param_type
        }
        _ => false,
    }
}

/// `text` without the block comments at its end (`/** @ts-ignore */` before a token).
fn without_trailing_block_comments(mut text: &str) -> &str {
    while text.ends_with("*/") {
        match text.rfind("/*") {
            Some(i) => text = text[..i].trim_end(),
            None => break,
        }
    }
    text
}
