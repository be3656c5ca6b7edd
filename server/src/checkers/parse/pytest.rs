//! pytest. While it runs, its report of each failure is read from the output: a section opens
//! with the test's name between underscores and holds either pytest's own traceback (`long`,
//! `short`: `path.py:12: in f` or `path.py:12: AssertionError` location lines, `E   ` lines
//! with the exception) or a Python traceback (`--tb=native`). The problem is on the innermost
//! location outside installed libraries, with the exception as its message and the other
//! locations as related places. A test module that could not be collected (`ERROR collecting
//! …`) is an import, syntax or build error rather than a test failure.
//!
//! A module that does not parse is placed where Python says (the `File "…", line N` of the
//! `SyntaxError` in the `E` lines), not in the import machinery that raised it; a collection
//! error with no location in the project is placed on the module's first line.
//!
//! When pytest ends, the JUnit XML report (`--junitxml=PATH`) adds the failures the output did
//! not show (`--tb=no`, `-q`): a `<failure>` or `<error>`'s text is the same traceback. With
//! `--tb=no` that text has no location: the failure is placed on the test's `def` line, found by
//! its name in its module (the report's `classname`, relative to the directory pytest runs in),
//! or on the module's first line. A report older than the run (left by an earlier one) is not
//! read. A failure already read from the output (same file name and line) is not reported twice.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::SystemTime;

use regex::Regex;

use super::frames::{self, Frame, PythonReader, Trace, Workspace};
use super::{Parser, Stream};
use crate::checkers::{ColumnUnit, Problem};
use crate::classify::Category;

/// The largest JUnit report read.
pub const JUNIT_LIMIT: u64 = 64 * 1024 * 1024;

static HEADER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^_{3,} (?P<name>.+?) _{3,}$").unwrap());
/// Where Python says a module does not parse, in the `E` lines of a `SyntaxError`.
static SYNTAX_AT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)"#).unwrap());
static LOCATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<file>[^\s:][^:]*\.py):(?P<line>\d+):(?: (?:in (?P<function>\S+)|(?P<exception>\S.*))?)?\s*$",
    )
    .unwrap()
});

pub struct PytestParser {
    junit_xml: PathBuf,
    /// Where pytest runs: the JUnit report's module names are relative to it.
    cwd: PathBuf,
    started: SystemTime,
    section: Option<Section>,
    python: PythonReader,
    /// Where reported failures were: (file name, line).
    seen: HashSet<(String, u32)>,
    /// The `def` lines of the test modules read, by path relative to `cwd`.
    modules: HashMap<String, HashMap<String, u32>>,
}

/// A location line of pytest's traceback, the `E` lines before it and the exception it names.
type Located = (Frame, Vec<String>, Option<String>);

#[derive(Default)]
struct Section {
    name: String,
    /// Locations of pytest's own traceback, outermost first, each with its `E` lines.
    locations: Vec<Located>,
    errors: Vec<String>,
    done: bool,
}

impl PytestParser {
    pub fn new(junit_xml: PathBuf, cwd: &Path) -> Self {
        Self {
            junit_xml,
            cwd: cwd.to_path_buf(),
            started: SystemTime::now(),
            section: None,
            python: PythonReader::default(),
            seen: HashSet::new(),
            modules: HashMap::new(),
        }
    }

    fn close_section(&mut self, out: &mut Vec<Problem>) {
        let mut traces = Vec::new();
        self.python.finish(&mut traces);
        let Some(section) = self.section.take() else { return };
        if section.done {
            return;
        }
        self.emit_traces(&section.name, traces, out);
        if let Some(trace) = section_trace(section.locations, section.errors) {
            self.emit_traces(&section.name, vec![trace], out);
        }
    }

    fn emit_traces(&mut self, name: &str, traces: Vec<Trace>, out: &mut Vec<Problem>) {
        for mut trace in traces {
            let category = category(name, &trace.message);
            // A module that could not be imported, with no frame in the project: on the module.
            if let Some(module) = name.strip_prefix("ERROR collecting ")
                && !trace.frames.iter().any(|f| Workspace::default().contains(&f.path))
                && module.ends_with(".py")
            {
                trace
                    .frames
                    .insert(0, Frame { path: module.to_owned(), line: 1, column: None, function: None });
            }
            let Some(problem) =
                frames::problem(&trace, &Workspace::default(), "pytest", category, Some(name))
            else {
                continue;
            };
            if self.seen.insert(key(&problem)) {
                out.push(problem);
            }
        }
    }
}

