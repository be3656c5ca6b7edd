//! Server benchmarks through the real `acas` binary: what an editor would see.
//!
//! 1. **Edit latency.** A generated 10,000-line file (Rust, Python, TypeScript) is opened over
//!    stdio, then edited one incremental `didChange` at a time: delete a `)` in the middle of
//!    the file, put it back, insert a character in a comment, insert one in a string. Each edit
//!    is timed from writing the notification to reading the `publishDiagnostics` with its
//!    version, after a warm-up.
//!    **Real files** (`edits-real`): the same edits on real code of about 9,000 lines per
//!    language — Python's `test/test_typing.py` from the standard library, hashbrown's
//!    `src/map.rs` from the cargo registry, and TypeScript from rxjs's sources (concatenated) —
//!    at a call, a comment and a string found in the second half of the file.
//! 2. **Initial scan.** A workspace of 10,000 Rust files copied from the cargo registry (a file
//!    is copied twice when there are fewer): `acas serve` from `initialized` to the `$/progress`
//!    end, and `acas check DIR --format json` from start to exit.
//! 3. **Memory.** VmRSS and VmHWM of `acas serve` once that scan has ended and a document is
//!    open, and of `acas watch` once its scan has ended.
//! 4. **Burst.** With `acas serve` on a workspace holding only the open document, 100,000 small
//!    files are created in 100 directories as fast as one thread can, while the document is
//!    edited every 20 ms until the server's background threads are idle again: edit latency
//!    during and after the burst, how long the server takes to catch up, and its peak memory.
//!
//! Run with
//!
//! ```text
//! cargo build --release -p acas
//! cargo bench -p acas-e2e --bench server
//! cargo bench -p acas-e2e --bench server -- edits scan   # only these parts
//! npm install --prefix /tmp/rxjs rxjs@7.8.1                 # the TypeScript of `edits-real`
//! ```
//!
//! The binary is `target/release/acas` next to this bench binary, or `ACAS_BIN`. The source
//! files for the scan come from `ACAS_BENCH_SOURCES` (default: `$CARGO_HOME/registry/src`).
//! The real files come from `ACAS_BENCH_PYTHON`, `ACAS_BENCH_RUST` and `ACAS_BENCH_TYPESCRIPT`
//! (a file, or for TypeScript a directory whose `.ts` sources are concatenated; default
//! `/tmp/rxjs/node_modules/rxjs/src`).
//! Output is markdown. Timings include the client's JSON parsing, as in a real editor.

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use acas::config::DEFAULT_MAX_FILE_SIZE;
use acas_e2e::{LspClient, acas_bin, file_uri};
use serde_json::{Value, json};

/// Lines in each generated document.
const DOCUMENT_LINES: usize = 10_000;
/// Measured edits per document, after `WARMUP_EDITS` unmeasured ones.
const EDITS: usize = 1_000;
const WARMUP_EDITS: usize = 100;
/// Files in the scanned workspace.
const SCAN_FILES: usize = 10_000;
/// Files created in the burst, spread over `BURST_DIRS` directories.
const BURST_FILES: usize = 100_000;
const BURST_DIRS: usize = 100;
/// Pause between edits during the burst: a fast typist.
const BURST_EDIT_INTERVAL: Duration = Duration::from_millis(20);
/// Waiting for a scan or for the server to go idle gives up after this.
const LONG_WAIT: Duration = Duration::from_secs(600);

fn main() {
    let bin = acas_bin();
    assert!(bin.exists(), "{} is missing: run `cargo build --release -p acas` first", bin.display());
    println!("# acas server benchmarks\n");
    println!("- binary: `{}`", bin.display());
    println!("- load before: `{}`\n", uptime());

    // Parts named after `--` (`edits`, `scan`, `burst`) run alone; none named runs all.
    let parts: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let runs = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if runs("edits") {
        edit_latency();
    }
    if runs("edits-real") {
        real_edit_latency();
    }
    if runs("scan") {
        let workspace = ScanWorkspace::create();
        scan_and_memory(&workspace);
    }
    if runs("burst") {
        burst();
    }

    println!("- load after: `{}`", uptime());
}

// ---------------------------------------------------------------------------------------------
// 1. Edit latency

