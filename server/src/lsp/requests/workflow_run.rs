//! Command `acas.workflow.run`: starts a run of a workflow with the inputs given, for the editor;
//! for the enclosing run's agent when a workflow step started this server.

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;

use crate::lsp::{Backend, argument, errors, started, stopped};
use crate::workflow::triggers::{ManualSource, Trigger};

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    let args: ext::WorkflowRunArgs = argument(ext::WORKFLOW_RUN_COMMAND, arguments)?;
    let trigger = match &backend.acting_for {
        Some(acting) => Trigger::Manual {
            source: ManualSource::Agent,
            agent: Some(acting.agent.clone()),
            session: acting.session.clone(),
        },
        None => Trigger::Manual { source: ManualSource::Editor, agent: None, session: None },
    };
    let run = backend.handle()?.start_run(args.workflow, trigger, args.inputs).await.ok_or_else(stopped)?;
    Ok(Some(started(run.map_err(errors::refused)?)))
}
