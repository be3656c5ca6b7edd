//! Syntax classification with tree-sitter.
//!
//! Parses source files of the supported languages and turns tree-sitter's ERROR and MISSING
//! nodes into a small number of readable, well-placed diagnostics ("missing `)`", "unexpected
//! `}`", "unterminated string"). Parsing never fails: a broken file still yields a tree and its
//! diagnostics. Every diagnostic carries a category, a severity, the enclosing symbol path and a
//! fingerprint that survives unrelated edits.
//!
//! This module works on byte offsets and knows nothing of files, editors or LSP; converting
//! offsets to line/column is [`crate::text`]'s job.

use std::ops::Range;
use std::path::Path;

use tree_sitter::{InputEdit, Point, Tree};

mod balance;
pub mod external;
mod fingerprint;
mod gaps;
mod lexer;
mod parse;
mod symbol;
mod syntax;
#[cfg(test)]
mod tests;

pub use fingerprint::fingerprint;
pub(crate) use parse::parse as parse_tree;
pub use symbol::symbol_at;

/// A language ACAS can parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    TypeScript,
    Tsx,
    JavaScript,
    Python,
    Go,
    Json,
}

impl Language {
    pub const ALL: [Language; 7] = [
        Language::Rust,
        Language::TypeScript,
        Language::Tsx,
        Language::JavaScript,
        Language::Python,
        Language::Go,
        Language::Json,
    ];

    /// The language of a file, from its extension.
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?;
        Some(match ext {
            "rs" => Language::Rust,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "js" | "jsx" | "mjs" | "cjs" => Language::JavaScript,
            "py" | "pyi" => Language::Python,
            "go" => Language::Go,
            "json" => Language::Json,
            _ => return None,
        })
    }

    /// The LSP language identifier (also used in the store and in output).
    pub fn id(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::TypeScript => "typescript",
            Language::Tsx => "typescriptreact",
            Language::JavaScript => "javascript",
            Language::Python => "python",
            Language::Go => "go",
            Language::Json => "json",
        }
    }
}

/// What kind of problem a diagnostic describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Syntax,
    Type,
    Name,
    Import,
    Ownership,
    Lint,
    Test,
    Runtime,
    Build,
    Other,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Syntax => "syntax",
            Category::Type => "type",
            Category::Name => "name",
            Category::Import => "import",
            Category::Ownership => "ownership",
            Category::Lint => "lint",
            Category::Test => "test",
            Category::Runtime => "runtime",
            Category::Build => "build",
            Category::Other => "other",
        }
    }

    /// The category `as_str` names.
    pub fn parse(name: &str) -> Option<Category> {
        [
            Category::Syntax,
            Category::Type,
            Category::Name,
            Category::Import,
            Category::Ownership,
            Category::Lint,
            Category::Test,
            Category::Runtime,
            Category::Build,
            Category::Other,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Information,
    Hint,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
            Severity::Hint => "hint",
        }
    }

    /// The severity `as_str` names.
    pub fn parse(name: &str) -> Option<Severity> {
        [Severity::Error, Severity::Warning, Severity::Information, Severity::Hint]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// A secondary location that explains a diagnostic ("`(` opened here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub range: Range<usize>,
    pub message: String,
}

/// One classified problem in a source text, located by byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub range: Range<usize>,
    pub severity: Severity,
    pub category: Category,
    pub message: String,
    /// Who reported it: `acas` for syntax diagnostics.
    pub source: String,
    /// Stable identity: hash of the normalised message, the category and the symbol path.
    pub fingerprint: String,
    /// Enclosing symbol path, for example `parser::Parser::parse_expr`.
    pub symbol: Option<String>,
    pub related: Vec<Related>,
}

/// One-shot: parses `text` and returns its syntax diagnostics.
pub fn check(language: Language, text: &str) -> Vec<Diagnostic> {
    let tree = parse::parse(language, text, None);
    syntax_diagnostics(language, text, &tree)
}

/// Syntax diagnostics of an already parsed text.
pub fn syntax_diagnostics(language: Language, text: &str, tree: &Tree) -> Vec<Diagnostic> {
    syntax::findings(language, text, tree)
        .into_iter()
        .map(|f| {
            let symbol = symbol_at(language, tree, text, f.range.start);
            let category = Category::Syntax;
            Diagnostic {
                fingerprint: fingerprint(&f.message, category, symbol.as_deref()),
                range: f.range,
                severity: Severity::Error,
                category,
                message: f.message,
                source: "acas".to_string(),
                symbol,
                related: f.related,
            }
        })
        .collect()
}

/// An open document: text plus its syntax tree, reparsed incrementally.
pub struct Document {
    language: Language,
    text: String,
    tree: Tree,
    /// The tree has edits that are not parsed yet.
    dirty: bool,
    /// The last parse ran out of time and `tree` is a stand-in (see `parse::PARSE_BUDGET`).
    stale: bool,
    /// While `tree` has errors: the last tree without any, with every edit since applied. An
    /// edit that may heal the error (it adds or removes a delimiter or a quote) can be parsed
    /// from it instead of from the broken tree ([`Heal`]).
    clean: Option<Tree>,
    /// Whether an edit since the last parse may heal an error.
    may_heal: bool,
    heal: Heal,
    diagnostics: Vec<Diagnostic>,
}