fn edit_latency() {
    println!("## Edit → publishDiagnostics latency ({DOCUMENT_LINES}-line file, {EDITS} edits)\n");
    println!("| document | edit | n | p50 ms | p95 ms | p99 ms | max ms | mean ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for language in &LANGUAGES {
        let text = language.document();
        let lines = text.lines().count();
        let kb = text.len() as f64 / 1e3;
        let label = format!("{} ({lines} lines, {kb:.0} KB)", language.name);
        measure_edits(&label, language, &text, EditSession::open);
    }
    println!();
}

/// Opens `text` as a document of `language` in a fresh workspace, makes the warm-up and the
/// measured edits at the sites `open` finds, and prints a row for all and one per kind of edit.
fn measure_edits(
    label: &str,
    language: &Language,
    text: &str,
    open: fn(&mut LspClient, &Path, &Language, &str) -> EditSession,
) {
    let dir = tempfile::tempdir().expect("temporary workspace");
    let path = dir.path().join(format!("main.{}", language.extension));
    std::fs::write(&path, text).expect("writing the document");
    let mut client = start_serve(dir.path());
    let mut session = open(&mut client, &path, language, text);
    for i in 0..WARMUP_EDITS {
        session.edit(&mut client, i);
    }
    let mut all = Vec::with_capacity(EDITS);
    let mut by_kind: [Vec<Duration>; 4] = Default::default();
    for i in 0..EDITS {
        let (kind, elapsed) = session.edit(&mut client, WARMUP_EDITS + i);
        all.push(elapsed);
        by_kind[kind as usize].push(elapsed);
    }
    println!("| {label} | all | {} |", row(&all));
    for kind in EditKind::ALL {
        println!("| | {} | {} |", kind.label(), row(&by_kind[kind as usize]));
    }
    client.shutdown();
}

/// The edits of [`edit_latency`] on real files.
fn real_edit_latency() {
    println!("## Edit → publishDiagnostics latency on real files ({EDITS} edits)\n");
    println!("| document | edit | n | p50 ms | p95 ms | p99 ms | max ms | mean ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for real in real_files() {
        let lines = real.text.lines().count();
        let kb = real.text.len() as f64 / 1e3;
        let label = format!("{} `{}` ({lines} lines, {kb:.0} KB)", real.language.name, real.origin);
        measure_edits(&label, real.language, &real.text, EditSession::open_real);
    }
    println!();
}

/// A real file to edit.
struct RealFile {
    language: &'static Language,
    /// Where it came from, as printed.
    origin: String,
    text: String,
}

/// The real files found on this machine; a language whose file is missing is named and left out.
fn real_files() -> Vec<RealFile> {
    let python = std::env::var_os("ACAS_BENCH_PYTHON").map(PathBuf::from).or_else(|| {
        let out = Command::new("python3")
            .args(["-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"])
            .output()
            .ok()?;
        let stdlib = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(stdlib.join("test/test_typing.py"))
    });
    let rust = std::env::var_os("ACAS_BENCH_RUST").map(PathBuf::from).or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir(sources_dir())
            .ok()?
            .flatten()
            .flat_map(|index| std::fs::read_dir(index.path()).into_iter().flatten().flatten())
            .filter(|krate| krate.file_name().to_string_lossy().starts_with("hashbrown-0.14"))
            .map(|krate| krate.path().join("src/map.rs"))
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        found.pop()
    });
    let typescript = std::env::var_os("ACAS_BENCH_TYPESCRIPT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/rxjs/node_modules/rxjs/src"));
    let mut files = Vec::new();
    for (language, path) in
        [(&LANGUAGES[1], python), (&LANGUAGES[0], rust), (&LANGUAGES[2], Some(typescript))]
    {
        let Some(path) = path else {
            println!(
                "- {}: no real file found; set ACAS_BENCH_{}\n",
                language.name,
                language.name.to_uppercase()
            );
            continue;
        };
        let text = if path.is_dir() {
            concatenated_sources(&path, language.extension)
        } else {
            std::fs::read_to_string(&path).ok()
        };
        match text {
            Some(text) if !text.is_empty() => {
                files.push(RealFile { language, origin: path.display().to_string(), text })
            }
            _ => println!(
                "- {}: cannot read {}; set ACAS_BENCH_{}\n",
                language.name,
                path.display(),
                language.name.to_uppercase()
            ),
        }
    }
    files
}

