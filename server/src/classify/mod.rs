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
mod stub;
pub use stub::*;
