//! Tells the client when the agents' task queue changes (`acas/tasksChanged`), whoever changed
//! it: agents over MCP and `acas task` write the store from other processes, so this reads a
//! version of the queue ([`crate::agents::TaskQueue::version`]) every [`POLL`] on a blocking
//! thread and notifies when it differs. When a lease has ended it first returns the task to the
//! queue, so that the view does not show a holder whose lease is over. It shows nothing itself.
//!
//! With a shared store, [`listen_shared`] also hears the team's changes to the repository's
//! tasks and locks as PostgreSQL notifies them (`store::postgres::listen`), from every instance
//! on every machine, and tells the client the same way, once per burst; changes to the
//! repository's workflow runs become `acas/runsChanged` and changes to AI spend
//! `acas/spendChanged` the same way; and it announces this
//! instance's presence (user, host, repository, branch) every lease heartbeat.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use acas_protocol::ext;
use tower_lsp_server::Client;

use crate::agents::{QueueVersion, SystemClock, TaskQueue};
use crate::store::postgres::listen::ChangeKind;
use crate::store::postgres::presence::Presence;
use crate::store::{PgStore, SharedStore};

/// A burst of the team's changes ends when none arrives for this long.
const COALESCE: Duration = Duration::from_millis(200);

/// A burst that does not end is told of this often.
const MAX_COALESCE: Duration = Duration::from_secs(1);

/// How often the queue's version is read.
pub(super) const POLL: Duration = Duration::from_secs(1);

