//! The cost ledger, budget reservations and answer cache on PostgreSQL.
//!
//! A reservation locks the team's budget row (`SELECT … FOR UPDATE`), then the user's (made
//! on first use), reads the spend of the team, the user and the provider, and writes the call,
//! in one transaction: every instance of the team, on every machine, queues on those rows, and
//! each one reads the spend with what the previous holder committed. The
//! transaction runs at `READ COMMITTED`, where each statement after the lock sees the commits
//! made before it.

use deadpool_postgres::GenericClient;

use super::{Fail, PgStore};
use crate::store::budget::{SpendTotals, Spending, latest_counted_ms};
use crate::store::error::{StoreError, StoreErrorKind};
use crate::store::outbox::Queued;
use crate::store::shared::{Allow, Ledger};
use crate::store::types::{CacheEntry, CallStatus, ProviderCall};

/// What counts as spend: reservations of calls in flight, the actual cost of ended calls (a
/// cancelled call may have been billed for what streamed before it), nothing for refused or
/// cached ones.
/// A negative amount counts for nothing, as does a row dated past
/// [`latest_counted_ms`](crate::store::budget::latest_counted_ms) (filtered where it is summed).
const SPEND: &str = "GREATEST(0, CASE WHEN status = 'reserved' THEN reserved_micros
                          WHEN status IN ('succeeded', 'failed', 'cancelled') THEN cost_micros
                          ELSE 0 END)";

impl Ledger for PgStore {
    fn reserve(
        &self,
        mut call: ProviderCall,
        day_start_ms: i64,
        month_start_ms: i64,
        allow: Allow,
    ) -> Result<Result<(), String>, StoreError> {
        let identity = self.identity().clone();
        self.run("reserve AI spend against the budgets", move |pool| async move {
            let user = call.user.get_or_insert_with(|| identity.user.clone()).clone();
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            // Always the team's row first, then the user's: one order, no deadlock.
            tx.query_one("SELECT scope FROM budget WHERE scope = 'team' FOR UPDATE", &[]).await?;
            let user_scope = format!("user:{user}");
            tx.execute("INSERT INTO budget (scope) VALUES ($1) ON CONFLICT DO NOTHING", &[&user_scope])
                .await?;
            tx.query_one("SELECT scope FROM budget WHERE scope = $1 FOR UPDATE", &[&user_scope]).await?;
            // A reservation is a new call: an id already recorded is another call's, and
            // sharing its row would merge two calls' spend into one.
            if tx.query_opt("SELECT 1 FROM provider_call WHERE id = $1", &[&call.id]).await?.is_some() {
                return Err(Fail::Store(StoreError::new(
                    StoreErrorKind::Database,
                    format!(
                        "could not reserve AI spend: a call with id {} is already recorded; \
                         try the request again",
                        call.id
                    ),
                )));
            }
            let from = day_start_ms.min(month_start_ms);
            let row = tx
                .query_one(
                    &format!(
                        "SELECT coalesce(sum(spend) FILTER (WHERE at_ms >= $1), 0)::bigint,
                                coalesce(sum(spend) FILTER (WHERE at_ms >= $2), 0)::bigint,
                                coalesce(sum(spend) FILTER (WHERE at_ms >= $1 AND provider = $4), 0)::bigint,
                                coalesce(sum(spend) FILTER (WHERE at_ms >= $2 AND provider = $4), 0)::bigint,
                                coalesce(sum(spend) FILTER (WHERE at_ms >= $1 AND user_name = $5), 0)::bigint,
                                coalesce(sum(spend) FILTER (WHERE at_ms >= $2 AND user_name = $5), 0)::bigint
                         FROM (SELECT at_ms, provider, user_name, {SPEND} AS spend
                               FROM provider_call WHERE at_ms >= $3 AND at_ms <= $6) AS calls"
                    ),
                    &[&day_start_ms, &month_start_ms, &from, &call.provider, &user, &latest_counted_ms()],
                )
                .await?;
            let micros = |i: usize| row.get::<_, i64>(i).max(0) as u64;
            let totals = SpendTotals {
                workspace_day: micros(0),
                workspace_month: micros(1),
                user_day: micros(4),
                user_month: micros(5),
                provider_day: micros(2),
                provider_month: micros(3),
            };
            let verdict = allow(Spending::Recorded(totals));
            match &verdict {
                Ok(()) => call.status = CallStatus::Reserved,
                Err(refusal) => {
                    call.status = CallStatus::Refused;
                    call.reserved_micros = 0;
                    call.error = Some(refusal.clone());
                }
            }
            upsert_call(&tx, &call, &identity.repository, &identity.user).await?;
            tx.commit().await?;
            Ok(verdict)
        })
    }

    fn finish(&self, call: ProviderCall) -> Result<(), StoreError> {
        let identity = self.identity().clone();
        self.run("record an AI call", move |pool| async move {
            let client = pool.get().await?;
            upsert_call(&client, &call, &identity.repository, &identity.user).await?;
            Ok(())
        })
    }

