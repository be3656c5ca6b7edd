//! Which checkers a workspace has: the built-in ones detected from its files and what is
//! installed, with the `[[checkers]]` entries of the configuration applied over them.

use std::path::Path;

use super::settings::{CheckerSettings, Entry};
use super::{Checker, Kind};

/// A checker and whether it will run, with the reason a person can read.
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub checker: Checker,
    pub enabled: bool,
    /// Why it exists and why it runs or not ("Cargo.toml; `cargo` on PATH", "defined in
    /// .acas/config.toml", "turned off in .acas/config.toml").
    pub why: String,
}

/// The checkers of the workspace at `root`, and the entries of the configuration that could not
/// be applied (each message names the checker and what is missing).
pub fn checkers(root: &Path, settings: &CheckerSettings) -> (Vec<Detected>, Vec<String>) {
    let mut found = builtins(root);
    let mut problems = Vec::new();
    for entry in &settings.entries {
        match found.iter_mut().find(|d| d.checker.name == entry.name) {
            Some(detected) => apply(root, detected, entry),
            None => match defined(root, entry) {
                Ok(detected) => found.push(detected),
                Err(message) => problems.push(message),
            },
        }
    }
    (found, problems)
}

/// The built-in checkers that the workspace's files and the installed tools call for.
fn builtins(_root: &Path) -> Vec<Detected> {
    Vec::new()
}

/// Applies an entry over a detected checker.
fn apply(root: &Path, detected: &mut Detected, entry: &Entry) {
    let checker = &mut detected.checker;
    if let Some(command) = &entry.command {
        checker.command = command.clone();
    }
    if let Some(cwd) = &entry.cwd {
        checker.cwd = root.join(cwd);
    }
    if let Some(format) = &entry.format {
        checker.format = format.clone();
    }
    if let Some(kind) = entry.kind {
        checker.kind = kind;
    }
    if let Some(on_save) = entry.on_save {
        checker.on_save = on_save;
    }
    if let Some(on_start) = entry.on_start {
        checker.on_start = on_start;
    }
    if let Some(files) = &entry.files {
        checker.files = files.clone();
    }
    if entry.timeout.is_some() {
        checker.timeout = entry.timeout;
    }
    match entry.enabled {
        Some(false) => {
            detected.enabled = false;
            detected.why = format!("{}; turned off in .acas/config.toml", detected.why);
        }
        Some(true) if !detected.enabled => {
            detected.enabled = true;
            detected.why = format!("{}; turned on in .acas/config.toml", detected.why);
        }
        _ => detected.why = format!("{}; changed in .acas/config.toml", detected.why),
    }
}

/// A checker the configuration defines from nothing.
fn defined(root: &Path, entry: &Entry) -> Result<Detected, String> {
    let (Some(command), Some(format)) = (&entry.command, &entry.format) else {
        return Err(format!(
            "checker `{}` in .acas/config.toml is not a detected checker, so it needs a `command` and a `format` (or a `pattern`); `acas checkers` lists the detected ones",
            entry.name
        ));
    };
    let kind = entry.kind.unwrap_or(Kind::Check);
    let checker = Checker {
        name: entry.name.clone(),
        command: command.clone(),
        cwd: root.join(entry.cwd.as_deref().unwrap_or("")),
        format: format.clone(),
        kind,
        on_save: entry.on_save.unwrap_or(kind == Kind::Check),
        on_start: entry.on_start.unwrap_or(kind == Kind::Check),
        files: entry.files.clone().unwrap_or_default(),
        timeout: entry.timeout,
    };
    let enabled = entry.enabled.unwrap_or(true);
    let why =
        if enabled { "defined in .acas/config.toml" } else { "defined and turned off in .acas/config.toml" };
    Ok(Detected { checker, enabled, why: why.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::settings::EntryConfig;

    fn settings(toml_text: &str) -> CheckerSettings {
        #[derive(serde::Deserialize)]
        struct File {
            checkers: Vec<EntryConfig>,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        CheckerSettings { entries: file.checkers.iter().map(|e| e.check().unwrap()).collect() }
    }

    #[test]
    fn a_defined_checker_runs_from_the_workspace_and_one_without_a_command_is_reported() {
        let root = Path::new("/ws");
        let (found, problems) = checkers(
            root,
            &settings(
                r#"
                [[checkers]]
                name = "lint"
                command = ["./lint.sh", "--all"]
                format = "go"
                cwd = "tools"

                [[checkers]]
                name = "mystery"
                enabled = true
                "#,
            ),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].checker.cwd, root.join("tools"));
        assert!(found[0].enabled && found[0].checker.on_save);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("checker `mystery`") && problems[0].contains("needs a `command`"),
            "{problems:?}"
        );
    }
}
