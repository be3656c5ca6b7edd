//! Command `acas.plan`: asks the workspace for a plan, shows it with
//! `window/showMessageRequest`, and has the workspace start it when the user approves.
//! Cancelling the request cancels the planning.

use acas_protocol::ext;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{LSPAny, MessageActionItem, MessageType};

use crate::lsp::{Backend, argument, errors, invalid_params, stopped};
use crate::workspace::PlanError;

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    if arguments.is_empty() {
        return Err(invalid_params("acas.plan needs {prompt}".to_owned()));
    }
    let args: ext::PlanArgs = argument(ext::PLAN_COMMAND, arguments)?;
    let result = plan(backend, args).await?;
    Ok(Some(serde_json::to_value(result).expect("results serialise")))
}

async fn plan(backend: &Backend, args: ext::PlanArgs) -> Result<ext::PlanResult> {
    let handle = backend.handle()?;
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let plan = handle.plan(&args.prompt, &cancel).await.ok_or_else(stopped)?.map_err(|e| match e {
        PlanError::NoProvider(refused) => errors::refused(refused),
        PlanError::Failed(error) => errors::plan(error),
    })?;
    let rendered = plan.render();
    let run = MessageActionItem { title: "Run plan".to_owned(), properties: Default::default() };
    let cancel_item = MessageActionItem { title: "Cancel".to_owned(), properties: Default::default() };
    let choice = backend
        .client
        .show_message_request(
            MessageType::INFO,
            format!("ACAS plan for \"{}\":\n{rendered}", args.prompt),
            Some(vec![run.clone(), cancel_item]),
        )
        .await
        .ok()
        .flatten();
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
