//! Templates in workflow definitions: `{{ trigger.path }}`, `{{ steps.read.output.content }}`,
//! `{{ inputs.who }}`, `{{ env.HOME }}`, and the conditions of `if:`.
//!
//! Rendering is strict: a reference to something that does not exist is an error, never an
//! empty string. A string that is exactly one `{{ expression }}` renders to the expression's own
//! JSON value (an object stays an object); any other string renders to text. Shell scripts
//! (`run: { shell: ... }`) are rendered with every interpolated value shell-quoted, so a trigger
//! path full of metacharacters reaches `sh -c` as one literal word. Argv steps render each
//! element on its own and never touch a shell at all.
//!
//! Rendering is bounded: every render has a budget of instructions ([`TemplateLimits::fuel`],
//! `[workflows] template_fuel`) and of output bytes ([`TemplateLimits::max_bytes`],
//! `[workflows] template_max_bytes`), which also bounds what the filters that grow a string
//! (`replace`, `indent`, `center`, `join`) may produce; `"x" * n` is capped by the engine itself.
//! A render past a limit is an error naming the limit and how to raise it. A template that can
//! build values larger than itself (statements, filters, `~`, `+`, `*`) renders in a process
//! with a capped address space (`[workflows] template_max_memory`, Linux only; see
//! [`super::render_process`]). Rendering is CPU work: the engine runs it on a blocking thread
//! under the step's timeout.
//!
//! Conditions accept a template (`{{ steps.lint.outcome == 'failure' }}`) or a bare expression
//! (`always()`, `failure() or steps.x.outcome == 'failure'`), with the status functions
//! `success()`, `failure()`, `always()` and `cancelled()`, whose answers come from [`Status`].

pub mod render_process;

use std::borrow::Cow;
use std::collections::BTreeSet;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use minijinja::value::{Kwargs, Serde};

use self::render_process::needs_process;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

/// What one render may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    /// Instructions one render may execute (`[workflows] template_fuel`). Default: 1,000,000.
    pub fuel: u64,
    /// Bytes one render may write, and the longest string a filter may make
    /// (`[workflows] template_max_bytes`). Default: 8 MiB.
    pub max_bytes: usize,
    /// The address space of a render process, in bytes (`[workflows] template_max_memory`;
    /// see [`super::render_process`]). Default: 512 MiB.
    pub max_memory: u64,
    /// How many render processes ACAS runs at once, all runs together
    /// (`[workflows] max_render_processes`); a render past it waits for one to end, under its
    /// step's timeout. Default: 4.
    pub max_processes: usize,
}

impl Default for TemplateLimits {
    fn default() -> TemplateLimits {
        TemplateLimits {
            fuel: 1_000_000,
            max_bytes: 8 * 1024 * 1024,
            max_memory: 512 * 1024 * 1024,
            max_processes: 4,
        }
    }
}

/// How deep macros and nested blocks may go.
const RECURSION_LIMIT: usize = 100;

/// What the status functions of a condition answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Status {
    /// Every dependency succeeded (or was skipped where that counts as success).
    pub success: bool,
    /// A dependency, or an earlier step of the run, failed.
    pub failure: bool,
    /// The run is being cancelled.
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
}

impl From<minijinja::Error> for TemplateError {
    fn from(e: minijinja::Error) -> Self {
        // Where a syntax error is, within the template (the file position is the template's).
        let kind = match e.line() {
            Some(line) if e.kind() == ErrorKind::SyntaxError => format!("{} at line {line}", e.kind()),
            _ => e.kind().to_string(),
        };
        let mut message = match e.detail() {
            Some(detail) => format!("{kind}: {detail}"),
            None => kind,
        };
        if let Some(source) = std::error::Error::source(&e) {
            message.push_str(&format!(": {source}"));
        }
        TemplateError { message }
    }
}

const SHELL: &str = "script.sh";
const STATUS_KEY: &str = "__acas_status";

