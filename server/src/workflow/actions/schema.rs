//! Parameter schemas: one declarative table per action ([`Spec`]), which drives the checks made
//! before a run ([`check`]), the checks made again after rendering, and the action reference in
//! `docs/workflows.md` ([`docs`]).
//!
//! It knows JSON types, not what any action does with its parameters.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::ParamProblem;

/// The JSON a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    String,
    /// Text: a string, or a number or boolean taken as its text.
    Text,
    /// A non-negative integer.
    Integer,
    Boolean,
    /// A number of seconds, or a string such as `500ms`, `30s`, `5m`, `1h`.
    Duration,
    /// A list of strings.
    StringList,
    /// An object whose values are strings.
    StringMap,
    /// An HTTP status code, or a list of them.
    Statuses,
    /// `true` (any JSON object) or a JSON Schema (an object).
    JsonRequest,
    /// Any JSON value.
    Any,
    /// One of these strings.
    Choice(&'static [&'static str]),
}

impl Kind {
    /// How the type is written in the docs.
    pub fn describe(self) -> String {
        match self {
            Kind::String => "string".into(),
            Kind::Text => "text".into(),
            Kind::Integer => "integer".into(),
            Kind::Boolean => "boolean".into(),
            Kind::Duration => "duration".into(),
            Kind::StringList => "list of strings".into(),
            Kind::StringMap => "map of strings".into(),
            Kind::Statuses => "integer or list of integers".into(),
            Kind::JsonRequest => "boolean or JSON Schema".into(),
            Kind::Any => "any JSON".into(),
            Kind::Choice(choices) => {
                choices.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(" \\| ")
            }
        }
    }

    /// Whether `value` has this type. With `templates`, a string holding a template stands for
    /// any value, wherever it appears, since it is only rendered at run time.
    fn accepts(self, value: &Value, templates: bool) -> bool {
        let template = |v: &Value| templates && v.as_str().is_some_and(is_template);
        if template(value) {
            return true;
        }
        match self {
            Kind::String => value.is_string(),
            Kind::Text => value.is_string() || value.is_number() || value.is_boolean(),
            Kind::Integer => value.is_u64(),
            Kind::Boolean => value.is_boolean(),
            Kind::Duration => value
                .as_str()
                .map_or(value.as_f64().is_some_and(|s| crate::duration::from_secs_f64(s).is_ok()), |s| {
                    parse_duration(s).is_some()
                }),
            Kind::StringList => {
                value.as_array().is_some_and(|items| items.iter().all(|v| v.is_string() || template(v)))
            }
            Kind::StringMap => {
                value.as_object().is_some_and(|map| map.values().all(|v| v.is_string() || template(v)))
            }
            Kind::Statuses => match value {
                Value::Array(items) => items.iter().all(|v| is_status(v) || template(v)),
                other => is_status(other),
            },
            Kind::JsonRequest => value.is_boolean() || value.is_object(),
            Kind::Any => true,
            Kind::Choice(choices) => value.as_str().is_some_and(|s| choices.contains(&s)),
        }
    }
}

fn is_status(value: &Value) -> bool {
    value.as_u64().is_some_and(|code| (100..=599).contains(&code))
}

/// Whether a string holds a template, rendered at run time.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    crate::duration::parse(s).ok()
}

/// One parameter of an action.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// The default, as written in the docs.
    pub default: Option<&'static str>,
    pub description: &'static str,
    /// Rendered by the action itself, once per item, rather than by the engine before the run
    /// (`data.transform`'s `map`, whose templates read `item`).
    pub late: bool,
}

impl Param {
    pub const fn required(name: &'static str, kind: Kind, description: &'static str) -> Param {
        Param { name, kind, required: true, default: None, description, late: false }
    }

    pub const fn optional(
        name: &'static str,
        kind: Kind,
        default: Option<&'static str>,
        description: &'static str,
    ) -> Param {
        Param { name, kind, required: false, default, description, late: false }
    }

    pub const fn late(self) -> Param {
        Param { late: true, ..self }
    }
}

/// Parameters of which at most one may be given; with `required`, exactly one.
#[derive(Debug, Clone, Copy)]
pub struct Exclusive {
    pub names: &'static [&'static str],
    pub required: bool,
}

/// An action's parameters, what it returns, and what it does, in one table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    /// What the action does, in a sentence or two of Markdown.
    pub summary: &'static str,
    pub params: &'static [Param],
    pub exclusive: &'static [Exclusive],
    /// The output, as a Markdown description of its JSON.
    pub output: &'static str,
}

