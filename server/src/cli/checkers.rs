//! `acas checkers`: what was detected, what runs on save and at start, what is off and why,
//! what is missing and how to install it, and the configuration errors with their location.
//! Also runs checkers for `acas check --checkers`: concurrently, at most [`PARALLEL_CHECKERS`]
//! at a time, with progress on stderr when it is a terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};
use crate::checkers::detect::{self, Detected};
use crate::checkers::run::{self, RunError};
use crate::checkers::settings::format_name;
use crate::checkers::{Kind, Problem};
use crate::config::{self, Config};

/// How many checkers `acas check --checkers` runs at once.
pub const PARALLEL_CHECKERS: usize = 2;

/// The checkers of the workspace at `root` and every configuration error, each with its
/// location (`path:line:column: message`).
pub(super) fn detect(root: &Path) -> (Config, Vec<Detected>, Vec<String>) {
    let (config, error) = config::load(root);
    let mut errors: Vec<String> = error.iter().map(ToString::to_string).collect();
    let (found, problems) = detect::checkers_ignoring(root, &config.checkers, &config.ignore);
    let config_path = config::path(root);
    let text = std::fs::read_to_string(&config_path).unwrap_or_default();
    for problem in problems {
        errors.push(located(&config_path, &text, &problem));
    }
    (config, found, errors)
}

/// `problem` about checker `` `name` ``, prefixed with where that entry's name is in the file.
fn located(path: &Path, text: &str, problem: &str) -> String {
    let name = problem.split('`').nth(1).unwrap_or("");
    let at = ["\"", "'"].iter().find_map(|q| {
        let quoted = format!("{q}{name}{q}");
        text.match_indices(&quoted).map(|(i, _)| i).find(|&i| text[..i].trim_end().ends_with('='))
    });
    match at {
        Some(offset) => {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{line}:{column}: {problem}", path.display())
        }
        None => format!("{}: {problem}", path.display()),
    }
}

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
    let (_, found, errors) = detect(&root);
    let text = match format {
        ListFormat::Json => {
            let checkers: Vec<Value> = found.iter().map(|d| checker_json(&root, d)).collect();
            let value = json!({ "root": root, "checkers": checkers, "errors": errors });
            serde_json::to_string_pretty(&value).expect("JSON values serialise")
        }
        ListFormat::Text => list_text(&root, &found, &errors),
    };
    output::line(&text);
    if errors.is_empty() { EXIT_OK } else { EXIT_FAILED }
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
        out.push_str(&format!(
            "No checkers in {}: no Cargo.toml, tsconfig.json, go.mod or Python project file was found, nothing sets up ESLint, Jest or Vitest, and .acas/config.toml defines none\n",
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

/// How one checker's run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Status {
    Ok,
    Missing,
    Failed,
    TimedOut,
}

impl Status {
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
        }
    }
}

/// One checker's run, for the report.
#[derive(Debug, Clone)]
pub(super) struct Ran {
    pub name: String,
    pub status: Status,
    pub problems: usize,
    pub exit_code: Option<i32>,
    pub elapsed: Duration,
    /// What went wrong and what to do, for a status other than `Ok`.
    pub message: Option<String>,
    /// A limit the run hit (problems dropped, lines cut), for a run that gave a result.
    pub note: Option<String>,
}

/// The checkers `names` asks for: every enabled one that checks code when `names` is empty,
/// else those named (enabled or not). An unknown name is an error that lists the known ones.
pub(super) fn select(found: Vec<Detected>, names: &[String]) -> Result<Vec<Detected>, String> {
    if names.is_empty() {
        return Ok(found.into_iter().filter(|d| d.enabled && d.checker.kind == Kind::Check).collect());
    }
    let unknown: Vec<&String> =
        names.iter().filter(|n| !found.iter().any(|d| &d.checker.name == *n)).collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = found.iter().map(|d| d.checker.name.as_str()).collect();
        return Err(format!(
            "no checker named {}; this workspace has {} (`acas checkers` says why)",
            unknown.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
            if known.is_empty() { "none".to_owned() } else { known.join(", ") }
        ));
    }
    Ok(found.into_iter().filter(|d| names.contains(&d.checker.name)).collect())
}

