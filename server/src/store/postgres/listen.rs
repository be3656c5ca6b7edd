//! Hearing what other instances change in the shared store, as it happens.
//!
//! Triggers on the shared tables (`schema.rs`) send `NOTIFY acas_changes` with a small JSON
//! payload, `{"repository": "github.com/acme/app", "kind": "tasks"}` (with
//! `repository_sha256`, the identity's SHA-256 in hex, in place of an identity over 1000 bytes:
//! a payload holds at most 8000), when a row of `task`,
//! `task_lock`, `provider_call` or `workflow_run` is written; PostgreSQL delivers it once the writing
//! transaction commits, to every connection listening. [`PgStore::listen`] keeps one connection
//! of its own (outside the pool) listening, and hands on the changes of this store's
//! repository. When the connection is lost (the database restarts, the network drops) it says
//! so once in the log, connects again with a backoff from 250 ms doubling to 30 s, says when it
//! listens again, and hands on [`ChangeKind::Resumed`], since changes made meanwhile were not
//! heard. It ends when the receiver is dropped. It does not read or interpret the changes.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::{DatabaseUrl, PgStore, tls_connector};

/// The channel the shared store's triggers notify.
pub const CHANNEL: &str = "acas_changes";

/// Changes queued for the receiver before the listener waits for it to catch up.
const QUEUE: usize = 64;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What changed in the repository's shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Tasks (created, claimed, finished, their leases returned).
    Tasks,
    /// Path locks.
    Locks,
    /// AI spend (a reservation or the end of a call).
    Spend,
    /// Workflow runs or their steps.
    Runs,
    /// Listening again after the connection was lost: anything may have changed meanwhile.
    Resumed,
}

impl ChangeKind {
    fn parse(kind: &str) -> Option<ChangeKind> {
        match kind {
            "tasks" => Some(ChangeKind::Tasks),
            "locks" => Some(ChangeKind::Locks),
            "spend" => Some(ChangeKind::Spend),
            "runs" => Some(ChangeKind::Runs),
            _ => None,
        }
    }
}

#[derive(serde::Deserialize)]
struct Payload {
    /// The repository's identity, or its SHA-256 (hex) when the identity is over
    /// [`LONG_REPOSITORY`] bytes, too long to send whole.
    repository: Option<String>,
    repository_sha256: Option<String>,
    kind: String,
}

/// The longest repository identity a notification carries whole (`schema.rs` sends longer
/// ones as their SHA-256).
const LONG_REPOSITORY: usize = 1000;

impl Payload {
    /// Whether it is about `repository`, whose SHA-256 is `sha256`.
    fn is_about(&self, repository: &str, sha256: &str) -> bool {
        match (&self.repository, &self.repository_sha256) {
            (Some(sent), _) => sent == repository,
            (None, Some(sent)) => repository.len() > LONG_REPOSITORY && sent == sha256,
            (None, None) => false,
        }
    }
}

impl PgStore {
    /// Starts listening for the changes of this store's repository; see the module's doc.
    pub fn listen(&self) -> mpsc::Receiver<ChangeKind> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let url = self.inner.url.clone();
        let repository = self.inner.identity.repository.clone();
        let runtime = self.inner.runtime.as_ref().expect("the runtime lives as long as the store");
        runtime.spawn(listen(url, repository, tx));
        rx
    }
}

async fn listen(url: DatabaseUrl, repository: String, changes: mpsc::Sender<ChangeKind>) {
    let mut backoff = FIRST_BACKOFF;
    let mut lost = false;
    loop {
        let why = tokio::select! {
            why = listen_once(&url, &repository, &changes, &mut lost) => why,
            () = changes.closed() => return,
        };
        if changes.is_closed() {
            return;
        }
        if !lost {
            tracing::warn!(
                store = %url,
                error = %why,
                "lost the connection that hears the shared store's changes; connecting again"
            );
            lost = true;
        }
        // A connection that listened for a while starts the backoff over.
        if why.listened {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = changes.closed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Why a listening connection ended, and whether it had listened.
struct Ended {
    listened: bool,
    error: String,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

/// Connects, listens and hands on changes until the connection ends.
async fn listen_once(
    url: &DatabaseUrl,
    repository: &str,
    changes: &mpsc::Sender<ChangeKind>,
    lost: &mut bool,
) -> Ended {
    let ended = |listened: bool, error: String| Ended { listened, error };
    let tls = match tls_connector(url) {
        Ok(tls) => tls,
        Err(e) => return ended(false, e.to_string()),
    };
    let mut config = url.config();
    config.connect_timeout(Duration::from_secs(5));
    config.application_name("acas-listen");
    let (client, mut connection) = match config.connect(tls).await {
        Ok(pair) => pair,
        Err(e) => return ended(false, e.to_string()),
    };
    // The connection must be polled for the client's queries to complete: its messages go
    // through a channel that this task reads alongside the LISTEN.
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            let end = message.is_err();
            if messages_tx.send(message).is_err() || end {
                break;
            }
        }
    });
    let listening = client.batch_execute(&format!("LISTEN {CHANNEL}")).await;
    if let Err(e) = listening {
        driver.abort();
        return ended(false, e.to_string());
    }
    if !*lost {
        tracing::info!(store = %url, "hearing the shared store's changes");
    } else {
        tracing::info!(store = %url, "hearing the shared store's changes again");
        *lost = false;
        if changes.send(ChangeKind::Resumed).await.is_err() {
            driver.abort();
            return ended(true, "nobody listens".into());
        }
    }
    let sha256 = {
        use sha2::{Digest, Sha256};
        Sha256::digest(repository.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let error = loop {
        match messages.recv().await {
            Some(Ok(AsyncMessage::Notification(notification))) => {
                let Ok(payload) = serde_json::from_str::<Payload>(notification.payload()) else { continue };
                if !payload.is_about(repository, &sha256) {
                    continue;
                }
                let Some(kind) = ChangeKind::parse(&payload.kind) else { continue };
                if changes.send(kind).await.is_err() {
                    break "nobody listens".to_owned();
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break e.to_string(),
            None => break "the server closed the connection".to_owned(),
        }
    };
    driver.abort();
    drop(client);
    ended(true, error)
}