/// About 9,000 lines of the `.extension` sources under `dir`, in path order, one after another.
fn concatenated_sources(dir: &Path, extension: &str) -> Option<String> {
    fn collect(dir: &Path, extension: &str, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect(&path, extension, found);
            } else if path.extension().is_some_and(|e| e == extension)
                && !path.to_string_lossy().ends_with(".d.ts")
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    collect(dir, extension, &mut found);
    found.sort();
    let mut text = String::new();
    for path in found {
        if text.lines().count() >= 9_000 {
            break;
        }
        text.push_str(&std::fs::read_to_string(path).ok()?);
        text.push('\n');
    }
    Some(text)
}

#[derive(Clone, Copy)]
enum EditKind {
    BreakParen,
    FixParen,
    Comment,
    String,
}

impl EditKind {
    /// In the order they are sent.
    const ALL: [EditKind; 4] =
        [EditKind::BreakParen, EditKind::FixParen, EditKind::Comment, EditKind::String];

    fn label(self) -> &'static str {
        match self {
            EditKind::BreakParen => "delete `)` (adds a syntax error)",
            EditKind::FixParen => "insert `)` (removes it)",
            EditKind::Comment => "insert a char in a comment",
            EditKind::String => "insert a char in a string",
        }
    }
}

/// An open document and where its edits go.
struct EditSession {
    uri: String,
    version: i32,
    /// Line and column of the `)` that is deleted and put back.
    paren: (usize, usize),
    /// Where characters are inserted in a comment and in a string; both move right as they grow.
    comment: (usize, usize),
    string: (usize, usize),
    /// Diagnostics of the intact document.
    baseline: usize,
}

impl EditSession {
    fn open(client: &mut LspClient, path: &Path, language: &Language, text: &str) -> EditSession {
        let (uri, baseline) = open_document(client, path, language, text);
        let middle = text.lines().count() / 2;
        let find = |needle: &str| {
            text.lines()
                .enumerate()
                .skip(middle)
                .find_map(|(line, content)| content.find(needle).map(|col| (line, col)))
                .unwrap_or_else(|| panic!("no `{needle}` after line {middle}"))
        };
        let (call_line, _) = find(language.call);
        let paren_col = text.lines().nth(call_line).and_then(|l| l.rfind(')')).expect("the call has a `)`");
        let (comment_line, comment_col) = find(language.comment);
        let (string_line, string_col) = find(language.string);
        EditSession {
            uri,
            version: 1,
            paren: (call_line, paren_col),
            comment: (comment_line, comment_col + language.comment.len()),
            string: (string_line, string_col + language.string.len()),
            baseline,
        }
    }

    /// A session on real code: the `)` deleted is the last of a line in the second half with
    /// balanced parentheses and no quotes; characters go at the end of a comment line and
    /// after the opening quote of a line with one plain string.
    fn open_real(client: &mut LspClient, path: &Path, language: &Language, text: &str) -> EditSession {
        let (uri, baseline) = open_document(client, path, language, text);
        let marker = if language.id == "python" { "#" } else { "//" };
        let lines: Vec<&str> = text.lines().collect();
        let middle = lines.len() / 2;
        // `pick` gives a byte offset in the line; LSP columns count UTF-16 units.
        let find = |pick: &dyn Fn(&str) -> Option<usize>| {
            (middle..lines.len())
                .find_map(|line| pick(lines[line]).map(|at| (line, lines[line][..at].encode_utf16().count())))
                .unwrap_or_else(|| panic!("no edit site after line {middle} of {}", path.display()))
        };
        let quoted = |l: &str| l.contains(['"', '\'', '`', '\\']);
        let paren = find(&|l: &str| {
            let code = l.trim_start();
            let balanced = l.matches('(').count() == l.matches(')').count() && l.contains('(');
            (balanced
                && !quoted(l)
                && !code.starts_with(marker)
                && !code.starts_with('*')
                && !l.contains(marker))
            .then(|| l.rfind(')'))
            .flatten()
        });
        let comment = find(&|l: &str| l.trim_start().starts_with(marker).then_some(l.len()));
        let string = find(&|l: &str| {
            let plain = l.matches('"').count() == 2 && !l.contains(['\\', '\'', '`']) && !l.contains(marker);
            plain.then(|| l.find('"').map(|c| c + 1)).flatten()
        });
        EditSession { uri, version: 1, paren, comment, string, baseline }
    }

