//! Conversions between workspace and domain types and LSP and protocol types.

use tower_lsp_server::ls_types::{self as lsp, Uri};

use std::path::Path;

use acas_protocol::ext;

use crate::analysis::FileDiagnostic;
use crate::classify::Severity;
use crate::text::{Position, TextRange};

pub fn range_from_lsp(range: lsp::Range) -> TextRange {
    TextRange {
        start: Position { line: range.start.line, character: range.start.character },
        end: Position { line: range.end.line, character: range.end.character },
    }
}

pub fn range_to_lsp(range: TextRange) -> lsp::Range {
    lsp::Range {
        start: lsp::Position { line: range.start.line, character: range.start.character },
        end: lsp::Position { line: range.end.line, character: range.end.character },
    }
}

pub fn diagnostic(uri: &Uri, d: &FileDiagnostic) -> lsp::Diagnostic {
    let related = d
        .related
        .iter()
        .map(|(range, message)| lsp::DiagnosticRelatedInformation {
            location: lsp::Location { uri: uri.clone(), range: range_to_lsp(*range) },
            message: message.clone(),
        })
        .collect::<Vec<_>>();
    lsp::Diagnostic {
        range: range_to_lsp(d.range),
        severity: Some(match d.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            Severity::Information => lsp::DiagnosticSeverity::INFORMATION,
            Severity::Hint => lsp::DiagnosticSeverity::HINT,
        }),
        // A tool's own code (`E0308`), else the category.
        code: Some(lsp::NumberOrString::String(
            d.code.clone().unwrap_or_else(|| d.category.as_str().to_owned()),
        )),
        source: Some(d.source.clone()),
        message: d.message.clone(),
        related_information: (!related.is_empty()).then_some(related),
        data: Some(serde_json::json!({
            "fingerprint": d.fingerprint,
            "category": d.category.as_str(),
            "symbol": d.symbol,
            "fixId": d.fix_id,
        })),
        ..Default::default()
    }
}

/// Reads settings sent by a client, either bare or under an `acas` key.
pub fn settings(value: &serde_json::Value) -> Result<acas_protocol::Settings, serde_json::Error> {
    let value = value.get("acas").unwrap_or(value);
    if value.is_null() {
        return Ok(acas_protocol::Settings::default());
    }
    super::liberal(value.clone())
}

pub fn ext_range(range: ext::Range) -> TextRange {
    TextRange {
        start: Position { line: range.start.line, character: range.start.character },
        end: Position { line: range.end.line, character: range.end.character },
    }
}

pub fn external_diagnostic(d: ext::ExternalDiagnostic) -> crate::workspace::ExternalDiagnostic {
    crate::workspace::ExternalDiagnostic {
        range: ext_range(d.range),
        severity: match d.severity {
            Some(2) => Severity::Warning,
            Some(3) => Severity::Information,
            Some(4) => Severity::Hint,
            _ => Severity::Error,
        },
        code: d.code.map(|c| match c {
            ext::DiagnosticCode::Number(n) => n.to_string(),
            ext::DiagnosticCode::String(s) => s,
        }),
        tool: d.source,
        message: d.message,
    }
}

pub fn problem(root: &Path, row: crate::store::ProblemRow) -> ext::Problem {
    let locations = row
        .locations
        .iter()
        .filter_map(|(path, line, character)| {
            let uri = Uri::from_file_path(root.join(path))?;
            let at = ext::Position { line: *line, character: *character };
            Some(ext::Location { uri: uri.as_str().to_owned(), range: ext::Range { start: at, end: at } })
        })
        .collect();
    ext::Problem {
        fingerprint: row.fingerprint,
        category: row.category,
        severity: row.severity,
        message: row.message,
        source: row.source,
        symbol: row.symbol,
        occurrences: row.occurrences,
        first_seen: row.first_seen_ms,
        last_seen: row.last_seen_ms,
        locations,
    }
}

pub fn status(status: crate::workspace::Status) -> ext::StatusResult {
    ext::StatusResult {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        workspace_root: (!status.root.as_os_str().is_empty()).then(|| status.root.display().to_string()),
        files_watched: status.files as u64,
        languages: status
            .languages
            .into_iter()
            .map(|(language, files)| ext::LanguageCount { language, files: files as u64 })
            .collect(),
        open_documents: status.open_documents as u64,
        store_bytes: status.store_bytes,
        subsystems: status
            .subsystems
            .into_iter()
            .filter_map(|(name, state, detail)| {
                let Some((name, state)) = subsystem(name, state) else {
                    tracing::warn!("status: subsystem `{name}` in state `{state}` has no protocol name");
                    return None;
                };
                Some(ext::SubsystemStatus { name, state, detail })
            })
            .collect(),
    }
}

pub fn ext_range_from_lsp(range: lsp::Range) -> ext::Range {
    ext::Range {
        start: ext::Position { line: range.start.line, character: range.start.character },
        end: ext::Position { line: range.end.line, character: range.end.character },
    }
}

