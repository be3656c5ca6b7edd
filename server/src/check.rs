//! One check of a workspace now: ACAS's syntax layer over a list of files, and the project's
//! checkers (detected from the configuration, selected by name, run at most
//! [`PARALLEL_CHECKERS`] at a time) with their problems placed, classified and fingerprinted
//! like the syntax diagnostics. Shared by `acas check` and the MCP `check` tool; it prints
//! nothing and renders nothing (each front end does its own).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::analysis::{self, FileDiagnostic, Outcome};
use crate::checkers::detect::{self, Detected};
use crate::checkers::run::{self, RunError};
use crate::checkers::{Kind, Problem};
use crate::classify::Language;
use crate::config::{self, Config};
use crate::files::relative;
use crate::text::PositionEncoding;

/// What one check found.
pub struct Report {
    pub files_checked: usize,
    /// Workspace-relative path and its diagnostics, sorted by path.
    pub files: Vec<(String, Vec<FileDiagnostic>)>,
    /// The checkers run, when they were asked for.
    pub checkers: Option<Vec<Ran>>,
}

/// Parses `files` (absolute) on up to eight threads and returns the diagnostics of each one
/// that has any; files that are not source or are skipped (too large, binary) are not counted.
pub fn check_files(root: &Path, files: Vec<PathBuf>, max_size: u64) -> Report {
    let next = AtomicUsize::new(0);
    let checked = AtomicUsize::new(0);
    let found = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8).min(files.len().max(1));
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = files.get(i) else { break };
            match analysis::analyze_file(root, path, max_size, PositionEncoding::Utf16) {
                Outcome::Parsed { diagnostics, .. } => {
                    checked.fetch_add(1, Ordering::Relaxed);
                    if !diagnostics.is_empty() {
                        found.lock().unwrap().push((relative(root, path), diagnostics));
                    }
                }
                Outcome::NotSource => {}
                Outcome::Skipped(skip) => {
                    tracing::info!("skipped {}: {skip}", path.display())
                }
            }
        }
    };
    if threads == 1 {
        // One file (an agent checking its edit): no thread to start.
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(work);
            }
        });
    }
    let mut files = found.into_inner().unwrap();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Report { files_checked: checked.into_inner(), files, checkers: None }
}

/// `path` with `.` and `..` resolved, through links when it exists.
fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        let mut out = PathBuf::new();
        for component in path.components() {
            match component {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    })
}

/// Places the checkers' problems of files under `scope` (the file or directory checked) in their
/// files and adds them to the report, without the duplicates a tool prints when it checks one
/// file for several targets. Problems in files outside `scope` (a link, `../x`) are left out.
pub fn merge(report: &mut Report, root: &Path, scope: &Path, problems: Vec<Problem>, max_size: u64) {
    let scope = resolved(scope);
    let real_root = resolved(root);
    let mut by_path: std::collections::BTreeMap<PathBuf, Vec<Problem>> = std::collections::BTreeMap::new();
    for problem in problems {
        by_path.entry(problem.span.path.clone()).or_default().push(problem);
    }
    for (path, problems) in by_path {
        let path = resolved(&path);
        if !path.starts_with(&scope) {
            tracing::debug!("a checker's problems in {} are outside {}", path.display(), scope.display());
            continue;
        }
        let text = crate::files::read_beneath(&real_root, &path, max_size).unwrap_or_default();
        let placed =
            analysis::place_problems(&text, Language::from_path(&path), &problems, PositionEncoding::Utf16);
        let shown = if path.starts_with(root) { relative(root, &path) } else { path.display().to_string() };
        let at = match report.files.binary_search_by(|(p, _)| p.as_str().cmp(&shown)) {
            Ok(at) => at,
            Err(at) => {
                report.files.insert(at, (shown, Vec::new()));
                at
            }
        };
        let diagnostics = &mut report.files[at].1;
        // The same problem from two checkers (clippy and cargo check both speak for rustc) is
        // shown once; a set keeps this linear in the number of problems.
        let key = |d: &FileDiagnostic| {
            (
                (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character),
                d.message.clone(),
                d.source.clone(),
                d.severity.as_str(),
            )
        };
        let mut seen: std::collections::HashSet<_> = diagnostics.iter().map(key).collect();
        for d in placed {
            if seen.insert(key(&d)) {
                diagnostics.push(d);
            }
        }
        diagnostics.sort_by_key(|d| d.range.start);
    }
}

