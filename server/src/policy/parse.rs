//! Reading a `policy.yaml` into [`Sections`], keeping the line of every rule.
//!
//! The YAML is read with `saphyr-parser` (YAML 1.2, as workflow files are) into a tree of
//! located nodes, checked against the JSON schema of [`schema`] with the `jsonschema` crate,
//! then checked for what the schema cannot say (globs that do not compile, patterns with `..`,
//! agent names that are reserved). Every problem has a 1-based line and column. It does not
//! decide anything: that is `decide`'s.

use std::path::Path;
use std::sync::LazyLock;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Value as Json, json};

use super::{Category, PolicyError, PolicyErrorKind, Problem, Rule, RuleList, Section, Sections, Spend};

/// The largest policy file read, in bytes (256 KiB).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// The most YAML nodes (values, lists, mappings) a policy file may hold.
pub const MAX_NODES: usize = 20_000;

/// The most rules (patterns of every list, in every section) one policy file may hold.
pub const MAX_RULES: usize = 10_000;

/// Names an MCP client cannot take: ACAS's own starts.
pub const RESERVED_AGENTS: [&str; 3] = ["editor", "cli", "workflow"];

#[derive(Debug, Clone)]
struct Node {
    value: Value,
    line: u32,
    column: u32,
}

#[derive(Debug, Clone)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

enum Frame {
    Seq { line: u32, column: u32, items: Vec<Node> },
    Map { line: u32, column: u32, entries: Vec<(String, Node)>, key: Option<Node> },
}

fn problem(line: u32, column: u32, message: impl Into<String>) -> Problem {
    Problem { line: line.max(1), column: column.max(1), message: message.into() }
}

/// Reads the first YAML document into a tree; the first syntax error stops it.
fn load(source: &str) -> Result<Option<Node>, Problem> {
    if source.len() > MAX_FILE_BYTES {
        return Err(problem(
            1,
            1,
            format!(
                "this file has {} bytes, more than the {MAX_FILE_BYTES} bytes a policy file may have; \
                 use globs instead of long lists",
                source.len()
            ),
        ));
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let mut nodes = 0usize;
    let mut documents = 0;
    for item in Parser::new_from_str(source) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            problem(
                m.line() as u32,
                m.col() as u32 + 1,
                format!("YAML syntax error: {}; fix the YAML first", e.info().trim_end_matches('.')),
            )
        })?;
        let (line, column) = (span.start.line() as u32, span.start.col() as u32 + 1);
        let node = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(problem(
                        line,
                        column,
                        "a policy file holds one YAML document; remove what follows `---`",
                    ));
                }
                continue;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::Alias(_) => {
                return Err(problem(
                    line,
                    column,
                    "aliases (`*name`) are not allowed in a policy file; write the values out",
                ));
            }
            Event::Scalar(text, style, _, tag) => {
                let forced = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !forced {
                    resolve_plain(&text)
                } else {
                    Value::Str(text.to_string())
                };
                Node { value, line, column }
            }
            Event::SequenceStart(..) => {
                stack.push(Frame::Seq { line, column, items: Vec::new() });
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Frame::Map { line, column, entries: Vec::new(), key: None });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { line, column, items }) => Node { value: Value::Seq(items), line, column },
                Some(Frame::Map { line, column, entries, .. }) => {
                    Node { value: Value::Map(entries), line, column }
                }
                None => continue,
            },
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(problem(
                line,
                column,
                format!("this file has more than {MAX_NODES} YAML values; use globs instead of long lists"),
            ));
        }
        match stack.last_mut() {
            None => {
                root.get_or_insert(node);
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let name = match &k.value {
                        Value::Str(s) => s.clone(),
                        Value::Int(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => String::new(),
                        Value::Float(f) => f.to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(problem(
                                k.line,
                                k.column,
                                "mapping keys must be plain names, not lists or mappings",
                            ));
                        }
                    };
                    if entries.iter().any(|(n, _)| *n == name) {
                        return Err(problem(
                            k.line,
                            k.column,
                            format!("duplicate key `{name}`; remove one of them"),
                        ));
                    }
                    entries.push((name, node));
                }
            },
        }
    }
    Ok(root)
}