/// Runs `selected`, at most [`PARALLEL_CHECKERS`] at a time, and returns every problem and
/// how each run went. Progress goes to stderr when it is a terminal.
pub(super) fn run_all(selected: Vec<Detected>) -> (Vec<Problem>, Vec<Ran>) {
    if selected.is_empty() {
        return (Vec::new(), Vec::new());
    }
    super::end_orphans();
    let progress = std::io::stderr().is_terminal();
    let runtime = super::runtime();
    let names: Vec<String> = selected.iter().map(|d| d.checker.name.clone()).collect();
    let results = runtime.block_on(async move {
        let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_CHECKERS));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, detected) in selected.into_iter().enumerate() {
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
                (i, run_one(detected, progress).await)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(error) => tracing::error!("a checker's task failed: {error}"),
            }
        }
        results.sort_by_key(|(i, _)| *i);
        results
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    let mut problems = Vec::new();
    let mut ran = Vec::new();
    let mut results = results.into_iter().peekable();
    for (i, name) in names.into_iter().enumerate() {
        match results.next_if(|(at, _)| *at == i) {
            Some((_, (found, run))) => {
                problems.extend(found);
                ran.push(run);
            }
            // A run that ended inside ACAS is reported, never left out.
            None => ran.push(Ran {
                message: Some(format!(
                    "checker `{name}`: the run failed inside ACAS; run `acas check --checkers={name}` again, and report it with the log (RUST_LOG=acas=debug) if it fails again"
                )),
                name,
                status: Status::Failed,
                problems: 0,
                exit_code: None,
                elapsed: Duration::ZERO,
                note: None,
            }),
        }
    }
    (problems, ran)
}

async fn run_one(detected: Detected, progress: bool) -> (Vec<Problem>, Ran) {
    let checker = &detected.checker;
    let mut ran = Ran {
        name: checker.name.clone(),
        status: Status::Ok,
        problems: 0,
        exit_code: None,
        elapsed: Duration::ZERO,
        message: None,
        note: None,
    };
    if let Some(install) = &detected.missing {
        let program = checker.command.first().map(String::as_str).unwrap_or("");
        ran.status = Status::Missing;
        ran.message = Some(format!(
            "checker `{}`: `{program}` is not installed; install it: {install}; or turn the checker off in .acas/config.toml (`enabled = false`)",
            checker.name
        ));
        return (Vec::new(), ran);
    }
    if progress {
        output::note(&format!("{}: running {}", checker.name, checker.command.join(" ")));
    }
    let started = std::time::Instant::now();
    let mut problems = Vec::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let result = run::run(checker, &cancel, &mut |p| problems.push(p)).await;
    ran.elapsed = started.elapsed();
    match result {
        Ok(outcome) => {
            ran.problems = outcome.problems;
            ran.exit_code = outcome.exit_code;
            ran.note = outcome.note(&checker.name);
        }
        Err(error) => {
            ran.status = match error {
                RunError::NotFound { .. } => Status::Missing,
                RunError::TimedOut { .. } => Status::TimedOut,
                RunError::Spawn { .. }
                | RunError::Failed { .. }
                | RunError::TooLong { .. }
                | RunError::Internal { .. }
                | RunError::Cancelled { .. } => Status::Failed,
            };
            ran.problems = problems.len();
            ran.message = Some(error.to_string());
        }
    }
    if progress {
        let how = match ran.status {
            Status::Ok => format!(
                "{} in {:.1}s",
                plural(ran.problems, "problem", "problems"),
                ran.elapsed.as_secs_f64()
            ),
            _ => format!("{} (reported below)", ran.status.as_str().replace('_', " ")),
        };
        output::note(&format!("{}: {how}", checker.name));
    }
    (problems, ran)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
