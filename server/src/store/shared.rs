//! The state a team can share, behind one API with two engines: the workspace's SQLite
//! ([`Store`]) and PostgreSQL ([`PgStore`](super::PgStore)).
//!
//! [`Ledger`] is the cost ledger with its budget reservations and the answer cache. Each call
//! answers once its change is committed, so what one handle wrote, any other handle on the same
//! database (in this process or another, on this machine or another) reads next. A reservation
//! is atomic on both engines: the spend so far is read and the new reservation written in one
//! transaction that no other reservation interleaves with (SQLite's single writer, PostgreSQL's
//! row lock on the budget).
//!
//! The limits are the caller's: a ledger only adds up and records what the caller decided.

use super::Store;
use super::budget::Spending;
use super::error::StoreError;
use super::postgres::runs::{SharedDefinition, SharedRun};
use super::types::{CacheEntry, FixOutcome, FixStatsRow, ProviderCall, Record};

/// What decides whether a reservation may go ahead, given the spend so far: `Err` holds the
/// refusal, recorded as the call's error.
pub type Allow = Box<dyn FnOnce(Spending) -> Result<(), String> + Send>;

/// The cost ledger, its reservations and the answer cache.
pub trait Ledger: Send + Sync {
    /// Records `call` as `Reserved` when `allow` accepts the spend so far (the day from
    /// `day_start_ms`, the month from `month_start_ms`), or as `Refused` with the refusal as its
    /// error; both in one transaction that no other reservation can interleave with. Returns
    /// what `allow` said.
    fn reserve(
        &self,
        call: ProviderCall,
        day_start_ms: i64,
        month_start_ms: i64,
        allow: Allow,
    ) -> Result<Result<(), String>, StoreError>;

    /// Records how a call ended (same id as its reservation, which it replaces). A `Reserved`
    /// that arrives after the call ended changes nothing.
    fn finish(&self, call: ProviderCall) -> Result<(), StoreError>;

    /// Spend since `since_ms`, in micros: actual cost of ended calls plus the reservations of
    /// calls in flight; for one provider or all.
    fn spend_since(&self, since_ms: i64, provider: Option<&str>) -> Result<u64, StoreError>;

    /// [`Ledger::spend_since`] of the calls made for `agent` (as policies name it), for its
    /// spend limit.
    fn agent_spend_since(&self, since_ms: i64, agent: &str) -> Result<u64, StoreError>;

    /// The cached reply under `key`, if any.
    fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>, StoreError>;

    /// Keeps a reply under its key, replacing what was there.
    fn cache_put(&self, entry: CacheEntry) -> Result<(), StoreError>;

    /// Whether [`Ledger::finish`] also keeps the call in the workspace's store, so that its
    /// caller need not.
    fn keeps_local_copy(&self) -> bool {
        false
    }
}

impl Ledger for Store {
    fn reserve(
        &self,
        call: ProviderCall,
        day_start_ms: i64,
        month_start_ms: i64,
        allow: Allow,
    ) -> Result<Result<(), String>, StoreError> {
        Store::reserve(self, call, day_start_ms, month_start_ms, move |totals| {
            allow(Spending::Recorded(totals))
        })
    }

    fn finish(&self, call: ProviderCall) -> Result<(), StoreError> {
        self.record(vec![Record::ProviderCall(call)]);
        self.flush()
    }

    fn spend_since(&self, since_ms: i64, provider: Option<&str>) -> Result<u64, StoreError> {
        Store::spend_since(self, since_ms, provider)
    }

    fn agent_spend_since(&self, since_ms: i64, agent: &str) -> Result<u64, StoreError> {
        Store::agent_spend_since(self, since_ms, agent)
    }

    fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        Store::cache_get(self, key)
    }

    fn cache_put(&self, entry: CacheEntry) -> Result<(), StoreError> {
        self.record(vec![Record::CacheEntry(entry)]);
        self.flush()
    }
}

/// Fix outcomes and what learning reads from them: success rates per provider, model and
/// category (which order the provider chain) and accepted fixes of a fingerprint (the examples
/// of later prompts).
///
/// On PostgreSQL the outcomes are the repository's, whatever clone recorded them, so that one
/// clone's accepted fix teaches every clone; on SQLite they are the workspace's.
pub trait FixLog: Send + Sync {
    /// Records one event in the life of a fix; answers once it is committed.
    fn record_fix(&self, outcome: FixOutcome) -> Result<(), StoreError>;

    /// Distinct fixes per provider, model and category, by outcome.
    fn fix_stats(&self) -> Result<Vec<FixStatsRow>, StoreError>;

    /// Per fix of `fingerprint`, its latest applied or resolved event that carries the edit,
    /// unless the fix was reverted after it; newest first, at most `limit`.
    fn past_fixes(&self, fingerprint: &str, limit: usize) -> Result<Vec<FixOutcome>, StoreError>;
}

impl FixLog for Store {
    fn record_fix(&self, outcome: FixOutcome) -> Result<(), StoreError> {
        self.record(vec![Record::FixOutcome(outcome)]);
        self.flush()
    }

    fn fix_stats(&self) -> Result<Vec<FixStatsRow>, StoreError> {
        Store::fix_stats(self)
    }

    fn past_fixes(&self, fingerprint: &str, limit: usize) -> Result<Vec<FixOutcome>, StoreError> {
        Store::past_fixes(self, fingerprint, limit)
    }
}

/// Where a process mirrors the workflow runs it owns, for the rest of the team to read.
///
/// On PostgreSQL it is the shared store's `workflow_run` tables ([`super::postgres::runs`]). On
/// the workspace's SQLite it publishes nothing and lists nothing: the runs are already in that
/// database (`workflow_run`, written by the engine itself), and nobody else reads it.
pub trait RunBoard: Send + Sync {
    /// Writes `run` when its version is above the stored one; returns whether it was written.
    fn publish_run(
        &self,
        run: &SharedRun,
        definition: Option<&SharedDefinition>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// The repository's most recent runs of every clone, newest first, with their steps.
    fn team_runs(&self, limit: usize) -> Result<Vec<SharedRun>, StoreError>;

    /// One run of the repository by its shared id.
    fn team_run(&self, id: &str) -> Result<Option<SharedRun>, StoreError>;
}

impl RunBoard for Store {
    fn publish_run(&self, _: &SharedRun, _: Option<&SharedDefinition>, _: i64) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn team_runs(&self, _: usize) -> Result<Vec<SharedRun>, StoreError> {
        Ok(Vec::new())
    }

    fn team_run(&self, _: &str) -> Result<Option<SharedRun>, StoreError> {
        Ok(None)
    }
}

impl RunBoard for super::PgStore {
    fn publish_run(
        &self,
        run: &SharedRun,
        definition: Option<&SharedDefinition>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        super::PgStore::publish_run(self, run, definition, now_ms)
    }

    fn team_runs(&self, limit: usize) -> Result<Vec<SharedRun>, StoreError> {
        super::PgStore::team_runs(self, limit)
    }

    fn team_run(&self, id: &str) -> Result<Option<SharedRun>, StoreError> {
        super::PgStore::team_run(self, id)
    }
}
