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
//! Conditions accept a template (`{{ steps.lint.outcome == 'failure' }}`) or a bare expression
//! (`always()`, `failure() or steps.x.outcome == 'failure'`), with the status functions
//! `success()`, `failure()`, `always()` and `cancelled()`, whose answers come from [`Status`].

use std::borrow::Cow;
use std::collections::BTreeSet;

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

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
        let mut message = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
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
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
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
        Templates { env }
    }
}

impl Templates {
    /// Renders `source` to text.
    pub fn render_str(&self, source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        Ok(self.env.render_str(source, Value::from(Serde(ctx)))?)
    }

    /// Renders a shell script: every interpolated value is single-quoted for `sh`.
    pub fn render_shell(&self, source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        let template = self.env.template_from_named_str(SHELL, source)?;
        Ok(template.render(Value::from(Serde(ctx)))?)
    }

    /// Renders every string inside `value`. A string that is exactly one `{{ expression }}`
    /// becomes the expression's value, keeping its JSON type.
    pub fn render_value(
        &self,
        value: &serde_json::Value,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Value, TemplateError> {
        Ok(match value {
            serde_json::Value::String(s) => match single_expression(s) {
                Some(expr) => {
                    let v = self.env.compile_expression(expr)?.eval(Value::from(Serde(ctx)))?;
                    if v.is_undefined() {
                        return Err(TemplateError {
                            message: format!("undefined value: `{expr}` is not defined"),
                        });
                    }
                    serde_json::to_value(&v).map_err(|e| TemplateError { message: e.to_string() })?
                }
                None if s.contains("{{") || s.contains("{%") => {
                    serde_json::Value::String(self.render_str(s, ctx)?)
                }
                None => value.clone(),
            },
            serde_json::Value::Array(items) => serde_json::Value::Array(
                items.iter().map(|v| self.render_value(v, ctx)).collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v, ctx)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Evaluates an `if:` condition.
    pub fn condition(
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
            return Ok(self.env.compile_expression(expr)?.eval(ctx)?.is_true());
        }
        if trimmed.contains("{{") || trimmed.contains("{%") {
            let text = self.env.render_str(trimmed, ctx)?;
            return Ok(!matches!(text.trim(), "" | "false" | "False" | "0" | "none" | "None"));
        }
        Ok(self.env.compile_expression(trimmed)?.eval(ctx)?.is_true())
    }

    /// Checks the syntax of a template (or, with `expression`, of a bare condition) and returns
    /// the variables it reads, as dotted paths (`steps.lint.outcome`).
    pub fn references(&self, source: &str, expression: bool) -> Result<BTreeSet<String>, TemplateError> {
        let trimmed = source.trim();
        let vars = match single_expression(trimmed) {
            Some(expr) => self.env.compile_expression(expr)?.undeclared_variables(true),
            None if expression && !(trimmed.contains("{{") || trimmed.contains("{%")) => {
                self.env.compile_expression(trimmed)?.undeclared_variables(true)
            }
            None => self.env.template_from_str(source)?.undeclared_variables(true),
        };
        Ok(vars
            .into_iter()
            .filter(|v| !matches!(v.as_str(), "success" | "failure" | "always" | "cancelled"))
            .collect())
    }
}

/// `{{ expr }}` with nothing around it, and no second `{{` inside.
fn single_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
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
