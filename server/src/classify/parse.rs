//! Thread-local tree-sitter parsers, one per language.
//!
//! `tree_sitter::Parser` is neither `Sync` nor cheap to create, and the scanner parses on many
//! threads at once, so every thread keeps its own parser for each language it has seen.
//!
//! A parse is given [`PARSE_BUDGET`]: tree-sitter's error recovery can go quadratic (a single
//! invalid line of 16,000 list items takes tree-sitter-go seconds), and the server parses on
//! every keystroke. Past the budget the parse is abandoned and the tree of an empty text stands
//! in; [`gave_up`] tells the two apart, and diagnostics then come from the lexer alone.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use tree_sitter::{ParseOptions, ParseState, Parser, Tree};

/// How long one parse may take before it is abandoned.
pub(crate) const PARSE_BUDGET: Duration = Duration::from_millis(500);

use super::Language;

impl Language {
    /// The tree-sitter grammar of this language.
    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
            Language::Json => tree_sitter_json::LANGUAGE.into(),
        }
    }

    fn index(self) -> usize {
        Language::ALL.iter().position(|&l| l == self).unwrap_or(0)
    }
}

thread_local! {
    static PARSERS: RefCell<[Option<Parser>; 7]> = const { RefCell::new([None, None, None, None, None, None, None]) };
}

/// Parses `text`, reusing `old` (already edited with `Tree::edit`) for an incremental parse.
pub(crate) fn parse(language: Language, text: &str, old: Option<&Tree>) -> Tree {
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let parser = parsers[language.index()].get_or_insert_with(|| {
            let mut parser = Parser::new();
            // The grammars are compiled in with a matching ABI version: this cannot fail.
            let _ = parser.set_language(&language.grammar());
            parser
        });
        let bytes = text.as_bytes();
        let started = Instant::now();
        let mut over_budget = |_: &ParseState| started.elapsed() > PARSE_BUDGET;
        let options = ParseOptions::new().progress_callback(&mut over_budget);
        let mut read = |i: usize, _| bytes.get(i..).unwrap_or_default();
        // `None` means the budget ran out (no cancellation flag is set and the grammar loads).
        parser.parse_with_options(&mut read, old, Some(options)).unwrap_or_else(|| {
            parser.reset();
            parser.parse("", None).expect("a parser with a language and no callback always returns a tree")
        })
    })
}

/// Whether `tree` is the stand-in for a parse of `text` that ran out of budget.
pub(crate) fn gave_up(tree: &Tree, text: &str) -> bool {
    tree.root_node().end_byte() == 0 && !text.trim_start().is_empty()
}