/// The pattern after the first `n` of the file's lists (every list of a valid file is a list of
/// patterns), if it has more than `n`.
fn nth_pattern(root: &Node, n: usize) -> Option<&Node> {
    fn walk<'n>(node: &'n Node, seen: &mut usize, n: usize) -> Option<&'n Node> {
        match &node.value {
            Value::Seq(items) => items.iter().find(|_| {
                *seen += 1;
                *seen > n
            }),
            Value::Map(entries) => entries.iter().find_map(|(_, v)| walk(v, seen, n)),
            _ => None,
        }
    }
    walk(root, &mut 0, n)
}

fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(n) = text.parse::<i64>() {
                Value::Int(n)
            } else if text.bytes().any(|b| b.is_ascii_digit())
                && text.bytes().all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
                && let Ok(f) = text.parse::<f64>()
            {
                Value::Float(f)
            } else {
                Value::Str(text.to_owned())
            }
        }
    }
}

fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => json!(n),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(entries.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// The node at a JSON pointer (`/agents/claude-code/paths`), or the deepest one on the way.
fn at<'n>(root: &'n Node, pointer: &str) -> &'n Node {
    let mut node = root;
    for part in pointer.split('/').skip(1) {
        let part = part.replace("~1", "/").replace("~0", "~");
        let next = match &node.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| *k == part).map(|(_, v)| v),
            Value::Seq(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

/// The JSON schema of a policy file: `docs/policy.md` explains each key.
pub fn schema() -> Json {
    let patterns = json!({ "type": "array", "items": { "type": "string", "minLength": 1 } });
    let list = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": { "allow": patterns, "deny": patterns },
    });
    let approve = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "paths": patterns, "commands": patterns, "actions": patterns, "hosts": patterns, "workflows": patterns,
        },
    });
    let section = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "paths": list, "commands": list, "actions": list, "hosts": list, "workflows": list,
            "spend": {
                "type": "object",
                "additionalProperties": false,
                "properties": { "daily_usd": { "type": "number", "minimum": 0 } },
            },
            "approve": approve,
        },
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "version": { "const": 1 },
            "approval_timeout": { "type": "string" },
            "defaults": section,
            "agents": { "type": "object", "additionalProperties": section },
        },
    })
}

static VALIDATOR: LazyLock<jsonschema::Validator> =
    LazyLock::new(|| jsonschema::validator_for(&schema()).expect("the policy schema is a valid JSON Schema"));

