//! Crashes as programs print them: Python tracebacks, Rust panics (with or without a backtrace),
//! Node stack traces and Go panics, read line by line into a message and a list of frames, and
//! placed on the innermost frame inside the workspace with the other frames as related places.
//!
//! The readers here know the shapes of the traces only; which tool printed them, and what a
//! problem found in them is (a test failure, a crash), is for the format that uses them.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::checkers::{ColumnUnit, Point, Problem, Related, Span};
use crate::classify::{Category, Severity};

/// The most lines of a message or frames kept from one trace; the rest are read and dropped.
const TRACE_LINES: usize = 200;

/// One place in a trace: a file as the program printed it, a 1-based line and maybe a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub path: String,
    pub line: u32,
    pub column: Option<u32>,
    /// The function running there, when the trace names it.
    pub function: Option<String>,
}

/// A whole trace: what went wrong and where, innermost frame first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub message: String,
    pub frames: Vec<Frame>,
    pub columns: ColumnUnit,
    /// The program that printed it (`python`, `rust`, `node`, `go`).
    pub language: &'static str,
    /// The name of the thread that panicked (Rust only), or the test named by a header before it.
    pub thread: Option<String>,
}

/// Which files count as the project's own: not a library, and under the root when there is one,
/// once `..` is taken into account (a relative path is taken to be inside unless it climbs out of
/// the directory it is relative to). Links are the caller's to resolve: this reads no disk.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    pub root: Option<PathBuf>,
}

impl Workspace {
    pub fn contains(&self, path: &str) -> bool {
        if is_library(path) || !is_file(path) {
            return false;
        }
        let Some(normal) = normalised(Path::new(path)) else { return false };
        match &self.root {
            Some(root) if normal.is_absolute() => normal.starts_with(root),
            _ => true,
        }
    }
}

/// `path` with its `.` and `..` taken away; `None` when a `..` climbs above its start.
fn normalised(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    return None;
                }
                out.pop();
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Whether `path` is a library's, a toolchain's or the runtime's rather than the project's.
pub fn is_library(path: &str) -> bool {
    const PARTS: [&str; 14] = [
        "/node_modules/",
        "/site-packages/",
        "/dist-packages/",
        "/lib/python",
        "/rustc/",
        "/.cargo/registry/",
        "/.cargo/git/",
        "/.rustup/",
        "/go/pkg/mod/",
        "/usr/lib/go",
        "/usr/local/go/",
        "/library/std/src/",
        "/library/core/src/",
        "/lib/node_modules/",
    ];
    path.starts_with("node_modules/") || PARTS.iter().any(|p| path.contains(p))
}

/// Whether a frame's path names a file at all (`node:internal/…`, `<anonymous>`, `<frozen
/// importlib._bootstrap>` and `<string>` do not).
pub fn is_file(path: &str) -> bool {
    !(path.is_empty() || path.starts_with('<') || path.starts_with("node:") || path.starts_with("internal/"))
}

/// The problem a trace is, placed on its innermost frame inside the workspace (or, when none
/// is, its innermost frame that is a file), with its other frames inside the workspace as
/// related places (the frames of libraries and of the runtime are left out).
pub fn problem(
    trace: &Trace,
    workspace: &Workspace,
    source: &str,
    category: Category,
    prefix: Option<&str>,
) -> Option<Problem> {
    let files: Vec<&Frame> = trace.frames.iter().filter(|f| is_file(&f.path)).collect();
    let primary = files.iter().position(|f| workspace.contains(&f.path)).or(if files.is_empty() {
        None
    } else {
        Some(0)
    })?;
    let span = |frame: &Frame| Span {
        path: PathBuf::from(&frame.path),
        start: Point { line: frame.line, column: frame.column.unwrap_or(1) },
        end: None,
        columns: trace.columns,
    };
    let place = files[primary];
    let related = files
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            *i != primary && workspace.contains(&f.path) && (f.path != place.path || f.line != place.line)
        })
        .map(|(i, f)| Related {
            span: span(f),
            message: match (&f.function, i < primary) {
                (Some(function), true) => format!("raised in `{function}`"),
                (Some(function), false) => format!("called from `{function}`"),
                (None, true) => "raised here".to_owned(),
                (None, false) => "called from here".to_owned(),
            },
        })
        .collect();
    let message = match prefix {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}: {}", trace.message),
        _ => trace.message.clone(),
    };
    Some(Problem {
        span: span(place),
        severity: Severity::Error,
        code: None,
        message,
        source: source.to_owned(),
        category: Some(category),
        related,
        fixes: Vec::new(),
    })
}

