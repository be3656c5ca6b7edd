//! Parsing a `.acas/workflows/*.yaml` file into a [`Workflow`], keeping where everything is.
//!
//! [`parse`] never panics and never stops at the first problem: it returns the workflow whenever
//! the file is a YAML mapping (fields with problems take their defaults) together with every
//! [`Problem`] it found, each with a 1-based line and column. It checks the shape of the file
//! (YAML syntax, unknown keys, wrong types, missing keys, bad enum values and durations,
//! duplicate step ids, steps with both or neither of `uses` and `run`); what needs the whole
//! workflow (references, cycles, cron expressions, globs, action parameters) is `validate.rs`.
//!
//! YAML is read as YAML 1.2 (so `on` is a plain key, not `true`). Columns count characters, not
//! bytes or UTF-16 units; front ends convert them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::definition::{
    Backoff, Concurrency, DiagnosticTrigger, EscalationOutcome, EscalationTrigger, FileChangeTrigger,
    FileEventKind, InputSpec, InputType, RetryPolicy, ScheduleTrigger, SkippedNeeds, Step, StepKind,
    Triggers, WebhookScheme, WebhookTrigger, Workflow,
};

/// How bad a problem is. Only errors make a workflow invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A 1-based line and column; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A half-open range of positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    /// Whether `at` lies inside, the end included (a cursor right after a value is on it).
    pub fn contains(&self, at: Pos) -> bool {
        self.start <= at && at <= self.end
    }
}

/// Something wrong with a workflow file, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub severity: Severity,
    /// What is wrong and what to do, without a trailing period.
    pub message: String,
}

impl Problem {
    pub fn new(file: &Path, span: Span, severity: Severity, message: impl Into<String>) -> Problem {
        let start = if span.start.line == 0 { Pos { line: 1, column: 1 } } else { span.start };
        let end = if span.end < start { start } else { span.end };
        Problem {
            file: file.to_path_buf(),
            line: start.line,
            column: start.column.max(1),
            end_line: end.line,
            end_column: end.column.max(1),
            severity,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Parses one workflow file's text; `file` is its absolute path, recorded in the workflow and in
/// every problem.
pub fn parse(file: &Path, source: &str) -> (Option<Workflow>, Vec<Problem>) {
    let parsed = parse_mapped(file, source);
    (parsed.workflow, parsed.problems)
}

/// What [`parse`] found, with where every value is, for `validate.rs` and hovers.
pub(super) struct Parsed {
    pub workflow: Option<Workflow>,
    pub problems: Vec<Problem>,
    pub map: SourceMap,
}

/// Where each node of the file is, by its dotted path (`steps.2.with.path`, `on.schedule.0.cron`).
#[derive(Debug, Default)]
pub(super) struct SourceMap {
    nodes: HashMap<String, Located>,
    /// Step id -> index in the `steps` list.
    steps: HashMap<String, usize>,
    /// Every string scalar, with its path, for hovers.
    strings: Vec<(String, Span, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Located {
    key: Option<Span>,
    value: Span,
}

impl SourceMap {
    /// The value's span at `path`, or that of its nearest ancestor that is known.
    pub fn value(&self, path: &str) -> Option<Span> {
        self.nearest(path).map(|l| l.value)
    }

    /// The key's span at `path` (the value's for list items), or its nearest known ancestor's.
    pub fn key(&self, path: &str) -> Option<Span> {
        self.nearest(path).map(|l| l.key.unwrap_or(l.value))
    }

    /// Whether exactly `path` exists.
    pub fn has(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// The index of step `id` in the `steps` list.
    pub fn step(&self, id: &str) -> Option<usize> {
        self.steps.get(id).copied()
    }

    /// Every string scalar: its path, span and text.
    pub fn strings(&self) -> impl Iterator<Item = (&str, Span, &str)> {
        self.strings.iter().map(|(p, s, t)| (p.as_str(), *s, t.as_str()))
    }

    fn nearest(&self, path: &str) -> Option<&Located> {
        let mut path = path;
        loop {
            if let Some(found) = self.nodes.get(path) {
                return Some(found);
            }
            path = &path[..path.rfind('.')?];
        }
    }

    fn index(&mut self, node: &Node, path: String, key: Option<Span>) {
        if let Value::Str(text) = &node.value {
            self.strings.push((path.clone(), node.span, text.clone()));
        }
        match &node.value {
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.index(item, join(&path, &i.to_string()), None);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    self.index(v, join(&path, &k.text), Some(k.span));
                }
            }
            _ => {}
        }
        self.nodes.insert(path, Located { key, value: node.span });
    }
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() { segment.to_owned() } else { format!("{path}.{segment}") }
}

pub(super) fn parse_mapped(file: &Path, source: &str) -> Parsed {
    let mut reader = Reader { file, problems: Vec::new() };
    let root = load(source, &mut reader);
    let mut map = SourceMap::default();
    let workflow = root.as_ref().and_then(|root| {
        map.index(root, String::new(), None);
        reader.workflow(root, file, source, &mut map)
    });
    let mut problems = reader.problems;
    sort(&mut problems);
    Parsed { workflow, problems, map }
}

/// Sorts problems by file and position and drops exact repeats.
pub(super) fn sort(problems: &mut Vec<Problem>) {
    problems.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.severity, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.severity, &b.message))
    });
    problems.dedup();
}

// ---------------------------------------------------------------------------------------------
// YAML to a tree of located nodes

#[derive(Debug, Clone)]
struct Node {
    value: Value,
    span: Span,
    /// A scalar's text as written (after unquoting); empty for collections.
    text: String,
}

