//! The TypeScript declarations of the protocol, for the VS Code extension.
//!
//! [`generate`] renders every type and method name into one module. The checked-in copy is
//! `vscode-extension/src/protocol.ts`; the test below fails when it differs from what the Rust
//! types generate, and `UPDATE_PROTOCOL=1 cargo test -p acas-protocol` rewrites it.

use ls_types::notification::Notification;
use ls_types::request::Request;
use ts_rs::{Config, TS};

use crate::ext::*;
use crate::settings::{LogLevel, Settings};

/// The generated TypeScript module.
pub fn generate() -> String {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types in protocol/ by `UPDATE_PROTOCOL=1 cargo test -p acas-protocol`.\n\
         // Do not edit: a test fails when this file and the Rust types differ.\n\n",
    );
    let decls = [
        Position::decl(&cfg),
        Range::decl(&cfg),
        Location::decl(&cfg),
        DiagnosticCode::decl(&cfg),
        RelatedInformation::decl(&cfg),
        ExternalDiagnostic::decl(&cfg),
        ExternalDiagnosticsParams::decl(&cfg),
        ProblemsParams::decl(&cfg),
        Problem::decl(&cfg),
        Subsystem::decl(&cfg),
        SubsystemState::decl(&cfg),
        SubsystemStatus::decl(&cfg),
        LanguageCount::decl(&cfg),
        StatusResult::decl(&cfg),
        SpendResult::decl(&cfg),
        FixOutcome::decl(&cfg),
        FixFeedbackParams::decl(&cfg),
        EscalateArgs::decl(&cfg),
        EscalateResult::decl(&cfg),
        EscalationStarted::decl(&cfg),
        Failure::decl(&cfg),
        EscalationDoneParams::decl(&cfg),
        CancelArgs::decl(&cfg),
        RunCheckersArgs::decl(&cfg),
        RunCheckersResult::decl(&cfg),
        CancelResult::decl(&cfg),
        WorkflowRunArgs::decl(&cfg),
        WorkflowRunRef::decl(&cfg),
        WorkflowStarted::decl(&cfg),
        RunStatus::decl(&cfg),
        StepStatus::decl(&cfg),
        WorkflowStepState::decl(&cfg),
        WorkflowRunParams::decl(&cfg),
        InputType::decl(&cfg),
        TriggerKind::decl(&cfg),
        WorkflowInput::decl(&cfg),
        WorkflowSummary::decl(&cfg),
        TeamStepState::decl(&cfg),
        TeamRun::decl(&cfg),
        WorkflowsResult::decl(&cfg),
        TaskState::decl(&cfg),
        TaskLock::decl(&cfg),
        TaskSummary::decl(&cfg),
        TasksParams::decl(&cfg),
        TasksResult::decl(&cfg),
        StoreStatusParams::decl(&cfg),
        TaskFromProblemArgs::decl(&cfg),
        TaskFromProblemResult::decl(&cfg),
        PlanArgs::decl(&cfg),
        PlanResult::decl(&cfg),
        PlanStarted::decl(&cfg),
        PlanReadyParams::decl(&cfg),
        ErrorKind::decl(&cfg),
        ErrorData::decl(&cfg),
        LogLevel::decl(&cfg),
        Settings::decl(&cfg),
    ];
    for decl in decls {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    out.push_str("/** Method names of ACAS's LSP extensions. */\nexport const Methods = {\n");
    for (name, method) in [
        ("externalDiagnostics", ExternalDiagnostics::METHOD),
        ("problems", Problems::METHOD),
        ("status", Status::METHOD),
        ("spend", Spend::METHOD),
        ("fixFeedback", FixFeedback::METHOD),
        ("workflowRun", WorkflowRun::METHOD),
        ("workflows", Workflows::METHOD),
        ("escalationDone", EscalationDone::METHOD),
        ("planReady", PlanReady::METHOD),
        ("tasks", Tasks::METHOD),
        ("tasksChanged", TasksChanged::METHOD),
        ("runsChanged", RunsChanged::METHOD),
        ("storeStatus", StoreStatus::METHOD),
        ("spendChanged", SpendChanged::METHOD),
    ] {
        out.push_str(&format!("  {name}: \"{method}\",\n"));
    }
    out.push_str("} as const;\n\n/** Commands ACAS serves through `workspace/executeCommand`. */\nexport const Commands = {\n");
    for (name, command) in [
        ("escalate", ESCALATE_COMMAND),
        ("workflowRun", WORKFLOW_RUN_COMMAND),
        ("workflowCancel", WORKFLOW_CANCEL_COMMAND),
        ("workflowRerun", WORKFLOW_RERUN_COMMAND),
        ("plan", PLAN_COMMAND),
        ("cancel", CANCEL_COMMAND),
        ("runCheckers", RUN_CHECKERS_COMMAND),
        ("taskFromProblem", TASK_FROM_PROBLEM_COMMAND),
    ] {
        out.push_str(&format!("  {name}: \"{command}\",\n"));
    }
    out.push_str("} as const;\n");
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn checked_in_typescript_matches_the_rust_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vscode-extension/src/protocol.ts");
        let generated = super::generate();
        if std::env::var_os("UPDATE_PROTOCOL").is_some() {
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{} is out of date with the Rust types in protocol/; run `UPDATE_PROTOCOL=1 cargo test -p acas-protocol`",
            path.display()
        );
    }
}