/// Another server's diagnostic, as the client passed it in a code action request.
pub fn external_from_lsp(d: &lsp::Diagnostic) -> ext::ExternalDiagnostic {
    ext::ExternalDiagnostic {
        range: ext_range_from_lsp(d.range),
        severity: d.severity.map(|s| {
            if s == lsp::DiagnosticSeverity::ERROR {
                1
            } else if s == lsp::DiagnosticSeverity::WARNING {
                2
            } else if s == lsp::DiagnosticSeverity::INFORMATION {
                3
            } else {
                4
            }
        }),
        code: d.code.clone().map(|c| match c {
            lsp::NumberOrString::Number(n) => ext::DiagnosticCode::Number(i64::from(n)),
            lsp::NumberOrString::String(s) => ext::DiagnosticCode::String(s),
        }),
        source: d.source.clone(),
        message: d.message.clone(),
        related_information: Vec::new(),
    }
}

/// The state of a workflow run, as `acas/workflowRun` carries it.
pub fn workflow_run(state: &crate::workspace::RunState) -> ext::WorkflowRunParams {
    ext::WorkflowRunParams {
        run_id: state.run,
        workflow: state.workflow.clone(),
        status: run_status(state.status),
        steps: state
            .steps
            .iter()
            .map(|s| ext::WorkflowStepState {
                id: s.id.clone(),
                status: step_status(s.status),
                attempts: s.attempts,
                error: s.error.clone(),
            })
            .collect(),
        error: state.error.clone(),
        created_ms: state.created_ms,
        finished_ms: state.finished_ms,
        seq: state.seq,
    }
}

/// The workflows and recent runs, as `acas/workflows` answers.
pub fn workflows(
    workflows: &[crate::workflow::definition::Workflow],
    runs: &[crate::workspace::RunState],
    seq: u64,
    team: Option<&[crate::store::postgres::runs::SharedRun]>,
) -> ext::WorkflowsResult {
    use crate::workflow::definition::InputType;
    let summary = |w: &crate::workflow::definition::Workflow| {
        let on = &w.on;
        let triggers = [
            (ext::TriggerKind::FileChange, on.file_change.is_some()),
            (ext::TriggerKind::Schedule, !on.schedule.is_empty()),
            (ext::TriggerKind::Diagnostic, on.diagnostic.is_some()),
            (ext::TriggerKind::Escalation, on.escalation.is_some()),
            (ext::TriggerKind::Manual, on.manual),
            (ext::TriggerKind::Webhook, on.webhook.is_some()),
        ];
        ext::WorkflowSummary {
            name: w.name.clone(),
            uri: Uri::from_file_path(&w.file).map(|u| u.as_str().to_owned()).unwrap_or_default(),
            triggers: triggers.iter().filter(|(_, on)| *on).map(|(kind, _)| *kind).collect(),
            inputs: w
                .inputs
                .iter()
                .map(|(name, spec)| ext::WorkflowInput {
                    name: name.clone(),
                    kind: match spec.kind {
                        InputType::String => ext::InputType::String,
                        InputType::Number => ext::InputType::Number,
                        InputType::Boolean => ext::InputType::Boolean,
                        InputType::Choice => ext::InputType::Choice,
                    },
                    description: spec.description.clone(),
                    default: spec.default.clone(),
                    required: spec.required,
                    options: spec.options.clone(),
                })
                .collect(),
            steps: w.steps.len() as u32,
        }
    };
    ext::WorkflowsResult {
        workflows: workflows.iter().map(summary).collect(),
        runs: runs.iter().map(workflow_run).collect(),
        seq,
        team_runs: team.map(|runs| runs.iter().map(team_run).collect()),
    }
}

/// A run of the shared store as the editor sees it; a status this ACAS does not know (a row
/// written by another program) is left out rather than guessed.
fn team_run(r: &crate::store::postgres::runs::SharedRun) -> ext::TeamRun {
    let run_status = |s: &str| match s {
        "queued" => Some(ext::RunStatus::Queued),
        "running" => Some(ext::RunStatus::Running),
        "paused" => Some(ext::RunStatus::Paused),
        "succeeded" => Some(ext::RunStatus::Succeeded),
        "failed" => Some(ext::RunStatus::Failed),
        "cancelled" => Some(ext::RunStatus::Cancelled),
        _ => None,
    };
    let step_status = |s: &str| match s {
        "pending" => Some(ext::StepStatus::Pending),
        "running" => Some(ext::StepStatus::Running),
        "succeeded" => Some(ext::StepStatus::Succeeded),
        "failed" => Some(ext::StepStatus::Failed),
        "skipped" => Some(ext::StepStatus::Skipped),
        "cancelled" => Some(ext::StepStatus::Cancelled),
        _ => None,
    };
    ext::TeamRun {
        id: r.id.clone(),
        run_id: r.local_id,
        workflow: r.workflow.clone(),
        status: run_status(&r.status),
        user: r.user.clone(),
        host: r.host.clone(),
        clone: r.clone.clone(),
        steps: r
            .steps
            .iter()
            .map(|s| ext::TeamStepState {
                id: s.step_id.clone(),
                status: step_status(&s.status),
                attempts: s.attempts.max(0) as u32,
                exit_code: s.exit_code,
                error: s.error.clone(),
            })
            .collect(),
        error: r.error.clone(),
        created_ms: r.created_ms,
        finished_ms: r.finished_ms,
    }
}

