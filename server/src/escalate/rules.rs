//! When to ask an AI provider about a diagnostic.
//!
//! Rules come from `[[rules]]` in `.acas/config.toml`; the first rule whose filters all match a
//! diagnostic decides: ignore it, wait, escalate it to a provider chain, or trigger a workflow.
//! Time conditions (how long the diagnostic has persisted, how long the editor has been idle)
//! turn a match into "wait until" rather than "no". A diagnostic on the line being edited never
//! escalates automatically, whatever the rules say. With no rules, [`default_rules`] apply:
//! syntax errors never escalate on their own; other errors escalate once they have persisted 30 s
//! with the editor idle for 5 s. Every diagnostic can still be escalated by hand.
//!
//! This module decides; it sends nothing and knows nothing of providers or editors.

use std::time::Duration;

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

/// What a matching rule asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Ignore,
    Wait,
    Escalate,
    Workflow,
}

/// One `[[rules]]` entry as written in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub category: Option<String>,
    pub severity: Option<String>,
    pub source: Option<String>,
    /// A glob over the workspace-relative path (`src/**/*.rs`).
    pub path: Option<String>,
    /// How long the diagnostic must have persisted, as `30s`, `5m`.
    pub persists: Option<String>,
    /// How many times it must have appeared.
    pub repeats: Option<u64>,
    /// How long the editor must have been idle, as `5s`.
    pub idle: Option<String>,
    pub action: Option<Action>,
    /// Provider names, in order, for `escalate`; empty means every configured provider.
    #[serde(default)]
    pub providers: Vec<String>,
    /// Workflow name, for `workflow`.
    pub workflow: Option<String>,
}

/// A rule ready to match.
#[derive(Debug, Clone)]
pub struct Rule {
    category: Option<String>,
    severity: Option<String>,
    source: Option<String>,
    path: Option<GlobMatcher>,
    persists: Duration,
    repeats: u64,
    idle: Duration,
    action: Action,
    providers: Vec<String>,
    workflow: Option<String>,
}

/// A rule that cannot be used, with the index of its `[[rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {}: {message}", index + 1)]
pub struct RuleError {
    pub index: usize,
    pub message: String,
}

impl Rule {
    pub fn from_config(index: usize, config: &RuleConfig) -> Result<Rule, RuleError> {
        let error = |message: String| RuleError { index, message };
        let duration = |field: &str, value: &Option<String>| -> Result<Duration, RuleError> {
            match value {
                None => Ok(Duration::ZERO),
                Some(text) => parse_duration(text).map_err(|e| error(format!("`{field}`: {e}"))),
            }
        };
        let path = match &config.path {
            None => None,
            Some(glob) => Some(Glob::new(glob).map_err(|e| error(format!("`path`: {e}")))?.compile_matcher()),
        };
        let action = config.action.clone().unwrap_or(Action::Escalate);
        if action == Action::Workflow && config.workflow.is_none() {
            return Err(error("`action = \"workflow\"` needs `workflow = \"NAME\"`".to_owned()));
        }
        if let Some(severity) = &config.severity
            && !["error", "warning", "information", "hint"].contains(&severity.as_str())
        {
            return Err(error(format!(
                "`severity` must be error, warning, information or hint, not `{severity}`"
            )));
        }
        Ok(Rule {
            category: config.category.clone(),
            severity: config.severity.clone(),
            source: config.source.clone(),
            path,
            persists: duration("persists", &config.persists)?,
            repeats: config.repeats.unwrap_or(0),
            idle: duration("idle", &config.idle)?,
            action,
            providers: config.providers.clone(),
            workflow: config.workflow.clone(),
        })
    }

    fn matches(&self, d: &Facts<'_>) -> bool {
        self.category.as_deref().is_none_or(|c| c == d.category)
            && self.severity.as_deref().is_none_or(|s| s == d.severity)
            && self.source.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(d.source))
            && self.path.as_ref().is_none_or(|g| g.is_match(d.path))
    }
}

/// The rules in force when the configuration has none.
pub fn default_rules() -> Vec<Rule> {
    let syntax =
        RuleConfig { category: Some("syntax".into()), action: Some(Action::Ignore), ..Default::default() };
    let errors = RuleConfig {
        severity: Some("error".into()),
        persists: Some("30s".into()),
        idle: Some("5s".into()),
        action: Some(Action::Escalate),
        ..Default::default()
    };
    let rest = RuleConfig { action: Some(Action::Ignore), ..Default::default() };
    [syntax, errors, rest]
        .iter()
        .enumerate()
        .map(|(i, c)| Rule::from_config(i, c).expect("the default rules are valid"))
        .collect()
}

/// What is known about one diagnostic when deciding. Times are durations, so that deciding
/// needs no clock.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub category: &'a str,
    pub severity: &'a str,
    pub source: &'a str,
    pub path: &'a str,
    /// Zero-based line of the diagnostic.
    pub line: u32,
    /// How long it has been present without a break.
    pub persisted: Duration,
    /// How many times it has appeared.
    pub occurrences: u64,
    /// Time since the last edit anywhere in the workspace.
    pub idle: Duration,
    /// The file and line of the last edit, while the user is typing there.
    pub editing: Option<(&'a str, u32)>,
}

/// The outcome for one diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Ignore,
    /// Ask again after this long (persistence or idleness not reached yet).
    WaitFor(Duration),
    /// Wait with no deadline: only a manual request escalates it.
    Hold,
    Escalate {
        providers: Vec<String>,
    },
    Workflow {
        name: String,
    },
}

