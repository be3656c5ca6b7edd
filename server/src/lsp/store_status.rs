//! Tells the client about the link to the team's shared store (`acas/storeStatus`), and sends
//! what was queued while it could not be reached once it can again.
//!
//! With a shared store configured, every [`POLL`] this asks [`Fallback::sync`] on a blocking
//! thread (which tries the store when its backoff allows, pushes the outbox when it answers, and
//! checks that it still does) and notifies the client when the link's state or the number of
//! changes waiting differs from what it last said. It shows nothing itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acas_protocol::ext;
use tower_lsp_server::Client;

use crate::store::{Fallback, Store, StoreOptions};

/// How often the link is looked at.
const POLL: Duration = Duration::from_secs(1);

/// Runs until `stop` says so.
pub(super) async fn watch(client: Client, root: PathBuf, stop: impl Fn() -> bool) {
    let opened = tokio::task::spawn_blocking(move || {
        let (config, _) = crate::config::load(&root);
        let shared = config.shared_store?;
        if crate::store::read_only(&root).is_some() {
            return None;
        }
        let options = StoreOptions { integrity_check: false, ..StoreOptions::default() };
        match Store::open_workspace(&root, options) {
            Ok(local) => Some(Arc::new(Fallback::new(shared, local))),
            Err(error) => {
                tracing::warn!(%error, "cannot keep the outbox of the shared store; changes made offline wait");
                None
            }
        }
    })
    .await;
    let Ok(Some(fallback)) = opened else { return };
    let url = fallback.shared().url.to_string();
    let mut last: Option<ext::StoreStatusParams> = None;
    let mut warned = false;
    while !stop() {
        let looking = fallback.clone();
        let looked = tokio::task::spawn_blocking(move || {
            let synced = looking.sync(&mut |_| {})?;
            Ok::<_, crate::store::StoreError>((synced.online, looking.state()?))
        })
        .await;
        match looked {
            Ok(Ok((online, state))) => {
                warned = false;
                let params = ext::StoreStatusParams {
                    url: url.clone(),
                    online,
                    offline_since_ms: if online { None } else { state.offline_since_ms },
                    waiting: state.waiting,
                    last_sync_ms: state.last_sync_ms,
                };
                if last.as_ref() != Some(&params) {
                    client.send_notification::<ext::StoreStatus>(params.clone()).await;
                    last = Some(params);
                }
            }
            Ok(Err(error)) if !warned => {
                tracing::warn!(%error, "cannot look at the link to the shared store");
                warned = true;
            }
            _ => {}
        }
        tokio::time::sleep(POLL).await;
    }
}