    /// Sends edit number `i` and waits for its diagnostics; returns what it was and how long.
    fn edit(&mut self, client: &mut LspClient, i: usize) -> (EditKind, Duration) {
        let kind = EditKind::ALL[i % EditKind::ALL.len()];
        let (range, text) = match kind {
            EditKind::BreakParen => (range(self.paren, 1), ""),
            EditKind::FixParen => (range(self.paren, 0), ")"),
            EditKind::Comment => {
                self.comment.1 += 1;
                (range((self.comment.0, self.comment.1 - 1), 0), "x")
            }
            EditKind::String => {
                self.string.1 += 1;
                (range((self.string.0, self.string.1 - 1), 0), "y")
            }
        };
        self.version += 1;
        let version = self.version;
        let started = Instant::now();
        client.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": self.uri, "version": version },
                "contentChanges": [{ "range": range, "text": text }],
            }),
        );
        let published = client.expect_diagnostics(&self.uri, |p| p["version"] == version);
        let elapsed = started.elapsed();
        let count = published["diagnostics"].as_array().map_or(0, Vec::len);
        match kind {
            EditKind::BreakParen => assert!(count > self.baseline, "deleting `)` gave no diagnostic"),
            _ => assert_eq!(count, self.baseline, "edit {i} should leave the document intact"),
        }
        (kind, elapsed)
    }
}

/// Opens `text` and waits for its first diagnostics; returns its URI and how many it has.
fn open_document(client: &mut LspClient, path: &Path, language: &Language, text: &str) -> (String, usize) {
    let uri = file_uri(path);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": {
            "uri": uri, "languageId": language.id, "version": 1, "text": text,
        } }),
    );
    let opened = client.expect_diagnostics(&uri, |p| p["version"] == 1);
    (uri, opened["diagnostics"].as_array().map_or(0, Vec::len))
}

/// An LSP range of `len` characters from `(line, column)`.
fn range((line, character): (usize, usize), len: usize) -> Value {
    json!({
        "start": { "line": line, "character": character },
        "end": { "line": line, "character": character + len },
    })
}

/// A language to generate a document in, and the markers that locate its edits.
struct Language {
    name: &'static str,
    id: &'static str,
    extension: &'static str,
    /// One block of code; `{i}` is replaced by the block number.
    block: &'static str,
    /// Text before the blocks.
    header: &'static str,
    /// A call whose last `)` on the line is deleted and put back.
    call: &'static str,
    /// Characters are inserted right after these.
    comment: &'static str,
    string: &'static str,
}

impl Language {
    fn document(&self) -> String {
        let mut text = String::from(self.header);
        let mut lines = text.lines().count();
        let block_lines = self.block.lines().count();
        let mut i = 0;
        while lines + block_lines <= DOCUMENT_LINES {
            text.push_str(&self.block.replace("{i}", &i.to_string()));
            lines += block_lines;
            i += 1;
        }
        text
    }
}

const LANGUAGES: [Language; 3] = [
    Language {
        name: "Rust",
        id: "rust",
        extension: "rs",
        header: RUST_HEADER,
        block: RUST_BLOCK,
        call: "checked_total(record",
        comment: "// Note:",
        string: "\"record",
    },
    Language {
        name: "Python",
        id: "python",
        extension: "py",
        header: PYTHON_HEADER,
        block: PYTHON_BLOCK,
        call: "checked_total(record",
        comment: "# Note:",
        string: "\"record",
    },
    Language {
        name: "TypeScript",
        id: "typescript",
        extension: "ts",
        header: TYPESCRIPT_HEADER,
        block: TYPESCRIPT_BLOCK,
        call: "checkedTotal(record",
        comment: "// Note:",
        string: "\"record",
    },
];

const RUST_HEADER: &str = r#"//! Generated for the edit-latency benchmark.

use std::collections::HashMap;
use std::fmt;

fn checked_total(a: i64, b: i64) -> Option<i64> {
    a.checked_add(b)
}

"#;

const RUST_BLOCK: &str = r#"/// A record of kind {i}, kept in a [`Registry{i}`].
#[derive(Debug, Clone, PartialEq)]
pub struct Record{i} {
    pub id: u64,
    pub name: String,
    pub values: Vec<i64>,
}

#[derive(Debug)]
pub enum State{i} {
    Idle,
    Running { since: u64 },
    Failed(String),
}

pub struct Registry{i} {
    records: HashMap<u64, Record{i}>,
}

impl Record{i} {
    pub fn new(id: u64, name: &str) -> Self {
        Self { id, name: name.to_owned(), values: Vec::new() }
    }