/// The template engine, configured once.
pub struct Templates {
    env: Environment<'static>,
    limits: TemplateLimits,
    /// The delimiters and whitespace rules `env` compiles with.
    syntax: minijinja::syntax::SyntaxConfig,
    /// The `acas` binary that renders templates which can repeat values, in a process of their
    /// own; `None` renders everything here.
    program: Option<std::path::PathBuf>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new(TemplateLimits::default())
    }
}

impl Templates {
    /// The engine with `limits` on every render. Templates that can repeat values render in a
    /// process of their own when ACAS runs as the `acas` binary on Linux.
    pub fn new(limits: TemplateLimits) -> Templates {
        let mut templates = Templates::in_process(limits);
        templates.program = crate::process_tree::acas_program().cloned();
        templates
    }

    /// The engine with `limits` on every render, every template rendered in this process.
    pub fn in_process(limits: TemplateLimits) -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(limits.fuel));
        env.set_recursion_limit(RECURSION_LIMIT);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid");
        env.set_syntax(syntax.clone());
        bounded_filters(&mut env, limits.max_bytes);
        env.set_auto_escape_callback(|name| {
            if name == SHELL { AutoEscape::Custom(Cow::Borrowed("shell")) } else { AutoEscape::None }
        });
        env.set_formatter(|out, state, value| {
            // JSON spellings: `true`, `false`, and nothing for null (Jinja would write `True`,
            // `False` and `none`).
            let plain = match value.kind() {
                minijinja::value::ValueKind::Bool => Some(if value.is_true() { "true" } else { "false" }),
                minijinja::value::ValueKind::None => Some(""),
                _ => None,
            };
            if let Some(plain) = plain {
                return out.write_str(plain).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write").with_source(e)
                });
            }
            if matches!(state.auto_escape(), AutoEscape::Custom(name) if name == "shell") {
                let text = if value.is_safe() { value.to_string() } else { shell_quote(&value.to_string()) };
                out.write_str(&text).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write").with_source(e)
                })
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        for (name, pick) in [
            ("success", (|s: &Status| s.success) as fn(&Status) -> bool),
            ("failure", |s: &Status| s.failure),
            ("cancelled", |s: &Status| s.cancelled),
        ] {
            env.add_function(name, move |state: &minijinja::State| -> bool {
                let status = state.lookup(STATUS_KEY).unwrap_or_default();
                let flag = |key: &str| status.get_attr(key).map(|v| v.is_true()).unwrap_or(false);
                let s = Status {
                    success: flag("success"),
                    failure: flag("failure"),
                    cancelled: flag("cancelled"),
                };
                pick(&s)
            });
        }
        env.add_function("always", || true);
        Templates { env, limits, syntax, program: None }
    }

    /// Refuses, before it is compiled, a template whose constants the compiler would fold into
    /// values past the output limit (see [`super::template_constants`]). Every compile goes
    /// through here first.
    fn check_constants(&self, source: &str, expression: bool) -> Result<(), TemplateError> {
        use super::template_constants::{Refusal, check};
        match check(source, expression, self.syntax.clone(), self.limits.max_bytes as u64) {
            Ok(()) => Ok(()),
            Err(Refusal::Syntax(e)) => Err(self.error(e)),
            Err(Refusal::TooLarge { line, column }) => Err(TemplateError {
                message: format!(
                    "the constant at line {line}, column {column} of the template would be longer than \
                     the template output limit of {} bytes; make it smaller, or raise \
                     `template_max_bytes` under `[workflows]` in .acas/config.toml",
                    self.limits.max_bytes
                ),
            }),
            Err(Refusal::TooDeep { line, column }) => Err(TemplateError {
                message: format!(
                    "the expression at line {line}, column {column} of the template nests more than \
                     {} operators deep; split it with `{{% set %}}`",
                    super::template_constants::MAX_DEPTH
                ),
            }),
        }
    }

    /// The limits every render runs under.
    pub fn limits(&self) -> TemplateLimits {
        self.limits
    }

    /// Turns an engine error into one that names the limit it hit and how to raise it.
    fn error(&self, e: minijinja::Error) -> TemplateError {
        match e.kind() {
            ErrorKind::OutOfFuel => TemplateError {
                message: format!(
                    "the template ran past its limit of {} instructions; make it do less, or raise \
                     `template_fuel` under `[workflows]` in .acas/config.toml",
                    self.limits.fuel
                ),
            },
            ErrorKind::InvalidOperation if e.detail().is_some_and(|d| d.contains("recursion limit")) => {
                TemplateError {
                    message: format!(
                        "the template nests macros or blocks deeper than {RECURSION_LIMIT} levels; \
                         make it recurse less"
                    ),
                }
            }
            // `"x" * n` past the engine's own cap.
            ErrorKind::InvalidOperation
                if e.detail().is_some_and(|d| d.contains(TOO_LONG) || d.contains("too large")) =>
            {
                self.output_limit_error()
            }
            _ => TemplateError::from(e),
        }
    }

    fn output_limit_error(&self) -> TemplateError {
        TemplateError {
            message: format!(
                "the template's output passed its limit of {} bytes; make it produce less, or raise \
                 `template_max_bytes` under `[workflows]` in .acas/config.toml",
                self.limits.max_bytes
            ),
        }
    }

    fn render_template(
        &self,
        template: minijinja::Template<'_, '_>,
        ctx: &serde_json::Value,
    ) -> Result<String, TemplateError> {
        let mut out = Limited { bytes: Vec::new(), max: self.limits.max_bytes, over: Arc::default() };
        let over = out.over.clone();
        match template.render_captured_to(Value::from(Serde(ctx)), &mut out) {
            Ok(_) => String::from_utf8(out.bytes).map_err(|e| TemplateError { message: e.to_string() }),
            Err(_) if over.load(Ordering::Relaxed) => Err(self.output_limit_error()),
            Err(e) if e.detail().is_some_and(|d| d.contains(TOO_LONG)) => Err(self.output_limit_error()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The program to render `source` with, when it must render in a process of its own.
    fn process_for(&self, needs: impl FnOnce() -> bool) -> Option<&std::path::Path> {
        self.program.as_deref().filter(|_| needs())
    }

    /// Renders `source` to text.
    pub fn render_str(&self, source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        match self.process_for(|| needs_process(source, false)) {
            Some(program) => text(render_process::render(
                program,
                self.limits,
                render_process::Op::Str { source: source.to_owned() },
                ctx,
            )?),
            None => self.render_str_here(source, ctx),
        }
    }

    /// Renders a shell script: every interpolated value is single-quoted for `sh`.
    pub fn render_shell(&self, source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        match self.process_for(|| needs_process(source, false)) {
            Some(program) => text(render_process::render(
                program,
                self.limits,
                render_process::Op::Shell { source: source.to_owned() },
                ctx,
            )?),
            None => self.render_shell_here(source, ctx),
        }
    }

    /// Renders every string inside `value`. A string that is exactly one `{{ expression }}`
    /// becomes the expression's value, keeping its JSON type.
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Value, TemplateError> {
        match self.process_for(|| any_string(value, &|s| needs_process(s, false))) {
            Some(program) => render_process::render(
                program,
                self.limits,
                render_process::Op::Value { value: value.clone() },
                ctx,
            ),
            None => self.render_value_here(value, ctx),
        }
    }

    /// Evaluates an `if:` condition.
    pub fn condition(
        &self,
        condition: &str,
        ctx: &serde_json::Value,
        status: Status,
    ) -> Result<bool, TemplateError> {
        match self.process_for(|| needs_process(condition, true)) {
            Some(program) => {
                let op = render_process::Op::Condition {
                    source: condition.to_owned(),
                    success: status.success,
                    failure: status.failure,
                    cancelled: status.cancelled,
                };
                Ok(render_process::render(program, self.limits, op, ctx)?.as_bool().unwrap_or(false))
            }
            None => self.condition_here(condition, ctx, status),
        }
    }

    /// Renders `source` to text in this process.
    pub(super) fn render_str_here(
        &self,
        source: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, TemplateError> {
        self.check_constants(source, false)?;
        let template = self.env.template_from_str(source).map_err(|e| self.error(e))?;
        self.render_template(template, ctx)
    }

    /// Renders a shell script in this process.
    pub(super) fn render_shell_here(
        &self,
        source: &str,
        ctx: &serde_json::Value,
    ) -> Result<String, TemplateError> {
        self.check_constants(source, false)?;
        let template = self.env.template_from_named_str(SHELL, source).map_err(|e| self.error(e))?;
        self.render_template(template, ctx)
    }

    /// Evaluates one expression; a string result longer than the output limit is an error.
    fn eval(&self, expr: &str, ctx: Value) -> Result<Value, TemplateError> {
        self.check_constants(expr, true)?;
        let value = self.env.compile_expression(expr).map_err(|e| self.error(e))?.eval(ctx).map_err(|e| {
            if e.detail().is_some_and(|d| d.contains(TOO_LONG)) {
                self.output_limit_error()
            } else {
                self.error(e)
            }
        })?;
        if value.as_str().is_some_and(|s| s.len() > self.limits.max_bytes) {
            return Err(self.output_limit_error());
        }
        Ok(value)
    }

    /// Renders every string inside `value` in this process.
    pub(super) fn render_value_here(
        &self,
        value: &serde_json::Value,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Value, TemplateError> {
        Ok(match value {
            serde_json::Value::String(s) => match single_expression(s) {
                Some(expr) => {
                    let v = self.eval(expr, Value::from(Serde(ctx)))?;
                    if v.is_undefined() {
                        return Err(TemplateError {
                            message: format!("undefined value: `{expr}` is not defined"),
                        });
                    }
                    serde_json::to_value(&v).map_err(|e| TemplateError { message: e.to_string() })?
                }
                None if s.contains("{{") || s.contains("{%") => {
                    serde_json::Value::String(self.render_str_here(s, ctx)?)
                }
                None => value.clone(),
            },
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items.iter().map(|v| self.render_value_here(v, ctx)).collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => {
                serde_json::Value::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), self.render_value_here(v, ctx)?)))
                        .collect::<Result<_, TemplateError>>()?,
                )
            }
            other => other.clone(),
        })
    }

    /// Evaluates an `if:` condition in this process.
    pub(super) fn condition_here(
        &self,
        condition: &str,
        ctx: &serde_json::Value,
        status: Status,
    ) -> Result<bool, TemplateError> {
        let mut ctx = ctx.clone();
        if let Some(map) = ctx.as_object_mut() {
            map.insert(
                STATUS_KEY.to_owned(),
                serde_json::json!({
                    "success": status.success,
                    "failure": status.failure,
                    "cancelled": status.cancelled,
                }),
            );
        }
        let ctx = Value::from(Serde(&ctx));
        let trimmed = condition.trim();
        if let Some(expr) = single_expression(trimmed) {
            return Ok(self.eval(expr, ctx)?.is_true());
        }
        if trimmed.contains("{{") || trimmed.contains("{%") {
            self.check_constants(trimmed, false)?;
            let template = self.env.template_from_str(trimmed).map_err(|e| self.error(e))?;
            let mut out = Limited { bytes: Vec::new(), max: self.limits.max_bytes, over: Arc::default() };
            let over = out.over.clone();
            let text = match template.render_captured_to(ctx, &mut out) {
                Ok(_) => String::from_utf8_lossy(&out.bytes).into_owned(),
                Err(_) if over.load(Ordering::Relaxed) => return Err(self.output_limit_error()),
                Err(e) => return Err(self.error(e)),
            };
            return Ok(!matches!(text.trim(), "" | "false" | "False" | "0" | "none" | "None"));
        }
        Ok(self.eval(trimmed, ctx)?.is_true())
    }

    /// Checks the syntax of a template (or, with `expression`, of a bare condition) and returns
    /// the variables it reads, as dotted paths (`steps.lint.outcome`).
    pub fn references(&self, source: &str, expression: bool) -> Result<BTreeSet<String>, TemplateError> {
        let trimmed = source.trim();
        let vars = match single_expression(trimmed) {
            Some(expr) => {
                self.check_constants(expr, true)?;
                self.env.compile_expression(expr)?.undeclared_variables(true)
            }
            None if expression && !(trimmed.contains("{{") || trimmed.contains("{%")) => {
                self.check_constants(trimmed, true)?;
                self.env.compile_expression(trimmed)?.undeclared_variables(true)
            }
            None => {
                self.check_constants(source, false)?;
                self.env.template_from_str(source)?.undeclared_variables(true)
            }
        };
        Ok(vars
            .into_iter()
            .filter(|v| {
                // The status functions and the engine's own global functions.
                !matches!(
                    v.as_str(),
                    "success" | "failure" | "always" | "cancelled" | "range" | "dict" | "namespace"
                )
            })
            .collect())
    }
}

