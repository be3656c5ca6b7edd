//! `acas workflow ...`: check and list the workflows of a workspace.
//!
//! Every subcommand is a variant of [`WorkflowCommand`]; a path argument is a workspace
//! directory (its `.acas/workflows`) or, for `validate`, one workflow file.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::{EXIT_FAILED, EXIT_FOUND, EXIT_OK, ListFormat, output};
use crate::workflow::definition::Workflow;
use crate::workflow::parse::{Problem, Severity};
use crate::workflow::validate::{self, WORKFLOWS_DIR};

#[derive(Subcommand)]
pub(super) enum WorkflowCommand {
    /// Check workflow definitions and print every problem as FILE:LINE:COLUMN
    Validate {
        /// A workflow file, or a workspace directory (every file in its .acas/workflows)
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// List the workflows of a workspace: name, file, triggers, steps, and whether each is valid
    List {
        /// The workspace directory
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    #[command(flatten)]
    Runs(super::workflow_run::RunCommand),
}

pub(super) fn run(command: WorkflowCommand) -> i32 {
    match command {
        WorkflowCommand::Validate { path, format } => validate(&path, format),
        WorkflowCommand::List { path, format } => list(&path, format),
        WorkflowCommand::Runs(command) => super::workflow_run::run(command),
    }
}

/// One checked file: the path to show, the workflow if it parsed, and its problems.
type Checked = (String, Option<Workflow>, Vec<Problem>);

/// Checks `path`: one file, or every workflow file of a workspace.
fn checked(path: &Path, command: &str) -> Result<Vec<Checked>, i32> {
    let (target, is_dir) = super::resolve(path).map_err(|error| {
        output::note(&format!("acas workflow {command}: {error}"));
        EXIT_FAILED
    })?;
    if !is_dir {
        let (workflow, problems) = validate::check_file(&target);
        return Ok(vec![(path.display().to_string(), workflow, problems)]);
    }
    // `.acas` (or its `workflows`) being a file would otherwise read as "no workflows".
    let unusable = crate::store::Store::recorded(&target).err().map(|e| e.to_string()).or_else(|| {
        let dir = target.join(WORKFLOWS_DIR);
        (dir.symlink_metadata().is_ok() && !dir.is_dir()).then(|| {
            format!(
                "{} is not a directory: workflow files go in a directory of that name; move it aside",
                dir.display()
            )
        })
    });
    if let Some(problem) = unusable {
        output::note(&format!("acas workflow {command}: {problem}"));
        return Err(EXIT_FAILED);
    }
    let files = validate::check_dir(&target);
    if files.is_empty() {
        output::note(&format!(
            "no workflow files (*.yaml, *.yml) in {}",
            target.join(WORKFLOWS_DIR).display()
        ));
    }
    Ok(files
        .into_iter()
        .map(|(file, workflow, problems)| (crate::workspace::relative(&target, &file), workflow, problems))
        .collect())
}

fn validate(path: &Path, format: ListFormat) -> i32 {
    let files = match checked(path, "validate") {
        Ok(files) => files,
        Err(code) => return code,
    };
    let count = |severity| files.iter().flat_map(|(_, _, p)| p).filter(|p| p.severity == severity).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let text = match format {
        ListFormat::Text => {
            let mut out = String::new();
            for (shown, _, problems) in &files {
                for p in problems {
                    out.push_str(&format!(
                        "{shown}:{}:{}: {}: {}\n",
                        p.line,
                        p.column,
                        p.severity.as_str(),
                        p.message
                    ));
                }
            }
            out.push_str(&format!(
                "{} checked: {errors} {}, {warnings} {}",
                plural(files.len(), "workflow file", "workflow files"),
                if errors == 1 { "error" } else { "errors" },
                if warnings == 1 { "warning" } else { "warnings" },
            ));
            out
        }
        ListFormat::Json => {
            let problems: Vec<serde_json::Value> = files
                .iter()
                .flat_map(|(shown, _, problems)| {
                    problems.iter().map(move |p| {
                        json!({
                            "file": shown,
                            "line": p.line,
                            "column": p.column,
                            "end_line": p.end_line,
                            "end_column": p.end_column,
                            "severity": p.severity.as_str(),
                            "message": p.message,
                        })
                    })
                })
                .collect();
            let report = json!({
                "files_checked": files.len(),
                "errors": errors,
                "warnings": warnings,
                "problems": problems,
            });
            serde_json::to_string_pretty(&report).expect("JSON values serialise")
        }
    };
    output::line(&text);
    if errors > 0 { EXIT_FOUND } else { EXIT_OK }
}

fn list(path: &Path, format: ListFormat) -> i32 {
    let files = match checked(path, "list") {
        Ok(files) => files,
        Err(code) => return code,
    };
    let rows: Vec<serde_json::Value> = files
        .iter()
        .map(|(shown, workflow, problems)| {
            let errors = problems.iter().filter(|p| p.is_error()).count();
            json!({
                "name": workflow.as_ref().map(|w| w.name.as_str()).filter(|n| !n.is_empty()),
                "file": shown,
                "triggers": workflow.as_ref().map(triggers).unwrap_or_default(),
                "steps": workflow.as_ref().map_or(0, |w| w.steps.len()),
                "valid": errors == 0,
                "errors": errors,
                "warnings": problems.len() - errors,
            })
        })
        .collect();
    let text = match format {
        ListFormat::Json => {
            serde_json::to_string_pretty(&json!({ "workflows": rows })).expect("JSON values serialise")
        }
        ListFormat::Text => {
            let mut table = vec![["NAME", "FILE", "TRIGGERS", "STEPS", "VALID"].map(str::to_owned)];
            for row in &rows {
                let triggers: Vec<&str> =
                    row["triggers"].as_array().into_iter().flatten().filter_map(|t| t.as_str()).collect();
                let errors = row["errors"].as_u64().unwrap_or(0);
                table.push([
                    row["name"].as_str().unwrap_or("-").to_owned(),
                    row["file"].as_str().unwrap_or_default().to_owned(),
                    triggers.join(","),
                    row["steps"].to_string(),
                    if errors == 0 {
                        "yes".to_owned()
                    } else {
                        format!("no ({})", plural(errors as usize, "error", "errors"))
                    },
                ]);
            }
            render_table(&table)
        }
    };
    output::line(&text);
    EXIT_OK
}

/// The triggers a workflow declares; one with none runs only by hand.
fn triggers(workflow: &Workflow) -> Vec<&'static str> {
    let on = &workflow.on;
    let mut names = Vec::new();
    if on.file_change.is_some() {
        names.push("file_change");
    }
    if !on.schedule.is_empty() {
        names.push("schedule");
    }
    if on.diagnostic.is_some() {
        names.push("diagnostic");
    }
    if on.escalation.is_some() {
        names.push("escalation");
    }
    if on.manual || names.is_empty() && on.webhook.is_none() {
        names.push("manual");
    }
    if on.webhook.is_some() {
        names.push("webhook");
    }
    names
}

fn render_table(rows: &[[String; 5]]) -> String {
    let mut widths = [0usize; 5];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