/// A failed test is a test failure; a test module that could not be collected failed to import
/// or to parse.
fn category(section: &str, message: &str) -> Category {
    if !section.starts_with("ERROR collecting") {
        return Category::Test;
    }
    // The exception opens the message, or ends it when Python's own report of a module that
    // does not parse (`File "…", line N`, the line, a caret) comes first.
    let last = message.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let named = |line: &str| {
        let exception = line.split(':').next().unwrap_or("");
        match exception.rsplit('.').next().unwrap_or("") {
            "ModuleNotFoundError" | "ImportError" => Some(Category::Import),
            "SyntaxError" | "IndentationError" | "TabError" => Some(Category::Syntax),
            _ => None,
        }
    };
    named(message).or_else(|| named(last)).unwrap_or(Category::Build)
}

fn key(problem: &Problem) -> (String, u32) {
    let name = problem.span.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (name, problem.span.start.line)
}

/// The trace of pytest's own traceback: its locations innermost first, the last location's `E`
/// lines (or its exception's name) as the message.
fn section_trace(mut locations: Vec<Located>, trailing: Vec<String>) -> Option<Trace> {
    let (_, errors, exception) = locations.last()?.clone();
    // `E` lines after the last location (a collection error's short traceback) are its message.
    let errors = dedent(if errors.is_empty() { trailing } else { errors });
    let syntax = syntax_location(&errors);
    let message =
        if errors.is_empty() { exception.unwrap_or_else(|| "failed".to_owned()) } else { errors.join("\n") };
    locations.reverse();
    let frames = syntax.into_iter().chain(locations.into_iter().map(|(frame, _, _)| frame)).collect();
    Some(Trace { message, frames, columns: ColumnUnit::Chars, language: "python", thread: None })
}

/// Where a `SyntaxError` (or `IndentationError`, `TabError`) shown in `E` lines says the code
/// does not parse.
fn syntax_location(errors: &[String]) -> Option<Frame> {
    let exception = errors.iter().rev().find(|l| !l.trim().is_empty())?;
    if !["SyntaxError", "IndentationError", "TabError"].iter().any(|e| exception.starts_with(e)) {
        return None;
    }
    errors.iter().rev().find_map(|line| {
        let c = SYNTAX_AT.captures(line)?;
        let line = c["line"].parse::<u32>().ok().filter(|n| *n > 0)?;
        Some(Frame { path: c["file"].to_owned(), line, column: None, function: None })
    })
}

/// The largest test module read to find a test's `def` line.
const MODULE_LIMIT: u64 = 8 * 1024 * 1024;

/// Where the test `name` (`test_x`, `test_x[param]`) of JUnit `classname`
/// (`tests.test_a` or `tests.test_a.TestGroup`) is defined, under `cwd`: its module's path
/// (relative as pytest names it) and the line of its `def`, or 1 when the module is found but
/// not the `def`.
fn test_place(
    cwd: &Path,
    modules: &mut HashMap<String, HashMap<String, u32>>,
    classname: &str,
    name: &str,
) -> Option<Frame> {
    let parts: Vec<&str> = classname.split('.').filter(|p| !p.is_empty()).collect();
    // A dotted name never leaves the directory; one that seems to is not looked up.
    if parts.iter().any(|p| p.contains(['/', '\\'])) {
        return None;
    }
    let (module, classes) = (1..=parts.len()).rev().find_map(|k| {
        let relative = format!("{}.py", parts[..k].join("/"));
        cwd.join(&relative).is_file().then(|| (relative, &parts[k..]))
    })?;
    let function = name.split('[').next().unwrap_or(name);
    // A module is read once for all its failures.
    let defs = modules.entry(module.clone()).or_insert_with(|| {
        def_lines(&crate::files::read_source(&cwd.join(&module), MODULE_LIMIT).unwrap_or_default())
    });
    let dotted = classes.iter().copied().chain([function]).collect::<Vec<_>>().join(".");
    let line = defs.get(&dotted).copied().unwrap_or(1);
    Some(Frame { path: module, line, column: None, function: Some(function.to_owned()) })
}

/// The 1-based line of each `def` (or `async def`) of `text`, by its dotted name inside its
/// classes (`test_x`, `TestGroup.test_x`), the first of each name; read in one pass, so that
/// the failures of a large module cost one reading of it.
fn def_lines(text: &str) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    let mut classes: Vec<(usize, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        let indent = line.len() - code.len();
        while classes.last().is_some_and(|(at, _)| *at >= indent) {
            classes.pop();
        }
        if let Some(class) = name_after(code, "class") {
            classes.push((indent, class));
            continue;
        }
        let code = code.strip_prefix("async").map_or(code, str::trim_start);
        let Some(function) = name_after(code, "def") else { continue };
        let name: Vec<&str> = classes.iter().map(|(_, c)| *c).chain([function]).collect();
        if let Ok(n) = u32::try_from(i + 1) {
            lines.entry(name.join(".")).or_insert(n);
        }
    }
    lines
}

