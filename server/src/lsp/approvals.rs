//! Asking the person at the editor about the approvals a policy waits for: every pending
//! approval of the workspace (asked by this process or another one, an agent's MCP server
//! say) becomes one `window/showMessageRequest` with "Allow" and "Deny"; the answer is given
//! through `policy::approvals`, recorded as answered by `editor`. A prompt closed without a
//! choice leaves the approval pending (`acas approve` can still answer it).
//!
//! It looks for approvals only while the workspace or the user has a policy file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{MessageActionItem, MessageType};

use crate::policy::{self, approvals};

/// How often the store is read for new pending approvals.
const POLL: Duration = Duration::from_millis(250);

const ALLOW: &str = "Allow";
const DENY: &str = "Deny";

fn has_policy(root: &Path) -> bool {
    root.join(policy::WORKSPACE_FILE).is_file() || policy::user_path().is_some_and(|p| p.is_file())
}

/// Asks about pending approvals until the client goes away.
pub(crate) async fn ask(client: Client, root: PathBuf) {
    let asked: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dir = root.clone();
        let pending = tokio::task::spawn_blocking(move || {
            if has_policy(&dir) && dir.join(".acas/state.db").is_file() {
                approvals::pending(&dir).ok()
            } else {
                None
            }
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
        for p in pending {
            if !asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(p.id) {
                continue;
            }
            let client = client.clone();
            let root = root.clone();
            tokio::spawn(async move {
                let item = |title: &str| MessageActionItem {
                    title: title.to_owned(),
                    properties: Default::default(),
                };
                // What an agent or a workflow wrote is shown with control, bidi and zero-width
                // characters escaped, so that it cannot hide what the person approves.
                let shown = crate::display::shown;
                let rule = p.rule.as_deref().map(|r| format!(" Rule: {}.", shown(r))).unwrap_or_default();
                let text = format!(
                    "ACAS policy: {} asks to {} (approval {}).{rule}",
                    shown(&p.agent),
                    shown(&p.action.to_string()),
                    p.id
                );
                let chosen = client
                    .show_message_request(MessageType::WARNING, text, Some(vec![item(ALLOW), item(DENY)]))
                    .await;
                let allow = match chosen {
                    Ok(Some(item)) if item.title == ALLOW => true,
                    Ok(Some(item)) if item.title == DENY => false,
                    _ => return,
                };
                let answered =
                    tokio::task::spawn_blocking(move || approvals::answer(&root, p.id, allow, "editor"))
                        .await;
                if let Ok(Err(e)) = answered {
                    tracing::info!("answering approval {}: {e}", p.id);
                }
            });
        }
    }
}
