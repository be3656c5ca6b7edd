//! Thread-local tree-sitter parsers, one per language.
//!
//! `tree_sitter::Parser` is neither `Sync` nor cheap to create, and the scanner parses on many
//! threads at once, so every thread keeps its own parser for each language it has seen.

use std::cell::RefCell;

use tree_sitter::{Parser, Tree};

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
        // `parse` only returns `None` when a timeout, a cancellation flag or no language is set;
        // none is. Retry from scratch once after a reset to be safe against a stale state.
        match parser.parse(text, old) {
            Some(tree) => tree,
            None => {
                parser.reset();
                parser.parse(text, None).expect(
                    "a parser with a language, no timeout and no cancellation flag always returns a tree",
                )
            }
        }
    })
}