/// Parses `source` (the text of `file`) into its sections, or every problem found.
pub fn parse(file: &Path, source: &str) -> Result<Sections, PolicyError> {
    let invalid = |problems: Vec<Problem>| PolicyError {
        kind: PolicyErrorKind::Invalid,
        file: file.to_path_buf(),
        problems,
    };
    let not_a_policy = |what: &str| {
        invalid(vec![problem(
            1,
            1,
            format!(
                "{what}, not a policy: a policy file is a mapping of `defaults` and `agents` (a file saved half-way \
                 looks like this, so it denies everything); write the policy, save it in one step, or remove the \
                 file to have none"
            ),
        )])
    };
    let root = match load(source) {
        Ok(Some(root)) => root,
        Ok(None) => return Err(not_a_policy("the file is empty")),
        Err(p) => return Err(invalid(vec![p])),
    };
    if matches!(root.value, Value::Null) {
        return Err(not_a_policy("the file holds nothing"));
    }
    if !matches!(root.value, Value::Map(_)) {
        return Err(invalid(vec![problem(
            root.line,
            root.column,
            "the file is not a mapping: a policy file is a mapping of `defaults` and `agents`; see docs/policy.md",
        )]));
    }
    if let Some(beyond) = nth_pattern(&root, MAX_RULES) {
        return Err(invalid(vec![problem(
            beyond.line,
            beyond.column,
            format!(
                "this file has more than {MAX_RULES} rules (the policy's rule limit); use globs that cover more \
                 paths each, or split what this file says between the workspace's and the user's file"
            ),
        )]));
    }
    let value = to_json(&root);
    let mut problems: Vec<Problem> = VALIDATOR
        .iter_errors(&value)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            let node = at(&root, &pointer);
            let place = if pointer.is_empty() { "the file".to_owned() } else { format!("`{pointer}`") };
            problem(
                node.line,
                node.column,
                format!("{place}: {e}; see docs/policy.md for the keys a policy takes"),
            )
        })
        .collect();
    if !problems.is_empty() {
        problems.sort_by_key(|p| (p.line, p.column));
        return Err(invalid(problems));
    }
    let mut sections = Sections { file: file.to_path_buf(), ..Sections::default() };
    let Value::Map(entries) = &root.value else {
        return Err(invalid(vec![problem(1, 1, "a policy file is a mapping")]));
    };
    for (key, node) in entries {
        match key.as_str() {
            "approval_timeout" => {
                if let Value::Str(text) = &node.value {
                    match crate::duration::parse(text) {
                        Ok(d) if !d.is_zero() => sections.approval_timeout = Some(d),
                        _ => problems.push(problem(
                            node.line,
                            node.column,
                            format!("`{text}` is not a duration; write one like `10m` or `1h`"),
                        )),
                    }
                }
            }
            "defaults" => sections.defaults = Some(section(file, source, node, &mut problems)),
            "agents" => {
                if let Value::Map(agents) = &node.value {
                    for (name, agent) in agents {
                        let normal = super::normalize_agent(name);
                        if !normal.is_empty() {
                            let s = section(file, source, agent, &mut problems);
                            if sections.agents.iter().any(|(n, _)| *n == normal) {
                                problems.push(problem(
                                    agent.line,
                                    agent.column,
                                    format!("agent `{name}` has two sections (names are compared in lower case); merge them"),
                                ));
                            }
                            sections.agents.push((normal, s));
                        } else {
                            problems.push(problem(
                                agent.line,
                                agent.column,
                                "an agent's name cannot be empty",
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(sections)
    } else {
        problems.sort_by_key(|p| (p.line, p.column));
        Err(invalid(problems))
    }
}

fn section(file: &Path, source: &str, node: &Node, problems: &mut Vec<Problem>) -> Section {
    let mut out = Section::default();
    let Value::Map(entries) = &node.value else { return out };
    for (key, value) in entries {
        if let Some(category) = Category::from_key(key) {
            let Value::Map(lists) = &value.value else { continue };
            for (which, items) in lists {
                let rules = rules(file, source, category, which, items, problems);
                let list = out.lists.entry(category).or_insert_with(RuleList::default);
                if which == "deny" {
                    list.deny = rules;
                } else {
                    list.allow = Some(rules);
                }
            }
        } else if key == "approve" {
            let Value::Map(lists) = &value.value else { continue };
            for (name, items) in lists {
                let Some(category) = Category::from_key(name) else { continue };
                let rules = rules(file, source, category, "approve", items, problems);
                out.lists.entry(category).or_insert_with(RuleList::default).approve = rules;
            }
        } else if key == "spend"
            && let Value::Map(limits) = &value.value
        {
            for (name, limit) in limits {
                if name == "daily_usd" {
                    let usd = match limit.value {
                        Value::Int(n) => n as f64,
                        Value::Float(f) => f,
                        _ => continue,
                    };
                    out.spend =
                        Some(Spend { daily_usd: usd, rule: located(file, source, limit.line, limit.column) });
                }
            }
        }
    }
    out
}

fn rules(
    file: &Path,
    source: &str,
    category: Category,
    which: &str,
    node: &Node,
    problems: &mut Vec<Problem>,
) -> Vec<Rule> {
    let Value::Seq(items) = &node.value else { return Vec::new() };
    let mut out = Vec::new();
    for item in items {
        let Value::Str(pattern) = &item.value else { continue };
        match Rule::new(category, pattern, located(file, source, item.line, item.column)) {
            Ok(rule) => out.push(rule),
            Err(message) => problems.push(problem(item.line, item.column, format!("{which}: {message}"))),
        }
    }
    out
}

fn located(file: &Path, source: &str, line: u32, column: u32) -> super::Location {
    let text = source.lines().nth(line.saturating_sub(1) as usize).unwrap_or("").trim();
    let text: String = text.chars().take(120).collect();
    super::Location { file: file.to_path_buf(), line, column, text }
}
