//! The team's workflow runs on the shared store, as `acas workflow status` and `history` show
//! them when the workspace has one: the runs of every clone of the repository, on every
//! machine, each marked with who started it and where.
//!
//! Rows come from the shared store and may have been written by anyone: every text is shown
//! escaped ([`output::shown`]), and a status this ACAS does not know is shown as such.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::{ListFormat, output};
use crate::store::postgres::runs::{SharedRun, SharedStep};
use crate::store::{PgStore, RunBoard, SharedStore, StoreErrorKind};
use crate::workflow::engine::human;
use crate::workflow::error::{WorkflowError, WorkflowErrorKind};

/// The shared store of the workspace at `root`, connected; `None` without one, and when it
/// cannot be reached (said on stderr: the workspace's own runs are shown instead).
pub(super) fn board(root: &Path) -> Result<Option<PgStore>, WorkflowError> {
    let Some(shared) = shared_store(root) else { return Ok(None) };
    match shared.connect() {
        Ok(store) => Ok(Some(store)),
        Err(e) if e.kind() == StoreErrorKind::Unreachable => {
            output::note(&format!("{e}; showing this workspace's runs only"));
            Ok(None)
        }
        Err(e) => Err(WorkflowError::new(WorkflowErrorKind::State, e.to_string())),
    }
}

fn shared_store(root: &Path) -> Option<SharedStore> {
    crate::config::load(root).0.shared_store
}

/// Whether `text` may be a shared run's id (16 hex digits).
pub(super) fn is_shared_id(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Prints the team's run `id`; false when the store has no such run.
pub(super) fn print_team_run(
    board: &dyn RunBoard,
    id: &str,
    format: ListFormat,
) -> Result<bool, WorkflowError> {
    let run = board.team_run(&id.to_ascii_lowercase()).map_err(state_error)?;
    let Some(run) = run else { return Ok(false) };
    match format {
        ListFormat::Json => output::line(&run_json(&run, true).to_string()),
        ListFormat::Text => output::line(&run_text(&run, true)),
    };
    Ok(true)
}

/// Prints the team's most recent runs (at most `limit`), with their steps when `steps`.
pub(super) fn print_team_runs(
    board: &dyn RunBoard,
    workflow: Option<&str>,
    limit: usize,
    steps: bool,
    format: ListFormat,
) -> Result<(), WorkflowError> {
    // Read more than shown when filtering by workflow, within the store's own cap.
    let read = if workflow.is_some() { crate::store::postgres::runs::MAX_LISTED } else { limit };
    let runs: Vec<SharedRun> = board
        .team_runs(read)
        .map_err(state_error)?
        .into_iter()
        .filter(|r| workflow.is_none_or(|w| r.workflow == w))
        .take(limit)
        .collect();
    match format {
        ListFormat::Json => {
            let runs: Vec<Value> = runs.iter().map(|r| run_json(r, steps)).collect();
            output::line(&json!({ "shared": true, "runs": runs }).to_string());
        }
        ListFormat::Text if steps => {
            let text = if runs.is_empty() {
                "no workflow runs in the team's store yet".to_owned()
            } else {
                runs.iter().map(|r| run_text(r, true)).collect::<Vec<_>>().join("\n")
            };
            output::line(&text);
        }
        ListFormat::Text => {
            let mut text = String::from(
                "RUN               WORKFLOW              STATUS     STARTED              TOOK    BY",
            );
            for r in &runs {
                text.push_str(&format!(
                    "\n{:<17} {:<21} {:<10} {:<20} {:<7} {}",
                    output::shown(&r.id),
                    output::shown(&r.workflow),
                    status_shown(&r.status, is_run_status),
                    r.started_ms.map_or("-".to_owned(), crate::time::date_time),
                    took(r.started_ms, r.finished_ms),
                    who(r),
                ));
            }
            output::line(&text);
        }
    }
    Ok(())
}

fn state_error(e: crate::store::StoreError) -> WorkflowError {
    WorkflowError::new(WorkflowErrorKind::State, e.to_string())
}

/// Who started the run and where: `USER on HOST in CLONE (run N there)`.
fn who(r: &SharedRun) -> String {
    format!(
        "{} on {} in {} (run {} there)",
        output::shown(&r.user),
        output::shown(&r.host),
        output::shown(&r.clone),
        r.local_id
    )
}

fn took(started: Option<i64>, finished: Option<i64>) -> String {
    match (started, finished) {
        (Some(s), Some(f)) => human(Duration::from_millis(f.saturating_sub(s).max(0) as u64)),
        _ => "-".to_owned(),
    }
}

fn is_run_status(s: &str) -> bool {
    matches!(s, "queued" | "running" | "paused" | "succeeded" | "failed" | "cancelled")
}

fn is_step_status(s: &str) -> bool {
    matches!(s, "pending" | "running" | "succeeded" | "failed" | "skipped" | "cancelled")
}

/// A status as written, or `unknown (…)` for one this ACAS does not know.
fn status_shown(status: &str, known: fn(&str) -> bool) -> String {
    if known(status) { status.to_owned() } else { format!("unknown ({})", output::shown(status)) }
}

fn run_text(r: &SharedRun, with_steps: bool) -> String {
    let mut text = format!(
        "run {} of {}: {}, by {}",
        output::shown(&r.id),
        output::shown(&r.workflow),
        status_shown(&r.status, is_run_status),
        who(r)
    );
    if let Some(started) = r.started_ms {
        text.push_str(&format!(", started {}", crate::time::date_time(started)));
    }
    if r.finished_ms.is_some() && r.started_ms.is_some() {
        text.push_str(&format!(", took {}", took(r.started_ms, r.finished_ms)));
    }
    if let Some(error) = &r.error {
        text.push_str(&format!("\n  error: {}", output::shown(error)));
    }
    if with_steps {
        for s in &r.steps {
            text.push_str(&format!(
                "\n  {:<10} {} ({} attempts)",
                status_shown(&s.status, is_step_status),
                output::shown(&s.step_id),
                s.attempts
            ));
            if let Some(error) = &s.error {
                text.push_str(&format!(": {}", output::shown(error)));
            }
        }
    }
    text
}

fn run_json(r: &SharedRun, with_steps: bool) -> Value {
    let mut value = json!({
        "id": r.id,
        "run_id": r.local_id,
        "user": r.user,
        "host": r.host,
        "clone": r.clone,
        "workflow": r.workflow,
        "definition_hash": r.definition_hash,
        "trigger": r.trigger,
        "status": r.status,
        "error": r.error,
        "created_ms": r.created_ms,
        "started_ms": r.started_ms,
        "finished_ms": r.finished_ms,
        "version": r.version,
    });
    if with_steps {
        value["steps"] = r.steps.iter().map(step_json).collect();
    }
    value
}

fn step_json(s: &SharedStep) -> Value {
    json!({
        "id": s.step_id,
        "status": s.status,
        "attempts": s.attempts,
        "exit_code": s.exit_code,
        "error": s.error,
        "output_tail": s.output_tail,
        "started_ms": s.started_ms,
        "finished_ms": s.finished_ms,
    })
}
