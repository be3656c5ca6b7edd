//! Webhooks in the store (schema versions 4 and 5): the incoming signatures and GitHub delivery
//! ids already accepted, so that a replayed request is refused even after a restart, and the
//! queue of outgoing webhooks.
//!
//! Every call here runs on the writer thread after what was queued before it is committed, and
//! returns once its own change is committed: an accepted signature or an enqueued webhook is on
//! disk before the caller answers anyone.

use rusqlite::{Connection, OptionalExtension, params};

use super::Store;
use super::error::StoreError;
use super::writer::Command;

/// Where an outgoing webhook stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Not delivered yet; tried again at `next_at_ms`.
    Pending,
    Delivered,
    /// Given up: too many failed attempts, or refused by the receiver.
    Failed,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> OutboxStatus {
        match text {
            "delivered" => OutboxStatus::Delivered,
            "failed" => OutboxStatus::Failed,
            _ => OutboxStatus::Pending,
        }
    }
}

/// One outgoing webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub created_ms: i64,
    pub url: String,
    /// The environment variable holding the signing secret; `None` sends it unsigned.
    pub secret_env: Option<String>,
    /// `plan_generated`, `task_started`, `task_completed`, `task_failed`, `run_completed`.
    pub event: String,
    /// The JSON body.
    pub payload: String,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub next_at_ms: i64,
    pub last_error: Option<String>,
    pub done_ms: Option<i64>,
}

const OUTBOX_COLUMNS: &str =
    "id, created_ms, url, secret_env, event, payload, status, attempts, next_at_ms, last_error, done_ms";

fn outbox_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        id: row.get(0)?,
        created_ms: row.get(1)?,
        url: row.get(2)?,
        secret_env: row.get(3)?,
        event: row.get(4)?,
        payload: row.get(5)?,
        status: OutboxStatus::parse(&row.get::<_, String>(6)?),
        attempts: row.get(7)?,
        next_at_ms: row.get(8)?,
        last_error: row.get(9)?,
        done_ms: row.get(10)?,
    })
}

/// What a replayed webhook request repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// The `X-Acas-Signature` (its timestamp is signed with it).
    Signature(String),
    /// GitHub's `X-GitHub-Delivery` id and `X-Hub-Signature-256`: either one seen before makes
    /// a replay (the delivery id is not signed, so a replay may come with a new one). Both are
    /// kept in `webhook_delivery`.
    Github { delivery: String, signature: String },
}

/// An accepted webhook request waiting for its run: the workflow, and the run's trigger and
/// inputs as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub workflow: String,
    pub trigger: String,
    pub inputs: String,
}

/// Takes the inbox entry `id` inside the caller's transaction, which creates the run it asks
/// for: false when it is gone (its run was started already, by this process or another), and
/// the run is then not to be created. So an accepted request starts one run whichever process
/// gets to it, however many try.
pub fn take_inbox_entry(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM webhook_inbox WHERE id = ?1")?.execute([id])? == 1)
}

impl Store {
    /// Records an accepted webhook signature at `now_ms` and forgets those recorded before
    /// `now_ms - keep_ms`. Returns `false`, recording nothing, when the signature is already
    /// there: the request is a replay.
    pub fn webhook_first_seen(&self, signature: &str, now_ms: i64, keep_ms: i64) -> Result<bool, StoreError> {
        let signature = signature.to_owned();
        self.call("record a webhook signature", move |conn| {
            conn.prepare_cached("DELETE FROM webhook_seen WHERE at_ms < ?1")?.execute([now_ms - keep_ms])?;
            let inserted = conn
                .prepare_cached("INSERT OR IGNORE INTO webhook_seen (signature, at_ms) VALUES (?1, ?2)")?
                .execute(params![signature, now_ms])?;
            Ok(inserted == 1)
        })
    }