/// The name `keyword` (`class`, `def`) opening `code` defines.
fn name_after<'a>(code: &'a str, keyword: &str) -> Option<&'a str> {
    let rest = code.strip_prefix(keyword)?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// The lines without the indentation they all share.
fn dedent(lines: Vec<String>) -> Vec<String> {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines.into_iter().map(|l| l.get(indent..).unwrap_or("").to_owned()).collect()
}

/// Reads pytest's traceback lines into `locations`: `E` lines wait for the location line that
/// follows them.
fn read_traceback_line(line: &str, locations: &mut Vec<Located>, errors: &mut Vec<String>) {
    if let Some(error) = line.strip_prefix('E').filter(|e| e.is_empty() || e.starts_with(' ')) {
        if errors.len() < 200 {
            errors.push(error.trim_end().to_owned());
        }
    } else if let Some(c) = line.contains(".py:").then(|| LOCATION.captures(line)).flatten() {
        let Some(n) = c["line"].parse::<u32>().ok().filter(|n| *n > 0) else { return };
        let frame = Frame {
            path: c["file"].to_owned(),
            line: n,
            column: None,
            function: c.name("function").map(|m| m.as_str().to_owned()),
        };
        // A long traceback's location line ends with the exception's name, which stands in for
        // a message when there is no `E` line.
        let exception = c.name("exception").map(|m| m.as_str().trim().to_owned());
        if locations.len() < 200 {
            locations.push((frame, std::mem::take(errors), exception));
        }
    }
}

impl Parser for PytestParser {
    fn line(&mut self, _: Stream, line: &str, out: &mut Vec<Problem>) {
        if let Some(c) = line.starts_with("___").then(|| HEADER.captures(line)).flatten() {
            self.close_section(out);
            self.section = Some(Section { name: c["name"].to_owned(), ..Section::default() });
            return;
        }
        if line.starts_with("====") || line.starts_with("----") {
            // The summary, or captured output after the traceback.
            if line.starts_with("====") {
                self.close_section(out);
            } else if let Some(section) = &mut self.section {
                let mut traces = Vec::new();
                self.python.finish(&mut traces);
                if !traces.is_empty() || !section.locations.is_empty() {
                    let name = section.name.clone();
                    let locations = std::mem::take(&mut section.locations);
                    let errors = std::mem::take(&mut section.errors);
                    section.done = true;
                    self.emit_traces(&name, traces, out);
                    if let Some(trace) = section_trace(locations, errors) {
                        self.emit_traces(&name, vec![trace], out);
                    }
                }
            }
            return;
        }
        let Some(section) = &mut self.section else { return };
        if section.done {
            return;
        }
        let mut traces = Vec::new();
        self.python.line(line, &mut traces);
        if !traces.is_empty() {
            section.done = true;
            let name = section.name.clone();
            self.emit_traces(&name, traces, out);
            return;
        }
        read_traceback_line(line, &mut section.locations, &mut section.errors);
    }

    fn finish(&mut self, out: &mut Vec<Problem>) {
        self.close_section(out);
        let fresh = std::fs::metadata(&self.junit_xml)
            .ok()
            .filter(|m| m.len() <= JUNIT_LIMIT)
            .and_then(|m| m.modified().ok())
            // File systems keep coarse times: a report written as the run started may look a
            // little older.
            .is_some_and(|modified| modified + std::time::Duration::from_secs(1) >= self.started);
        if !fresh {
            return;
        }
        let Ok(xml) = std::fs::read_to_string(&self.junit_xml) else { return };
        for failure in junit_failures(&xml) {
            let mut locations = Vec::new();
            let mut errors = Vec::new();
            let mut traces = Vec::new();
            let mut python = PythonReader::default();
            for line in failure.text.lines() {
                python.line(line, &mut traces);
                read_traceback_line(line, &mut locations, &mut errors);
            }
            python.finish(&mut traces);
            let collecting =
                failure.element == "error" && failure.message.as_deref() == Some("collection failure");
            let errors_shown = dedent(errors.clone());
            let mut trace = traces.pop().or_else(|| section_trace(locations, errors)).or_else(|| {
                // No location at all (`--tb=no`): the test's `def` line.
                let frame = test_place(&self.cwd, &mut self.modules, &failure.classname, &failure.test)?;
                let message = failure
                    .message
                    .clone()
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| errors_shown.join("\n"));
                let message = if message.trim().is_empty() { "failed".to_owned() } else { message };
                Some(Trace {
                    message,
                    frames: vec![frame],
                    columns: ColumnUnit::Chars,
                    language: "python",
                    thread: None,
                })
            });
            if let Some(trace) = &mut trace
                && let Some(message) = failure.message.filter(|m| !m.trim().is_empty())
                && (trace.message.is_empty() || trace.message == "failed")
            {
                trace.message = message;
            }
            let Some(trace) = trace else { continue };
            if collecting {
                // pytest names the module it could not collect as a dotted name.
                let module = format!("ERROR collecting {}.py", failure.test.replace('.', "/"));
                self.emit_traces(&module, vec![trace], out);
            } else {
                self.emit_traces(&failure.name, vec![trace], out);
            }
        }
    }
}

