//! `acas checkers`: what was detected, what runs on save and at start, what is off and why,
//! what is missing and how to install it, and the configuration errors with their location.
//! Also runs checkers for `acas check --checkers` (through [`crate::check`]), with progress on
//! stderr when it is a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};
use crate::check::{self, Progress, Ran, Status};
use crate::checkers::detect::Detected;
use crate::checkers::settings::format_name;
use crate::checkers::{Kind, Problem};

/// When a checker runs, for a person.
fn when(d: &Detected) -> String {
    if !d.enabled {
        return "off".to_owned();
    }
    if d.missing.is_some() {
        return "missing".to_owned();
    }
    let c = &d.checker;
    let mut when: Vec<&str> = Vec::new();
    if c.on_save {
        when.push("on save");
    }
    if c.on_start {
        when.push("at start");
    }
    if when.is_empty() {
        when.push("on demand");
    }
    when.join(", ")
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Check => "check",
        Kind::Test => "test",
    }
}

pub(super) fn list(path: &Path, format: ListFormat) -> i32 {
    let root = match super::resolve(path) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!(
                "acas checkers: {} is not a directory; give the workspace",
                path.display()
            ));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas checkers: {error}"));
            return EXIT_FAILED;
        }
    };
    let (_, found, errors) = check::detect(&root);
    let trust = crate::trust::state(&root);
    let text = match format {
        ListFormat::Json => {
            let checkers: Vec<Value> = found.iter().map(|d| checker_json(&root, d)).collect();
            let value =
                json!({ "root": root, "trust": trust.as_str(), "checkers": checkers, "errors": errors });
            serde_json::to_string_pretty(&value).expect("JSON values serialise")
        }
        ListFormat::Text => format!("{}\n{}", trust_line(&root, trust), list_text(&root, &found, &errors)),
    };
    output::line(&text);
    if errors.is_empty() { EXIT_OK } else { EXIT_FAILED }
}

/// `acas trust [--revoke] PATH`: adds the workspace to the user's trust list with its
/// `[[checkers]]` as they are now, or takes it off.
pub(super) fn trust(path: &Path, revoke: bool) -> i32 {
    let result = if revoke { crate::trust::revoke(path) } else { crate::trust::trust(path) };
    match result {
        Ok(root) if revoke => {
            output::line(&format!("{} is no longer trusted: its checkers do not run", root.display()));
            EXIT_OK
        }
        Ok(root) => {
            output::line(&format!(
                "{} is trusted: its checkers run (until its [[checkers]] change; `acas trust --revoke` undoes it)",
                root.display()
            ));
            EXIT_OK
        }
        Err(error) => {
            output::note(&format!("acas trust: {error}"));
            EXIT_FAILED
        }
    }
}

/// What the trust state means for the checkers, and how to change it.
pub(super) fn trust_line(root: &Path, trust: crate::trust::State) -> String {
    match trust {
        crate::trust::State::Trusted => {
            format!("Trust: trusted (`acas trust --revoke {}` to stop its checkers)", root.display())
        }
        crate::trust::State::Untrusted => format!(
            "Trust: not trusted; its checkers do not run (and their versions were not asked) until you run `acas trust {}`",
            root.display()
        ),
        crate::trust::State::Changed => format!(
            "Trust: its [[checkers]] changed since it was trusted; they do not run until you run `acas trust {}` again",
            root.display()
        ),
    }
}

fn checker_json(root: &Path, d: &Detected) -> Value {
    let c = &d.checker;
    json!({
        "name": c.name,
        "enabled": d.enabled,
        "kind": kind_name(c.kind),
        "on_save": c.on_save,
        "on_start": c.on_start,
        "runs": when(d),
        "command": c.command,
        "cwd": display_dir(root, &c.cwd),
        "format": format_name(&c.format),
        "files": c.files,
        "timeout_seconds": c.timeout.map(|t| t.as_secs_f64()),
        "why": d.why,
        "missing": d.missing.is_some(),
        "install": d.missing,
    })
}

/// `.` for the root, else the path relative to it.
fn display_dir(root: &Path, dir: &Path) -> String {
    if dir == root { ".".to_owned() } else { crate::files::relative(root, dir) }
}

fn list_text(root: &Path, found: &[Detected], errors: &[String]) -> String {
    let mut out = String::new();
    if found.is_empty() {
        let configured = if errors.is_empty() {
            ".acas/config.toml defines none"
        } else {
            "no entry of .acas/config.toml could be used (see below)"
        };
        out.push_str(&format!(
            "No checkers in {}: no Cargo.toml, tsconfig.json, go.mod or Python project file was found, nothing sets up ESLint, Jest or Vitest, and {configured}\n",
            root.display()
        ));
    }
    let width = found.iter().map(|d| d.checker.name.len()).max().unwrap_or(0);
    fn group(d: &Detected) -> usize {
        match (d.enabled, d.missing.is_some()) {
            (true, false) => 0,
            (true, true) => 1,
            (false, _) => 2,
        }
    }
    let titles = ["Will run", "Missing (configured, not installed)", "Off"];
    for (i, title) in titles.iter().enumerate() {
        let members: Vec<&Detected> = found.iter().filter(|d| group(d) == i).collect();
        if members.is_empty() {
            continue;
        }
        out.push_str(&format!("{title}:\n"));
        for d in members {
            let c = &d.checker;
            let kind = if c.kind == Kind::Test { " (tests)" } else { "" };
            out.push_str(&format!(
                "  {:width$}  {}{kind}: {} (in {})\n",
                c.name,
                when(d),
                c.command.join(" "),
                display_dir(root, &c.cwd),
            ));
            out.push_str(&format!("  {:width$}  why: {}\n", "", d.why));
            if let Some(install) = &d.missing {
                out.push_str(&format!("  {:width$}  install: {install}\n", ""));
            }
        }
    }
    if !errors.is_empty() {
        out.push_str("Configuration errors:\n");
        for error in errors {
            out.push_str(&format!("  {error}\n"));
        }
    }
    out.trim_end().to_owned()
}

/// Runs `selected` (see [`check::run_all`]), with progress on stderr when it is a terminal.
pub(super) fn run_all(selected: Vec<Detected>) -> (Vec<Problem>, Vec<Ran>) {
    if selected.is_empty() {
        return (Vec::new(), Vec::new());
    }
    super::end_orphans();
    let show = std::io::stderr().is_terminal();
    let progress = Arc::new(move |p: Progress<'_>| {
        if !show {
            return;
        }
        match p {
            Progress::Started { name, command } => output::note(&format!("{name}: running {command}")),
            Progress::Ended(ran) => {
                let how = match ran.status {
                    Status::Ok => format!(
                        "{} in {:.1}s",
                        plural(ran.problems, "problem", "problems"),
                        ran.elapsed.as_secs_f64()
                    ),
                    _ => format!("{} (reported below)", ran.status.as_str().replace('_', " ")),
                };
                output::note(&format!("{}: {how}", ran.name));
            }
        }
    });
    let runtime = super::runtime();
    let results = runtime.block_on(check::run_all(selected, progress));
    runtime.shutdown_timeout(Duration::from_secs(1));
    results
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
