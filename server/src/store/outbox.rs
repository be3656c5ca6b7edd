//! The workspace's side of team mode while the shared store cannot be reached: reservations
//! made against the local SQLite, the durable outbox of what must reach the shared store, what
//! each budget had spent there when it was last seen, and the state of the link.
//!
//! [`Store::reserve_offline`] judges a reservation on [`OfflineTotals`] (what was seen last, and
//! what this workspace spent offline since) and writes the call and its outbox row in one
//! `BEGIN IMMEDIATE` transaction, so processes of one workspace racing offline share one
//! allowance. [`Store::queue_for_shared`] writes an ended call or a cached reply and its outbox
//! row in one transaction. The outbox is append-only; a row holds the kind and the idempotency
//! key (the call's id, the cache key), and the sync pushes the current local row under that key
//! ([`Store::outbox_pending`]), then marks the rows sent ([`Store::outbox_sent`]) once the shared
//! store has committed them: a sync cut short pushes the same rows again, which changes nothing.
//!
//! This module does not talk to PostgreSQL and does not decide limits: [`super::fallback`]
//! does the first, the caller the second.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::budget::{
    OfflineTotals, SeenTotals, SpendTotals, Spending, latest_counted_ms, record_reservation,
};
use super::error::StoreError;
use super::shared::Allow;
use super::types::{CacheEntry, CallStatus, ProviderCall};
use super::writer::{put_cache_entry, upsert_provider_call};
use super::{Store, query};

/// What the outbox holds for one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    Call(ProviderCall),
    Cache(CacheEntry),
    /// The local row is gone (a cache entry removed by retention): nothing to push.
    Gone,
}

/// One outbox row waiting to be pushed, with the current local row under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: i64,
    pub item: Queued,
}

/// The link to the shared store as this workspace knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Since when the shared store could not be reached; `None` when it could, last time.
    pub offline_since_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    pub last_sync_ms: Option<i64>,
    /// Why it could not be reached, the last time it could not.
    pub last_error: Option<String>,
    /// Outbox rows not yet in the shared store.
    pub waiting: u64,
}

/// Each limit's spend in the shared store, as seen at `seen_ms`, for the calls of `user` to
/// `provider`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub user: Option<String>,
    pub provider: String,
    pub day_start_ms: i64,
    pub month_start_ms: i64,
    pub totals: SpendTotals,
    pub seen_ms: i64,
}

impl Store {
    /// Records `call` as `Reserved` when `allow` accepts [`Spending::Offline`], or as `Refused`,
    /// in one transaction with its outbox row; like [`Store::reserve`] on the spend seen last
    /// in the shared store and spent offline since.
    pub fn reserve_offline(
        &self,
        mut call: ProviderCall,
        day_start_ms: i64,
        month_start_ms: i64,
        allow: Allow,
    ) -> Result<Result<(), String>, StoreError> {
        self.call("reserve AI spend against this machine's share of the budgets", move |conn| {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let totals = offline_totals(&tx, &call, day_start_ms, month_start_ms)?;
            let verdict = allow(Spending::Offline(totals));
            record_reservation(&tx, &mut call, verdict.as_ref().err().cloned())?;
            enqueue(&tx, "call", &call.id)?;
            tx.commit()?;
            Ok(verdict)
        })
    }

    /// Writes `item` (an ended call, a cached reply) to the workspace's store and queues it for
    /// the shared store, in one transaction.
    pub fn queue_for_shared(&self, item: Queued) -> Result<(), StoreError> {
        self.call("queue a change for the shared store", move |conn| {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            match &item {
                Queued::Call(call) => {
                    upsert_provider_call(&tx, call)?;
                    enqueue(&tx, "call", &call.id)?;
                }
                Queued::Cache(entry) => {
                    put_cache_entry(&tx, entry)?;
                    enqueue(&tx, "cache", &entry.key)?;
                }
                Queued::Gone => {}
            }
            tx.commit()
        })
    }