/// An `io::Write` that refuses to hold more than `max` bytes.
struct Limited {
    bytes: Vec<u8>,
    max: usize,
    over: Arc<AtomicBool>,
}

impl std::io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.max {
            self.over.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("template output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The detail of the error a bounded filter returns; mapped to the output limit's message.
const TOO_LONG: &str = "the result would be longer than the template output limit";

fn too_long() -> minijinja::Error {
    minijinja::Error::new(ErrorKind::InvalidOperation, TOO_LONG)
}

/// Replaces the filters that can make a string much longer than their input with versions
/// that refuse, before allocating, a result longer than `max` bytes.
fn bounded_filters(env: &mut Environment<'static>, max: usize) {
    env.add_filter(
        "replace",
        move |value: String, from: String, to: String| -> Result<String, minijinja::Error> {
            let count = if from.is_empty() {
                value.chars().count() + 1
            } else {
                value.matches(from.as_str()).count()
            };
            let grown = count.checked_mul(to.len()).and_then(|n| n.checked_add(value.len()));
            if grown.is_none_or(|n| n.saturating_sub(count * from.len()) > max) {
                return Err(too_long());
            }
            Ok(value.replace(from.as_str(), &to))
        },
    );
    env.add_filter(
        "indent",
        move |value: String,
              width: Option<usize>,
              first: Option<bool>,
              blank: Option<bool>,
              kwargs: Kwargs|
              -> Result<String, minijinja::Error> {
            let width = match width {
                Some(width) => width,
                None => kwargs.get::<Option<usize>>("width")?.unwrap_or(4),
            };
            let first = first.or(kwargs.get::<Option<bool>>("first")?).unwrap_or(false);
            let blank = blank.or(kwargs.get::<Option<bool>>("blank")?).unwrap_or(false);
            kwargs.assert_all_used()?;
            let lines = value.lines().count() + 1;
            if lines.checked_mul(width).and_then(|n| n.checked_add(value.len())).is_none_or(|n| n > max) {
                return Err(too_long());
            }
            let pad = " ".repeat(width);
            let mut out = String::with_capacity(value.len());
            for (i, line) in value.trim_end_matches(['\n', '\r']).split('\n').enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                if (i > 0 || first) && (blank || !line.trim().is_empty()) {
                    out.push_str(&pad);
                }
                out.push_str(line);
            }
            Ok(out)
        },
    );
    env.add_filter(
        "center",
        move |value: String, width: Option<usize>| -> Result<String, minijinja::Error> {
            let width = width.unwrap_or(80);
            if width > max {
                return Err(too_long());
            }
            let len = value.chars().count();
            if len >= width {
                return Ok(value);
            }
            let left = (width - len) / 2;
            Ok(format!("{}{value}{}", " ".repeat(left), " ".repeat(width - len - left)))
        },
    );
    env.add_filter("join", move |value: Value, joiner: Option<String>| -> Result<String, minijinja::Error> {
        let joiner = joiner.unwrap_or_default();
        let mut out = String::new();
        let items: Vec<Value> = match value.as_str() {
            Some(s) => s.chars().map(Value::from).collect(),
            None => value.try_iter()?.collect(),
        };
        for (i, item) in items.iter().enumerate() {
            let text = match item.as_str() {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(item.to_string()),
            };
            if out.len() + joiner.len() + text.len() > max {
                return Err(too_long());
            }
            if i > 0 {
                out.push_str(&joiner);
            }
            out.push_str(&text);
        }
        Ok(out)
    });
}

/// The text a render process returned for a string render.
fn text(value: serde_json::Value) -> Result<String, TemplateError> {
    match value {
        serde_json::Value::String(s) => Ok(s),
        other => Err(TemplateError {
            message: format!("the template render process returned {other} instead of text"),
        }),
    }
}

/// Whether a string inside `value` satisfies `pred`.
fn any_string(value: &serde_json::Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match value {
        serde_json::Value::String(s) => pred(s),
        serde_json::Value::Array(items) => items.iter().any(|v| any_string(v, pred)),
        serde_json::Value::Object(map) => map.values().any(|v| any_string(v, pred)),
        _ => false,
    }
}

/// `{{ expr }}` with nothing around it, and no second `{{` inside.
fn single_expression(s: &str) -> Option<&str> {
    // Exactly one `{{ … }}` and nothing around it: text around it (a trailing newline) is kept,
    // which only rendering as text does.
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

/// Quotes `s` as one word for POSIX `sh`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b)) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> serde_json::Value {
        json!({
            "trigger": {"path": "src/a b;$(rm -rf ~)'.py", "kind": "modified"},
            "inputs": {"who": "world", "n": 3},
            "steps": {"lint": {"outcome": "failure", "output": {"exit_code": 1}}},
        })
    }