#[derive(Debug, Clone)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn is_collection(&self) -> bool {
        matches!(self.value, Value::Seq(_) | Value::Map(_))
    }

    fn size(&self) -> usize {
        match &self.value {
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|(k, v)| k.size() + v.size()).sum::<usize>(),
            _ => 1,
        }
    }

    /// What a value is, for "must be X, not Y" messages.
    fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing".to_owned(),
            Value::Bool(b) => format!("`{b}`"),
            Value::Int(_) | Value::Float(_) => format!("`{}`", self.text),
            Value::Str(s) => format!("`{}`", ellipsis(s)),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }
}

fn ellipsis(s: &str) -> String {
    let first = s.lines().next().unwrap_or("");
    if first.chars().count() > 40 || first.len() < s.len() {
        format!("{}…", first.chars().take(40).collect::<String>())
    } else {
        first.to_owned()
    }
}

/// The largest workflow file read, in bytes (8 MiB).
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// The most YAML nodes (scalars, lists and mappings, aliases expanded) a file may hold.
pub const MAX_NODES: usize = 1_000_000;
/// The most nodes aliases may expand to, in total.
pub const MAX_ALIAS_NODES: usize = 100_000;
/// The most steps a workflow may have.
pub const MAX_STEPS: usize = 20_000;

enum Frame {
    Seq { start: Pos, anchor: usize, items: Vec<Node> },
    Map { start: Pos, anchor: usize, entries: Vec<(Node, Node)>, key: Option<Node>, keys: HashSet<String> },
}

fn pos(marker: &saphyr_parser::Marker) -> Pos {
    Pos { line: marker.line() as u32, column: marker.col() as u32 + 1 }
}

fn span_of(span: &saphyr_parser::Span) -> Span {
    Span { start: pos(&span.start), end: pos(&span.end) }
}

/// Reads the first YAML document into a tree; syntax errors become problems.
fn load(source: &str, reader: &mut Reader) -> Option<Node> {
    if source.len() > MAX_FILE_BYTES {
        reader.error(
            Span { start: Pos { line: 1, column: 1 }, end: Pos { line: 1, column: 2 } },
            format!(
                "this file has {} bytes, more than the {MAX_FILE_BYTES} bytes a workflow file may have; \
                 split it into several workflows",
                source.len()
            ),
        );
        return None;
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut nodes = 0usize;
    let mut alias_nodes = 0usize;
    for item in Parser::new_from_str(source) {
        let (event, span) = match item {
            Ok(found) => found,
            Err(error) => {
                let at = pos(error.marker());
                let message =
                    format!("YAML syntax error: {}; fix the YAML first", error.info().trim_end_matches('.'));
                reader.error(Span { start: at, end: Pos { line: at.line, column: at.column + 1 } }, message);
                return None;
            }
        };
        let span = span_of(&span);
        let complete = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    reader.error(
                        span,
                        "a workflow file holds one YAML document; move what follows `---` to a file of its own",
                    );
                    break;
                }
                continue;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    reader.error(span, "this alias names no anchor; define it with `&name` first");
                    continue;
                };
                let size = target.size();
                nodes += size;
                alias_nodes += size;
                if alias_nodes > MAX_ALIAS_NODES {
                    reader.error(
                        span,
                        format!(
                            "the aliases in this file expand to more than {MAX_ALIAS_NODES} YAML nodes; \
                             use fewer aliases"
                        ),
                    );
                    return None;
                }
                let mut node = target.clone();
                node.span = span;
                (node, 0)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced_string {
                    resolve_plain(&text)
                } else {
                    Value::Str(text.to_string())
                };
                nodes += 1;
                (Node { value, span, text: text.into_owned() }, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq { start: span.start, anchor, items: Vec::new() });
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    start: span.start,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    keys: HashSet::new(),
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = stack.pop() else { continue };
                nodes += 1;
                match frame {
                    Frame::Seq { start, anchor, items } => {
                        let end = items.last().map_or(span.end, |n| n.span.end.max(span.end.min(n.span.end)));
                        (
                            Node { value: Value::Seq(items), span: Span { start, end }, text: String::new() },
                            anchor,
                        )
                    }
                    Frame::Map { start, anchor, entries, .. } => {
                        let end = entries.last().map_or(span.end, |(_, v)| v.span.end);
                        (
                            Node {
                                value: Value::Map(entries),
                                span: Span { start, end },
                                text: String::new(),
                            },
                            anchor,
                        )
                    }
                }
            }
        };
        if nodes > MAX_NODES {
            reader.error(
                span,
                format!(
                    "this file has more than {MAX_NODES} YAML nodes (values, lists and mappings); \
                     split it into several workflows"
                ),
            );
            return None;
        }
        let (node, anchor) = complete;
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => {
                if root.is_none() {
                    root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, keys, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if k.is_collection() {
                        reader.error(k.span, "mapping keys must be plain names, not lists or mappings");
                    } else if !keys.insert(k.text.clone()) {
                        let message = format!("duplicate key `{}`; remove one of them", k.text);
                        reader.error(k.span, message);
                    } else {
                        entries.push((k, node));
                    }
                }
            },
        }
    }
    root
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = text.parse::<i64>()
    {
        return Value::Int(n);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(n) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(n);
    }
    if let Some(oct) = text.strip_prefix("0o")
        && let Ok(n) = i64::from_str_radix(oct, 8)
    {
        return Value::Int(n);
    }
    let float_like = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.as_bytes()[0] != b'e'
        && digits.as_bytes()[0] != b'E';
    if float_like && let Ok(f) = text.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(text.to_owned())
}

