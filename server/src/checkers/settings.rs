//! What `.acas/config.toml` says about checkers: `[[checkers]]` entries, each of which turns a
//! detected checker on or off, changes some of its fields, or defines a new one.
//!
//! An entry is checked here on its own (a known format, a pattern that compiles, a duration that
//! parses); whether a new checker has everything it needs is known only once detection ran
//! ([`super::detect`]).

use std::time::Duration;

use serde::Deserialize;

use super::{ColumnUnit, Format, Kind, Matcher};
use crate::classify::Severity;

/// The checkers part of the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckerSettings {
    pub entries: Vec<Entry>,
}

/// One `[[checkers]]` entry, checked. A field left out keeps the detected checker's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub enabled: Option<bool>,
    pub command: Option<Vec<String>>,
    /// Relative to the workspace.
    pub cwd: Option<String>,
    pub format: Option<Format>,
    pub kind: Option<Kind>,
    pub on_save: Option<bool>,
    pub on_start: Option<bool>,
    pub files: Option<Vec<String>>,
    pub timeout: Option<Duration>,
}

/// A `[[checkers]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryConfig {
    name: String,
    enabled: Option<bool>,
    command: Option<CommandConfig>,
    cwd: Option<String>,
    format: Option<String>,
    /// For `format = "matcher"`: the regular expression, with named groups.
    pattern: Option<String>,
    /// For `format = "matcher"`: the problems' source (default: the checker's name).
    source: Option<String>,
    /// For `format = "matcher"`: the severity of a match that does not name one.
    severity: Option<String>,
    /// For `format = "matcher"`: `bytes`, `chars` or `utf16`.
    columns: Option<String>,
    kind: Option<String>,
    on_save: Option<bool>,
    on_start: Option<bool>,
    files: Option<Vec<String>>,
    timeout: Option<String>,
}

/// A command as an argv, or as one line run by `sh -c`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum CommandConfig {
    Argv(Vec<String>),
    Line(String),
}

/// The names `format` takes, and what each is.
pub const FORMATS: &[&str] = &[
    "cargo",
    "cargo-test",
    "tsc",
    "eslint",
    "ruff",
    "mypy",
    "pyright",
    "go",
    "go-test",
    "pytest",
    "jest",
    "matcher",
];

impl EntryConfig {
    /// Checks the entry; the error says which field is wrong and how.
    pub fn check(&self) -> Result<Entry, String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == ',') {
            return Err(format!(
                "`[[checkers]]` name {:?} must be a word without spaces or commas (it is how you name the checker on the command line)",
                self.name
            ));
        }
        let command = match &self.command {
            None => None,
            Some(CommandConfig::Argv(argv)) if argv.first().is_none_or(|p| p.trim().is_empty()) => {
                return Err(format!("checker `{name}`: `command` must name a program"));
            }
            Some(CommandConfig::Argv(argv)) => Some(argv.clone()),
            Some(CommandConfig::Line(line)) if line.trim().is_empty() => {
                return Err(format!("checker `{name}`: `command` must name a program"));
            }
            Some(CommandConfig::Line(line)) => Some(vec!["sh".to_owned(), "-c".to_owned(), line.clone()]),
        };
        let matcher_fields = self.pattern.is_some()
            || self.source.is_some()
            || self.severity.is_some()
            || self.columns.is_some();
        let format = match self.format.as_deref() {
            None if self.pattern.is_some() => Some(self.matcher(name)?),
            None if matcher_fields => {
                return Err(format!("checker `{name}`: `source`, `severity` and `columns` need a `pattern`"));
            }
            None => None,
            Some("matcher") => Some(self.matcher(name)?),
            Some(other) if matcher_fields => {
                return Err(format!(
                    "checker `{name}`: `pattern`, `source`, `severity` and `columns` are for `format = \"matcher\"`, not `{other}`"
                ));
            }
            Some(other) => Some(builtin_format(other).ok_or_else(|| {
                format!("checker `{name}`: unknown format `{other}`; use one of {}", FORMATS.join(", "))
            })?),
        };
        let kind = match self.kind.as_deref() {
            None => None,
            Some("check") => Some(Kind::Check),
            Some("test") => Some(Kind::Test),
            Some(other) => {
                return Err(format!("checker `{name}`: `kind` is `check` or `test`, not `{other}`"));
            }
        };
        let timeout = match &self.timeout {
            None => None,
            Some(text) => Some(
                crate::duration::parse(text)
                    .map_err(|e| format!("checker `{name}`: `timeout` {text:?}: {e}"))?,
            ),
        };
        if let Some(files) = &self.files {
            for glob in files {
                globset::Glob::new(glob)
                    .map_err(|e| format!("checker `{name}`: `files` pattern {glob:?}: {e}"))?;
            }
        }
        if let Some(cwd) = &self.cwd {
            let path = std::path::Path::new(cwd);
            if path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(format!(
                    "checker `{name}`: `cwd` {cwd:?} must be a directory inside the workspace, relative to it"
                ));
            }
        }
        Ok(Entry {
            name: name.to_owned(),
            enabled: self.enabled,
            command,
            cwd: self.cwd.clone(),
            format,
            kind,
            on_save: self.on_save,
            on_start: self.on_start,
            files: self.files.clone(),
            timeout,
        })
    }

    fn matcher(&self, name: &str) -> Result<Format, String> {
        let Some(pattern) = &self.pattern else {
            return Err(format!("checker `{name}`: `format = \"matcher\"` needs a `pattern`"));
        };
        let pattern = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("checker `{name}`: `pattern` does not compile: {e}"))?;
        let groups: Vec<&str> = pattern.capture_names().flatten().collect();
        for needed in ["file", "line", "message"] {
            if !groups.contains(&needed) {
                return Err(format!(
                    "checker `{name}`: `pattern` needs a named group `(?P<{needed}>...)`; it may also have `column`, `end_line`, `end_column`, `severity` and `code`"
                ));
            }
        }
        let severity = match self.severity.as_deref() {
            None => Severity::Error,
            Some(word) => super::parse::severity_named(word).ok_or_else(|| {
                format!("checker `{name}`: `severity` is `error`, `warning`, `information` or `hint`, not `{word}`")
            })?,
        };
        let columns = match self.columns.as_deref() {
            None | Some("bytes") => ColumnUnit::Bytes,
            Some("chars") => ColumnUnit::Chars,
            Some("utf16") => ColumnUnit::Utf16,
            Some(other) => {
                return Err(format!(
                    "checker `{name}`: `columns` is `bytes`, `chars` or `utf16`, not `{other}`"
                ));
            }
        };
        Ok(Format::Matcher(Matcher {
            pattern,
            source: self.source.clone().unwrap_or_else(|| name.to_owned()),
            severity,
            columns,
        }))
    }
}

