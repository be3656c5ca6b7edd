//! Turns the workspace's outputs into LSP messages, in order: diagnostics, messages, the
//! scan's progress and workflow runs (as `acas/workflowRun` and a `$/progress` of their own),
//! and asks the user to trust the workspace (`window/showMessageRequest`).

use std::collections::HashMap;

use acas_protocol::ext;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::*;

use super::convert;
use crate::workspace::{self, MessageLevel, Output, Progress};

/// The action that trusts the workspace to run its checkers.
const TRUST_AND_RUN: &str = "Trust and run";

pub(super) async fn forward(
    client: Client,
    mut outputs: tokio::sync::mpsc::Receiver<Output>,
    progress: bool,
) {
    let encoding_independent_token = NumberOrString::String("acas/scan".to_owned());
    let mut progress_token: Option<NumberOrString> = None;
    let mut run_tokens: HashMap<i64, RunProgress> = HashMap::new();
    while let Some(output) = outputs.recv().await {
        match output {
            Output::WorkflowRun(state) => {
                if progress {
                    workflow_progress(&client, &mut run_tokens, &state).await;
                }
                client.send_notification::<ext::WorkflowRun>(convert::workflow_run(&state)).await;
            }
            Output::Diagnostics { path, version, diagnostics } => {
                let Some(uri) = Uri::from_file_path(&path) else {
                    continue;
                };
                let diagnostics = diagnostics.iter().map(|d| convert::diagnostic(&uri, d)).collect();
                client.publish_diagnostics(uri, diagnostics, version).await;
            }
            Output::Message { level, text } => {
                let typ = match level {
                    MessageLevel::Error => MessageType::ERROR,
                    MessageLevel::Warning => MessageType::WARNING,
                    MessageLevel::Info => MessageType::INFO,
                };
                client.show_message(typ, text).await;
            }
            Output::AskTrust { text, answer } => {
                // The user may take their time: the outputs after it go on meanwhile.
                let client = client.clone();
                tokio::spawn(async move {
                    let item = |title: &str| MessageActionItem {
                        title: title.to_owned(),
                        properties: Default::default(),
                    };
                    let chosen = client
                        .show_message_request(
                            MessageType::WARNING,
                            text,
                            Some(vec![item(TRUST_AND_RUN), item("Not now")]),
                        )
                        .await;
                    let yes = matches!(chosen, Ok(Some(item)) if item.title == TRUST_AND_RUN);
                    let _ = answer.send(yes);
                });
            }
            Output::Changes(_) => {}
            Output::Progress(p) if progress => {
                let value = match p {
                    Progress::Begin { title } => {
                        let token = encoding_independent_token.clone();
                        if client.create_work_done_progress(token.clone()).await.is_err() {
                            continue;
                        }
                        progress_token = Some(token);
                        WorkDoneProgress::Begin(WorkDoneProgressBegin { title, ..Default::default() })
                    }
                    Progress::Report { message, percentage } => {
                        WorkDoneProgress::Report(WorkDoneProgressReport {
                            message: Some(message),
                            percentage,
                            ..Default::default()
                        })
                    }
                    Progress::End { message } => {
                        WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(message) })
                    }
                };
                let Some(token) = progress_token.clone() else {
                    continue;
                };
                if matches!(value, WorkDoneProgress::End(_)) {
                    progress_token = None;
                }
                client
                    .send_notification::<notification::Progress>(ProgressParams {
                        token,
                        value: ProgressParamsValue::WorkDone(value),
                    })
                    .await;
            }
            Output::Progress(_) => {}
        }
    }
}

/// The `$/progress` of a run under way: its token, and the most it has shown, which it never
/// goes back from.
struct RunProgress {
    token: NumberOrString,
    total: usize,
    percentage: u32,
}

/// `$/progress` for a workflow run: begins with its first state, reports each change, and
/// reports its final count of steps done before it ends with its final status. Its total and its percentage only move forward: a step that appears late
/// raises the total, and the percentage stays where it was rather than going down.
async fn workflow_progress(
    client: &Client,
    tokens: &mut HashMap<i64, RunProgress>,
    state: &workspace::RunState,
) {
    let done = state.steps.iter().filter(|s| s.status.is_final()).count();
    let shown = tokens.get(&state.run);
    let total = state.steps.len().max(shown.map_or(0, |p| p.total));
    let current: Vec<&str> = state
        .steps
        .iter()
        .filter(|s| s.status == crate::workflow::definition::StepStatus::Running)
        .map(|s| s.id.as_str())
        .collect();
    let message = if current.is_empty() {
        format!("{done}/{total} steps done")
    } else {
        format!("{done}/{total} steps done; running {}", current.join(", "))
    };
    let percentage =
        (total > 0).then(|| ((done * 100 / total) as u32).max(shown.map_or(0, |p| p.percentage)));
    let (token, value) = match tokens.get_mut(&state.run) {
        Some(progress) if state.status.is_final() => {
            let token = progress.token.clone();
            tokens.remove(&state.run);
            // The states in between may have been merged: the last report counts every step the
            // run settled (skipped steps and allowed failures are done) before the end.
            let report = WorkDoneProgressReport { message: Some(message), percentage, ..Default::default() };
            client
                .send_notification::<notification::Progress>(ProgressParams {
                    token: token.clone(),
                    value: ProgressParamsValue::WorkDone(WorkDoneProgress::Report(report)),
                })
                .await;
            let message = format!("run {} {}", state.run, state.status.as_str());
            (token, WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(message) }))
        }
        Some(progress) => {
            progress.total = total;
            progress.percentage = percentage.unwrap_or(progress.percentage);
            (
                progress.token.clone(),
                WorkDoneProgress::Report(WorkDoneProgressReport {
                    message: Some(message),
                    percentage,
                    ..Default::default()
                }),
            )
        }
        // A run that ends before its progress began needs none.
        None if state.status.is_final() => return,
        None => {
            let token = NumberOrString::String(format!("acas/workflow/{}", state.run));
            if client.create_work_done_progress(token.clone()).await.is_err() {
                return;
            }
            tokens.insert(
                state.run,
                RunProgress { token: token.clone(), total, percentage: percentage.unwrap_or(0) },
            );
            let begin = WorkDoneProgressBegin {
                title: format!("ACAS: workflow {}", state.workflow),
                message: Some(message),
                percentage,
                cancellable: Some(false),
            };
            (token, WorkDoneProgress::Begin(begin))
        }
    };
    client
        .send_notification::<notification::Progress>(ProgressParams {
            token,
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}
