//! `check`: diagnostics for files or the whole workspace now, from ACAS's syntax layer and,
//! when asked, the project's checkers (what `acas check --checkers` runs).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmcp::model::{ErrorData, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{plural, tool};
use crate::analysis::FileDiagnostic;
use crate::check::{self, Status};
use crate::classify::Severity;
use crate::config;
use crate::mcp::{Answer, Shared, internal, invalid, refused};
use crate::watch::{self, IgnoreRules};

pub(super) const CHECK: &str = "check";

/// Most diagnostics one answer lists; the counts cover them all.
pub const MAX_DIAGNOSTICS: usize = 200;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckArgs {
    /// Files or directories to check, relative to the workspace root (or absolute inside it).
    /// Absent or empty: the whole workspace, minus what its ignore files exclude.
    #[serde(default)]
    paths: Vec<String>,
    /// Also run the project's checkers (type checkers, linters): every enabled one that checks
    /// code. Takes as long as the tools take; the syntax layer alone answers in milliseconds.
    #[serde(default)]
    checkers: bool,
    /// Run only these checkers (as `acas checkers` names them, e.g. "ruff", "tsc"); implies
    /// `checkers`. Tests run only when named.
    #[serde(default)]
    checker_names: Vec<String>,
}

pub(super) fn tools() -> Vec<Tool> {
    vec![tool::<CheckArgs>(
        CHECK,
        "Diagnostics for the given files (or the whole workspace) as they are on disk now: syntax errors \
         from ACAS's parsers in milliseconds, and with `checkers` the project's own type checkers and linters. \
         Call it after each edit. Each diagnostic has its path, 1-based line and column, severity, category, \
         message, source and a fingerprint that `problems`, `context` and `explain` accept.",
    )]
}

pub(super) async fn check(shared: &Arc<Shared>, args: CheckArgs) -> Result<Answer, ErrorData> {
    let targets: Vec<PathBuf> = args.paths.iter().map(|p| shared.inside(p)).collect::<Result<_, _>>()?;
    let root = shared.root.clone();
    let (config, error) = config::load(&root);
    if let Some(error) = error {
        return Err(refused("invalid_config", format!("{error}; fix .acas/config.toml and call again")));
    }
    let run_checkers = args.checkers || !args.checker_names.is_empty();
    let selected = if run_checkers {
        // A repository's checkers run its own code: an agent cannot trust it for the user.
        if let Some(why) = check::untrusted(&root) {
            return Err(refused("workspace_untrusted", format!("{why}; or call without checkers")));
        }
        let detect_root = root.clone();
        let (_, found, errors) = tokio::task::spawn_blocking(move || check::detect(&detect_root))
            .await
            .map_err(|_| internal("detecting the checkers failed inside ACAS; see its log"))?;
        if let Some(error) = errors.first() {
            return Err(refused("invalid_config", format!("{error}; fix .acas/config.toml and call again")));
        }
        Some(check::select(found, &args.checker_names).map_err(invalid)?)
    } else {
        None
    };
    let scope: Vec<String> = targets.iter().map(|t| shared.relative(t)).collect();
    let max_size = config.max_file_size;
    let ignore = config.ignore.clone();
    let walk_root = root.clone();
    let mut report = tokio::task::spawn_blocking(move || {
        let files = files_of(&walk_root, &ignore, targets);
        check::check_files(&walk_root, files, max_size)
    })
    .await
    .map_err(|_| internal("checking the files failed inside ACAS; see its log"))?;
    if let Some(selected) = selected {
        let (problems, ran) = check::run_all(selected, Arc::new(|_| {})).await;
        check::merge(&mut report, &root, &root, problems, max_size);
        if !scope.is_empty() {
            report.files.retain(|(path, _)| in_scope(&scope, path));
        }
        report.checkers = Some(ran);
    }
    Ok(answer(&report, &scope))
}

/// The files under `targets` (the whole workspace when empty) that the ignore rules keep; a
/// file named directly is checked even when ignored.
fn files_of(root: &std::path::Path, ignore: &[String], targets: Vec<PathBuf>) -> Vec<PathBuf> {
    let rules = Arc::new(IgnoreRules::new(root, ignore));
    let starts = if targets.is_empty() { vec![root.to_path_buf()] } else { targets };
    let files = Mutex::new(Vec::new());
    for start in starts {
        if start.is_dir() {
            watch::walk(&rules, &start, &|f| files.lock().unwrap().push(f), &|_| {});
        } else {
            files.lock().unwrap().push(start);
        }
    }
    let mut files = files.into_inner().unwrap();
    files.sort();
    files.dedup();
    files
}

fn in_scope(scope: &[String], path: &str) -> bool {
    scope.iter().any(|s| s.is_empty() || path == s || path.starts_with(&format!("{s}/")))
}

fn answer(report: &check::Report, scope: &[String]) -> Answer {
    let all: Vec<(&str, &FileDiagnostic)> =
        report.files.iter().flat_map(|(path, ds)| ds.iter().map(move |d| (path.as_str(), d))).collect();
    let errors = all.iter().filter(|(_, d)| d.severity == Severity::Error).count();
    let warnings = all.iter().filter(|(_, d)| d.severity == Severity::Warning).count();
    let shown = &all[..all.len().min(MAX_DIAGNOSTICS)];
    let mut text = format!(
        "{} checked: {}, {}{}",
        plural(report.files_checked, "file", "files"),
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings"),
        if all.is_empty() { " — clean" } else { "" }
    );
    for (path, d) in shown {
        text.push_str(&format!(
            "\n{path}:{}:{}: {}[{}] {} ({})",
            d.range.start.line + 1,
            d.range.start.character + 1,
            d.severity.as_str(),
            d.category.as_str(),
            d.message,
            d.source
        ));
    }
    if shown.len() < all.len() {
        text.push_str(&format!(
            "\n… {} more not listed (at most {MAX_DIAGNOSTICS}); check fewer paths to see them",
            all.len() - shown.len()
        ));
    }
    let mut checkers = Value::Null;
    if let Some(ran) = &report.checkers {
        for r in ran.iter().filter(|r| r.status != Status::Ok) {
            text.push_str(&format!("\nchecker {}: {}", r.name, r.message.as_deref().unwrap_or("no result")));
        }
        checkers = ran
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "status": r.status.as_str(),
                    "problems": r.problems,
                    "exit_code": r.exit_code,
                    "seconds": r.elapsed.as_secs_f64(),
                    "message": r.message,
                })
            })
            .collect();
    }
    let diagnostics: Vec<Value> = shown
        .iter()
        .map(|(path, d)| {
            json!({
                "path": path,
                "line": d.range.start.line + 1,
                "column": d.range.start.character + 1,
                "end_line": d.range.end.line + 1,
                "end_column": d.range.end.character + 1,
                "severity": d.severity.as_str(),
                "category": d.category.as_str(),
                "message": d.message,
                "source": d.source,
                "code": d.code,
                "fingerprint": d.fingerprint,
                "symbol": d.symbol,
            })
        })
        .collect();
    let mut data = json!({
        "files_checked": report.files_checked,
        "errors": errors,
        "warnings": warnings,
        "total": all.len(),
        "truncated": shown.len() < all.len(),
        "diagnostics": diagnostics,
    });
    if !checkers.is_null() {
        data["checkers"] = checkers;
    }
    let path = (scope.len() == 1).then(|| scope[0].clone());
    Answer { text, data, path }
}
