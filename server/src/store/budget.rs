//! Reserving spend against budgets, atomically.
//!
//! [`Store::reserve`] reads what was spent or reserved and records the new reservation (or the
//! refusal) in one `BEGIN IMMEDIATE` transaction on the writer's connection. SQLite lets one
//! writer hold that lock at a time, across every connection and every process on the
//! database, so two requests, from one process or two, can never both pass a limit that only
//! one of them fits in: the workspace's, the user's or the provider's (the one lock covers the
//! user's spend too, as the user's row lock does on PostgreSQL). The limits themselves are the
//! caller's: this module only adds up.

use rusqlite::{Transaction, TransactionBehavior};

use super::error::StoreError;
use super::types::{CallStatus, ProviderCall};
use super::writer::upsert_provider_call;
use super::{Store, query};

/// How far ahead of this machine's clock a ledger row may be dated and still count as spend,
/// or be copied into the shared store (clocks drift). A row dated further ahead, or with a
/// negative amount, counts for nothing: it could otherwise hold a budget shut every day, or
/// offset the spend of everyone else.
pub const FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;

/// The latest `at_ms` a ledger row may have to count as spend now.
pub fn latest_counted_ms() -> i64 {
    crate::time::now_ms().saturating_add(FUTURE_SKEW_MS)
}

/// Spend (actual cost of ended calls plus reservations of calls in flight), in micros, since
/// the start of the current day and month, for the whole workspace (the team, on the shared
/// store), for the call's user and for its provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendTotals {
    pub workspace_day: u64,
    pub workspace_month: u64,
    pub user_day: u64,
    pub user_month: u64,
    pub provider_day: u64,
    pub provider_month: u64,
}

/// What a reservation is judged on: the spend recorded where the reservation is made (the
/// workspace's SQLite, or the shared store), or, while the shared store cannot be reached, what
/// was seen there last and what was spent offline since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spending {
    Recorded(SpendTotals),
    Offline(OfflineTotals),
}

/// The spend a reservation made offline is judged on: the caller holds a share of what each
/// limit had left when the shared store was last seen, and spends it on this machine alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OfflineTotals {
    /// Each limit's spend in the shared store when last seen there, in the current day or month;
    /// `None` when not seen since the period began (or never).
    pub seen: SeenTotals,
    /// When the shared store was last seen, if ever.
    pub seen_ms: Option<i64>,
    /// What this workspace spent or reserved offline since it was last seen, in the current day
    /// or month (calls waiting in the outbox, or sent since).
    pub offline: SpendTotals,
}

/// [`SpendTotals`] as last seen in the shared store: `None` where not seen in the current period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeenTotals {
    pub workspace_day: Option<u64>,
    pub workspace_month: Option<u64>,
    pub user_day: Option<u64>,
    pub user_month: Option<u64>,
    pub provider_day: Option<u64>,
    pub provider_month: Option<u64>,
}

impl Store {
    /// Records `call` as `Reserved` when `allow` accepts the spend so far, or as `Refused` with
    /// the refusal as its error when it does not; both in one transaction that no other
    /// reservation can interleave with. `day_start_ms` and `month_start_ms` bound the periods.
    /// Returns what `allow` said.
    pub fn reserve<Refusal: std::fmt::Display + Send + 'static>(
        &self,
        mut call: ProviderCall,
        day_start_ms: i64,
        month_start_ms: i64,
        allow: impl FnOnce(SpendTotals) -> Result<(), Refusal> + Send + 'static,
    ) -> Result<Result<(), Refusal>, StoreError> {
        self.call("reserve AI spend against the budgets", move |conn| {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            let provider = call.provider.clone();
            let totals = SpendTotals {
                workspace_day: query::spend_since(&tx, day_start_ms, None)?,
                workspace_month: query::spend_since(&tx, month_start_ms, None)?,
                user_day: match &call.user {
                    Some(user) => query::spend_since_by(&tx, day_start_ms, query::SpentBy::User(user))?,
                    None => 0,
                },
                user_month: match &call.user {
                    Some(user) => query::spend_since_by(&tx, month_start_ms, query::SpentBy::User(user))?,
                    None => 0,
                },
                provider_day: query::spend_since(&tx, day_start_ms, Some(&provider))?,
                provider_month: query::spend_since(&tx, month_start_ms, Some(&provider))?,
            };
            let verdict = allow(totals);
            record_reservation(&tx, &mut call, verdict.as_ref().err().map(ToString::to_string))?;
            tx.commit()?;
            Ok(verdict)
        })
    }
}

/// Records `call` in `tx` as reserved, or as refused with `refusal` as its error (and nothing
/// reserved). A reservation is a new call: an id already recorded is another call's, and
/// sharing its row would merge two calls' spend into one, so it fails.
pub(super) fn record_reservation(
    tx: &Transaction,
    call: &mut ProviderCall,
    refusal: Option<String>,
) -> rusqlite::Result<()> {
    match refusal {
        None => call.status = CallStatus::Reserved,
        Some(refusal) => {
            call.status = CallStatus::Refused;
            call.reserved_micros = 0;
            call.error = Some(refusal);
        }
    }
    let taken = tx.prepare_cached("SELECT 1 FROM provider_call WHERE id = ?1")?.exists([&call.id])?;
    if taken {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            Some(format!("a call with id {} is already recorded; try the request again", call.id)),
        ));
    }
    upsert_provider_call(tx, call)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::store::StoreOptions;

    fn call(id: String, provider: &str, reserved: u64) -> ProviderCall {
        ProviderCall {
            id,
            at_ms: 1_000,
            provider: provider.into(),
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
            user: None,
            agent: None,
        }
    }

    #[test]
    fn racing_reservations_from_many_connections_never_pass_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        // Each thread opens the database itself, as separate processes would.
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let store = Store::open(&path, StoreOptions::default()).unwrap();
                    barrier.wait();
                    let mut allowed = 0;
                    for i in 0..5 {
                        let verdict = store
                            .reserve(call(format!("{t}-{i}"), "p", 300), 0, 0, |spend| {
                                if spend.workspace_day + 300 > 10_000 { Err("over") } else { Ok(()) }
                            })
                            .unwrap();
                        allowed += usize::from(verdict.is_ok());
                    }
                    store.close().unwrap();
                    allowed
                })
            })
            .collect();
        let allowed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let store = Store::open(&path, StoreOptions::default()).unwrap();
        let spent = store.spend_since(0, None).unwrap();
        assert_eq!(allowed, 10_000 / 300, "reservations allowed");
        assert_eq!(spent, allowed as u64 * 300);
        assert!(spent <= 10_000);
    }
}