impl Spec {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Checks `with` against `spec`. With `templates`, strings holding templates are only checked
/// for presence; without, every value is checked as it is.
pub fn check(spec: &Spec, with: &Map<String, Value>, templates: bool) -> Vec<ParamProblem> {
    let mut problems = Vec::new();
    let problem = |key: &str, message: String| ParamProblem { key: key.to_owned(), message };
    for (key, value) in with {
        let Some(param) = spec.param(key) else {
            let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            let message = match did_you_mean(key, &names) {
                Some(near) => format!("`{}` has no parameter `{key}`; did you mean `{near}`?", spec.name),
                None if names.is_empty() => format!("`{}` takes no parameters", spec.name),
                None => format!("`{}` has no parameter `{key}`; it takes {}", spec.name, list(&names, "and")),
            };
            problems.push(problem(key, message));
            continue;
        };
        if param.late || param.kind.accepts(value, templates) {
            continue;
        }
        problems
            .push(problem(key, format!("`{key}` must be {}, not {}", article(param.kind), json_type(value))));
    }
    for param in spec.params.iter().filter(|p| p.required) {
        if !with.contains_key(param.name) {
            problems.push(problem(param.name, format!("`{}` needs `{}`", spec.name, param.name)));
        }
    }
    for group in spec.exclusive {
        let given: Vec<&str> = group.names.iter().copied().filter(|n| with.contains_key(*n)).collect();
        if given.len() > 1 {
            problems.push(problem(given[1], format!("give only one of {}", list(&given, "and"))));
        } else if given.is_empty() && group.required {
            problems.push(problem("", format!("`{}` needs {}", spec.name, list(group.names, "or"))));
        }
    }
    problems
}

fn article(kind: Kind) -> String {
    match kind {
        Kind::String => "a string".into(),
        Kind::Text => "text (a string, number or boolean)".into(),
        Kind::Integer => "a non-negative integer".into(),
        Kind::Boolean => "`true` or `false`".into(),
        Kind::Duration => "a duration such as `30s`, `500ms` or `5m`, or a number of seconds".into(),
        Kind::StringList => "a list of strings".into(),
        Kind::StringMap => "a map from names to strings".into(),
        Kind::Statuses => "an HTTP status (100 to 599) or a list of them".into(),
        Kind::JsonRequest => "`true` or a JSON Schema object".into(),
        Kind::Any => "any JSON value".into(),
        Kind::Choice(choices) => format!("one of {}", list(choices, "or")),
    }
}

/// `a string`, `a list`, ... for error messages.
pub fn json_type(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// `` `a`, `b` and `c` ``.
fn list(names: &[&str], conjunction: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

/// The candidate nearest to `word`, when it is near enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    crate::workflow::parse::suggest(word, candidates.iter().copied())
}

/// The action reference: one subsection per action, with its parameter table and output.
pub fn docs(specs: &[Spec]) -> String {
    let mut out = String::new();
    out.push_str(
        "Every step with `uses:` runs one of these actions with its `with:` parameters. Parameters \
         are checked before any run: unknown names, missing required ones and literal values of \
         the wrong type are errors. Values holding templates are checked again once rendered. A \
         *duration* is a number of seconds or a string such as `500ms`, `30s`, `5m`, `1h`; *text* \
         is a string, or a number or boolean taken as its text.\n\nPaths are workspace-relative, or \
         absolute inside the workspace. A path whose `..` climbs out of the workspace, an absolute \
         path elsewhere, and a path going through a symlink (at any component, the last one \
         included when reading or writing) that leads outside the workspace or nowhere are \
         refused. `..` is applied to the text of the path, never through a symlink. Symlinks \
         whose target stays inside the workspace work. File actions open, create, move and \
         delete relative to the workspace's directory handle, so the operating system refuses a \
         path that leaves the workspace at the moment it is used: if a directory is swapped for \
         a symlink to elsewhere while a step runs, the action fails and nothing outside is \
         touched. ACAS's own files (`.acas/state.db` and its `-wal`, `-shm` and `-journal` \
         files) and the `.acas` directory itself cannot be written, appended to, copied over, \
         moved or deleted by file actions, by any path or link: the step fails with an error \
         naming the file. The rest of `.acas/` (workflows, plans, configuration) is yours.\n",
    );
    for spec in specs {
        let _ = write!(out, "\n### `{}`\n\n{}\n\n", spec.name, spec.summary);
        if spec.params.is_empty() {
            out.push_str("No parameters.\n\n");
        } else {
            out.push_str("| Parameter | Type | Required | Default | Description |\n");
            out.push_str("|---|---|---|---|---|\n");
            for p in spec.params {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} |",
                    p.name,
                    p.kind.describe(),
                    if p.required { "yes" } else { "no" },
                    p.default.map(|d| format!("`{d}`")).unwrap_or_else(|| "—".into()),
                    p.description.replace('|', "\\|"),
                );
            }
            out.push('\n');
        }
        for group in spec.exclusive {
            let rule = if group.required { "Exactly one" } else { "At most one" };
            let _ = writeln!(out, "{rule} of {} may be given.\n", list(group.names, "and"));
        }
        let _ = writeln!(out, "**Output:** {}", spec.output);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: Spec = Spec {
        name: "demo.act",
        summary: "Demo.",
        params: &[
            Param::required("path", Kind::String, "A path."),
            Param::optional("max_bytes", Kind::Integer, Some("10"), "A limit."),
            Param::optional("headers", Kind::StringMap, None, "Headers."),
            Param::optional("level", Kind::Choice(&["info", "error"]), Some("info"), "Level."),
            Param::optional("body", Kind::Text, None, "Body."),
            Param::optional("json", Kind::Any, None, "JSON."),
            Param::optional("timeout", Kind::Duration, None, "Timeout."),
            Param::optional("map", Kind::Any, None, "Map.").late(),
        ],
        exclusive: &[Exclusive { names: &["body", "json"], required: false }],
        output: "Nothing.",
    };

    fn check_literal(with: Value, expected: &[(&str, &str)]) {
        let with = with.as_object().unwrap().clone();
        let mut got: Vec<(String, String)> =
            check(&SPEC, &with, true).into_iter().map(|p| (p.key, p.message)).collect();
        let mut expected: Vec<(String, String)> =
            expected.iter().map(|(k, m)| (k.to_string(), m.to_string())).collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{with:?}");
    }

    #[test]
    fn parameters_are_checked_against_the_table() {
        check_literal(json!({"path": "a", "max_bytes": 3, "level": "error", "timeout": "30s"}), &[]);
        check_literal(
            json!({"pth": "a"}),
            &[
                ("pth", "`demo.act` has no parameter `pth`; did you mean `path`?"),
                ("path", "`demo.act` needs `path`"),
            ],
        );
        check_literal(
            json!({"path": "a", "colour": 1}),
            &[(
                "colour",
                "`demo.act` has no parameter `colour`; it takes `path`, `max_bytes`, `headers`, `level`, `body`, `json`, `timeout` and `map`",
            )],
        );
        check_literal(
            json!({"path": 3, "max_bytes": "ten", "level": "loud", "timeout": "soon"}),
            &[
                ("level", "`level` must be one of `info` or `error`, not the string \"loud\""),
                ("max_bytes", "`max_bytes` must be a non-negative integer, not the string \"ten\""),
                ("path", "`path` must be a string, not the number 3"),
                (
                    "timeout",
                    "`timeout` must be a duration such as `30s`, `500ms` or `5m`, or a number of seconds, not the string \"soon\"",
                ),
            ],
        );
        check_literal(
            json!({"path": "a", "headers": {"A": "b", "C": 1}}),
            &[("headers", "`headers` must be a map from names to strings, not an object")],
        );
        check_literal(
            json!({"path": "a", "body": "x", "json": {}}),
            &[("json", "give only one of `body` and `json`")],
        );
    }

    #[test]
    fn templates_are_only_checked_for_presence_until_rendered() {
        let with = json!({"path": "a", "max_bytes": "{{ inputs.n }}", "headers": {"A": "{{ env.T }}"}, "map": {"x": 1}});
        let with = with.as_object().unwrap();
        assert_eq!(check(&SPEC, with, true), []);
        let rendered = check(&SPEC, with, false);
        assert_eq!(rendered.len(), 1, "{rendered:?}");
        assert_eq!(rendered[0].key, "max_bytes");
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        for (text, expected) in [
            ("500ms", Some(Duration::from_millis(500))),
            ("30s", Some(Duration::from_secs(30))),
            ("30", Some(Duration::from_secs(30))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("5m", Some(Duration::from_secs(300))),
            ("1h", Some(Duration::from_secs(3600))),
            ("soon", None),
            ("5 days", None),
            ("", None),
        ] {
            assert_eq!(parse_duration(text), expected, "{text}");
        }
    }

    #[test]
    fn near_names_are_suggested() {
        let names = ["path", "max_bytes", "create_dirs"];
        assert_eq!(did_you_mean("paht", &names), Some("path"));
        assert_eq!(did_you_mean("maxbytes", &names), Some("max_bytes"));
        assert_eq!(did_you_mean("create_dir", &names), Some("create_dirs"));
        assert_eq!(did_you_mean("colour", &names), None);
    }
}
