//! `acas/workflows`: the valid workflows and the recent runs (with a shared store, the team's
//! runs of every clone too).

use acas_protocol::ext;
use tower_lsp_server::jsonrpc::Result;

use crate::lsp::{Backend, NoParams, convert, stopped};

/// How many recent runs the answer lists.
const RECENT_RUNS: usize = 50;

pub(crate) async fn handle(backend: &Backend, _: NoParams) -> Result<ext::WorkflowsResult> {
    let (workflows, runs, seq, team) =
        backend.handle()?.workflows_and_team_runs(RECENT_RUNS).await.ok_or_else(stopped)?;
    Ok(convert::workflows(&workflows, &runs, seq, team.as_deref()))
}