/// The built-in format named `name`. `pytest` reads its JUnit XML from
/// `.acas/checkers/pytest.xml` under the checker's directory unless detection says otherwise.
pub fn builtin_format(name: &str) -> Option<Format> {
    Some(match name {
        "cargo" => Format::Cargo,
        "cargo-test" => Format::CargoTest,
        "tsc" => Format::Tsc,
        "eslint" => Format::Eslint,
        "ruff" => Format::Ruff,
        "mypy" => Format::Mypy,
        "pyright" => Format::Pyright,
        "go" => Format::Go,
        "go-test" => Format::GoTest,
        "pytest" => Format::Pytest { junit_xml: std::path::PathBuf::from(".acas/checkers/pytest.xml") },
        "jest" => Format::Jest,
        _ => return None,
    })
}

/// The name `format` takes for `format` (`matcher` for a pattern, `crash` for any command's
/// output), as `acas checkers` shows it.
pub fn format_name(format: &Format) -> &'static str {
    match format {
        Format::Cargo => "cargo",
        Format::CargoTest => "cargo-test",
        Format::Tsc => "tsc",
        Format::Eslint => "eslint",
        Format::Ruff => "ruff",
        Format::Mypy => "mypy",
        Format::Pyright => "pyright",
        Format::Go => "go",
        Format::GoTest => "go-test",
        Format::Pytest { .. } => "pytest",
        Format::Jest => "jest",
        Format::Matcher(_) => "matcher",
        Format::Crash { .. } => "crash",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> Result<Entry, String> {
        toml::from_str::<EntryConfig>(toml_text).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn a_matcher_entry_is_checked_and_kept() {
        let e = entry(
            r#"
            name = "shellcheck"
            command = "shellcheck -f gcc scripts/*.sh"
            pattern = '^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<severity>\w+): (?P<message>.*)$'
            files = ["scripts/**/*.sh"]
            timeout = "30s"
            "#,
        )
        .unwrap();
        assert_eq!(e.command.as_deref().unwrap()[..2], ["sh".to_owned(), "-c".to_owned()]);
        assert_eq!(e.timeout, Some(Duration::from_secs(30)));
        let Some(Format::Matcher(m)) = e.format else { panic!("a matcher") };
        assert_eq!(m.source, "shellcheck");
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("name = \"a\"\nformat = \"cargoo\"", "unknown format `cargoo`"),
            ("name = \"a\"\npattern = \"(?P<file>x)\"", "named group `(?P<line>...)`"),
            ("name = \"a\"\npattern = \"(\"", "does not compile"),
            ("name = \"a\"\nformat = \"ruff\"\npattern = \"x\"", "are for `format = \"matcher\"`"),
            ("name = \"a\"\ntimeout = \"soon\"", "`timeout` \"soon\""),
            ("name = \"a\"\ncwd = \"../elsewhere\"", "inside the workspace"),
            ("name = \"a b\"", "without spaces"),
            ("name = \"a\"\ncommand = []", "must name a program"),
            ("name = \"a\"\nkind = \"lint\"", "`check` or `test`"),
        ];
        for (text, expected) in cases {
            let error = entry(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn every_format_name_but_the_matcher_is_a_builtin() {
        for name in FORMATS.iter().filter(|n| **n != "matcher") {
            let format = builtin_format(name).unwrap_or_else(|| panic!("{name} is a builtin"));
            assert_eq!(format_name(&format), *name);
        }
    }
}