    #[test]
    fn renders_text_and_values() {
        let t = Templates::default();
        assert_eq!(t.render_str("hello {{ inputs.who }}", &ctx()).unwrap(), "hello world");
        // Booleans and null are written as in JSON.
        let flags = json!({"yes": true, "no": false, "nothing": null});
        assert_eq!(t.render_str("{{ yes }} {{ no }} [{{ nothing }}]", &flags).unwrap(), "true false []");
        let v = t.render_value(&json!({"n": "{{ inputs.n }}", "s": "n={{ inputs.n }}", "k": [true]}), &ctx());
        assert_eq!(v.unwrap(), json!({"n": 3, "s": "n=3", "k": [true]}));
        let obj = t.render_value(&json!("{{ steps.lint.output }}"), &ctx()).unwrap();
        assert_eq!(obj, json!({"exit_code": 1}));
    }

    #[test]
    fn undefined_references_are_errors() {
        let t = Templates::default();
        let e = t.render_str("{{ inputs.nobody }}", &ctx()).unwrap_err();
        assert!(e.message.contains("undefined"), "{e}");
        assert!(t.render_value(&json!("{{ steps.missing.output }}"), &ctx()).is_err());
        // A missing last attribute is an error too, not a null.
        let e = t.render_value(&json!("{{ steps.lint.output.nothing }}"), &ctx()).unwrap_err();
        assert!(e.message.contains("steps.lint.output.nothing"), "{e}");
    }

