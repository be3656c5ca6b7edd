//! Command `acas.plan`: plans a task without holding the request open. Without an AI provider
//! the command is refused at once; else it answers with `{ planId }`, and the planning reports
//! itself ([`work::Work`]: `$/progress` or messages, cancellable), asks for approval with
//! `window/showMessageRequest` (no client request waits on it), has the workspace start an
//! approved plan, and ends with `acas/planReady`.

use std::sync::atomic::Ordering;

use acas_protocol::ext;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{LSPAny, MessageActionItem, MessageType};

use crate::lsp::work::{self, Kind, Work};
use crate::lsp::{Backend, argument, errors, invalid_params, stopped};
use crate::workspace::{Handle, PlanError, Request};

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    if arguments.is_empty() {
        return Err(invalid_params("acas.plan needs {prompt}".to_owned()));
    }
    let args: ext::PlanArgs = argument(ext::PLAN_COMMAND, arguments)?;
    let handle = backend.handle()?.clone();
    // Without a provider there is nothing to wait for: refuse now.
    handle.request(Request::WorkflowAi).await.ok_or_else(stopped)?.map_err(errors::refused)?;
    let cancel = CancellationToken::new();
    let ticket = work::register(Kind::Plan, &backend.cancellable, &cancel);
    let plan_id = ticket.id;
    let claim = ticket.claim.clone();
    let (client, progress) = (backend.client.clone(), backend.progress.load(Ordering::SeqCst));
    tokio::spawn(async move {
        let work = Work::begin(client.clone(), progress, ticket, "ACAS: planning", args.prompt.clone()).await;
        let outcome = plan(&handle, &client, &work, &args.prompt, &cancel, &claim).await;
        let (params, level, message) = match outcome {
            Ok(result) => {
                let message = match result.run_id {
                    Some(run) => format!("plan of {} tasks started as run {run}", result.tasks),
                    None => format!("plan of {} tasks not run", result.tasks),
                };
                (
                    ext::PlanReadyParams { plan_id, result: Some(result), error: None },
                    MessageType::INFO,
                    message,
                )
            }
            Err(error) => {
                let failure = errors::failure(&error);
                let level = match failure.kind {
                    ext::ErrorKind::Cancelled => MessageType::INFO,
                    _ => MessageType::ERROR,
                };
                let message = format!("no plan: {}", failure.message);
                (ext::PlanReadyParams { plan_id, result: None, error: Some(failure) }, level, message)
            }
        };
        work.end(level, message).await;
        client.send_notification::<ext::PlanReady>(params).await;
    });
    Ok(Some(serde_json::to_value(ext::PlanStarted { plan_id }).expect("results serialise")))
}

/// Plans, asks for approval and starts an approved plan.
async fn plan(
    handle: &Handle,
    client: &Client,
    work: &Work,
    prompt: &str,
    cancel: &CancellationToken,
    claim: &work::Claim,
) -> Result<ext::PlanResult> {
    let plan = handle.plan(prompt, cancel).await.ok_or_else(stopped)?.map_err(|e| match e {
        PlanError::NoProvider(refused) => errors::refused(refused),
        PlanError::Failed(error) => errors::plan(error),
    })?;
    let rendered = plan.render();
    work.report(format!("{} tasks; waiting for approval", plan.tasks.len())).await;
    let run = MessageActionItem { title: "Run plan".to_owned(), properties: Default::default() };
    let cancel_item = MessageActionItem { title: "Cancel".to_owned(), properties: Default::default() };
    let asked = client.show_message_request(
        MessageType::INFO,
        format!("ACAS plan for \"{prompt}\":\n{rendered}"),
        Some(vec![run.clone(), cancel_item]),
    );
    let choice = tokio::select! {
        choice = asked => choice.ok().flatten(),
        () = cancel.cancelled() => {
            return Err(errors::error(ext::ErrorKind::Cancelled, "the planning was cancelled"));
        }
    };
    // The person's answer decides the plan's fate: from here a cancel is too late (and says
    // so), and a cancel that came first wins over an approval that crossed it.
    if !claim.claim() {
        return Err(errors::error(ext::ErrorKind::Cancelled, "the planning was cancelled"));
    }
    let approved = choice.is_some_and(|c| c.title == run.title);
    let mut result = ext::PlanResult {
        plan: rendered,
        tasks: plan.tasks.len() as u32,
        approved,
        run_id: None,
        cost_usd: plan.cost_usd,
    };
    if approved {
        let run_id = handle.start_plan(plan).await.ok_or_else(stopped)?.map_err(errors::refused)?;
        result.run_id = Some(run_id);
    }
    Ok(result)
}