/// How many checkers one check runs at once.
pub const PARALLEL_CHECKERS: usize = 2;

/// Why the checkers of the workspace at `root` may not run: the user has not trusted it, or its
/// `[[checkers]]` changed since (see [`crate::trust`]). Says how to trust it.
pub fn untrusted(root: &Path) -> Option<String> {
    let why = match crate::trust::state(root) {
        state if state.is_trusted() => return None,
        crate::trust::State::Changed => "its [[checkers]] changed since you trusted it",
        _ => "you have not trusted it",
    };
    Some(format!(
        "the checkers of {} do not run: {why}; read its .acas/config.toml, then run `acas trust {}`",
        root.display(),
        root.display()
    ))
}

/// The checkers for `dir` and the configuration errors: those of `dir` when it has some, else
/// those of the nearest directory above it that has some, up to the repository's root (`.git`)
/// or the workspace's (`.acas`), so that a subdirectory of a project is checked by the
/// project's checkers.
pub fn detect_for(dir: &Path) -> (Config, Vec<Detected>, Vec<String>) {
    let here = detect(dir);
    if !here.1.is_empty() || !here.2.is_empty() {
        return here;
    }
    let boundary = |d: &Path| d.join(".git").exists() || d.join(".acas").is_dir();
    if boundary(dir) {
        return here;
    }
    for above in dir.ancestors().skip(1) {
        let found = detect(above);
        if !found.1.is_empty() || !found.2.is_empty() || boundary(above) {
            return found;
        }
    }
    here
}

/// The checkers of the workspace at `root` and every configuration error, each with its
/// location (`path:line:column: message`).
pub fn detect(root: &Path) -> (Config, Vec<Detected>, Vec<String>) {
    // Every mistake of the `[[checkers]]` entries, and the entries that are right, so that one
    // pass over the file fixes them all.
    let (config, errors) = config::load_all(root);
    let mut errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let trusted = crate::trust::state(root).is_trusted();
    let (found, problems) = detect::checkers_probing(root, &config.checkers, &config.ignore, trusted);
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

/// How one checker's run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Missing,
    Failed,
    TimedOut,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
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
pub struct Ran {
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
pub fn select(found: Vec<Detected>, names: &[String]) -> Result<Vec<Detected>, String> {
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

/// What a checker's run says as it goes: that it started (with its command line) or how it
/// ended.
pub enum Progress<'a> {
    Started { name: &'a str, command: String },
    Ended(&'a Ran),
}

/// Runs `selected`, at most [`PARALLEL_CHECKERS`] at a time, and returns every problem and
/// how each run went, in the order of `selected`. `progress` hears each start and end.
pub async fn run_all(
    selected: Vec<Detected>,
    progress: Arc<dyn Fn(Progress<'_>) + Send + Sync>,
) -> (Vec<Problem>, Vec<Ran>) {
    let names: Vec<String> = selected.iter().map(|d| d.checker.name.clone()).collect();
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_CHECKERS));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, detected) in selected.into_iter().enumerate() {
        let permits = permits.clone();
        let progress = progress.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("the semaphore is never closed");
            (i, run_one(detected, progress.as_ref()).await)
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

async fn run_one(detected: Detected, progress: &(dyn Fn(Progress<'_>) + Send + Sync)) -> (Vec<Problem>, Ran) {
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
    progress(Progress::Started { name: &checker.name, command: checker.command.join(" ") });
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
    progress(Progress::Ended(&ran));
    (problems, ran)
}