    /// Sums the values, saturating on overflow.
    pub fn total(&self) -> i64 {
        self.values.iter().fold(0i64, |acc, v| acc.saturating_add(*v))
    }

    pub fn describe(&self, state: &State{i}) -> String {
        // Note: the label is shown to users.
        let label = "record {i}: ready";
        match state {
            State{i}::Idle => format!("{label} ({})", self.name),
            State{i}::Running { since } => format!("{} running since {since}", self.id),
            State{i}::Failed(reason) => format!("failed: {reason}"),
        }
    }
}

impl fmt::Display for Record{i} {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.name, self.id)
    }
}

pub fn process_{i}(registry: &mut Registry{i}, limit: usize) -> Result<i64, String> {
    let mut sum = 0;
    for (index, record) in registry.records.values_mut().enumerate() {
        if index >= limit {
            break;
        }
        record.values.push(index as i64);
        let total = checked_total(record.total(), sum);
        sum = total.ok_or_else(|| format!("overflow at {index}"))?;
    }
    Ok(sum)
}

"#;

const PYTHON_HEADER: &str = r#""""Generated for the edit-latency benchmark."""

import dataclasses


def checked_total(a, b):
    return a + b

"#;

const PYTHON_BLOCK: &str = r#"
@dataclasses.dataclass
class Record{i}:
    """A record of kind {i}."""

    ident: int
    name: str
    values: list

    def total(self):
        # Note: the label is shown to users.
        return sum(self.values)

    def describe(self, state):
        label = "record {i}: ready"
        if state == "idle":
            return f"{label} ({self.name})"
        elif state.startswith("running"):
            return "%d running" % self.ident
        else:
            raise ValueError("failed: " + state)


def process_{i}(records, limit):
    total = 0
    for index, record in enumerate(records):
        if index >= limit:
            break
        record.values.append(index)
        total = checked_total(record.total(), total)
    return total

"#;

const TYPESCRIPT_HEADER: &str = r#"// Generated for the edit-latency benchmark.

function checkedTotal(a: number, b: number): number {
  return a + b;
}

"#;

const TYPESCRIPT_BLOCK: &str = r#"/** A record of kind {i}. */
export interface Record{i} {
  id: number;
  name: string;
  values: number[];
}

export enum State{i} {
  Idle,
  Running,
  Failed,
}

export class Registry{i} {
  private readonly records = new Map<number, Record{i}>();

  add(record: Record{i}): void {
    // Note: the label is shown to users.
    this.records.set(record.id, record);
  }

  describe(id: number, state: State{i}): string {
    const label = "record {i}: ready";
    const record = this.records.get(id);
    if (!record) {
      throw new Error(`no record ${id}`);
    }
    switch (state) {
      case State{i}.Idle:
        return `${label} (${record.name})`;
      case State{i}.Running:
        return `${record.id} running`;
      default:
        return "failed";
    }
  }
}

export function process{i}(records: Record{i}[], limit: number): number {
  let sum = 0;
  records.slice(0, limit).forEach((record, index) => {
    record.values.push(index);
    const total = checkedTotal(record.values.reduce((a, b) => a + b, 0), sum);
    sum = total;
  });
  return sum;
}

"#;

// ---------------------------------------------------------------------------------------------
// 2 and 3. Initial scan and memory

/// A temporary workspace of `SCAN_FILES` real Rust files.
struct ScanWorkspace {
    dir: tempfile::TempDir,
    files: usize,
    bytes: u64,
    distinct: usize,
}