    #[test]
    fn shell_scripts_quote_every_value() {
        let t = Templates::default();
        let script = t.render_shell("ruff check {{ trigger.path }}", &ctx()).unwrap();
        assert_eq!(script, r#"ruff check 'src/a b;$(rm -rf ~)'\''.py'"#);
        let out =
            std::process::Command::new("sh").args(["-c", &format!("printf %s {}", &script[11..])]).output();
        assert_eq!(String::from_utf8(out.unwrap().stdout).unwrap(), "src/a b;$(rm -rf ~)'.py");
    }

    #[test]
    fn conditions() {
        let t = Templates::default();
        let ok = Status { success: true, ..Status::default() };
        let failed = Status { failure: true, ..Status::default() };
        assert!(t.condition("{{ steps.lint.outcome == 'failure' }}", &ctx(), ok).unwrap());
        assert!(!t.condition("steps.lint.outcome == 'success'", &ctx(), ok).unwrap());
        assert!(t.condition("always()", &ctx(), failed).unwrap());
        assert!(t.condition("failure()", &ctx(), failed).unwrap());
        assert!(!t.condition("success()", &ctx(), failed).unwrap());
        assert!(!t.condition("cancelled()", &ctx(), failed).unwrap());
        assert!(t.condition("success() and inputs.n > 2", &ctx(), ok).unwrap());
    }

    #[test]
    fn trailing_newlines_are_kept() {
        let t = Templates::default();
        let ctx = json!({"run": {"id": 2}});
        assert_eq!(t.render_str("run {{ run.id }}\n", &ctx).unwrap(), "run 2\n");
        assert_eq!(t.render_shell("echo {{ run.id }}\n", &ctx).unwrap(), "echo 2\n");
        // A lone expression followed by a newline (a YAML block scalar) is text, not the value.
        assert_eq!(t.render_value(&json!("{{ run.id }}\n"), &ctx).unwrap(), json!("2\n"));
        assert_eq!(t.render_value(&json!("{{ run.id }}\n\n"), &ctx).unwrap(), json!("2\n\n"));
        assert_eq!(t.render_value(&json!("{{ run.id }}"), &ctx).unwrap(), json!(2));
    }

    /// Hostile templates stop at a limit that names the setting to raise, and allocate no more
    /// than the limits allow on the way.
    #[test]
    fn renders_stop_at_their_limits() {
        let limits = TemplateLimits { fuel: 100_000, max_bytes: 64 * 1024, ..TemplateLimits::default() };
        let t = Templates::new(limits);
        let ctx = json!({"s": "xx"});
        let fuel = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let chain = format!("{{{{ s{} }}}}", "|replace('x', 'xxxxxxxxxx')".repeat(12));
        for (source, limit) in [
            (fuel, "template_fuel"),
            ("{% for i in range(100000) %}{% if i < 0 %}x{% endif %}{% endfor %}", "template_fuel"),
            ("{{ 'x' * 60000 }}{{ 'x' * 60000 }}", "template_max_bytes"),
            ("{{ 'x' * 10**9 }}", "template_max_bytes"),
            (&chain, "template_max_bytes"),
            ("{{ s|indent(100000000) }}", "template_max_bytes"),
            ("{{ s|center(100000000) }}", "template_max_bytes"),
            ("{{ [s * 30000, s * 30000]|join('') }}", "template_max_bytes"),
            ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nests macros"),
        ] {
            let error = t.render_str(source, &ctx).unwrap_err();
            assert!(error.message.contains(limit), "{source}: {error}");
            // The same limits hold for single expressions and conditions.
            if let Some(expr) = single_expression(source) {
                let error = t.render_value(&json!(format!("{{{{ {expr} }}}}")), &ctx).unwrap_err();
                assert!(error.message.contains(limit), "{source}: {error}");
            }
        }
        let error = t.condition("{{ s|replace('x', 'x' * 60000) }}", &ctx, Status::default()).unwrap_err();
        assert!(error.message.contains("template_max_bytes"), "{error}");
        // Within the limits, the bounded filters behave as the built-in ones.
        assert_eq!(t.render_str("{{ 'a-b'|replace('-', '+') }}", &ctx).unwrap(), "a+b");
        assert_eq!(t.render_str("{{ 'a\nb'|indent(2) }}", &ctx).unwrap(), "a\n  b");
        assert_eq!(t.render_str("{{ 'ab'|center(6) }}", &ctx).unwrap(), "  ab  ");
        assert_eq!(t.render_str("{{ [1, 'b']|join(', ') }}", &ctx).unwrap(), "1, b");
    }

    #[test]
    fn references_are_dotted_paths() {
        let t = Templates::default();
        let refs =
            t.references("Review {{ steps.read.output.content }} for {{ inputs.who }}", false).unwrap();
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["inputs.who", "steps.read.output.content"]);
        let refs = t.references("always() or steps.lint.outcome == 'failure'", true).unwrap();
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["steps.lint.outcome"]);
        assert!(t.references("{{ unclosed", false).is_err());
    }
}
