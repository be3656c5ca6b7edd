//! `go test -json`: events, one JSON object per line. A test's output is kept until the test
//! ends; when it fails, each `file_test.go:12: message` line it printed (`t.Error`, `t.Fatal`,
//! with the more indented lines that continue it) is a problem on that line, and a panic is a
//! problem on its innermost frame outside the Go toolchain and the module cache. Build errors
//! (`build-output` events, or plain lines on stderr before Go 1.24) are read as `go build`'s.
//!
//! `t.Error` names its file without a directory. Such a file is placed in its package's
//! directory: the event's package (`example.com/m/pkg`) below the module path of the `go.mod`
//! found at the checker's directory or above it gives `pkg/`. A package outside that module is
//! placed by the absolute paths of its files elsewhere in its output (a panic's frames), else
//! left relative to the checker's directory. `go test -fullpath` (Go 1.21 and later) names every
//! file absolutely.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::frames::{self, GoReader, Trace, Workspace};
use super::go::go_line;
use super::{Parser, Stream};
use crate::checkers::{ColumnUnit, Point, Problem, Span};
use crate::classify::{Category, Severity};

/// The most output lines kept for one running test; more are read and dropped.
const TEST_LINES: usize = 10_000;

static LOG_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<indent>\s+)(?P<file>[^\s:]+\.go):(?P<line>\d+): (?P<message>.*)$").unwrap()
});

pub struct GoTestParser {
    /// Output of running tests (and of packages, under the empty test name).
    output: HashMap<(String, String), Output>,
    /// A package's directory, learned from absolute paths of its files.
    dirs: HashMap<String, String>,
    /// Where `go test` runs.
    cwd: PathBuf,
    /// The module path and directory of the `go.mod` at or above `cwd`, read when first needed.
    module: Option<Option<(String, PathBuf)>>,
}

impl GoTestParser {
    /// A parser for `go test -json` run in `cwd`.
    pub fn new(cwd: &Path) -> Self {
        Self { output: HashMap::new(), dirs: HashMap::new(), cwd: cwd.to_path_buf(), module: None }
    }

    /// The directory of `package` inside the module, when it is in it.
    fn package_dir(&mut self, package: &str) -> Option<PathBuf> {
        let cwd = &self.cwd;
        let (module, dir) = self.module.get_or_insert_with(|| module_at(cwd)).as_ref()?;
        if package == module {
            return Some(dir.clone());
        }
        let below = package.strip_prefix(module.as_str())?.strip_prefix('/')?;
        // An import path never climbs; one that seems to is not placed by it.
        if below.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return None;
        }
        Some(dir.join(below))
    }
}

/// The largest `go.mod` read.
const GO_MOD_LIMIT: u64 = 1 << 20;

/// The module path and directory of the `go.mod` in `dir` or the nearest directory above it.
fn module_at(dir: &Path) -> Option<(String, PathBuf)> {
    if !dir.is_absolute() {
        return None;
    }
    let found = dir.ancestors().find(|d| d.join("go.mod").is_file())?;
    let text = crate::files::read_source(&found.join("go.mod"), GO_MOD_LIMIT).ok()?;
    let module = text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("module")?;
        let path = rest.split("//").next()?.trim().trim_matches(|c| c == '"' || c == '`');
        (rest.starts_with([' ', '\t']) && !path.is_empty()).then(|| path.to_owned())
    })?;
    Some((module, found.to_path_buf()))
}

#[derive(Default)]
struct Output {
    lines: Vec<String>,
    /// A line printed without its end yet.
    partial: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    action: String,
    package: Option<String>,
    test: Option<String>,
    output: Option<String>,
    import_path: Option<String>,
}

impl Parser for GoTestParser {
    fn line(&mut self, _: Stream, line: &str, out: &mut Vec<Problem>) {
        if !line.starts_with('{') {
            out.extend(go_line(line));
            return;
        }
        let Ok(event) = serde_json::from_str::<Event>(line) else { return };
        let package = event.package.clone().or(event.import_path.clone()).unwrap_or_default();
        let test = event.test.clone().unwrap_or_default();
        match event.action.as_str() {
            "build-output" => {
                for line in event.output.as_deref().unwrap_or("").lines() {
                    out.extend(go_line(line));
                }
            }
            "output" => {
                let Some(text) = event.output else { return };
                let output = self.output.entry((package, test)).or_default();
                output.partial.push_str(&text);
                while let Some(at) = output.partial.find('\n') {
                    let line: String = output.partial.drain(..=at).collect();
                    if output.lines.len() < TEST_LINES {
                        output.lines.push(line.trim_end_matches(['\n', '\r']).to_owned());
                    }
                }
            }
            "fail" => {
                let Some(mut output) = self.output.remove(&(package.clone(), test.clone())) else { return };
                if !output.partial.is_empty() {
                    output.lines.push(std::mem::take(&mut output.partial));
                }
                self.failed(&package, &test, &output.lines, out);
            }
            "pass" | "skip" => {
                self.output.remove(&(package, test));
            }
            _ => {}
        }
    }

    fn finish(&mut self, _: &mut Vec<Problem>) {}
}

impl GoTestParser {
    fn failed(&mut self, package: &str, test: &str, lines: &[String], out: &mut Vec<Problem>) {
        let mut traces: Vec<Trace> = Vec::new();
        let mut reader = GoReader::default();
        for line in lines {
            reader.line(line, &mut traces);
        }
        reader.finish(&mut traces);
        for trace in &traces {
            for frame in &trace.frames {
                if frame.path.starts_with('/')
                    && !frames::is_library(&frame.path)
                    && let Some((dir, _)) = frame.path.rsplit_once('/')
                {
                    self.dirs.entry(package.to_owned()).or_insert_with(|| dir.to_owned());
                }
            }
        }
        let prefix = (!test.is_empty()).then_some(test);
        for trace in &traces {
            out.extend(frames::problem(trace, &Workspace::default(), "go test", Category::Test, prefix));
        }
        let mut pending: Option<(usize, Problem)> = None;
        for line in lines {
            if let Some((indent, problem)) = &mut pending {
                let deeper = line.len() - line.trim_start().len() > *indent && !line.trim().is_empty();
                if deeper && !LOG_LINE.is_match(line) {
                    problem.message.push('\n');
                    problem.message.push_str(line.trim());
                    continue;
                }
                out.extend(pending.take().map(|(_, p)| p));
            }
            let Some(c) = LOG_LINE.captures(line) else { continue };
            let Some(line_number) = c["line"].parse::<u32>().ok().filter(|n| *n > 0) else { continue };
            let file = &c["file"];
            let path = if file.contains('/') {
                PathBuf::from(file)
            } else if let Some(dir) = self.package_dir(package) {
                dir.join(file)
            } else if let Some(dir) = self.dirs.get(package) {
                Path::new(dir).join(file)
            } else {
                PathBuf::from(file)
            };
            let message = match prefix {
                Some(test) => format!("{test}: {}", &c["message"]),
                None => c["message"].to_owned(),
            };
            pending = Some((
                c["indent"].len(),
                Problem {
                    span: Span {
                        path,
                        start: Point { line: line_number, column: 1 },
                        end: None,
                        columns: ColumnUnit::Bytes,
                    },
                    severity: Severity::Error,
                    code: None,
                    message,
                    source: "go test".to_owned(),
                    category: Some(Category::Test),
                    related: Vec::new(),
                    fixes: Vec::new(),
                },
            ));
        }
        out.extend(pending.map(|(_, p)| p));
    }
}