    /// Keeps what each limit had spent in the shared store (the team's, the user's, the
    /// provider's), to share out while it cannot be reached; and notes it was reached.
    pub fn remember_seen(&self, seen: Seen) -> Result<(), StoreError> {
        self.call("remember the shared store's spend", move |conn| {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let t = seen.totals;
            let mut scopes = vec![
                ("team".to_owned(), t.workspace_day, t.workspace_month),
                (format!("provider:{}", seen.provider), t.provider_day, t.provider_month),
            ];
            if let Some(user) = &seen.user {
                scopes.push((format!("user:{user}"), t.user_day, t.user_month));
            }
            for (scope, day, month) in scopes {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO shared_seen
                         (scope, day_start_ms, day_micros, month_start_ms, month_micros, seen_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    scope,
                    seen.day_start_ms,
                    to_i64(day),
                    seen.month_start_ms,
                    to_i64(month),
                    seen.seen_ms
                ])?;
            }
            tx.commit()
        })
    }

    /// Notes whether the shared store could be reached at `at_ms`; `error` says why not. Returns
    /// whether this changed the link's state (the first failure of an outage, or the first
    /// success after one).
    pub fn note_link(&self, at_ms: i64, error: Option<String>) -> Result<bool, StoreError> {
        self.call("note the state of the link to the shared store", move |conn| {
            let before: Option<Option<i64>> = conn
                .query_row("SELECT offline_since_ms FROM shared_link WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            let was_offline = before.flatten().is_some();
            match &error {
                Some(why) => conn.execute(
                    "INSERT INTO shared_link (id, offline_since_ms, last_error) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET
                         offline_since_ms = coalesce(shared_link.offline_since_ms, excluded.offline_since_ms),
                         last_error = excluded.last_error",
                    params![at_ms, why],
                )?,
                None => conn.execute(
                    "INSERT INTO shared_link (id, last_seen_ms) VALUES (1, ?1)
                     ON CONFLICT (id) DO UPDATE SET offline_since_ms = NULL, last_seen_ms = excluded.last_seen_ms",
                    [at_ms],
                )?,
            };
            Ok(was_offline != error.is_some())
        })
    }

    /// The link's state and the outbox's length.
    pub fn link_state(&self) -> Result<LinkState, StoreError> {
        self.call("read the state of the link to the shared store", link_state)
    }

    /// Up to `limit` outbox rows not yet sent, oldest first, each with the current local row
    /// under its key.
    pub fn outbox_pending(&self, limit: usize) -> Result<Vec<Pending>, StoreError> {
        self.call("read the changes waiting for the shared store", move |conn| {
            let keys: Vec<(i64, String, String)> = conn
                .prepare_cached(
                    "SELECT seq, kind, key FROM shared_outbox WHERE sent_ms IS NULL ORDER BY seq LIMIT ?1",
                )?
                .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let mut pending = Vec::with_capacity(keys.len());
            for (seq, kind, key) in keys {
                let item = match kind.as_str() {
                    "call" => read_call(conn, &key)?.map(Queued::Call),
                    _ => query::cache_get(conn, &key)?.map(Queued::Cache),
                };
                pending.push(Pending { seq, item: item.unwrap_or(Queued::Gone) });
            }
            Ok(pending)
        })
    }

    /// Marks an outbox row the shared store refused (not for being unreachable) as done, with
    /// why: it is not sent again.
    pub fn outbox_refused(&self, seq: i64, why: String, at_ms: i64) -> Result<(), StoreError> {
        self.call("mark a change the shared store refused", move |conn| {
            conn.prepare_cached("UPDATE shared_outbox SET sent_ms = ?2, refused = ?3 WHERE seq = ?1")?
                .execute(params![seq, at_ms, why])?;
            Ok(())
        })
    }

    /// Marks outbox rows as committed in the shared store at `at_ms`.
    pub fn outbox_sent(&self, seqs: Vec<i64>, at_ms: i64) -> Result<(), StoreError> {
        self.call("mark changes as sent to the shared store", move |conn| {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            for seq in &seqs {
                tx.prepare_cached("UPDATE shared_outbox SET sent_ms = ?2 WHERE seq = ?1")?
                    .execute(params![seq, at_ms])?;
            }
            tx.execute(
                "INSERT INTO shared_link (id, last_sync_ms, last_seen_ms) VALUES (1, ?1, ?1)
                 ON CONFLICT (id) DO UPDATE SET last_sync_ms = excluded.last_sync_ms,
                     last_seen_ms = excluded.last_seen_ms",
                [at_ms],
            )?;
            // Sent rows count as offline spend until the shared store is seen again in their
            // month; older ones are of no more use.
            tx.execute(
                "DELETE FROM shared_outbox WHERE sent_ms IS NOT NULL AND queued_ms < ?1",
                [at_ms.saturating_sub(KEEP_SENT_MS)],
            )?;
            tx.commit()
        })
    }
}