impl ScanWorkspace {
    fn create() -> ScanWorkspace {
        let sources = sources_dir();
        let mut found = Vec::new();
        collect_rust_files(&sources, &mut found);
        // A file over the parse limit (the registry holds generated tables of several MB) is
        // skipped by the scan, not checked, and gets no diagnostics when opened: the bench would
        // wait for them in vain.
        found.retain(|f| std::fs::metadata(f).is_ok_and(|m| m.len() <= DEFAULT_MAX_FILE_SIZE));
        found.sort();
        assert!(!found.is_empty(), "no .rs files under {}; set ACAS_BENCH_SOURCES", sources.display());
        let dir = tempfile::tempdir().expect("temporary workspace");
        let mut bytes = 0;
        for i in 0..SCAN_FILES {
            let source = &found[i % found.len()];
            let relative = source.strip_prefix(&sources).expect("found under the sources");
            let target = dir.path().join(format!("copy{}", i / found.len())).join(relative);
            std::fs::create_dir_all(target.parent().expect("a file has a parent"))
                .expect("creating a workspace directory");
            bytes += std::fs::copy(source, &target).expect("copying a source file");
        }
        ScanWorkspace { dir, files: SCAN_FILES, bytes, distinct: found.len().min(SCAN_FILES) }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn megabytes(&self) -> f64 {
        self.bytes as f64 / 1e6
    }

    /// Forgets what an earlier run stored, so that every run starts cold.
    fn reset_state(&self) {
        let state = self.path().join(".acas");
        if state.exists() {
            std::fs::remove_dir_all(&state).expect("removing .acas");
        }
    }
}

fn sources_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ACAS_BENCH_SOURCES") {
        return PathBuf::from(dir);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .expect("CARGO_HOME or HOME is set");
    cargo_home.join("registry").join("src")
}

fn collect_rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if kind.is_dir() && !hidden {
            collect_rust_files(&path, found);
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn scan_and_memory(workspace: &ScanWorkspace) {
    println!(
        "## Initial scan ({} files, {:.1} MB of Rust from the cargo registry, {} distinct)\n",
        workspace.files,
        workspace.megabytes(),
        workspace.distinct
    );
    println!("| run | seconds | files/s | MB/s | server CPU s (user + system) |");
    println!("|---|---|---|---|---|");
    let mut memory = Vec::new();
    for run in 1..=2 {
        workspace.reset_state();
        let scan = serve_scan(workspace);
        println!(
            "| `acas serve`, initialized → progress end (run {run}) | {} | {:.2} |",
            throughput(workspace, scan.elapsed),
            scan.cpu
        );
        memory.push((format!("`acas serve`, scan done (run {run})"), scan.scanned));
        memory.push((
            format!("`acas serve`, then the largest file ({:.0} KB) open (run {run})", scan.opened_kb),
            scan.opened,
        ));
    }
    for run in 1..=2 {
        workspace.reset_state();
        let elapsed = check_scan(workspace);
        println!("| `acas check DIR --format json` (run {run}) | {} | |", throughput(workspace, elapsed));
    }
    workspace.reset_state();
    let (elapsed, status) = watch_scan(workspace);
    println!("| `acas watch DIR --format json`, start → scan event | {} | |", throughput(workspace, elapsed));
    memory.push(("`acas watch`, scan done".to_owned(), status));
    println!();

    println!("## Resident memory ({} files)\n", workspace.files);
    println!("| process | VmRSS MB | VmHWM MB |");
    println!("|---|---|---|");
    for (label, status) in memory {
        println!("| {label} | {:.1} | {:.1} |", status.rss_mb, status.hwm_mb);
    }
    println!();
}

fn throughput(workspace: &ScanWorkspace, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    format!("{secs:.2} | {:.0} | {:.1}", workspace.files as f64 / secs, workspace.megabytes() / secs)
}

struct ServeScan {
    elapsed: Duration,
    /// The server's CPU time (user + system) from its start to the scan's end.
    cpu: f64,
    /// Memory once the scan has ended.
    scanned: MemoryStatus,
    /// Memory once the largest file (of `opened_kb`) is open too.
    opened: MemoryStatus,
    opened_kb: f64,
}

/// Times `acas serve` from `initialized` to the end of its scan, then reads the server's memory
/// before and after opening the largest file.
fn serve_scan(workspace: &ScanWorkspace) -> ServeScan {
    let mut client = LspClient::start(&[("ACAS_LOG", "warn")]);
    let pid = acas_child_pid();
    let root = workspace.path();
    let folders = json!([{ "uri": file_uri(root), "name": "ws" }]);
    client.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": file_uri(root),
            "workspaceFolders": folders,
            "capabilities": { "window": { "workDoneProgress": true } },
        }),
    );
    let started = Instant::now();
    client.notify("initialized", json!({}));
    wait_for_scan_end(&mut client);
    let elapsed = started.elapsed();
    // CPU time varies far less than wall time with what else the machine is doing.
    let cpu = cpu_seconds(pid);
    let scanned = MemoryStatus::read(pid);

    let document = largest_file(root);
    let uri = file_uri(&document);
    let text = std::fs::read_to_string(&document).expect("reading the document to open");
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": 1, "text": text } }),
    );
    client.expect_diagnostics(&uri, |p| p["version"] == 1);
    let opened = MemoryStatus::read(pid);
    client.shutdown();
    ServeScan { elapsed, cpu, scanned, opened, opened_kb: text.len() as f64 / 1e3 }
}