/// A node as JSON: `with:` parameters and input defaults.
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(n) => J::from(*n),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| J::String(node.text.clone()), J::Number)
        }
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.text.clone(), to_json(v))).collect()),
    }
}

// ---------------------------------------------------------------------------------------------
// The schema

const TOP_KEYS: &[&str] =
    &["name", "on", "inputs", "env", "concurrency", "timeout", "max_parallel", "runs_on", "steps"];
const TRIGGER_KEYS: &[&str] = &["file_change", "schedule", "diagnostic", "escalation", "manual", "webhook"];
const FILE_CHANGE_KEYS: &[&str] = &["paths", "ignore", "events", "debounce"];
const SCHEDULE_KEYS: &[&str] = &["cron", "timezone"];
const DIAGNOSTIC_KEYS: &[&str] = &["category", "severity", "paths", "persists"];
const ESCALATION_KEYS: &[&str] = &["outcome"];
const MANUAL_KEYS: &[&str] = &["inputs"];
const WEBHOOK_KEYS: &[&str] = &["path", "secret_env", "scheme"];
const WEBHOOK_SCHEMES: &[(&str, WebhookScheme)] =
    &[("acas", WebhookScheme::Acas), ("github", WebhookScheme::Github)];
const INPUT_KEYS: &[&str] = &["type", "description", "default", "required", "options"];
const CONCURRENCY_KEYS: &[&str] = &["group", "cancel_in_progress"];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "uses",
    "with",
    "run",
    "needs",
    "if",
    "retry",
    "timeout",
    "continue_on_error",
    "skipped_needs",
    "idempotent",
    "runs_on",
];
const RUN_KEYS: &[&str] = &["shell", "argv", "env", "cwd"];
const RETRY_KEYS: &[&str] = &["attempts", "backoff", "delay", "max_delay"];

const EVENTS: &[(&str, FileEventKind)] = &[
    ("created", FileEventKind::Created),
    ("modified", FileEventKind::Modified),
    ("deleted", FileEventKind::Deleted),
    ("renamed", FileEventKind::Renamed),
];
const OUTCOMES: &[(&str, EscalationOutcome)] = &[
    ("fixed", EscalationOutcome::Fixed),
    ("explained", EscalationOutcome::Explained),
    ("failed", EscalationOutcome::Failed),
    ("any", EscalationOutcome::Any),
];
const INPUT_TYPES: &[(&str, InputType)] = &[
    ("string", InputType::String),
    ("number", InputType::Number),
    ("boolean", InputType::Boolean),
    ("choice", InputType::Choice),
];
const BACKOFFS: &[(&str, Backoff)] =
    &[("constant", Backoff::Constant), ("linear", Backoff::Linear), ("exponential", Backoff::Exponential)];
const SKIPPED_NEEDS: &[(&str, SkippedNeeds)] =
    &[("success", SkippedNeeds::Success), ("skip", SkippedNeeds::Skip)];
const SEVERITIES: &[(&str, &str)] =
    &[("error", "error"), ("warning", "warning"), ("information", "information"), ("hint", "hint")];
const CATEGORIES: &[(&str, &str)] = &[
    ("syntax", "syntax"),
    ("type", "type"),
    ("name", "name"),
    ("import", "import"),
    ("ownership", "ownership"),
    ("lint", "lint"),
    ("test", "test"),
    ("runtime", "runtime"),
    ("build", "build"),
    ("other", "other"),
];

/// Default `max_parallel`.
const MAX_PARALLEL: usize = 4;
/// Default file-change debounce.
const DEBOUNCE: Duration = Duration::from_millis(500);

struct Reader<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
}

type Entries = [(Node, Node)];

fn get<'n>(entries: &'n Entries, name: &str) -> Option<(&'n Node, &'n Node)> {
    entries.iter().find(|(k, _)| k.text == name).map(|(k, v)| (k, v))
}

/// Where to point at a value: the value itself when it is a scalar, else its key.
fn at(key: &Node, value: &Node) -> Span {
    if value.is_collection() || matches!(value.value, Value::Null) { key.span } else { value.span }
}