/// How long rows already sent are kept: they count as offline spend until the shared store's
/// spend is seen again, at most the longest budget period.
const KEEP_SENT_MS: i64 = 32 * 24 * 60 * 60 * 1000;

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn enqueue(tx: &Transaction, kind: &str, key: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO shared_outbox (kind, key, queued_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![kind, key, crate::time::now_ms()])?;
    Ok(())
}

fn link_state(conn: &Connection) -> rusqlite::Result<LinkState> {
    let waiting: i64 =
        conn.query_row("SELECT count(*) FROM shared_outbox WHERE sent_ms IS NULL", [], |r| r.get(0))?;
    let row = conn
        .query_row(
            "SELECT offline_since_ms, last_seen_ms, last_sync_ms, last_error FROM shared_link WHERE id = 1",
            [],
            |r| {
                Ok(LinkState {
                    offline_since_ms: r.get(0)?,
                    last_seen_ms: r.get(1)?,
                    last_sync_ms: r.get(2)?,
                    last_error: r.get(3)?,
                    waiting: 0,
                })
            },
        )
        .optional()?
        .unwrap_or_default();
    Ok(LinkState { waiting: waiting.max(0) as u64, ..row })
}

/// What was seen of each limit and spent offline since, for `call`'s user and provider.
fn offline_totals(
    conn: &Connection,
    call: &ProviderCall,
    day_start_ms: i64,
    month_start_ms: i64,
) -> rusqlite::Result<OfflineTotals> {
    // (spend in the day, in the month, seen at) of a scope, where its periods are the current ones.
    let seen = |scope: &str| -> rusqlite::Result<(Option<u64>, Option<u64>, Option<i64>)> {
        let row: Option<(i64, i64, i64, i64, i64)> = conn
            .prepare_cached(
                "SELECT day_start_ms, day_micros, month_start_ms, month_micros, seen_ms
                 FROM shared_seen WHERE scope = ?1",
            )?
            .query_row([scope], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        Ok(match row {
            None => (None, None, None),
            Some((day, day_micros, month, month_micros, at)) => (
                (day == day_start_ms).then_some(day_micros.max(0) as u64),
                (month == month_start_ms).then_some(month_micros.max(0) as u64),
                Some(at),
            ),
        })
    };
    let (team_day, team_month, team_at) = seen("team")?;
    let (provider_day, provider_month, provider_at) = seen(&format!("provider:{}", call.provider))?;
    let (user_day, user_month, user_at) = match &call.user {
        Some(user) => seen(&format!("user:{user}"))?,
        None => (None, None, None),
    };
    // Offline spend counts from when the scope was last seen, within the period.
    let spent = |since: Option<i64>, period: i64, column: Option<(&str, &str)>| -> rusqlite::Result<u64> {
        let from = since.map_or(period, |at| at.max(period));
        let filter = column.map(|(c, _)| format!("AND {c} = ?3")).unwrap_or_default();
        let sql = format!(
            "SELECT coalesce(sum(max(0, CASE
                 WHEN status = 'reserved' THEN reserved_micros
                 WHEN status IN ('succeeded', 'failed', 'cancelled') THEN cost_micros
                 ELSE 0 END)), 0)
             FROM provider_call
             WHERE id IN (SELECT key FROM shared_outbox WHERE kind = 'call')
               AND at_ms >= ?1 AND at_ms <= ?2 {filter}"
        );
        let mut statement = conn.prepare_cached(&sql)?;
        let total: i64 = match column {
            Some((_, value)) => {
                statement.query_row(params![from, latest_counted_ms(), value], |r| r.get(0))?
            }
            None => statement.query_row(params![from, latest_counted_ms()], |r| r.get(0))?,
        };
        Ok(total.max(0) as u64)
    };
    let user = call.user.as_deref().map(|u| ("user_name", u));
    let provider = Some(("provider", call.provider.as_str()));
    let offline = SpendTotals {
        workspace_day: spent(team_at, day_start_ms, None)?,
        workspace_month: spent(team_at, month_start_ms, None)?,
        user_day: if user.is_some() { spent(user_at, day_start_ms, user)? } else { 0 },
        user_month: if user.is_some() { spent(user_at, month_start_ms, user)? } else { 0 },
        provider_day: spent(provider_at, day_start_ms, provider)?,
        provider_month: spent(provider_at, month_start_ms, provider)?,
    };
    Ok(OfflineTotals {
        seen: SeenTotals {
            workspace_day: team_day,
            workspace_month: team_month,
            user_day,
            user_month,
            provider_day,
            provider_month,
        },
        seen_ms: [team_at, user_at, provider_at].into_iter().flatten().max(),
        offline,
    })
}

