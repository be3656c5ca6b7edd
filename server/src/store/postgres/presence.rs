//! Presence: which ACAS instances of the team are connected to the shared store, for whom, on
//! which repository and branch, and which tasks are held in a repository.
//!
//! Each instance ([`PgStore::announce`]) upserts its row every lease heartbeat with a time it
//! expires at (the lease expiry after its last announcement), deletes it when it stops
//! ([`PgStore::leave`]), and removes the rows of any instance that expired meanwhile, so that an
//! instance that was killed disappears on its own. Readers ([`PgStore::present`]) see the rows
//! not yet expired. Times are the writers' clocks: keep them in sync (NTP), as for task leases.
//! A row counts for at most [`MAX_PRESENCE_MS`] after its last announcement, whatever expiry
//! its writer asked for. This module does not decide when to announce.

use super::{Fail, PgStore};
use crate::store::error::StoreError;

/// The longest a presence row counts after its last announcement (10 minutes), whatever
/// expiry its writer asked for: a killed instance, or one configured with a huge lease expiry,
/// is never listed for longer.
pub const MAX_PRESENCE_MS: i64 = 10 * 60 * 1000;

/// One instance connected to the shared store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Presence {
    /// Unique per process: host, process id and start time.
    pub instance: String,
    pub user: String,
    pub host: String,
    pub repository: String,
    pub branch: Option<String>,
    pub started_ms: i64,
    pub seen_ms: i64,
    pub expires_ms: i64,
}

/// A task held (claimed or running) in a repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    pub task: i64,
    pub title: String,
    pub agent: String,
    pub lease_until_ms: Option<i64>,
}

impl PgStore {
    /// Records `presence` (replacing this instance's previous row) and removes the rows that
    /// expired before `presence.seen_ms`.
    pub fn announce(&self, mut presence: Presence) -> Result<(), StoreError> {
        presence.expires_ms = presence.expires_ms.min(presence.seen_ms.saturating_add(MAX_PRESENCE_MS));
        self.run("announce this instance to the team", move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "DELETE FROM presence WHERE expires_ms < $1 OR seen_ms < $1 - $2",
                &[&presence.seen_ms, &MAX_PRESENCE_MS],
            )
            .await?;
            tx.execute(
                "INSERT INTO presence (instance, user_name, host, repository, branch, started_ms, seen_ms, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (instance) DO UPDATE SET user_name = excluded.user_name, host = excluded.host,
                     repository = excluded.repository, branch = excluded.branch,
                     seen_ms = excluded.seen_ms, expires_ms = excluded.expires_ms",
                &[
                    &presence.instance,
                    &presence.user,
                    &presence.host,
                    &presence.repository,
                    &presence.branch,
                    &presence.started_ms,
                    &presence.seen_ms,
                    &presence.expires_ms,
                ],
            )
            .await?;
            tx.commit().await?;
            Ok::<_, Fail>(())
        })
    }

    /// Removes this instance's row.
    pub fn leave(&self, instance: &str) -> Result<(), StoreError> {
        let instance = instance.to_owned();
        self.run("say this instance left", move |pool| async move {
            let client = pool.get().await?;
            client.execute("DELETE FROM presence WHERE instance = $1", &[&instance]).await?;
            Ok::<_, Fail>(())
        })
    }

    /// The instances whose rows have not expired at `now_ms`, by repository, user and start.
    pub fn present(&self, now_ms: i64) -> Result<Vec<Presence>, StoreError> {
        self.run("read who is connected", move |pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(
                    "SELECT instance, user_name, host, repository, branch, started_ms, seen_ms, expires_ms
                     FROM presence WHERE expires_ms >= $1 AND seen_ms >= $1 - $2
                     ORDER BY repository, user_name, started_ms",
                    &[&now_ms, &MAX_PRESENCE_MS],
                )
                .await?;
            Ok::<_, Fail>(
                rows.iter()
                    .map(|r| Presence {
                        instance: r.get(0),
                        user: r.get(1),
                        host: r.get(2),
                        repository: r.get(3),
                        branch: r.get(4),
                        started_ms: r.get(5),
                        seen_ms: r.get(6),
                        expires_ms: r.get(7),
                    })
                    .collect(),
            )
        })
    }

    /// The tasks held in this store's repository, by id.
    pub fn held_tasks(&self) -> Result<Vec<Held>, StoreError> {
        let repository = self.identity().repository.clone();
        self.run("read the tasks held", move |pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(
                    "SELECT id, title, agent, lease_until_ms FROM task
                     WHERE repository = $1 AND state IN ('claimed', 'running') AND agent IS NOT NULL
                     ORDER BY id",
                    &[&repository],
                )
                .await?;
            Ok::<_, Fail>(
                rows.iter()
                    .map(|r| Held {
                        task: r.get(0),
                        title: r.get(1),
                        agent: r.get(2),
                        lease_until_ms: r.get(3),
                    })
                    .collect(),
            )
        })
    }
}