/// Runs until `stop` says so: reads the version, notifies on a change.
pub(super) async fn watch(client: Client, root: PathBuf, stop: impl Fn() -> bool) {
    let mut queue: Option<TaskQueue> = None;
    let mut last: Option<QueueVersion> = None;
    let mut warned = false;
    while !stop() {
        let (root, open) = (root.clone(), queue.take());
        let read = tokio::task::spawn_blocking(move || {
            let mut queue = match open {
                Some(queue) => queue,
                // Never the one to create the workspace's state.
                None if !root.join(".acas").join("state.db").is_file() => return Ok(None),
                None => TaskQueue::open(&root, Arc::new(SystemClock))?,
            };
            let mut version = queue.version()?;
            if version.next_lease_end_ms.is_some_and(|end| end <= crate::time::now_ms()) {
                queue.reap()?;
                version = queue.version()?;
            }
            Ok::<_, crate::agents::TaskError>(Some((queue, version)))
        })
        .await;
        match read {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((open, version)))) => {
                queue = Some(open);
                if last.is_some_and(|last| last != version) {
                    client.send_notification::<ext::TasksChanged>(()).await;
                }
                last = Some(version);
                warned = false;
            }
            Ok(Err(error)) if !warned => {
                tracing::info!(%error, "cannot read the task queue to tell the editor of its changes");
                warned = true;
            }
            _ => {}
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs until `stop` says so: with a shared store configured for the workspace at `root`,
/// notifies the client of each burst of changes to the repository's tasks and locks made by
/// any instance of the team. Connects again with a backoff when the database cannot be
/// reached, saying so once in the log.
pub(super) async fn listen_shared(client: Client, root: PathBuf, stop: impl Fn() -> bool) {
    let config_root = root.clone();
    let Ok((config, _)) = tokio::task::spawn_blocking(move || crate::config::load(&config_root)).await else {
        return;
    };
    let Some(shared) = config.shared_store else { return };
    let mut backoff = Duration::from_millis(250);
    let mut warned = false;
    let store = loop {
        if stop() {
            return;
        }
        let connecting = shared.clone();
        match tokio::task::spawn_blocking(move || connecting.connect()).await {
            Ok(Ok(store)) => break store,
            Ok(Err(error)) if !warned => {
                tracing::warn!(%error, "cannot hear the team's task changes yet; trying again");
                warned = true;
            }
            _ => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    };
    if warned {
        tracing::info!(store = %shared.url, "reached the shared store; listening for the team's task changes");
    }
    let mut changes = store.listen();
    let mut presence = Announcer::new(&shared, &root, config.lease.expiry);
    let mut next_announce = tokio::time::Instant::now();
    while !stop() {
        if tokio::time::Instant::now() >= next_announce {
            presence.announce(&store).await;
            next_announce = tokio::time::Instant::now() + config.lease.heartbeat;
        }
        let wait = next_announce.min(tokio::time::Instant::now() + POLL);
        let change = tokio::select! {
            change = changes.recv() => change,
            () = tokio::time::sleep_until(wait) => continue,
        };
        let Some(change) = change else { break };
        let mut heard = Heard::default();
        heard.add(change);
        if !heard.tasks && !heard.runs && !heard.spend {
            continue;
        }
        // One notification per burst: what arrives until the changes pause for COALESCE (a
        // claim writes its task and its locks; a script may write thousands), and at least one
        // every MAX_COALESCE while they do not.
        let until = tokio::time::Instant::now() + MAX_COALESCE;
        let mut closed = false;
        loop {
            let quiet = (tokio::time::Instant::now() + COALESCE).min(until);
            tokio::select! {
                more = changes.recv() => match more {
                    Some(more) => heard.add(more),
                    None => {
                        closed = true;
                        break;
                    }
                },
                () = tokio::time::sleep_until(quiet) => break,
            }
        }
        if heard.tasks {
            client.send_notification::<ext::TasksChanged>(()).await;
        }
        if heard.runs {
            client.send_notification::<ext::RunsChanged>(()).await;
        }
        if heard.spend {
            client.send_notification::<ext::SpendChanged>(()).await;
        }
        if closed {
            break;
        }
    }
    presence.leave(&store).await;
}

/// What a burst of the team's changes is about.
#[derive(Default)]
struct Heard {
    tasks: bool,
    runs: bool,
    spend: bool,
}

impl Heard {
    fn add(&mut self, change: ChangeKind) {
        match change {
            ChangeKind::Tasks | ChangeKind::Locks => self.tasks = true,
            ChangeKind::Runs => self.runs = true,
            // Anything may have changed while nobody listened.
            ChangeKind::Resumed => {
                self.tasks = true;
                self.runs = true;
                self.spend = true;
            }
            ChangeKind::Spend => self.spend = true,
        }
    }
}

/// This instance's presence in the shared store: announced every lease heartbeat, expiring
/// after the lease expiry, removed when the server stops.
struct Announcer {
    presence: Presence,
    root: PathBuf,
    expiry: Duration,
    announced: bool,
    warned: bool,
}

impl Announcer {
    fn new(shared: &SharedStore, root: &std::path::Path, expiry: Duration) -> Announcer {
        let host = crate::store::postgres::identity::host();
        let now = crate::time::now_ms();
        Announcer {
            presence: Presence {
                instance: format!("{host}:{}:{now}", std::process::id()),
                user: shared.identity.user.clone(),
                host,
                repository: shared.identity.repository.clone(),
                branch: None,
                started_ms: now,
                seen_ms: now,
                expires_ms: now,
            },
            root: root.to_owned(),
            expiry,
            announced: false,
            warned: false,
        }
    }

    async fn announce(&mut self, store: &PgStore) {
        let now = crate::time::now_ms();
        let mut presence = self.presence.clone();
        presence.seen_ms = now;
        presence.expires_ms = now.saturating_add(self.expiry.as_millis() as i64);
        let (store, root) = (store.clone(), self.root.clone());
        let done = tokio::task::spawn_blocking(move || {
            presence.branch = crate::store::postgres::identity::branch(&root);
            store.announce(presence)
        })
        .await;
        match done {
            Ok(Ok(())) if !self.announced => {
                tracing::info!(instance = %self.presence.instance, "announced this instance to the team");
                self.announced = true;
                self.warned = false;
            }
            Ok(Ok(())) => self.warned = false,
            Ok(Err(error)) if !self.warned => {
                tracing::warn!(%error, "could not tell the team this instance is connected; trying again");
                self.warned = true;
            }
            _ => {}
        }
    }

    async fn leave(&self, store: &PgStore) {
        let (store, instance) = (store.clone(), self.presence.instance.clone());
        if let Ok(Err(error)) = tokio::task::spawn_blocking(move || store.leave(&instance)).await {
            tracing::info!(%error, "could not remove this instance from the team's presence");
        }
    }
}