    /// Accepts a webhook request in one transaction: records what makes its replay recognisable
    /// (`replay`, forgetting such records older than `keep_ms`) and queues `entry` in the inbox,
    /// from which the process holding the workspace lease starts its run. Returns the inbox id,
    /// or `None`, recording nothing, when the request is a replay.
    pub fn webhook_accept(
        &self,
        replay: Replay,
        now_ms: i64,
        keep_ms: i64,
        entry: InboxEntry,
    ) -> Result<Option<i64>, StoreError> {
        self.call("record an accepted webhook request", move |conn| {
            let tx = conn.unchecked_transaction()?;
            let (forget, remember, keys) = match &replay {
                Replay::Signature(signature) => (
                    "DELETE FROM webhook_seen WHERE at_ms < ?1",
                    "INSERT OR IGNORE INTO webhook_seen (signature, at_ms) VALUES (?1, ?2)",
                    vec![signature],
                ),
                Replay::Github { delivery, signature } => (
                    "DELETE FROM webhook_delivery WHERE at_ms < ?1",
                    "INSERT OR IGNORE INTO webhook_delivery (delivery, at_ms) VALUES (?1, ?2)",
                    vec![delivery, signature],
                ),
            };
            tx.prepare_cached(forget)?.execute([now_ms - keep_ms])?;
            for key in keys {
                // Dropping the transaction rolls back what was recorded.
                if tx.prepare_cached(remember)?.execute(params![key, now_ms])? != 1 {
                    return Ok(None);
                }
            }
            tx.prepare_cached(
                "INSERT INTO webhook_inbox (workflow, trigger, inputs, at_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![entry.workflow, entry.trigger, entry.inputs, now_ms])?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Some(id))
        })
    }

    /// The accepted webhook requests not yet turned into runs, oldest first.
    pub fn webhook_inbox(&self) -> Result<Vec<(i64, InboxEntry)>, StoreError> {
        self.call("read the webhook inbox", |conn| {
            let mut statement =
                conn.prepare_cached("SELECT id, workflow, trigger, inputs FROM webhook_inbox ORDER BY id")?;
            let rows = statement.query_map([], |r| {
                Ok((r.get(0)?, InboxEntry { workflow: r.get(1)?, trigger: r.get(2)?, inputs: r.get(3)? }))
            })?;
            rows.collect()
        })
    }

    /// Removes an inbox entry once its run could not be started; false when it was
    /// gone already.
    pub fn webhook_inbox_done(&self, id: i64) -> Result<bool, StoreError> {
        self.call("update the webhook inbox", move |conn| {
            Ok(conn.prepare_cached("DELETE FROM webhook_inbox WHERE id = ?1")?.execute([id])? == 1)
        })
    }

    /// Records an accepted GitHub delivery id; false when it was accepted before (a replay).
    /// Ids older than `keep_ms` are forgotten.
    pub fn webhook_delivery_first_seen(
        &self,
        delivery: &str,
        now_ms: i64,
        keep_ms: i64,
    ) -> Result<bool, StoreError> {
        let delivery = delivery.to_owned();
        self.call("record a webhook delivery id", move |conn| {
            conn.prepare_cached("DELETE FROM webhook_delivery WHERE at_ms < ?1")?
                .execute([now_ms - keep_ms])?;
            let inserted = conn
                .prepare_cached("INSERT OR IGNORE INTO webhook_delivery (delivery, at_ms) VALUES (?1, ?2)")?
                .execute(params![delivery, now_ms])?;
            Ok(inserted == 1)
        })
    }

    /// Queues an outgoing webhook, due at once. Returns its id.
    pub fn outbox_enqueue(
        &self,
        url: &str,
        secret_env: Option<&str>,
        event: &str,
        payload: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let (url, secret_env, event, payload) =
            (url.to_owned(), secret_env.map(str::to_owned), event.to_owned(), payload.to_owned());
        self.call("queue an outgoing webhook", move |conn| {
            conn.prepare_cached(
                "INSERT INTO outbox (created_ms, url, secret_env, event, payload, status, attempts, next_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?1)",
            )?
            .execute(params![now_ms, url, secret_env, event, payload])?;
            Ok(conn.last_insert_rowid())
        })
    }

    /// Pending webhooks due at `now_ms`, oldest first, at most `limit`.
    pub fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        self.call("read the outgoing webhooks", move |conn| {
            let sql = format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND next_at_ms <= ?1 \
                 ORDER BY next_at_ms, id LIMIT ?2"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(params![now_ms, limit as i64], outbox_row)?;
            rows.collect()
        })
    }

    /// When the next pending webhook is due, if any is pending.
    pub fn outbox_next_at(&self) -> Result<Option<i64>, StoreError> {
        self.call("read the outgoing webhooks", |conn| {
            conn.prepare_cached("SELECT min(next_at_ms) FROM outbox WHERE status = 'pending'")?
                .query_row([], |r| r.get(0))
        })
    }