impl Document {
    /// Parses `text` and computes its diagnostics.
    pub fn new(language: Language, text: String) -> Document {
        let tree = parse::parse(language, &text, None);
        let diagnostics = syntax_diagnostics(language, &text, &tree);
        let stale = parse::gave_up(&tree, &text);
        Document {
            language,
            text,
            tree,
            dirty: false,
            stale,
            clean: None,
            may_heal: false,
            heal: Heal::default(),
            diagnostics,
        }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Replaces the byte range with `new_text` and records the edit in the tree, without
    /// reparsing. The range is clamped to the text and widened to character boundaries.
    pub fn edit(&mut self, range: Range<usize>, new_text: &str) {
        let len = self.text.len();
        let mut start = range.start.min(len);
        let mut end = range.end.clamp(start, len);
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        while !self.text.is_char_boundary(end) {
            end += 1;
        }
        let start_position = point_at(&self.text, start);
        let old_end_position = point_at(&self.text, end);
        let healing = |t: &str| t.bytes().any(|b| b"()[]{}\"'`".contains(&b));
        self.may_heal |= healing(&self.text[start..end]) || healing(new_text);
        self.text.replace_range(start..end, new_text);
        let new_end = start + new_text.len();
        let new_end_position = advance(start_position, new_text);
        let edit = InputEdit {
            start_byte: start,
            old_end_byte: end,
            new_end_byte: new_end,
            start_position,
            old_end_position,
            new_end_position,
        };
        self.tree.edit(&edit);
        if let Some(clean) = &mut self.clean {
            clean.edit(&edit);
        }
        self.dirty = true;
    }

    /// Reparses incrementally from the edited tree and recomputes the diagnostics.
    pub fn reparse(&mut self) {
        if !self.dirty {
            return;
        }
        // A stand-in tree from an abandoned parse does not describe the text: start afresh.
        let was_stale = self.stale;
        let broken = self.tree.root_node().has_error();
        let from_clean = broken && self.may_heal && self.clean.is_some() && self.heal.choose_clean();
        let old = if from_clean { self.clean.as_ref() } else { (!was_stale).then_some(&self.tree) };
        let started = std::time::Instant::now();
        let tree = parse::parse(self.language, &self.text, old);
        if broken && self.may_heal && self.clean.is_some() {
            self.heal.took(from_clean, started.elapsed());
        }
        self.stale = parse::gave_up(&tree, &self.text);
        if !tree.root_node().has_error() || self.stale {
            self.clean = None;
        } else if !broken && !was_stale {
            // The tree the error broke is the one to come back to.
            self.clean = Some(std::mem::replace(&mut self.tree, tree.clone()));
        }
        self.tree = tree;
        self.may_heal = false;
        self.diagnostics = syntax_diagnostics(self.language, &self.text, &self.tree);
        self.dirty = false;
    }

    /// Replaces the whole text and reparses from scratch.
    pub fn replace(&mut self, text: String) {
        *self = Document::new(self.language, text);
    }

    /// Diagnostics as of the last parse.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

/// Which tree an edit that may heal an error is parsed from, learnt per document.
///
/// Where the broken tree's error recovery spans the rest of the file, little of it can be reused
/// and the clean tree is much faster (0.7 against 5 ms for a `)` put back in the standard
/// library's `test_typing.py`); on other code the clean tree is much slower (17 against 4 ms on
/// a generated file of many small functions). Both give the same tree. So the first such parse
/// starts from the broken tree, the second from the clean one, and later ones from whichever
/// was faster last time, trying the other again every [`Heal::RETRY`] parses.
#[derive(Default)]
struct Heal {
    /// The last time a parse from the broken and from the clean tree took.
    broken: Option<std::time::Duration>,
    clean: Option<std::time::Duration>,
    parses: u32,
}

impl Heal {
    const RETRY: u32 = 32;

    fn choose_clean(&mut self) -> bool {
        self.parses = self.parses.wrapping_add(1);
        match (self.broken, self.clean) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(broken), Some(clean)) => (clean < broken) != self.parses.is_multiple_of(Self::RETRY),
        }
    }

    fn took(&mut self, from_clean: bool, elapsed: std::time::Duration) {
        *if from_clean { &mut self.clean } else { &mut self.broken } = Some(elapsed);
    }
}

/// Row and byte column of `offset` (a character boundary).
fn point_at(text: &str, offset: usize) -> Point {
    let before = &text.as_bytes()[..offset];
    let row = before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Point { row, column: offset - line_start }
}

/// The point reached after inserting `inserted` at `from`.
fn advance(from: Point, inserted: &str) -> Point {
    match inserted.rfind('\n') {
        Some(last) => Point {
            row: from.row + inserted.bytes().filter(|&b| b == b'\n').count(),
            column: inserted.len() - last - 1,
        },
        None => Point { row: from.row, column: from.column + inserted.len() },
    }
}