/// The protocol's error kind of what the workspace refused.
pub fn error_kind(kind: crate::workspace::RefusedKind) -> ext::ErrorKind {
    use crate::workspace::RefusedKind as K;
    use ext::ErrorKind as E;
    match kind {
        K::Internal => E::Internal,
        K::NoProvider => E::NoProvider,
        K::InvalidConfig => E::InvalidConfig,
        K::NoEgress => E::NoEgress,
        K::BudgetExceeded => E::BudgetExceeded,
        K::ProviderFailed => E::ProviderFailed,
        K::Cancelled => E::Cancelled,
        K::UnsupportedFile => E::UnsupportedFile,
        K::NoDiagnostic => E::NoDiagnostic,
        K::FixNotFound => E::FixNotFound,
        K::NoWorkspace => E::NoWorkspace,
        K::WorkflowNotFound => E::WorkflowNotFound,
        K::InvalidInputs => E::InvalidInputs,
        K::RunNotFound => E::RunNotFound,
        K::RunState => E::RunState,
        K::InvalidWorkflow => E::InvalidWorkflow,
        K::InvalidPlan => E::InvalidPlan,
        K::StoreFailed => E::StoreFailed,
        K::CheckerNotFound => E::CheckerNotFound,
        K::Untrusted => E::WorkspaceUntrusted,
    }
}

pub fn fix_outcome(outcome: ext::FixOutcome) -> crate::store::Outcome {
    match outcome {
        ext::FixOutcome::Applied => crate::store::Outcome::Applied,
        ext::FixOutcome::Reverted => crate::store::Outcome::Reverted,
        ext::FixOutcome::Dismissed => crate::store::Outcome::Dismissed,
    }
}

pub fn run_status(status: crate::workflow::definition::RunStatus) -> ext::RunStatus {
    use crate::workflow::definition::RunStatus as S;
    match status {
        S::Queued => ext::RunStatus::Queued,
        S::Running => ext::RunStatus::Running,
        S::Paused => ext::RunStatus::Paused,
        S::Succeeded => ext::RunStatus::Succeeded,
        S::Failed => ext::RunStatus::Failed,
        S::Cancelled => ext::RunStatus::Cancelled,
    }
}

pub fn step_status(status: crate::workflow::definition::StepStatus) -> ext::StepStatus {
    use crate::workflow::definition::StepStatus as S;
    match status {
        S::Pending => ext::StepStatus::Pending,
        S::Running => ext::StepStatus::Running,
        S::Succeeded => ext::StepStatus::Succeeded,
        S::Failed => ext::StepStatus::Failed,
        S::Skipped => ext::StepStatus::Skipped,
        S::Cancelled => ext::StepStatus::Cancelled,
    }
}

/// The workspace names its subsystems and their states with the protocol's words.
fn subsystem(name: &str, state: &str) -> Option<(ext::Subsystem, ext::SubsystemState)> {
    let name = serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()?;
    let state = serde_json::from_value(serde_json::Value::String(state.to_owned())).ok()?;
    Some((name, state))
}

/// The range `acas.escalate` names: its `range`, else an empty one at its `position`.
pub fn escalate_range(args: &ext::EscalateArgs) -> Option<TextRange> {
    let at = |p: ext::Position| Position { line: p.line, character: p.character };
    match (args.range, args.position) {
        (Some(range), _) => Some(ext_range(range)),
        (None, Some(p)) => Some(TextRange { start: at(p), end: at(p) }),
        (None, None) => None,
    }
}

pub(super) fn task(task: &crate::agents::Task) -> ext::TaskSummary {
    use crate::agents::TaskState as S;
    let state = match task.state {
        S::Queued => ext::TaskState::Queued,
        S::Claimed => ext::TaskState::Claimed,
        S::Running => ext::TaskState::Running,
        S::Blocked => ext::TaskState::Blocked,
        S::Done => ext::TaskState::Done,
        S::Failed => ext::TaskState::Failed,
    };
    ext::TaskSummary {
        id: task.id,
        title: task.title.clone(),
        description: task.description.clone(),
        kind: task.kind.as_str().to_owned(),
        priority: task.priority,
        state,
        labels: task.labels.clone(),
        paths: task.paths.clone(),
        needs: task.needs.clone(),
        agent: task.agent.clone(),
        lease_until_ms: task.lease_until_ms.filter(|_| task.state.is_held()),
        locks: task.locks.iter().map(|l| l.glob.clone()).collect(),
        attempts: task.attempts,
        max_attempts: task.max_attempts,
        last_error: task.last_error.clone(),
        source: task.source.as_str().to_owned(),
        created_by: task.created_by.clone(),
    }
}

pub(super) fn task_lock(lock: &crate::agents::Lock) -> ext::TaskLock {
    ext::TaskLock {
        glob: lock.glob.clone(),
        agent: lock.agent.clone(),
        task: lock.task,
        lease_until_ms: lock.lease_until_ms,
    }
}