/// Waits for the `$/progress` end of the initial scan. Progress reports come every 500 files,
/// so each wait is short even when the whole scan is not.
fn wait_for_scan_end(client: &mut LspClient) {
    let deadline = Instant::now() + LONG_WAIT;
    loop {
        let progress = client.expect("scan progress", |m| m["method"] == "$/progress");
        if progress["params"]["value"]["kind"] == "end" {
            return;
        }
        assert!(Instant::now() < deadline, "the scan did not end within {LONG_WAIT:?}");
    }
}

fn largest_file(root: &Path) -> PathBuf {
    let mut files = Vec::new();
    collect_rust_files(root, &mut files);
    files
        .into_iter()
        .max_by_key(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .expect("the workspace has files")
}

fn check_scan(workspace: &ScanWorkspace) -> Duration {
    let started = Instant::now();
    let output = Command::new(acas_bin())
        .args(["check", ".", "--format", "json"])
        .current_dir(workspace.path())
        .env("ACAS_LOG", "warn")
        .output()
        .expect("running acas check");
    let elapsed = started.elapsed();
    let report: Value = serde_json::from_slice(&output.stdout).expect("acas check prints JSON");
    assert_eq!(
        report["files_checked"].as_u64(),
        Some(workspace.files as u64),
        "acas check should check every file; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// Times `acas watch` from start to its scan event and reads its memory then.
fn watch_scan(workspace: &ScanWorkspace) -> (Duration, MemoryStatus) {
    let started = Instant::now();
    let mut child = Command::new(acas_bin())
        .args(["watch", ".", "--format", "json"])
        .current_dir(workspace.path())
        .env("ACAS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting acas watch");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, scanned) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(r#""event":"scan""#) {
                let _ = tx.send(());
            }
        }
    });
    scanned.recv_timeout(LONG_WAIT).expect("acas watch reports the end of its scan");
    let elapsed = started.elapsed();
    let status = MemoryStatus::read(child.id());
    child.kill().expect("stopping acas watch");
    child.wait().expect("waiting for acas watch");
    (elapsed, status)
}

// ---------------------------------------------------------------------------------------------
// 4. Burst

fn burst() {
    let dir = tempfile::tempdir().expect("temporary workspace");
    let language = &LANGUAGES[0];
    let text = language.document();
    let path = dir.path().join("main.rs");
    std::fs::write(&path, &text).expect("writing the document");
    let mut client = start_serve(dir.path());
    let pid = acas_child_pid();
    let mut session = EditSession::open(&mut client, &path, language, &text);
    for i in 0..WARMUP_EDITS {
        session.edit(&mut client, i);
    }
    let cpu_before = cpu_seconds(pid);

    let root = dir.path().to_path_buf();
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        for d in 0..BURST_DIRS {
            let sub = root.join(format!("burst{d:03}"));
            std::fs::create_dir(&sub).expect("creating a burst directory");
            for f in 0..BURST_FILES / BURST_DIRS {
                let body = format!("pub fn f{f}() -> u32 {{\n    {f}\n}}\n");
                std::fs::write(sub.join(format!("f{f}.rs")), body).expect("writing a burst file");
            }
        }
        Instant::now()
    });

    // Edit while the files are created, then until the server's background threads have been
    // idle for a whole second.
    let mut during = Vec::new();
    let mut after = Vec::new();
    let mut writer = Some(writer);
    let mut created_at = None;
    let mut window = (Instant::now(), background_cpu_seconds(pid));
    let deadline = Instant::now() + LONG_WAIT;
    let mut i = WARMUP_EDITS;
    let idle_at = loop {
        let (_, elapsed) = session.edit(&mut client, i);
        i += 1;
        match created_at {
            None => during.push(elapsed),
            Some(_) => after.push(elapsed),
        }
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            let handle = writer.take().expect("checked above");
            created_at = Some(handle.join().expect("the burst writer finished"));
            window = (Instant::now(), background_cpu_seconds(pid));
        }
        if created_at.is_some() && window.0.elapsed() >= Duration::from_secs(1) {
            let busy = background_cpu_seconds(pid) - window.1;
            if busy < 0.05 {
                break window.0;
            }
            window = (Instant::now(), background_cpu_seconds(pid));
        }
        assert!(Instant::now() < deadline, "acas did not go idle within {LONG_WAIT:?}");
        std::thread::sleep(BURST_EDIT_INTERVAL);
    };
    let created_at = created_at.expect("the writer finished before the server went idle");
    let creation = created_at - started;
    let idle_after = idle_at.saturating_duration_since(created_at);
    let status = MemoryStatus::read(pid);
    let cpu = cpu_seconds(pid) - cpu_before;
    client.shutdown();

    println!(
        "## Burst ({BURST_FILES} files in {BURST_DIRS} directories, created in {:.2} s = {:.0} files/s)\n",
        creation.as_secs_f64(),
        BURST_FILES as f64 / creation.as_secs_f64()
    );
    println!("Edits of the open {DOCUMENT_LINES}-line Rust file, one every {BURST_EDIT_INTERVAL:?}:\n");
    println!("| window | n | p50 ms | p95 ms | p99 ms | max ms | mean ms |");
    println!("|---|---|---|---|---|---|---|");
    println!("| while the files are created | {} |", row(&during));
    println!("| after the last file, until the server is idle | {} |", row(&after));
    println!();
    println!("| server | value |");
    println!("|---|---|");
    println!(
        "| background threads (walk, watcher, analysis, store) idle after the last file | {:.1} s |",
        idle_after.as_secs_f64()
    );
    println!("| CPU time used, burst start to idle (edits included) | {cpu:.1} s |");
    println!("| VmRSS when idle | {:.1} MB |", status.rss_mb);
    println!("| VmHWM (peak) | {:.1} MB |", status.hwm_mb);
    println!();
}

