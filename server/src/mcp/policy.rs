//! The policy hook of the tools that act: before `run_workflow` starts a run or `explain`
//! spends, the workspace's policy is asked for the calling agent, the decision recorded, and a
//! denial (or an approval refused, or not given in time) answered as an MCP error naming the
//! rule and what to change. Tools that only read ask nothing.

use rmcp::model::ErrorData;
use tokio_util::sync::CancellationToken;

use super::{Shared, refused};
use crate::policy::{Action, Policy, approvals};

/// Asks the policy whether `agent` may do `action`, waiting for a person when it says so; the
/// records name the agent with its session (`holder`, `name/session`).
pub(crate) async fn ask(
    shared: &Shared,
    agent: &str,
    holder: &str,
    action: Action,
    cancel: &CancellationToken,
) -> Result<(), ErrorData> {
    let root = shared.root.clone();
    let policy = tokio::task::spawn_blocking(move || Policy::load(&root))
        .await
        .map_err(|e| super::internal(format!("reading the policy failed: {e}")))?;
    let agent = shared.policy_agent(agent);
    let session = crate::policy::approvals::session_of(holder);
    approvals::enforce(&shared.root, &policy, &agent, session, &action, cancel)
        .await
        .map(|_| ())
        .map_err(|refusal| refused("policy_denied", refusal))
}