/// A failed test case of a JUnit report.
#[derive(Debug, PartialEq, Eq)]
pub struct JunitFailure {
    /// `Class.test` or `test`, as pytest names it in its own report.
    pub name: String,
    /// The test case's `classname`: its module as a dotted name, then its classes.
    pub classname: String,
    /// The test case's `name`: the test function, with its parameters (`test_x[1]`).
    pub test: String,
    /// `failure` or `error`.
    pub element: &'static str,
    pub message: Option<String>,
    pub text: String,
}

/// The failed and errored test cases of a JUnit XML report. Only what pytest writes is read:
/// `<testcase>` elements with a `<failure>` or `<error>` child.
pub fn junit_failures(xml: &str) -> Vec<JunitFailure> {
    let mut failures = Vec::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<testcase") {
        rest = &rest[at..];
        let Some(tag_end) = rest.find('>') else { break };
        let tag = &rest[..tag_end];
        let self_closing = tag.ends_with('/');
        let body_end = if self_closing { tag_end } else { rest.find("</testcase>").unwrap_or(rest.len()) };
        let body = &rest[tag_end.min(body_end)..body_end];
        let class = attribute(tag, "classname").unwrap_or_default();
        let name = attribute(tag, "name").unwrap_or_default();
        let class_name =
            class.rsplit('.').next().filter(|c| c.chars().next().is_some_and(char::is_uppercase));
        let test = match class_name {
            Some(class) => format!("{class}.{name}"),
            None => name.clone(),
        };
        for element in ["<failure", "<error"] {
            let Some(start) = body.find(element) else { continue };
            let element_body = &body[start..];
            let Some(open_end) = element_body.find('>') else { continue };
            let open = &element_body[..open_end];
            let text = if open.ends_with('/') {
                String::new()
            } else {
                let close = if element == "<failure" { "</failure>" } else { "</error>" };
                let inner = &element_body[open_end + 1..];
                unescape(&inner[..inner.find(close).unwrap_or(inner.len())])
            };
            failures.push(JunitFailure {
                name: test.clone(),
                classname: class.clone(),
                test: name.clone(),
                element: if element == "<failure" { "failure" } else { "error" },
                message: attribute(open, "message"),
                text,
            });
            break;
        }
        rest = &rest[body_end.max(1)..];
    }
    failures
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = tag[from..].find(name) {
        let start = from + at;
        let before = tag[..start].chars().last();
        let after = &tag[start + name.len()..];
        if before.is_some_and(char::is_whitespace) && after.starts_with("=\"") {
            let value = &after[2..];
            return Some(unescape(&value[..value.find('"').unwrap_or(value.len())]));
        }
        from = start + name.len();
    }
    None
}

/// Replaces XML's character references and the five named entities.
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_is_found_by_its_name_inside_its_classes() {
        let text = "def test_xy():\n    pass\n\nclass TestA:\n    def test_x(self):\n        pass\n\nclass TestB:\n    class Inner:\n        async  def test_x (self):\n            pass\n\ndef test_x():\n    pass\n";
        let lines = def_lines(text);
        assert_eq!(lines.get("test_xy"), Some(&1));
        assert_eq!(lines.get("TestA.test_x"), Some(&5));
        assert_eq!(lines.get("TestB.Inner.test_x"), Some(&10));
        assert_eq!(lines.get("test_x"), Some(&13), "the module's own, not a method");
        assert_eq!(lines.get("TestC.test_x"), None);
    }

    #[test]
    fn a_dotted_name_that_climbs_is_not_looked_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.py"), "def test_x():\n    pass\n").unwrap();
        let inner = dir.path().join("ws");
        std::fs::create_dir(&inner).unwrap();
        let mut modules = HashMap::new();
        assert_eq!(test_place(&inner, &mut modules, "../secret", "test_x"), None);
        assert_eq!(test_place(&inner, &mut modules, "..secret", "test_x"), None);
        let place = test_place(dir.path(), &mut modules, "secret", "test_x[1-2]").unwrap();
        assert_eq!((place.path.as_str(), place.line), ("secret.py", 1));
    }

    #[test]
    fn xml_text_is_unescaped() {
        assert_eq!(unescape("a &lt;b&gt; &amp;&#10;&#x41; &bogus; &"), "a <b> &\nA &bogus; &");
    }
}