    /// One outgoing webhook by id.
    pub fn outbox_get(&self, id: i64) -> Result<Option<OutboxRow>, StoreError> {
        self.call("read the outgoing webhooks", move |conn| {
            let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = ?1");
            conn.prepare_cached(&sql)?.query_row([id], outbox_row).optional()
        })
    }

    /// Records an attempt: `status` is where the webhook now stands, `next_at_ms` when a
    /// pending one is tried again, `error` why the attempt failed.
    pub fn outbox_attempted(
        &self,
        id: i64,
        status: OutboxStatus,
        attempts: u32,
        next_at_ms: i64,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let error = error.map(str::to_owned);
        let done_ms = (status != OutboxStatus::Pending).then_some(now_ms);
        self.call("record an outgoing webhook attempt", move |conn| {
            conn.prepare_cached(
                "UPDATE outbox SET status = ?2, attempts = ?3, next_at_ms = ?4, \
                 last_error = coalesce(?5, last_error), done_ms = ?6 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), attempts, next_at_ms, error, done_ms])?;
            Ok(())
        })
    }

    /// Deletes delivered and given-up webhooks finished before `before_ms`. Returns how many.
    pub fn outbox_prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.call("prune the outgoing webhooks", move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM outbox WHERE status != 'pending' AND done_ms < ?1")?
                .execute([before_ms])?;
            Ok(n as u64)
        })
    }

    /// Runs `f` on the writer's connection, in order with the records queued before it, and
    /// waits for its answer.
    pub(super) fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let db_path = self.inner.db_path.clone();
        let busy_timeout = self.inner.options.busy_timeout;
        let call = move |conn: &Connection| {
            let result = f(conn).map_err(|e| StoreError::sqlite(what, &db_path, busy_timeout, &e));
            let _ = reply.send(result);
        };
        self.inner
            .commands
            .send(Command::Call(Box::new(call)))
            .map_err(|_| StoreError::writer_gone(&self.inner.db_path))?;
        answer.recv().map_err(|_| StoreError::writer_gone(&self.inner.db_path))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn a_signature_is_seen_once_across_reopening_and_forgotten_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        assert!(store.webhook_first_seen("abc", 1_000, 600_000).unwrap());
        assert!(!store.webhook_first_seen("abc", 2_000, 600_000).unwrap());
        store.close().unwrap();

        let store = Store::open(&path, StoreOptions::default()).unwrap();
        assert!(!store.webhook_first_seen("abc", 3_000, 600_000).unwrap());
        assert!(store.webhook_first_seen("def", 3_000, 600_000).unwrap());
        // Ten minutes later the first one is pruned (its request would be stale by then).
        assert!(store.webhook_first_seen("ghi", 601_500, 600_000).unwrap());
        assert!(store.webhook_first_seen("abc", 601_500, 600_000).unwrap());
    }

    #[test]
    fn outbox_rows_move_from_pending_to_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
        let a =
            store.outbox_enqueue("http://127.0.0.1:9/a", Some("SECRET"), "task_started", "{}", 100).unwrap();
        let b =
            store.outbox_enqueue("http://127.0.0.1:9/b", None, "run_completed", "{\"x\":1}", 200).unwrap();
        assert_eq!(store.outbox_next_at().unwrap(), Some(100));
        let due: Vec<i64> = store.outbox_due(150, 10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(due, [a]);

        store.outbox_attempted(a, OutboxStatus::Pending, 1, 1_100, Some("HTTP 503"), 150).unwrap();
        store.outbox_attempted(b, OutboxStatus::Delivered, 1, 200, None, 250).unwrap();
        assert_eq!(store.outbox_next_at().unwrap(), Some(1_100));
        assert_eq!(store.outbox_due(1_000, 10).unwrap(), vec![]);
        let row = store.outbox_get(a).unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempts, row.last_error.as_deref(), row.secret_env.as_deref(), row.done_ms),
            (OutboxStatus::Pending, 1, Some("HTTP 503"), Some("SECRET"), None)
        );

        store.outbox_attempted(a, OutboxStatus::Failed, 2, 1_100, Some("HTTP 500"), 1_200).unwrap();
        assert_eq!(store.outbox_next_at().unwrap(), None);
        assert_eq!(store.outbox_prune(1_000).unwrap(), 1);
        assert_eq!(store.outbox_get(b).unwrap(), None);
        assert_eq!(store.outbox_get(a).unwrap().unwrap().status, OutboxStatus::Failed);
    }
}