fn read_call(conn: &Connection, id: &str) -> rusqlite::Result<Option<ProviderCall>> {
    let number =
        |r: &rusqlite::Row, i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
    conn.prepare_cached(
        "SELECT id, at_ms, provider, model, fingerprint, category, status, reserved_micros,
                input_tokens, output_tokens, cached_input_tokens, cost_micros, latency_ms, error,
                user_name, agent
         FROM provider_call WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let status: String = r.get(6)?;
        Ok(ProviderCall {
            id: r.get(0)?,
            at_ms: r.get(1)?,
            provider: r.get(2)?,
            model: r.get(3)?,
            fingerprint: r.get(4)?,
            category: r.get(5)?,
            status: CallStatus::parse(&status).unwrap_or(CallStatus::Failed),
            reserved_micros: number(r, 7)?,
            input_tokens: number(r, 8)?,
            output_tokens: number(r, 9)?,
            cached_input_tokens: number(r, 10)?,
            cost_micros: number(r, 11)?,
            latency_ms: r.get::<_, Option<i64>>(12)?.map(|n| n.max(0) as u64),
            error: r.get(13)?,
            user: r.get(14)?,
            agent: r.get(15)?,
        })
    })
    .optional()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::store::StoreOptions;

    fn call(id: &str, at_ms: i64, reserved: u64) -> ProviderCall {
        ProviderCall {
            id: id.to_owned(),
            at_ms,
            provider: "primary".into(),
            model: "m".into(),
            fingerprint: None,
            category: None,
            status: CallStatus::Reserved,
            reserved_micros: reserved,
            input_tokens: 0,
            output_tokens: 0,
            cached_input_tokens: 0,
            cost_micros: 0,
            latency_ms: None,
            error: None,
            user: Some("ada@example.com".into()),
            agent: None,
        }
    }

    /// Reserves `call` offline, allowing it, and returns what the reservation was judged on.
    fn judged(store: &Store, call: ProviderCall, day: i64, month: i64) -> OfflineTotals {
        let seen = Arc::new(Mutex::new(None));
        let keep = seen.clone();
        let verdict = store
            .reserve_offline(
                call,
                day,
                month,
                Box::new(move |spending| {
                    *keep.lock().unwrap() = Some(spending);
                    Ok(())
                }),
            )
            .unwrap();
        assert_eq!(verdict, Ok(()));
        match seen.lock().unwrap().take() {
            Some(Spending::Offline(totals)) => totals,
            other => panic!("judged on {other:?}"),
        }
    }

    #[test]
    fn offline_reservations_see_what_was_seen_last_and_what_was_spent_offline_since() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let now = crate::time::now_ms();
        let (day, month) = (now - 1_000, now - 10_000);
        // Never seen: nothing seen, nothing spent offline.
        let first = judged(&store, call("a", now - 1_000, 300), day, month);
        assert_eq!(
            (first.seen, first.seen_ms, first.offline),
            (SeenTotals::default(), None, SpendTotals::default())
        );

        let totals = SpendTotals {
            workspace_day: 5_000,
            workspace_month: 9_000,
            user_day: 1_000,
            user_month: 2_000,
            provider_day: 4_000,
            provider_month: 8_000,
        };
        let seen = Seen {
            user: Some("ada@example.com".into()),
            provider: "primary".into(),
            day_start_ms: day,
            month_start_ms: month,
            totals,
            seen_ms: now - 500,
        };
        store.remember_seen(seen).unwrap();
        store.close().unwrap();
        // A restart still has it; "a" was reserved before it was seen and does not count.
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let second = judged(&store, call("b", now, 700), day, month);
        assert_eq!(second.seen.workspace_day, Some(5_000));
        assert_eq!(second.seen.user_month, Some(2_000));
        assert_eq!(second.seen.provider_month, Some(8_000));
        assert_eq!(second.seen_ms, Some(now - 500));
        assert_eq!(second.offline, SpendTotals::default());
        // "b" ends, costing less than reserved: the actual cost counts from then on.
        let mut ended = call("b", now, 700);
        ended.status = CallStatus::Succeeded;
        ended.cost_micros = 250;
        store.queue_for_shared(Queued::Call(ended.clone())).unwrap();
        let third = judged(&store, call("c", now, 100), day, month);
        assert_eq!(third.offline.workspace_day, 250);
        assert_eq!(third.offline.user_month, 250);
        assert_eq!(third.offline.provider_day, 250);
        // A new day: the day's spend was not seen in it.
        let fourth = judged(&store, call("d", now, 100), now, month);
        assert_eq!((fourth.seen.workspace_day, fourth.seen.workspace_month), (None, Some(9_000)));
    }

    #[test]
    fn the_outbox_gives_the_current_rows_until_they_are_marked_sent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
        let now = crate::time::now_ms();
        judged(&store, call("a", now, 300), 0, 0);
        let mut ended = call("a", now, 300);
        ended.status = CallStatus::Succeeded;
        ended.cost_micros = 120;
        store.queue_for_shared(Queued::Call(ended.clone())).unwrap();
        let entry = CacheEntry {
            key: "k".into(),
            at_ms: now,
            fingerprint: "f".into(),
            model: "m".into(),
            provider: "primary".into(),
            reply: "{}".into(),
        };
        store.queue_for_shared(Queued::Cache(entry.clone())).unwrap();
        assert_eq!(store.link_state().unwrap().waiting, 3);

        let pending = store.outbox_pending(2).unwrap();
        // Both rows of the call give its row as it is now: ended.
        assert_eq!(
            pending.iter().map(|p| p.item.clone()).collect::<Vec<_>>(),
            vec![Queued::Call(ended.clone()), Queued::Call(ended)]
        );
        store.outbox_sent(pending.iter().map(|p| p.seq).collect(), now).unwrap();
        let rest = store.outbox_pending(10).unwrap();
        assert_eq!(rest.iter().map(|p| p.item.clone()).collect::<Vec<_>>(), vec![Queued::Cache(entry)]);
        store.outbox_sent(vec![rest[0].seq], now).unwrap();
        let state = store.link_state().unwrap();
        assert_eq!((state.waiting, state.last_sync_ms), (0, Some(now)));
    }

    #[test]
    fn the_link_says_when_an_outage_begins_and_ends_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
        assert!(store.note_link(1_000, Some("refused".into())).unwrap());
        assert!(!store.note_link(2_000, Some("refused again".into())).unwrap());
        let state = store.link_state().unwrap();
        assert_eq!(
            (state.offline_since_ms, state.last_error.as_deref()),
            (Some(1_000), Some("refused again"))
        );
        assert!(store.note_link(3_000, None).unwrap());
        assert!(!store.note_link(4_000, None).unwrap());
        let state = store.link_state().unwrap();
        assert_eq!((state.offline_since_ms, state.last_seen_ms), (None, Some(4_000)));
    }
}