/// The closest of `known` to `word`, when it is close enough to be a typo.
pub(crate) fn suggest<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let limit = ((word.chars().count() + 1) / 3).clamp(1, 3);
    known
        .into_iter()
        .map(|k| (edit_distance(&word.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit && *d < word.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance where swapping two neighbours counts as one edit (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// `one of a, b or c`.
fn one_of(options: &[&str]) -> String {
    match options {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|o| format!("`{o}`")).collect();
            format!("one of {} or `{last}`", rest.join(", "))
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `1h`, `1d`, `1.5s` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    crate::duration::parse(text).ok()
}

impl Reader<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>) {
        self.problems.push(Problem::new(self.file, span, Severity::Error, message));
    }

    fn warning(&mut self, span: Span, message: impl Into<String>) {
        self.problems.push(Problem::new(self.file, span, Severity::Warning, message));
    }

    /// The entries of a mapping value, or a problem. `null` reads as an empty mapping.
    fn mapping<'n>(&mut self, key: &Node, value: &'n Node, what: &str) -> Option<&'n Entries> {
        match &value.value {
            Value::Map(entries) => Some(entries),
            Value::Null => Some(&[]),
            _ => {
                self.error(
                    at(key, value),
                    format!("{what} must be a mapping of keys to values, not {}", value.describe()),
                );
                None
            }
        }
    }

    fn check_keys(&mut self, entries: &Entries, allowed: &[&str], what: &str) {
        for (k, _) in entries {
            if allowed.contains(&k.text.as_str()) {
                continue;
            }
            let message = match suggest(&k.text, allowed.iter().copied()) {
                Some(close) => format!("unknown key `{}` in {what}; did you mean `{close}`?", k.text),
                None => format!("unknown key `{}` in {what}; expected {}", k.text, one_of(allowed)),
            };
            self.error(k.span, message);
        }
    }

    fn missing(&mut self, span: Span, key: &str, what: &str, example: &str) {
        self.error(span, format!("{what} is missing the required key `{key}`; add `{example}`"));
    }

    /// A string; numbers are taken as written.
    fn string(&mut self, key: &Node, value: &Node) -> Option<String> {
        match &value.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) => Some(value.text.clone()),
            _ => {
                self.error(
                    at(key, value),
                    format!("`{}` must be a string, not {}", key.text, value.describe()),
                );
                None
            }
        }
    }

    fn bool(&mut self, key: &Node, value: &Node) -> Option<bool> {
        match value.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(
                    at(key, value),
                    format!("`{}` must be `true` or `false`, not {}", key.text, value.describe()),
                );
                None
            }
        }
    }

    fn count(&mut self, key: &Node, value: &Node, min: i64) -> Option<i64> {
        match value.value {
            Value::Int(n) if n >= min => Some(n),
            _ => {
                self.error(
                    at(key, value),
                    format!(
                        "`{}` must be a whole number of at least {min}, not {}",
                        key.text,
                        value.describe()
                    ),
                );
                None
            }
        }
    }

    fn duration(&mut self, key: &Node, value: &Node) -> Option<Duration> {
        let parsed = match value.value {
            Value::Int(n) => crate::duration::from_secs_f64(n as f64),
            Value::Float(f) => crate::duration::from_secs_f64(f),
            Value::Str(ref s) => crate::duration::parse(s),
            _ => Err(crate::duration::DurationError {
                kind: crate::duration::DurationErrorKind::Syntax,
                message: String::new(),
            }),
        };
        match parsed {
            Ok(duration) => Some(duration),
            Err(e) if e.kind == crate::duration::DurationErrorKind::TooLong => {
                self.error(at(key, value), format!("`{}`: {}", key.text, e.message));
                None
            }
            Err(_) => {
                self.error(
                    at(key, value),
                    format!(
                        "`{}` must be a duration like 500ms, 30s, 5m, 1h or 1d, not {}",
                        key.text,
                        value.describe()
                    ),
                );
                None
            }
        }
    }

    /// `runs_on`: one label or a list of labels, each of letters, digits, `_`, `-` and `.`.
    fn labels(&mut self, key: &Node, value: &Node) -> Vec<String> {
        let mut labels = self.strings(key, value);
        for label in &labels {
            let fine = !label.is_empty()
                && label.len() <= 64
                && label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !fine {
                self.error(
                    value.span,
                    format!(
                        "`{}` label `{label}` cannot be used: a label is 1 to 64 letters, digits, `_`, `-` or `.`, as `acas worker --labels` takes them",
                        key.text
                    ),
                );
            }
        }
        labels.sort();
        labels.dedup();
        labels
    }

    /// One string or a list of strings.
    fn strings(&mut self, key: &Node, value: &Node) -> Vec<String> {
        match &value.value {
            Value::Seq(items) => items
                .iter()
                .filter_map(|item| match &item.value {
                    Value::Str(s) => Some(s.clone()),
                    Value::Int(_) | Value::Float(_) => Some(item.text.clone()),
                    _ => {
                        self.error(
                            at(key, item),
                            format!("`{}` must hold strings only, not {}", key.text, item.describe()),
                        );
                        None
                    }
                })
                .collect(),
            Value::Null => Vec::new(),
            Value::Str(s) => vec![s.clone()],
            Value::Int(_) | Value::Float(_) => vec![value.text.clone()],
            _ => {
                self.error(
                    at(key, value),
                    format!("`{}` must be a string or a list of strings, not {}", key.text, value.describe()),
                );
                Vec::new()
            }
        }
    }

    fn choice<T: Copy>(&mut self, key: &Node, value: &Node, options: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let text = match &value.value {
            Value::Str(s) => s.as_str(),
            _ => {
                self.error(
                    at(key, value),
                    format!("`{}` must be {}, not {}", key.text, one_of(&names), value.describe()),
                );
                return None;
            }
        };
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == text) {
            return Some(*v);
        }
        let message = match suggest(text, names.iter().copied()) {
            Some(close) => format!("`{}` cannot be `{text}`; did you mean `{close}`?", key.text),
            None => format!("`{}` must be {}, not `{text}`", key.text, one_of(&names)),
        };
        self.error(value.span, message);
        None
    }

    fn string_map(&mut self, key: &Node, value: &Node) -> BTreeMap<String, String> {
        let Some(entries) = self.mapping(key, value, &format!("`{}`", key.text)) else {
            return BTreeMap::new();
        };
        let mut map = BTreeMap::new();
        for (k, v) in entries {
            let text = match &v.value {
                Value::Str(s) => Some(s.clone()),
                Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(v.text.clone()),
                _ => {
                    self.error(at(k, v), format!("`{}` must be a string, not {}", k.text, v.describe()));
                    None
                }
            };
            if let Some(text) = text {
                map.insert(k.text.clone(), text);
            }
        }
        map
    }

    fn workflow(&mut self, root: &Node, file: &Path, source: &str, map: &mut SourceMap) -> Option<Workflow> {
        let Value::Map(entries) = &root.value else {
            self.error(
                root.span,
                format!(
                    "a workflow file must be a mapping with `name`, `on` and `steps`, not {}",
                    root.describe()
                ),
            );
            return None;
        };
        self.check_keys(entries, TOP_KEYS, "the workflow");
        let top = Span {
            start: root.span.start,
            end: Pos { line: root.span.start.line, column: root.span.start.column + 1 },
        };
        let name = match get(entries, "name") {
            Some((k, v)) => self.string(k, v).unwrap_or_default(),
            None => {
                self.missing(top, "name", "the workflow", "name: my-workflow");
                String::new()
            }
        };
        let mut inputs = BTreeMap::new();
        let on = match get(entries, "on") {
            Some((k, v)) => self.triggers(k, v, &mut inputs),
            None => Triggers::default(),
        };
        if let Some((k, v)) = get(entries, "inputs") {
            self.inputs(k, v, &mut inputs);
        }
        let env = get(entries, "env").map(|(k, v)| self.string_map(k, v)).unwrap_or_default();
        let concurrency = get(entries, "concurrency").and_then(|(k, v)| self.concurrency(k, v));
        let timeout = get(entries, "timeout").and_then(|(k, v)| self.duration(k, v));
        let max_parallel = get(entries, "max_parallel")
            .and_then(|(k, v)| self.count(k, v, 1))
            .map_or(MAX_PARALLEL, |n| n as usize);
        let runs_on = get(entries, "runs_on").map(|(k, v)| self.labels(k, v)).unwrap_or_default();
        let steps = match get(entries, "steps") {
            Some((k, v)) => self.steps(k, v, map),
            None => {
                self.missing(top, "steps", "the workflow", "steps: [...]");
                Vec::new()
            }
        };
        Some(Workflow {
            name,
            file: file.to_path_buf(),
            hash: hash(source.as_bytes()),
            source: source.to_owned(),
            on,
            inputs,
            env,
            concurrency,
            timeout,
            max_parallel,
            runs_on,
            steps,
        })
    }

    fn triggers(&mut self, key: &Node, value: &Node, inputs: &mut BTreeMap<String, InputSpec>) -> Triggers {
        let mut on = Triggers::default();
        let Some(entries) = self.mapping(key, value, "`on`") else { return on };
        self.check_keys(entries, TRIGGER_KEYS, "`on`");
        for (k, v) in entries {
            match k.text.as_str() {
                "file_change" => on.file_change = self.file_change(k, v),
                "schedule" => on.schedule = self.schedule(k, v),
                "diagnostic" => on.diagnostic = self.diagnostic(k, v),
                "escalation" => {
                    let Some(entries) = self.mapping(k, v, "`escalation`") else { continue };
                    self.check_keys(entries, ESCALATION_KEYS, "`escalation`");
                    let outcome = get(entries, "outcome").and_then(|(k, v)| self.choice(k, v, OUTCOMES));
                    on.escalation =
                        Some(EscalationTrigger { outcome: outcome.unwrap_or(EscalationOutcome::Any) });
                }
                "manual" => {
                    on.manual = true;
                    let Some(entries) = self.mapping(k, v, "`manual`") else { continue };
                    self.check_keys(entries, MANUAL_KEYS, "`manual`");
                    if let Some((k, v)) = get(entries, "inputs") {
                        self.inputs(k, v, inputs);
                    }
                }
                "webhook" => on.webhook = self.webhook(k, v),
                _ => {}
            }
        }
        on
    }

    fn file_change(&mut self, key: &Node, value: &Node) -> Option<FileChangeTrigger> {
        let entries = self.mapping(key, value, "`file_change`")?;
        self.check_keys(entries, FILE_CHANGE_KEYS, "`file_change`");
        let paths = match get(entries, "paths") {
            Some((k, v)) => self.strings(k, v),
            None => {
                self.missing(key.span, "paths", "`file_change`", "paths: [\"src/**/*.py\"]");
                Vec::new()
            }
        };
        let ignore = get(entries, "ignore").map(|(k, v)| self.strings(k, v)).unwrap_or_default();
        let events = match get(entries, "events") {
            Some((k, v)) => match &v.value {
                Value::Seq(items) => items.iter().filter_map(|item| self.choice(k, item, EVENTS)).collect(),
                _ => self.choice(k, v, EVENTS).into_iter().collect(),
            },
            None => Vec::new(),
        };
        let debounce = get(entries, "debounce").and_then(|(k, v)| self.duration(k, v)).unwrap_or(DEBOUNCE);
        Some(FileChangeTrigger { paths, ignore, events, debounce })
    }

    fn schedule(&mut self, key: &Node, value: &Node) -> Vec<ScheduleTrigger> {
        match &value.value {
            Value::Seq(items) => items.iter().filter_map(|item| self.one_schedule(key, item)).collect(),
            _ => self.one_schedule(key, value).into_iter().collect(),
        }
    }

    fn one_schedule(&mut self, key: &Node, value: &Node) -> Option<ScheduleTrigger> {
        if let Value::Str(cron) = &value.value {
            return Some(ScheduleTrigger { cron: cron.clone(), timezone: None });
        }
        let Value::Map(entries) = &value.value else {
            self.error(
                at(key, value),
                format!(
                    "`schedule` must be `{{cron: \"0 9 * * 1-5\", timezone: \"Europe/Berlin\"}}` or a list of them, not {}",
                    value.describe()
                ),
            );
            return None;
        };
        self.check_keys(entries, SCHEDULE_KEYS, "`schedule`");
        let cron = match get(entries, "cron") {
            Some((k, v)) => self.string(k, v)?,
            None => {
                self.missing(value.span, "cron", "`schedule`", "cron: \"0 9 * * 1-5\"");
                return None;
            }
        };
        let timezone = get(entries, "timezone").and_then(|(k, v)| self.string(k, v));
        Some(ScheduleTrigger { cron, timezone })
    }

    fn diagnostic(&mut self, key: &Node, value: &Node) -> Option<DiagnosticTrigger> {
        let entries = self.mapping(key, value, "`diagnostic`")?;
        self.check_keys(entries, DIAGNOSTIC_KEYS, "`diagnostic`");
        Some(DiagnosticTrigger {
            category: get(entries, "category")
                .and_then(|(k, v)| self.choice(k, v, CATEGORIES))
                .map(str::to_owned),
            severity: get(entries, "severity")
                .and_then(|(k, v)| self.choice(k, v, SEVERITIES))
                .map(str::to_owned),
            paths: get(entries, "paths").map(|(k, v)| self.strings(k, v)).unwrap_or_default(),
            persists: get(entries, "persists").and_then(|(k, v)| self.duration(k, v)).unwrap_or_default(),
        })
    }

    fn webhook(&mut self, key: &Node, value: &Node) -> Option<WebhookTrigger> {
        let entries = self.mapping(key, value, "`webhook`")?;
        self.check_keys(entries, WEBHOOK_KEYS, "`webhook`");
        let mut field = |name: &str, example: &str| match get(entries, name) {
            Some((k, v)) => self.string(k, v),
            None => {
                self.missing(key.span, name, "`webhook`", example);
                None
            }
        };
        let path = field("path", "path: /hooks/NAME");
        let secret_env = field("secret_env", "secret_env: ACAS_WEBHOOK_SECRET");
        let scheme =
            get(entries, "scheme").and_then(|(k, v)| self.choice(k, v, WEBHOOK_SCHEMES)).unwrap_or_default();
        Some(WebhookTrigger { path: path?, secret_env: secret_env?, scheme })
    }

    fn inputs(&mut self, key: &Node, value: &Node, inputs: &mut BTreeMap<String, InputSpec>) {
        let Some(entries) = self.mapping(key, value, "`inputs`") else { return };
        for (k, v) in entries {
            if !is_identifier(&k.text) {
                self.error(
                    k.span,
                    format!(
                        "input name `{}` cannot be used in templates; use letters, digits and `_`",
                        k.text
                    ),
                );
            }
            let Some(spec) = self.input(k, v) else { continue };
            if inputs.insert(k.text.clone(), spec).is_some() {
                self.error(k.span, format!("input `{}` is declared twice; keep one declaration", k.text));
            }
        }
    }

    fn input(&mut self, key: &Node, value: &Node) -> Option<InputSpec> {
        let what = format!("input `{}`", key.text);
        let entries = self.mapping(key, value, &what)?;
        self.check_keys(entries, INPUT_KEYS, &what);
        let kind = get(entries, "type")
            .and_then(|(k, v)| self.choice(k, v, INPUT_TYPES))
            .unwrap_or(InputType::String);
        let description = get(entries, "description").and_then(|(k, v)| self.string(k, v));
        let required = get(entries, "required").and_then(|(k, v)| self.bool(k, v)).unwrap_or(false);
        let options = get(entries, "options").map(|(k, v)| self.strings(k, v)).unwrap_or_default();
        match get(entries, "options") {
            Some((k, _)) if kind != InputType::Choice => self
                .error(k.span, format!("{what} has `options` but is not `type: choice`; add `type: choice`")),
            None if kind == InputType::Choice => {
                self.missing(key.span, "options", &what, "options: [a, b]");
            }
            _ => {}
        }
        let default = get(entries, "default").and_then(|(k, v)| {
            let fits = match (kind, &v.value) {
                (InputType::String, Value::Str(_) | Value::Int(_) | Value::Float(_)) => true,
                (InputType::Number, Value::Int(_) | Value::Float(_)) => true,
                (InputType::Boolean, Value::Bool(_)) => true,
                (InputType::Choice, Value::Str(s)) => options.contains(s),
                (InputType::Choice, _) => options.contains(&v.text),
                _ => false,
            };
            if !fits {
                let expected = match kind {
                    InputType::String => "a string".to_owned(),
                    InputType::Number => "a number".to_owned(),
                    InputType::Boolean => "`true` or `false`".to_owned(),
                    InputType::Choice => one_of(&options.iter().map(String::as_str).collect::<Vec<_>>()),
                };
                self.error(
                    at(k, v),
                    format!("the default of {what} must be {expected}, not {}", v.describe()),
                );
                return None;
            }
            Some(match (kind, &v.value) {
                (InputType::String | InputType::Choice, Value::Int(_) | Value::Float(_)) => {
                    serde_json::Value::String(v.text.clone())
                }
                _ => to_json(v),
            })
        });
        Some(InputSpec { kind, description, default, required, options })
    }

    fn concurrency(&mut self, key: &Node, value: &Node) -> Option<Concurrency> {
        if let Value::Str(group) = &value.value {
            return Some(Concurrency { group: group.clone(), cancel_in_progress: false });
        }
        let entries = self.mapping(key, value, "`concurrency`")?;
        self.check_keys(entries, CONCURRENCY_KEYS, "`concurrency`");
        let group = match get(entries, "group") {
            Some((k, v)) => self.string(k, v)?,
            None => {
                self.missing(key.span, "group", "`concurrency`", "group: NAME");
                return None;
            }
        };
        let cancel_in_progress =
            get(entries, "cancel_in_progress").and_then(|(k, v)| self.bool(k, v)).unwrap_or(false);
        Some(Concurrency { group, cancel_in_progress })
    }

    fn steps(&mut self, key: &Node, value: &Node, map: &mut SourceMap) -> Vec<Step> {
        let Value::Seq(items) = &value.value else {
            self.error(at(key, value), format!("`steps` must be a list of steps, not {}", value.describe()));
            return Vec::new();
        };
        if items.is_empty() {
            self.error(at(key, value), "`steps` is empty; add at least one step");
        }
        if items.len() > MAX_STEPS {
            self.error(
                at(key, value),
                format!(
                    "this workflow has {} steps, more than the {MAX_STEPS} a workflow may have; \
                     split it into several workflows",
                    items.len()
                ),
            );
            return Vec::new();
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut steps = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let Some(step) = self.step(index, item) else { continue };
            if !seen.insert(step.id.clone()) {
                let span = Span {
                    start: Pos { line: step.line, column: step.column },
                    end: Pos { line: step.line, column: step.column + step.id.chars().count() as u32 },
                };
                self.error(
                    span,
                    format!("duplicate step id `{}`; give every step an id of its own", step.id),
                );
                continue;
            }
            map.steps.insert(step.id.clone(), index);
            steps.push(step);
        }
        steps
    }

    fn step(&mut self, index: usize, item: &Node) -> Option<Step> {
        let Value::Map(entries) = &item.value else {
            self.error(
                item.span,
                format!(
                    "step {} must be a mapping with `id` and `uses` or `run`, not {}",
                    index + 1,
                    item.describe()
                ),
            );
            return None;
        };
        let id_node = get(entries, "id");
        let id = match id_node {
            Some((k, v)) => self.string(k, v),
            None => {
                self.missing(item.span, "id", &format!("step {}", index + 1), "id: NAME");
                None
            }
        };
        let what = match &id {
            Some(id) => format!("step `{id}`"),
            None => format!("step {}", index + 1),
        };
        self.check_keys(entries, STEP_KEYS, &what);
        if let (Some(id), Some((_, v))) = (&id, id_node)
            && !is_step_id(id)
        {
            self.error(
                v.span,
                format!("step id `{id}` cannot be used in templates; use letters, digits, `_` and `-`, starting with a letter"),
            );
        }
        let name = get(entries, "name").and_then(|(k, v)| self.string(k, v));
        let kind = self.step_kind(entries, item, &what);
        let needs = get(entries, "needs").map(|(k, v)| self.strings(k, v)).unwrap_or_default();
        let condition = get(entries, "if").and_then(|(k, v)| match v.value {
            Value::Bool(b) => Some(b.to_string()),
            _ => self.string(k, v),
        });
        let retry = get(entries, "retry").map(|(k, v)| self.retry(k, v)).unwrap_or_default();
        let timeout = get(entries, "timeout").and_then(|(k, v)| self.duration(k, v));
        let continue_on_error =
            get(entries, "continue_on_error").and_then(|(k, v)| self.bool(k, v)).unwrap_or(false);
        let skipped_needs = get(entries, "skipped_needs")
            .and_then(|(k, v)| self.choice(k, v, SKIPPED_NEEDS))
            .unwrap_or_default();
        let idempotent = get(entries, "idempotent").and_then(|(k, v)| self.bool(k, v)).unwrap_or(true);
        let runs_on = get(entries, "runs_on").map(|(k, v)| {
            if matches!(kind, StepKind::Uses { .. }) {
                self.error(
                    k.span,
                    format!("{what} has `uses:`, which runs where its run runs; `runs_on` applies to `run:` steps only"),
                );
            }
            self.labels(k, v)
        });
        let id_at = id_node.map_or(item.span.start, |(_, v)| v.span.start);
        Some(Step {
            id: id?,
            name,
            kind,
            needs,
            condition,
            retry,
            timeout,
            continue_on_error,
            skipped_needs,
            idempotent,
            runs_on,
            line: id_at.line,
            column: id_at.column,
        })
    }

    fn step_kind(&mut self, entries: &Entries, item: &Node, what: &str) -> StepKind {
        let empty = StepKind::Argv { argv: Vec::new(), env: BTreeMap::new(), cwd: None };
        let with = get(entries, "with");
        match (get(entries, "uses"), get(entries, "run")) {
            (Some((uk, _)), Some(_)) => {
                self.error(uk.span, format!("{what} has both `uses` and `run`; keep one of them"));
                empty
            }
            (None, None) => {
                self.error(
                    item.span,
                    format!("{what} does nothing; add `uses: ACTION` or `run: [COMMAND, ARGS...]`"),
                );
                empty
            }
            (Some((k, v)), None) => {
                let action = self.string(k, v).unwrap_or_default();
                let with = match with {
                    Some((k, v)) => match self.mapping(k, v, "`with`") {
                        Some(entries) => entries.iter().map(|(k, v)| (k.text.clone(), to_json(v))).collect(),
                        None => serde_json::Map::new(),
                    },
                    None => serde_json::Map::new(),
                };
                StepKind::Uses { action, with }
            }
            (None, Some((k, v))) => {
                if let Some((wk, _)) = with {
                    self.error(
                        wk.span,
                        format!("{what} runs a command, so `with` does nothing; pass arguments in `run`"),
                    );
                }
                self.run(k, v, what).unwrap_or(empty)
            }
        }
    }

    fn run(&mut self, key: &Node, value: &Node, what: &str) -> Option<StepKind> {
        match &value.value {
            Value::Seq(_) => {
                let argv = self.argv(key, value, what)?;
                Some(StepKind::Argv { argv, env: BTreeMap::new(), cwd: None })
            }
            Value::Map(entries) => {
                self.check_keys(entries, RUN_KEYS, "`run`");
                let env = get(entries, "env").map(|(k, v)| self.string_map(k, v)).unwrap_or_default();
                let cwd = get(entries, "cwd").and_then(|(k, v)| self.string(k, v));
                match (get(entries, "shell"), get(entries, "argv")) {
                    (Some((k, v)), None) => {
                        let script = self.string(k, v)?;
                        Some(StepKind::Shell { script, env, cwd })
                    }
                    (None, Some((k, v))) => {
                        let argv = self.argv(k, v, what)?;
                        Some(StepKind::Argv { argv, env, cwd })
                    }
                    (Some((k, _)), Some(_)) => {
                        self.error(
                            k.span,
                            format!("the `run` of {what} has both `shell` and `argv`; keep one of them"),
                        );
                        None
                    }
                    (None, None) => {
                        self.error(
                            key.span,
                            format!(
                                "the `run` of {what} needs `shell: \"...\"` or `argv: [COMMAND, ARGS...]`"
                            ),
                        );
                        None
                    }
                }
            }
            Value::Str(s) => {
                let words: Vec<String> = s.split_whitespace().map(|w| format!("\"{w}\"")).collect();
                self.error(
                    value.span,
                    format!(
                        "`run` takes a list of arguments and never a shell; write `run: [{}]`, or `run: {{shell: \"...\"}}` for `sh -c`",
                        words.join(", ")
                    ),
                );
                None
            }
            _ => {
                self.error(
                    at(key, value),
                    format!(
                        "`run` must be a list of arguments or `{{shell: \"...\"}}`, not {}",
                        value.describe()
                    ),
                );
                None
            }
        }
    }

    fn argv(&mut self, key: &Node, value: &Node, what: &str) -> Option<Vec<String>> {
        let Value::Seq(items) = &value.value else {
            self.error(
                at(key, value),
                format!("`{}` must be a list of arguments, not {}", key.text, value.describe()),
            );
            return None;
        };
        if items.is_empty() {
            self.error(at(key, value), format!("the command of {what} is empty; name a program to run"));
            return None;
        }
        let argv = self.strings(key, value);
        (argv.len() == items.len()).then_some(argv)
    }

    fn retry(&mut self, key: &Node, value: &Node) -> RetryPolicy {
        let mut retry = RetryPolicy::default();
        if let Value::Int(_) = value.value {
            if let Some(n) = self.count(key, value, 1) {
                retry.attempts = n.min(u32::MAX as i64) as u32;
            }
            return retry;
        }
        let Some(entries) = self.mapping(key, value, "`retry`") else { return retry };
        self.check_keys(entries, RETRY_KEYS, "`retry`");
        if let Some(n) = get(entries, "attempts").and_then(|(k, v)| self.count(k, v, 1)) {
            retry.attempts = n.min(u32::MAX as i64) as u32;
        }
        if let Some(b) = get(entries, "backoff").and_then(|(k, v)| self.choice(k, v, BACKOFFS)) {
            retry.backoff = b;
        }
        if let Some(d) = get(entries, "delay").and_then(|(k, v)| self.duration(k, v)) {
            retry.delay = d;
        }
        if let Some(d) = get(entries, "max_delay").and_then(|(k, v)| self.duration(k, v)) {
            retry.max_delay = d;
        }
        if retry.max_delay < retry.delay
            && let Some((k, v)) = get(entries, "max_delay")
        {
            self.warning(at(k, v), "`max_delay` is shorter than `delay`, so every delay is `max_delay`");
        }
        retry
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_step_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn hash(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_2() {
        assert!(matches!(resolve_plain("on"), Value::Str(_)));
        assert!(matches!(resolve_plain("yes"), Value::Str(_)));
        assert!(matches!(resolve_plain("true"), Value::Bool(true)));
        assert!(matches!(resolve_plain("~"), Value::Null));
        assert!(matches!(resolve_plain("-12"), Value::Int(-12)));
        assert!(matches!(resolve_plain("0x1f"), Value::Int(31)));
        assert!(matches!(resolve_plain("1.5"), Value::Float(_)));
        assert!(matches!(resolve_plain("1e3"), Value::Float(_)));
        assert!(matches!(resolve_plain("30s"), Value::Str(_)));
        assert!(matches!(resolve_plain("1-5"), Value::Str(_)));
        assert!(matches!(resolve_plain("e5"), Value::Str(_)));
    }

    #[test]
    fn suggestions_only_for_close_words() {
        assert_eq!(suggest("stpes", TOP_KEYS.iter().copied()), Some("steps"));
        assert_eq!(suggest("timout", TOP_KEYS.iter().copied()), Some("timeout"));
        assert_eq!(suggest("banana", TOP_KEYS.iter().copied()), None);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(hash(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn positions_are_one_based_characters() {
        let source = "name: é\nsteps:\n  - id: a\n    run: [x]\n    bogus: 1\n";
        let (workflow, problems) = parse(Path::new("/w.yaml"), source);
        let workflow = workflow.unwrap();
        assert_eq!(workflow.name, "é");
        assert_eq!((workflow.steps[0].line, workflow.steps[0].column), (3, 9));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].line, problems[0].column, problems[0].end_column), (5, 5, 10));
    }

    #[test]
    fn broken_yaml_is_one_located_problem() {
        let (workflow, problems) = parse(Path::new("/w.yaml"), "name: [a\nsteps: 1\n");
        assert!(workflow.is_none());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("YAML syntax error"), "{problems:?}");
    }
}