/// How far from the line being edited a diagnostic counts as "on it".
const EDITING_LINES: u32 = 1;

pub fn decide(rules: &[Rule], facts: &Facts<'_>) -> Decision {
    let Some(rule) = rules.iter().find(|r| r.matches(facts)) else {
        return Decision::Ignore;
    };
    match rule.action {
        Action::Ignore => return Decision::Ignore,
        Action::Wait => return Decision::Hold,
        Action::Escalate | Action::Workflow => {}
    }
    if facts.occurrences < rule.repeats {
        return Decision::Hold;
    }
    // Never on the line being typed: wait for the editor to go idle there.
    let typing_here = facts
        .editing
        .is_some_and(|(path, line)| path == facts.path && line.abs_diff(facts.line) <= EDITING_LINES);
    let idle_needed = if typing_here { rule.idle.max(Duration::from_secs(1)) } else { rule.idle };
    let wait = rule.persists.saturating_sub(facts.persisted).max(idle_needed.saturating_sub(facts.idle));
    if !wait.is_zero() {
        return Decision::WaitFor(wait);
    }
    if typing_here {
        return Decision::WaitFor(idle_needed);
    }
    match rule.action {
        Action::Workflow => Decision::Workflow { name: rule.workflow.clone().unwrap_or_default() },
        _ => Decision::Escalate { providers: rule.providers.clone() },
    }
}

/// Parses a duration with the one checked parser ACAS uses everywhere.
pub fn parse_duration(text: &str) -> Result<Duration, crate::duration::DurationError> {
    crate::duration::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(category: &'a str, severity: &'a str) -> Facts<'a> {
        Facts {
            category,
            severity,
            source: "ts",
            path: "src/app.ts",
            line: 10,
            persisted: Duration::from_secs(60),
            occurrences: 1,
            idle: Duration::from_secs(60),
            editing: None,
        }
    }

    fn rules(toml_text: &str) -> Vec<Rule> {
        #[derive(Deserialize)]
        struct File {
            rules: Vec<RuleConfig>,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        file.rules.iter().enumerate().map(|(i, r)| Rule::from_config(i, r).unwrap()).collect()
    }

    #[test]
    fn defaults_never_escalate_syntax_and_wait_for_persistence_and_idleness() {
        let defaults = default_rules();
        assert_eq!(decide(&defaults, &facts("syntax", "error")), Decision::Ignore);
        assert_eq!(decide(&defaults, &facts("type", "error")), Decision::Escalate { providers: vec![] });
        assert_eq!(decide(&defaults, &facts("lint", "warning")), Decision::Ignore);
        let young = Facts { persisted: Duration::from_secs(10), ..facts("type", "error") };
        assert_eq!(decide(&defaults, &young), Decision::WaitFor(Duration::from_secs(20)));
        let busy = Facts { idle: Duration::from_secs(2), ..facts("type", "error") };
        assert_eq!(decide(&defaults, &busy), Decision::WaitFor(Duration::from_secs(3)));
    }

    #[test]
    fn nothing_fires_on_the_line_being_typed() {
        let now = rules("[[rules]]\naction = \"escalate\"\n");
        let typing =
            Facts { editing: Some(("src/app.ts", 11)), idle: Duration::ZERO, ..facts("type", "error") };
        assert!(matches!(decide(&now, &typing), Decision::WaitFor(_)));
        let elsewhere =
            Facts { editing: Some(("src/other.ts", 10)), idle: Duration::ZERO, ..facts("type", "error") };
        assert_eq!(decide(&now, &elsewhere), Decision::Escalate { providers: vec![] });
        let far = Facts { editing: Some(("src/app.ts", 40)), idle: Duration::ZERO, ..facts("type", "error") };
        assert_eq!(decide(&now, &far), Decision::Escalate { providers: vec![] });
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let rules = rules(
            r#"
[[rules]]
path = "vendor/**"
action = "ignore"

[[rules]]
category = "type"
source = "TS"
repeats = 2
providers = ["fast", "smart"]

[[rules]]
category = "test"
action = "workflow"
workflow = "fix-tests"

[[rules]]
action = "wait"
"#,
        );
        let vendored = Facts { path: "vendor/lib.ts", ..facts("type", "error") };
        assert_eq!(decide(&rules, &vendored), Decision::Ignore);
        assert_eq!(decide(&rules, &facts("type", "error")), Decision::Hold);
        let repeated = Facts { occurrences: 2, ..facts("type", "error") };
        assert_eq!(
            decide(&rules, &repeated),
            Decision::Escalate { providers: vec!["fast".into(), "smart".into()] }
        );
        assert_eq!(decide(&rules, &facts("test", "error")), Decision::Workflow { name: "fix-tests".into() });
        assert_eq!(decide(&rules, &facts("name", "error")), Decision::Hold);
    }

    #[test]
    fn bad_rules_say_which_and_why() {
        let bad = |text: &str| {
            let config: RuleConfig = toml::from_str(text).unwrap();
            Rule::from_config(2, &config).unwrap_err().to_string()
        };
        assert_eq!(
            bad("persists = \"soon\""),
            "rule 3: `persists`: `soon` is not a duration like 500ms, 30s, 5m, 1h, 1d or 2w"
        );
        assert!(bad("path = \"[\"").starts_with("rule 3: `path`:"));
        assert_eq!(
            bad("action = \"workflow\""),
            "rule 3: `action = \"workflow\"` needs `workflow = \"NAME\"`"
        );
        assert!(bad("severity = \"fatal\"").contains("not `fatal`"));
        assert!(toml::from_str::<RuleConfig>("colour = 1").is_err());
    }
}
