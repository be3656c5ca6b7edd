//! `textDocument/codeAction`: the checkers' own machine-applicable fixes and the verified AI
//! fixes at the range, and "Explain and fix with AI" on every diagnostic there, from any tool (other servers' own quick fixes are theirs to offer
//! and are never hidden); "Create a task for agents from this problem" on each of ACAS's own
//! diagnostics (those whose `data` has the problem's fingerprint).

use std::collections::HashMap;

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CodeActionResponse, Command, TextEdit,
    Uri, WorkspaceEdit,
};

use crate::lsp::methods::FIX_APPLIED_COMMAND;
use crate::lsp::{Backend, convert, file_path};
use crate::workspace::{QuickFix, WORKFLOW_SOURCE};

/// The code action that makes a task for agents of a problem.
const TASK_FROM_PROBLEM_TITLE: &str = "Create a task for agents from this problem";

pub(crate) async fn handle(
    backend: &Backend,
    params: CodeActionParams,
) -> Result<Option<CodeActionResponse>> {
    let Some(path) = file_path(&params.text_document.uri) else { return Ok(None) };
    // Whole lines: a client may count columns in another encoding than the negotiated one
    // (Neovim 0.7 counts bytes), and the fixes on those lines are the ones meant.
    let mut range = convert::range_from_lsp(params.range);
    range.start.character = 0;
    range.end.character = u32::MAX;
    let fixes = backend.handle()?.quick_fixes(path, range).await;
    let mut actions = Vec::new();
    for QuickFix { fix_id, title, edits, fixes, .. } in fixes {
        // A tool's fix is for one diagnostic: offered when that one is asked about, or when the
        // editor names none (a menu on the line), and tied to it alone.
        let diagnostics = match &fixes {
            None => Some(params.context.diagnostics.clone()),
            Some(_) if params.context.diagnostics.is_empty() => None,
            Some(fixed) => {
                let Some(asked) = params.context.diagnostics.iter().find(|d| {
                    d.range.start.line == fixed.range.start.line
                        && d.message == fixed.message
                        && d.source.as_deref() == Some(fixed.source.as_str())
                }) else {
                    continue;
                };
                Some(vec![asked.clone()])
            }
        };
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        for edit in edits {
            let Some(uri) = Uri::from_file_path(&edit.path) else { continue };
            changes
                .entry(uri)
                .or_default()
                .push(TextEdit { range: convert::range_to_lsp(edit.range), new_text: edit.new });
        }
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title,
            kind: Some(CodeActionKind::QUICKFIX),
            // Tied to the diagnostics here, so that editors list the verified fix first.
            diagnostics,
            is_preferred: Some(true),
            edit: Some(WorkspaceEdit { changes: Some(changes), ..Default::default() }),
            // Only an AI fix's outcome is recorded; a tool's fix needs no AI and teaches nothing.
            command: fix_id.map(|fix_id| Command {
                title: "Record that the AI fix was applied".to_owned(),
                command: FIX_APPLIED_COMMAND.to_owned(),
                arguments: Some(vec![serde_json::json!(fix_id)]),
            }),
            ..Default::default()
        }));
    }
    for diagnostic in &params.context.diagnostics {
        // AI notes explain already; workflow definitions are not code that escalation reads.
        if matches!(diagnostic.source.as_deref(), Some("acas-ai" | WORKFLOW_SOURCE)) {
            continue;
        }
        let own = diagnostic.source.as_deref() == Some("acas");
        let args = ext::EscalateArgs {
            uri: params.text_document.uri.as_str().to_owned(),
            range: Some(convert::ext_range_from_lsp(diagnostic.range)),
            position: None,
            diagnostic: (!own).then(|| convert::external_from_lsp(diagnostic)),
            provider: None,
            fingerprint: own
                .then(|| diagnostic.data.as_ref()?.get("fingerprint")?.as_str().map(str::to_owned))
                .flatten(),
        };
        let fingerprint = args.fingerprint.clone();
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: "Explain and fix with AI".to_owned(),
            kind: Some(CodeActionKind::QUICKFIX),
            diagnostics: Some(vec![diagnostic.clone()]),
            command: Some(Command {
                title: "Explain and fix with AI".to_owned(),
                command: ext::ESCALATE_COMMAND.to_owned(),
                arguments: Some(vec![serde_json::to_value(args).expect("arguments serialise")]),
            }),
            ..Default::default()
        }));
        if let Some(fingerprint) = fingerprint {
            let args = ext::TaskFromProblemArgs { fingerprint };
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: TASK_FROM_PROBLEM_TITLE.to_owned(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![diagnostic.clone()]),
                command: Some(Command {
                    title: TASK_FROM_PROBLEM_TITLE.to_owned(),
                    command: ext::TASK_FROM_PROBLEM_COMMAND.to_owned(),
                    arguments: Some(vec![serde_json::to_value(args).expect("arguments serialise")]),
                }),
                ..Default::default()
            }));
        }
    }
    Ok(Some(actions))
}