// ---------------------------------------------------------------------------------------------
// Processes and statistics

/// Starts `acas serve` on `root` and waits for its (small) initial scan to end.
fn start_serve(root: &Path) -> LspClient {
    let mut client = LspClient::start(&[("ACAS_LOG", "warn")]);
    client.initialize(Some(root), json!({ "window": { "workDoneProgress": true } }));
    wait_for_scan_end(&mut client);
    client
}

/// The pid of the one `acas` process this benchmark is running. `LspClient` keeps its child to
/// itself, so it is found among this process's children.
fn acas_child_pid() -> u32 {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("reading /proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let is_acas = head.ends_with("(acas");
        if is_acas && rest.split_whitespace().nth(1) == Some(me.as_str()) {
            found.push(entry.file_name().to_string_lossy().parse::<u32>().expect("numeric pid"));
        }
    }
    assert_eq!(found.len(), 1, "expected one acas child process, found {found:?}");
    found[0]
}

struct MemoryStatus {
    rss_mb: f64,
    hwm_mb: f64,
}

impl MemoryStatus {
    fn read(pid: u32) -> MemoryStatus {
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
                / 1024.0
        };
        MemoryStatus { rss_mb: field("VmRSS:"), hwm_mb: field("VmHWM:") }
    }
}

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/<pid>/stat");
    stat_cpu_seconds(&stat).1
}

/// CPU time of the server's background threads (named `acas-…` or `notify…`), leaving out the
/// tokio workers and the main thread that serve LSP. Threads that have exited no longer count.
fn background_cpu_seconds(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("reading /proc/<pid>/task");
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .map(|stat| stat_cpu_seconds(&stat))
        .filter(|(name, _)| name.starts_with("acas-") || name.starts_with("notify"))
        .map(|(_, seconds)| seconds)
        .sum()
}

/// The name and the user plus system CPU seconds in a `/proc/…/stat` line.
fn stat_cpu_seconds(stat: &str) -> (String, f64) {
    let (head, rest) = stat.rsplit_once(')').expect("stat has (comm)");
    let name = head.split_once('(').map_or("", |(_, name)| name).to_owned();
    // After "(comm)": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("numeric CPU ticks");
    // The kernel counts in ticks of USER_HZ, which is 100 on Linux.
    (name, (ticks(11) + ticks(12)) / 100.0)
}

/// `edits | p50 | p95 | p99 | max | mean` in milliseconds.
fn row(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "0 | – | – | – | – | –".to_owned();
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let percentile = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    format!(
        "{} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}",
        ms.len(),
        percentile(0.50),
        percentile(0.95),
        percentile(0.99),
        ms[ms.len() - 1],
        mean
    )
}

fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("uptime failed: {e}"))
}
