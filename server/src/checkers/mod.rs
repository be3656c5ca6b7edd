//! The project's own tools as checkers: what a checker is (a command, when it runs, how its
//! output is read), the problems it reports, and running one so that its output is parsed as it
//! streams ([`run`]). The output formats and the recognition of crashes in any output are in
//! [`parse`].
//!
//! Nothing here knows editors, the loop or terminals: a run hands each problem to a callback as
//! soon as its lines are read, in the tool's own file names, lines and columns. Placing problems
//! in a file's text (columns in bytes, characters or UTF-16 units), classifying them and
//! fingerprinting them happen where the file's text is known.

pub mod detect;
pub mod parse;
pub mod run;
pub mod settings;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

use crate::classify::{Category, Severity};

/// Where `acas run` lists, per command, the files and tools it recorded problems for (relative
/// to the workspace root); a running editor reads what they name back from the store.
pub const RUN_LISTS: &str = ".acas/runs";

/// A command that reports problems, and how to read what it prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Checker {
    /// How the user names it (`cargo-check`, `ruff`, `pytest`, or a name from the configuration).
    pub name: String,
    /// The program and its arguments; no shell.
    pub command: Vec<String>,
    /// Where it runs (absolute).
    pub cwd: PathBuf,
    /// How its output is read.
    pub format: Format,
    /// Whether it checks code or runs tests (tests are not run on every save by default).
    pub kind: Kind,
    /// Runs after a file it covers is saved (debounced).
    pub on_save: bool,
    /// Runs when the workspace opens.
    pub on_start: bool,
    /// Globs, relative to the workspace, of the files whose save runs it; empty: every file.
    pub files: Vec<String>,
    /// A run longer than this is ended, with its whole process tree.
    pub timeout: Option<Duration>,
}

/// Whether a checker checks code or runs tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Check,
    Test,
}

/// How a checker's output is read: one of the built-in parsers, or a pattern for any other tool.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// `cargo check|clippy|build --message-format=json` (rustc's JSON diagnostics, one per line).
    Cargo,
    /// `cargo test` / `cargo nextest run`: libtest's output, failures located from their panics.
    CargoTest,
    /// `tsc --noEmit --pretty false`: `file(line,col): error TSnnnn: message`.
    Tsc,
    /// `eslint --format json`.
    Eslint,
    /// `ruff check --output-format json`.
    Ruff,
    /// `mypy --output json` (one JSON object per line).
    Mypy,
    /// `pyright --outputjson`.
    Pyright,
    /// `go build` / `go vet` / `staticcheck`: `file:line:col: message`.
    Go,
    /// `go test -json`.
    GoTest,
    /// pytest with `--junitxml=PATH`: the XML report at that path, read when the run ends, and
    /// tracebacks from the output meanwhile.
    Pytest { junit_xml: PathBuf },
    /// `jest --json` / `vitest run --reporter=json`.
    Jest,
    /// Any other tool: a regular expression applied to each line.
    Matcher(Matcher),
    /// Any command's output (`acas run`, workflow `run` steps): compiler messages of the
    /// languages above, Python tracebacks, Rust panics, Node stack traces and Go panics, each
    /// placed on its innermost frame under `root` with the other frames as related places.
    Crash { root: PathBuf },
}

/// A problem-matcher-style pattern: a regular expression with named groups `file`, `line` and
/// `message`, and optionally `column`, `end_line`, `end_column`, `severity` and `code`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub pattern: regex::Regex,
    /// The tool's name, shown as the problems' source.
    pub source: String,
    /// The severity of a match without a `severity` group, or whose group says nothing known.
    pub severity: Severity,
    /// How the tool counts columns.
    pub columns: ColumnUnit,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.pattern.as_str() == other.pattern.as_str()
            && self.source == other.source
            && self.severity == other.severity
            && self.columns == other.columns
    }
}

/// What a tool's columns count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnUnit {
    /// Bytes of UTF-8 (Go, GCC).
    Bytes,
    /// Unicode scalar values (rustc, Ruff, mypy).
    Chars,
    /// UTF-16 code units (tsc, ESLint, Pyright, Node).
    Utf16,
}

/// A place in a file as a tool gives it: 1-based line, 1-based column in the tool's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point {
    pub line: u32,
    pub column: u32,
}

/// A span in a file, as a tool gives it. A tool that gives only a start gives `end: None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The file as the tool wrote it; [`run`] makes relative paths absolute against the
    /// checker's directory.
    pub path: PathBuf,
    pub start: Point,
    pub end: Option<Point>,
    pub columns: ColumnUnit,
}

/// One problem a tool reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub span: Span,
    pub severity: Severity,
    /// The tool's code for it (`E0308`, `TS2322`, `F401`, `no-unused-vars`), if any.
    pub code: Option<String>,
    pub message: String,
    /// The tool that reported it, as editors show it (`rustc`, `clippy`, `tsc`, `pytest`).
    pub source: String,
    /// Set when the format knows better than the tool's code (a failing test, a crash); else the
    /// category comes from [`crate::classify::external::category`].
    pub category: Option<Category>,
    /// Other places that explain it: other frames of a crash, "first borrow here".
    pub related: Vec<Related>,
    /// Edits the tool offers that can be applied without judgement.
    pub fixes: Vec<Fix>,
}

/// A secondary place of a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    pub span: Span,
    pub message: String,
}

/// A machine-applicable suggestion: edits that together fix the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<Edit>,
}

/// Replace the text of `span` (start inclusive, end exclusive) with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub span: Span,
    pub replacement: String,
}