fn number(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|n| *n > 0)
}

// ---------------------------------------------------------------------------------------------
// Python

static PY_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<function>.+))?$"#).unwrap()
});
static PY_EXCEPTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?:[A-Za-z_][\w.]*)(?::|$)").unwrap());

/// Reads Python tracebacks (`Traceback (most recent call last):`, `File "x.py", line 12, in f`
/// frames, the exception line and the lines that continue it).
#[derive(Debug, Default)]
pub struct PythonReader {
    state: PyState,
    frames: Vec<Frame>,
    message: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum PyState {
    #[default]
    Idle,
    Frames,
    Message,
}

impl PythonReader {
    /// Reads a line (without the prefix some tools indent tracebacks with) and pushes the trace
    /// it completes.
    pub fn line(&mut self, line: &str, out: &mut Vec<Trace>) {
        match self.state {
            PyState::Idle => {
                if line.trim_start().starts_with("Traceback (most recent call last):") {
                    self.state = PyState::Frames;
                    self.frames.clear();
                    self.message.clear();
                }
            }
            PyState::Frames => {
                if let Some(c) = line.starts_with(' ').then(|| PY_FRAME.captures(line)).flatten() {
                    if let Some(line) = number(&c["line"])
                        && self.frames.len() < TRACE_LINES
                    {
                        self.frames.push(Frame {
                            path: c["file"].to_owned(),
                            line,
                            column: None,
                            function: c.name("function").map(|f| f.as_str().to_owned()),
                        });
                    }
                } else if line.starts_with(' ') || line.is_empty() {
                    // Source lines, carets, `...`: part of the frame above.
                } else if PY_EXCEPTION.is_match(line) {
                    self.message.push(line.to_owned());
                    self.state = PyState::Message;
                } else {
                    self.reset();
                }
            }
            PyState::Message => {
                let continues = !line.is_empty()
                    && (line.starts_with(' ') || line.starts_with('\t'))
                    && !line.trim_start().starts_with("File \"");
                if continues && self.message.len() < TRACE_LINES {
                    self.message.push(line.to_owned());
                } else if !continues {
                    self.complete(out);
                    self.line(line, out);
                }
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Trace>) {
        if self.state == PyState::Message {
            self.complete(out);
        }
        self.reset();
    }

    fn complete(&mut self, out: &mut Vec<Trace>) {
        let mut frames = std::mem::take(&mut self.frames);
        frames.reverse();
        if !frames.is_empty() {
            out.push(Trace {
                message: self.message.join("\n").trim_end().to_owned(),
                frames,
                columns: ColumnUnit::Chars,
                language: "python",
                thread: None,
            });
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.state = PyState::Idle;
        self.frames.clear();
        self.message.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Node

static NODE_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+at (?:(?P<function>.+?) \((?P<loc1>.+):(?P<line1>\d+):(?P<col1>\d+)\)|(?P<loc2>.+):(?P<line2>\d+):(?P<col2>\d+))$")
        .unwrap()
});

/// A Node or browser-style stack frame (`    at f (/abs/file.ts:12:5)`, `    at /abs/file.js:3:1`,
/// `file:///` URLs), if `line` is one. Frames without a position (`at new Promise
/// (<anonymous>)`) are not.
pub fn node_frame(line: &str) -> Option<Frame> {
    if !line.trim_start().starts_with("at ") {
        return None;
    }
    let c = NODE_FRAME.captures(line)?;
    let (loc, line, col) = match c.name("loc1") {
        Some(loc) => (loc.as_str(), &c["line1"], &c["col1"]),
        None => (&c["loc2"], &c["line2"], &c["col2"]),
    };
    let loc = loc.strip_prefix("async ").unwrap_or(loc);
    Some(Frame {
        path: file_url_path(loc),
        line: number(line)?,
        column: number(col),
        function: c.name("function").map(|f| f.as_str().trim_start_matches("async ").to_owned()),
    })
}

/// The path of a `file://` URL (percent-decoded), or `location` unchanged.
pub fn file_url_path(location: &str) -> String {
    let Some(rest) = location.strip_prefix("file://") else { return location.to_owned() };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The message and frames of a stack trace given whole (`Error: msg\n    at …`): the message is
/// what comes before the first frame, without terminal colours.
pub fn node_stack(text: &str) -> (String, Vec<Frame>) {
    let mut message = Vec::new();
    let mut frames = Vec::new();
    for line in text.lines() {
        let line = strip_ansi(line);
        if let Some(frame) = node_frame(&line) {
            if frames.len() < TRACE_LINES {
                frames.push(frame);
            }
        } else if line.trim_start().starts_with("at ") {
        } else if frames.is_empty() && message.len() < TRACE_LINES {
            message.push(line.trim_end().to_owned());
        }
    }
    while message.last().is_some_and(|l: &String| l.trim().is_empty()) {
        message.pop();
    }
    while message.first().is_some_and(|l: &String| l.trim().is_empty()) {
        message.remove(0);
    }
    (message.join("\n"), frames)
}

/// Removes terminal colour sequences (`ESC [ … m`).
pub fn strip_ansi(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\u{1b}') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Reads Node's uncaught errors from a stream: the error line (`TypeError: …`), then its
/// `    at …` frames.
#[derive(Debug, Default)]
pub struct NodeReader {
    /// The last line that was not a frame (cut at [`LAST_LINE_BYTES`]): the message when
    /// frames follow. One buffer, since most lines are not followed by a stack.
    last: String,
    message: Option<String>,
    frames: Vec<Frame>,
    in_stack: bool,
}

/// The longest error line kept as a Node stack's message.
const LAST_LINE_BYTES: usize = 64 * 1024;

impl NodeReader {
    pub fn line(&mut self, line: &str, out: &mut Vec<Trace>) {
        let is_at = line.starts_with(' ') && line.trim_start().starts_with("at ");
        if is_at {
            if !self.in_stack {
                self.in_stack = true;
                // A Rust backtrace's `at` lines follow a numbered function line: not Node's.
                let last = std::mem::take(&mut self.last);
                self.message = (!last.is_empty() && !RUST_BACKTRACE_FUNCTION.is_match(&last)).then_some(last);
                self.frames.clear();
            }
            if let Some(frame) = node_frame(line)
                && self.frames.len() < TRACE_LINES
            {
                self.frames.push(frame);
            }
            return;
        }
        if self.in_stack {
            self.complete(out);
        }
        self.last.clear();
        let line = line.trim_end();
        if !line.trim_start().is_empty() {
            let mut cut = line.len().min(LAST_LINE_BYTES);
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            self.last.push_str(&line[..cut]);
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Trace>) {
        if self.in_stack {
            self.complete(out);
        }
        self.last.clear();
    }

    fn complete(&mut self, out: &mut Vec<Trace>) {
        self.in_stack = false;
        let frames = std::mem::take(&mut self.frames);
        let message = self.message.take().unwrap_or_default();
        if !frames.is_empty() && !message.is_empty() {
            out.push(Trace { message, frames, columns: ColumnUnit::Utf16, language: "node", thread: None });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Go

static GO_FRAME_LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\t(?P<file>\S.*?\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$").unwrap());

/// Reads Go panics: `panic: …` (or `fatal error: …`), then the first goroutine's frames
/// (a function line, then `\t/abs/file.go:12 +0x1d`).
#[derive(Debug, Default)]
pub struct GoReader {
    state: GoState,
    message: Vec<String>,
    function: Option<String>,
    frames: Vec<Frame>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum GoState {
    #[default]
    Idle,
    /// After `panic:`, before the goroutine header.
    Message,
    Frames,
}

impl GoReader {
    pub fn line(&mut self, line: &str, out: &mut Vec<Trace>) {
        match self.state {
            GoState::Idle => {
                if let Some(message) = panic_line(line) {
                    self.message = vec![message.to_owned()];
                    self.frames.clear();
                    self.function = None;
                    self.state = GoState::Message;
                }
            }
            GoState::Message => {
                let trimmed = line.trim();
                if trimmed.starts_with("goroutine ") && trimmed.ends_with(':') {
                    self.state = GoState::Frames;
                } else if trimmed.starts_with("panic: ") || trimmed.starts_with("[signal ") {
                    // `panic: … [recovered]` then the panic again, indented: keep the first.
                } else if !trimmed.is_empty() && self.message.len() < TRACE_LINES {
                    self.message.push(line.trim_end().to_owned());
                } else if self.message.len() >= TRACE_LINES {
                    self.state = GoState::Idle;
                }
            }
            GoState::Frames => {
                if let Some(c) = GO_FRAME_LOCATION.captures(line) {
                    if let Some(n) = number(&c["line"])
                        && self.frames.len() < TRACE_LINES
                    {
                        self.frames.push(Frame {
                            path: c["file"].to_owned(),
                            line: n,
                            column: None,
                            function: self.function.take(),
                        });
                    }
                } else if !line.is_empty() && !line.starts_with('\t') && !line.starts_with("exit status") {
                    self.function = Some(go_function(line));
                } else {
                    self.complete(out);
                }
            }
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Trace>) {
        if self.state == GoState::Frames {
            self.complete(out);
        }
        self.state = GoState::Idle;
    }

    fn complete(&mut self, out: &mut Vec<Trace>) {
        self.state = GoState::Idle;
        let frames = std::mem::take(&mut self.frames);
        if !frames.is_empty() {
            out.push(Trace {
                message: std::mem::take(&mut self.message).join("\n"),
                frames,
                columns: ColumnUnit::Bytes,
                language: "go",
                thread: None,
            });
        }
    }
}

/// The function a Go frame's first line names: `main.pick(...)`, `testing.(*T).Run`,
/// `created by main.main in goroutine 1`.
fn go_function(line: &str) -> String {
    let line = line.trim();
    let line = line.strip_prefix("created by ").unwrap_or(line);
    let line = line.split(" in goroutine ").next().unwrap_or(line);
    let name = match line.ends_with(')') {
        true => line.rfind('(').map_or(line, |at| &line[..at]),
        false => line,
    };
    name.to_owned()
}

/// The message of a Go `panic: …` or `fatal error: …` line.
fn panic_line(line: &str) -> Option<&str> {
    let line = line.trim_end();
    let message =
        if line.starts_with("panic: ") || line.starts_with("fatal error: ") { line } else { return None };
    Some(message.strip_suffix(" [recovered]").unwrap_or(message))
}

// ---------------------------------------------------------------------------------------------
// Rust

static RUST_PANIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*thread '(?P<thread>[^']*)'(?: \(\d+\))? panicked at (?P<rest>.*)$").unwrap()
});
static RUST_LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?P<file>[^\s'][^']*?):(?P<line>\d+):(?P<col>\d+):?$").unwrap());
static RUST_OLD_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<message>.*)', (?P<file>[^\s'][^']*?):(?P<line>\d+):(?P<col>\d+)$").unwrap()
});
static RUST_BACKTRACE_FUNCTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*\d+: (?P<function>.+)$").unwrap());
static RUST_BACKTRACE_AT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s+at (?P<file>.+?):(?P<line>\d+):(?P<col>\d+)$").unwrap());

/// Reads Rust panics: `thread 'main' panicked at src/main.rs:2:15:` and the message lines after
/// it (Rust 1.73 and later), or `thread 'main' panicked at 'message', src/main.rs:2:15` (before),
/// then the backtrace when `RUST_BACKTRACE` is set.
#[derive(Debug, Default)]
pub struct RustReader {
    state: RustState,
    thread: String,
    /// How far the panic's line is indented (nextest indents the output it shows).
    indent: usize,
    message: Vec<String>,
    location: Option<Frame>,
    function: Option<String>,
    frames: Vec<Frame>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum RustState {
    #[default]
    Idle,
    /// Old form: inside the quoted message, waiting for `', file:line:col`.
    Quoted,
    Message,
    Backtrace,
}

impl RustReader {
    pub fn line(&mut self, line: &str, out: &mut Vec<Trace>) {
        match self.state {
            RustState::Idle => self.start(line),
            RustState::Quoted => {
                if let Some(c) = RUST_OLD_END.captures(line) {
                    self.message.push(c["message"].to_owned());
                    self.location = location(&c["file"], &c["line"], &c["col"]);
                    self.state = RustState::Message;
                } else if self.message.len() < TRACE_LINES {
                    self.message.push(line.to_owned());
                } else {
                    self.state = RustState::Message;
                }
            }
            RustState::Message => {
                let trimmed = line.trim();
                if trimmed == "stack backtrace:" {
                    self.state = RustState::Backtrace;
                } else if trimmed.is_empty()
                    || trimmed.starts_with("note: ")
                    || trimmed.starts_with("---- ")
                    || line.contains(" panicked at ") && RUST_PANIC.is_match(line)
                {
                    self.complete(out);
                    self.line(line, out);
                } else if self.message.len() < TRACE_LINES {
                    let indent = line.len() - line.trim_start().len();
                    self.message.push(line[indent.min(self.indent)..].trim_end().to_owned());
                }
            }
            RustState::Backtrace => {
                if let Some(c) = RUST_BACKTRACE_AT.captures(line) {
                    if let Some(frame) = location(&c["file"], &c["line"], &c["col"])
                        && self.frames.len() < TRACE_LINES
                    {
                        self.frames.push(Frame { function: self.function.take(), ..frame });
                    }
                } else if let Some(c) = RUST_BACKTRACE_FUNCTION.captures(line) {
                    self.function = Some(c["function"].to_owned());
                } else {
                    self.complete(out);
                    self.line(line, out);
                }
            }
        }
    }

    fn start(&mut self, line: &str) {
        if !line.contains(" panicked at ") {
            return;
        }
        let Some(c) = RUST_PANIC.captures(line) else { return };
        self.thread = c["thread"].to_owned();
        self.indent = line.len() - line.trim_start().len();
        self.message.clear();
        self.frames.clear();
        self.function = None;
        let rest = &c["rest"];
        if let Some(quoted) = rest.strip_prefix('\'') {
            if let Some(end) = RUST_OLD_END.captures(quoted) {
                self.message.push(end["message"].to_owned());
                self.location = location(&end["file"], &end["line"], &end["col"]);
                self.state = RustState::Message;
            } else {
                self.message.push(quoted.to_owned());
                self.location = None;
                self.state = RustState::Quoted;
            }
        } else if let Some(l) = RUST_LOCATION.captures(rest.trim_end()) {
            self.location = location(&l["file"], &l["line"], &l["col"]);
            self.state = RustState::Message;
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Trace>) {
        if matches!(self.state, RustState::Message | RustState::Backtrace) {
            self.complete(out);
        }
        self.state = RustState::Idle;
    }

    fn complete(&mut self, out: &mut Vec<Trace>) {
        self.state = RustState::Idle;
        let mut frames = Vec::new();
        // The panic's location first: it is where a `#[track_caller]` panic was called from,
        // which the backtrace shows only further out.
        if let Some(location) = self.location.take() {
            frames.push(location);
        }
        let located = frames.first().cloned();
        for frame in std::mem::take(&mut self.frames) {
            if located.as_ref().is_some_and(|l| l.path == frame.path && l.line == frame.line) {
                if let (Some(first), Some(function)) = (frames.first_mut(), frame.function) {
                    first.function.get_or_insert(function);
                }
                continue;
            }
            frames.push(frame);
        }
        if frames.is_empty() {
            return;
        }
        let message = std::mem::take(&mut self.message).join("\n").trim().to_owned();
        out.push(Trace {
            message: if message.is_empty() { "panicked".to_owned() } else { message },
            frames,
            columns: ColumnUnit::Chars,
            language: "rust",
            thread: Some(std::mem::take(&mut self.thread)),
        });
    }
}

/// A frame at `file:line:col`, with `./` dropped from a relative file.
fn location(file: &str, line: &str, col: &str) -> Option<Frame> {
    Some(Frame {
        path: file.strip_prefix("./").unwrap_or(file).to_owned(),
        line: number(line)?,
        column: number(col),
        function: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<R: Default>(
        text: &str,
        line: impl Fn(&mut R, &str, &mut Vec<Trace>),
        finish: impl Fn(&mut R, &mut Vec<Trace>),
    ) -> Vec<Trace> {
        let mut reader = R::default();
        let mut out = Vec::new();
        for l in text.lines() {
            line(&mut reader, l, &mut out);
        }
        finish(&mut reader, &mut out);
        out
    }

    #[test]
    fn an_old_rust_panic_with_a_quoted_message_over_several_lines() {
        // The form Rust printed before 1.73.
        let text = "thread 'tests::adds' panicked at 'assertion failed: `(left == right)`\n  left: `0`,\n right: `4`', src/lib.rs:15:9\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let traces = read(text, RustReader::line, RustReader::finish);
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].message, "assertion failed: `(left == right)`\n  left: `0`,\n right: `4`");
        assert_eq!(
            traces[0].frames[0],
            Frame { path: "src/lib.rs".into(), line: 15, column: Some(9), function: None }
        );
        let one_line = "thread 'main' panicked at 'boom', src/main.rs:2:5\n";
        let traces = read(one_line, RustReader::line, RustReader::finish);
        assert_eq!((traces[0].message.as_str(), traces[0].frames[0].line), ("boom", 2));
    }

    #[test]
    fn file_urls_are_decoded() {
        assert_eq!(file_url_path("file:///tmp/my%20app/a.mjs"), "/tmp/my app/a.mjs");
        assert_eq!(file_url_path("/tmp/a.js"), "/tmp/a.js");
        assert_eq!(file_url_path("file:///tmp/%"), "/tmp/%");
    }

    #[test]
    fn library_and_pseudo_files_are_outside_the_workspace() {
        let ws = Workspace { root: Some(PathBuf::from("/w")) };
        assert!(ws.contains("/w/src/a.py"));
        assert!(ws.contains("src/a.py"));
        assert!(!ws.contains("/w/node_modules/x/index.js"));
        assert!(!ws.contains("/elsewhere/a.py"));
        assert!(!ws.contains("node:internal/modules/cjs/loader"));
        assert!(!ws.contains("<frozen importlib._bootstrap>"));
        assert!(!ws.contains("/rustc/59807616e1fa/library/core/src/result.rs"));
    }

    #[test]
    fn a_path_that_climbs_out_of_the_workspace_is_outside() {
        let ws = Workspace { root: Some(PathBuf::from("/w")) };
        assert!(!ws.contains("/w/../outside/a.py"));
        assert!(!ws.contains("/w/src/../../outside/a.py"));
        assert!(!ws.contains("../outside/a.py"));
        assert!(!ws.contains("src/../../a.py"));
        assert!(ws.contains("/w/src/../lib/a.py"));
        assert!(ws.contains("./src/../a.py"));
    }
}