    fn spend_since(&self, since_ms: i64, provider: Option<&str>) -> Result<u64, StoreError> {
        let provider = provider.map(str::to_owned);
        self.run("read the AI spend", move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_one(
                    &format!(
                        "SELECT coalesce(sum({SPEND}), 0)::bigint FROM provider_call
                         WHERE at_ms >= $1 AND at_ms <= $3 AND ($2::text IS NULL OR provider = $2)"
                    ),
                    &[&since_ms, &provider, &latest_counted_ms()],
                )
                .await?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }

    fn agent_spend_since(&self, since_ms: i64, agent: &str) -> Result<u64, StoreError> {
        let agent = agent.to_owned();
        self.run("read the AI spend of an agent", move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_one(
                    &format!(
                        "SELECT coalesce(sum({SPEND}), 0)::bigint FROM provider_call
                         WHERE at_ms >= $1 AND at_ms <= $3 AND agent = $2"
                    ),
                    &[&since_ms, &agent, &latest_counted_ms()],
                )
                .await?;
            Ok(row.get::<_, i64>(0).max(0) as u64)
        })
    }

    fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        let key = key.to_owned();
        self.run("read the AI reply cache", move |pool| async move {
            let client = pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT key, at_ms, fingerprint, model, provider, reply FROM cache_entry WHERE key = $1",
                    &[&key],
                )
                .await?;
            Ok(row.map(|row| CacheEntry {
                key: row.get(0),
                at_ms: row.get(1),
                fingerprint: row.get(2),
                model: row.get(3),
                provider: row.get(4),
                reply: row.get(5),
            }))
        })
    }

    fn cache_put(&self, entry: CacheEntry) -> Result<(), StoreError> {
        self.run("keep an AI reply in the cache", move |pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    "INSERT INTO cache_entry (key, at_ms, fingerprint, model, provider, reply)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (key) DO UPDATE SET at_ms = excluded.at_ms,
                         fingerprint = excluded.fingerprint, model = excluded.model,
                         provider = excluded.provider, reply = excluded.reply",
                    &[
                        &entry.key,
                        &entry.at_ms,
                        &entry.fingerprint,
                        &entry.model,
                        &entry.provider,
                        &entry.reply,
                    ],
                )
                .await?;
            Ok(())
        })
    }
}

impl PgStore {
    /// Writes what was queued while the store could not be reached, in one transaction: each
    /// call under its id (an ended call is never put back to `reserved`), each cached reply
    /// under its key unless the store holds a newer one. Writing the same items again changes
    /// nothing.
    pub fn push_queued(&self, items: Vec<Queued>) -> Result<(), StoreError> {
        let identity = self.identity().clone();
        // PostgreSQL's text holds no NUL, which a provider's reply or error may.
        let clean = |text: &mut String| {
            if text.contains('\0') {
                *text = text.replace('\0', "\u{FFFD}");
            }
        };
        let items: Vec<Queued> = items
            .into_iter()
            .map(|mut item| {
                match &mut item {
                    Queued::Call(call) => {
                        if let Some(error) = &mut call.error {
                            clean(error);
                        }
                    }
                    Queued::Cache(entry) => clean(&mut entry.reply),
                    Queued::Gone => {}
                }
                item
            })
            .collect();
        self.run("write the changes made offline", move |pool| async move {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            for item in &items {
                match item {
                    Queued::Call(call) => {
                        upsert_call(&tx, call, &identity.repository, &identity.user).await?
                    }
                    Queued::Cache(entry) => {
                        tx.execute(
                            "INSERT INTO cache_entry (key, at_ms, fingerprint, model, provider, reply)
                             VALUES ($1, $2, $3, $4, $5, $6)
                             ON CONFLICT (key) DO UPDATE SET at_ms = excluded.at_ms,
                                 fingerprint = excluded.fingerprint, model = excluded.model,
                                 provider = excluded.provider, reply = excluded.reply
                             WHERE cache_entry.at_ms < excluded.at_ms",
                            &[
                                &entry.key,
                                &entry.at_ms,
                                &entry.fingerprint,
                                &entry.model,
                                &entry.provider,
                                &entry.reply,
                            ],
                        )
                        .await?;
                    }
                    Queued::Gone => {}
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

/// Inserts `call`, or updates the row of its id unless that would put an ended call back to
/// `reserved`.
async fn upsert_call(
    client: &impl GenericClient,
    call: &ProviderCall,
    repository: &str,
    user: &str,
) -> Result<(), Fail> {
    let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let user = call.user.as_deref().unwrap_or(user);
    client
        .execute(
            "INSERT INTO provider_call (id, repository, user_name, at_ms, provider, model, fingerprint,
                 category, status, reserved_micros, input_tokens, output_tokens, cached_input_tokens,
                 cost_micros, latency_ms, error, agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (id) DO UPDATE SET
                 provider = excluded.provider, model = excluded.model,
                 fingerprint = excluded.fingerprint, category = excluded.category,
                 status = excluded.status, reserved_micros = excluded.reserved_micros,
                 input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
                 cached_input_tokens = excluded.cached_input_tokens,
                 cost_micros = excluded.cost_micros, latency_ms = excluded.latency_ms,
                 error = excluded.error, agent = excluded.agent
             WHERE provider_call.status = 'reserved' OR excluded.status <> 'reserved'",
            &[
                &call.id,
                &repository,
                &user,
                &call.at_ms,
                &call.provider,
                &call.model,
                &call.fingerprint,
                &call.category,
                &call.status.as_str(),
                &big(call.reserved_micros),
                &big(call.input_tokens),
                &big(call.output_tokens),
                &big(call.cached_input_tokens),
                &big(call.cost_micros),
                &call.latency_ms.map(big),
                &call.error,
                &call.agent,
            ],
        )
        .await?;
    Ok(())
}
