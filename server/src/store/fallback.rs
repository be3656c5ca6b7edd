//! The team's ledger that keeps working when PostgreSQL cannot be reached.
//!
//! [`Fallback`] is a [`Ledger`] over the shared store ([`PgStore`]) and the workspace's SQLite
//! ([`Store`]). While the shared store answers, it is the ledger, and each reservation notes in
//! SQLite what the team's, the user's and the provider's limits had spent there. When it cannot
//! be reached (connection refused, timed out, pool exhausted: [`StoreErrorKind::Unreachable`];
//! any other error is the caller's to see), reservations are judged on what was seen last and
//! made in SQLite, and every change that must be shared (reservations, ended calls, cached
//! replies) is queued in the durable outbox (`outbox.rs`). It tries the shared store again after
//! 250 ms, doubling up to 30 s; once it answers, the outbox is pushed ([`Fallback::sync`]) before
//! anything else is reserved there, in batches of [`SYNC_BATCH`], one transaction each, and the
//! rows are marked sent only after the commit. The outage and the recovery are logged once each.
//!
//! The share itself (how much of what was seen may be spent) is the caller's decision, as are
//! all limits: this module only says what was seen and what was spent offline.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::budget::Spending;
use super::error::{StoreError, StoreErrorKind};
use super::outbox::{LinkState, Queued, Seen};
use super::postgres::{PgStore, SharedStore};
use super::shared::{Allow, Ledger};
use super::types::{CacheEntry, ProviderCall, Record};
use super::{SpendTotals, Store};

/// Outbox rows pushed per transaction.
pub const SYNC_BATCH: usize = 500;
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The shared store when it answers, the workspace's SQLite and its outbox when it does not.
pub struct Fallback {
    shared: SharedStore,
    local: Store,
    link: Mutex<Link>,
}

#[derive(Default)]
struct Link {
    pg: Option<PgStore>,
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    /// Whether the shared store could be reached.
    pub online: bool,
    /// Outbox rows written to the shared store, or set aside because it refused them.
    pub sent: u64,
    /// Of those, the rows it refused (not for being unreachable): set aside, not sent again.
    pub refused: u64,
    /// Rows still waiting.
    pub waiting: u64,
}

impl Fallback {
    /// Connects lazily: nothing is tried before the first call.
    pub fn new(shared: SharedStore, local: Store) -> Fallback {
        Fallback { shared, local, link: Mutex::new(Link::default()) }
    }

    pub fn shared(&self) -> &SharedStore {
        &self.shared
    }

    /// The link's state as the workspace knows it.
    pub fn state(&self) -> Result<LinkState, StoreError> {
        self.local.link_state()
    }

    /// Whether the shared store can be reached now (one try); notes the answer.
    pub fn probe(&self) -> Result<bool, StoreError> {
        Ok(self.online()?.is_some())
    }

    /// The shared store, when it can be reached now; `None` when it cannot (or was not, less
    /// than the backoff ago). Errors other than unreachability are the caller's.
    fn online(&self) -> Result<Option<PgStore>, StoreError> {
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pg) = &link.pg {
            return Ok(Some(pg.clone()));
        }
        if link.retry_at.is_some_and(|at| Instant::now() < at) {
            return Ok(None);
        }
        match self.shared.connect() {
            Ok(pg) => {
                link.pg = Some(pg.clone());
                link.retry_at = None;
                link.backoff = FIRST_RETRY;
                drop(link);
                self.note(None);
                Ok(Some(pg))
            }
            Err(error) if error.kind() == StoreErrorKind::Unreachable => {
                self.went_offline(&mut link, &error);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Falls back after `error` when it says the store cannot be reached; else hands it back.
    fn fall_back(&self, error: StoreError) -> Result<(), StoreError> {
        if error.kind() != StoreErrorKind::Unreachable {
            return Err(error);
        }
        let mut link = self.link.lock().unwrap_or_else(PoisonError::into_inner);
        self.went_offline(&mut link, &error);
        Ok(())
    }

    fn went_offline(&self, link: &mut Link, error: &StoreError) {
        link.pg = None;
        link.backoff = if link.backoff.is_zero() { FIRST_RETRY } else { (link.backoff * 2).min(MAX_RETRY) };
        link.retry_at = Some(Instant::now() + link.backoff);
        self.note(Some(error.to_string()));
    }

    /// Records the link's state; logs when an outage begins or ends.
    fn note(&self, error: Option<String>) {
        let offline = error.is_some();
        match self.local.note_link(crate::time::now_ms(), error) {
            Ok(true) if offline => tracing::warn!(
                store = %self.shared.url,
                "the shared store cannot be reached; working on this machine's share of the budgets \
                 and queuing what must be shared until it is back"
            ),
            Ok(true) => tracing::info!(store = %self.shared.url, "the shared store can be reached again"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "could not note the state of the link to the shared store"),
        }
    }

    /// Pushes the outbox to the shared store, when it can be reached; `progress` hears of each
    /// batch committed. A sync cut short (the process killed, the store lost again) leaves the
    /// rest queued, and the rows of a batch whose commit was not marked are pushed again, which
    /// changes nothing.
    pub fn sync(&self, progress: &mut dyn FnMut(Synced)) -> Result<Synced, StoreError> {
        let Some(pg) = self.online()? else {
            return Ok(Synced {
                online: false,
                sent: 0,
                refused: 0,
                waiting: self.local.link_state()?.waiting,
            });
        };
        match self.push(&pg, progress) {
            Ok(synced) => Ok(synced),
            Err(error) => {
                self.fall_back(error)?;
                Ok(Synced { online: false, sent: 0, refused: 0, waiting: self.local.link_state()?.waiting })
            }
        }
    }

    fn push(&self, pg: &PgStore, progress: &mut dyn FnMut(Synced)) -> Result<Synced, StoreError> {
        if self.local.link_state()?.waiting == 0 {
            // Nothing to send: only check that the store still answers.
            pg.schema_version()?;
            return Ok(Synced { online: true, sent: 0, refused: 0, waiting: 0 });
        }
        let (mut sent, mut refused) = (0, 0);
        loop {
            let batch = self.local.outbox_pending(SYNC_BATCH)?;
            if batch.is_empty() {
                break;
            }
            let seqs: Vec<i64> = batch.iter().map(|p| p.seq).collect();
            let rows = batch.len() as u64;
            match pg.push_queued(batch.iter().map(|p| p.item.clone()).collect()) {
                Ok(()) => {}
                Err(error) if error.kind() == StoreErrorKind::Unreachable => return Err(error),
                // One row the store refuses must not hold back the others: each alone, and
                // the refused ones are set aside, said in the log.
                Err(_) => {
                    for pending in &batch {
                        match pg.push_queued(vec![pending.item.clone()]) {
                            Ok(()) => {}
                            Err(error) if error.kind() == StoreErrorKind::Unreachable => return Err(error),
                            Err(error) => {
                                tracing::warn!(%error, seq = pending.seq, "the shared store refused a change made offline; it is set aside in the outbox");
                                self.local.outbox_refused(
                                    pending.seq,
                                    error.to_string(),
                                    crate::time::now_ms(),
                                )?;
                                refused += 1;
                            }
                        }
                    }
                }
            }
            self.local.outbox_sent(seqs, crate::time::now_ms())?;
            sent += rows;
            progress(Synced { online: true, sent, refused, waiting: self.local.link_state()?.waiting });
        }
        if sent > 0 {
            tracing::info!(sent, store = %self.shared.url, "sent the changes made offline to the shared store");
        }
        Ok(Synced { online: true, sent, refused, waiting: 0 })
    }

    /// Pushes the outbox when there is one: what was spent offline counts in the shared store
    /// before anything new is reserved there.
    fn catch_up(&self, pg: &PgStore) -> Result<(), StoreError> {
        if self.local.link_state()?.waiting == 0 {
            return Ok(());
        }
        self.push(pg, &mut |_| {}).map(|_| ())
    }
}

impl Ledger for Fallback {
    fn reserve(
        &self,
        call: ProviderCall,
        day_start_ms: i64,
        month_start_ms: i64,
        allow: Allow,
    ) -> Result<Result<(), String>, StoreError> {
        // The verdict is asked once: online, or offline when the store was lost before.
        let allow = Arc::new(Mutex::new(Some(allow)));
        if let Some(pg) = self.online()? {
            let seen: Arc<Mutex<Option<SpendTotals>>> = Arc::default();
            let attempt = self.catch_up(&pg).and_then(|()| {
                let (allow, seen) = (allow.clone(), seen.clone());
                let ask: Allow = Box::new(move |spending| {
                    if let Spending::Recorded(totals) = spending {
                        *seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(totals);
                    }
                    match allow.lock().unwrap_or_else(PoisonError::into_inner).take() {
                        Some(allow) => allow(spending),
                        None => Err("the reservation was judged twice; try the request again".to_owned()),
                    }
                });
                pg.reserve(call.clone(), day_start_ms, month_start_ms, ask)
            });
            match attempt {
                Ok(verdict) => {
                    let seen = *seen.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(mut totals) = seen {
                        if verdict.is_ok() {
                            for spend in [
                                &mut totals.workspace_day,
                                &mut totals.workspace_month,
                                &mut totals.user_day,
                                &mut totals.user_month,
                                &mut totals.provider_day,
                                &mut totals.provider_month,
                            ] {
                                *spend = spend.saturating_add(call.reserved_micros);
                            }
                        }
                        let remembered = self.local.remember_seen(Seen {
                            user: call.user.clone(),
                            provider: call.provider.clone(),
                            day_start_ms,
                            month_start_ms,
                            totals,
                            seen_ms: crate::time::now_ms(),
                        });
                        if let Err(error) = remembered {
                            tracing::warn!(%error, "could not keep the shared store's spend for offline use");
                        }
                    }
                    return Ok(verdict);
                }
                Err(error) => self.fall_back(error)?,
            }
        }
        let Some(allow) = allow.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return Err(StoreError::new(
                StoreErrorKind::Unreachable,
                format!(
                    "the shared store {} was lost while reserving AI spend, after the budgets were read; \
                     try the request again",
                    self.shared.url
                ),
            ));
        };
        self.local.reserve_offline(call, day_start_ms, month_start_ms, allow)
    }

    fn finish(&self, call: ProviderCall) -> Result<(), StoreError> {
        if let Some(pg) = self.online()? {
            match pg.finish(call.clone()) {
                Ok(()) => {
                    self.local.record(vec![Record::ProviderCall(call)]);
                    return Ok(());
                }
                Err(error) => self.fall_back(error)?,
            }
        }
        self.local.queue_for_shared(Queued::Call(call))
    }

    fn spend_since(&self, since_ms: i64, provider: Option<&str>) -> Result<u64, StoreError> {
        if let Some(pg) = self.online()? {
            match pg.spend_since(since_ms, provider) {
                Ok(spent) => return Ok(spent),
                Err(error) => self.fall_back(error)?,
            }
        }
        self.local.flush()?;
        self.local.spend_since(since_ms, provider)
    }

    fn agent_spend_since(&self, since_ms: i64, agent: &str) -> Result<u64, StoreError> {
        if let Some(pg) = self.online()? {
            match pg.agent_spend_since(since_ms, agent) {
                Ok(spent) => return Ok(spent),
                Err(error) => self.fall_back(error)?,
            }
        }
        self.local.flush()?;
        self.local.agent_spend_since(since_ms, agent)
    }

    fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        if let Some(pg) = self.online()? {
            match pg.cache_get(key) {
                Ok(entry) => return Ok(entry),
                Err(error) => self.fall_back(error)?,
            }
        }
        self.local.flush()?;
        self.local.cache_get(key)
    }

    fn cache_put(&self, entry: CacheEntry) -> Result<(), StoreError> {
        if let Some(pg) = self.online()? {
            match pg.cache_put(entry.clone()) {
                Ok(()) => return Ok(()),
                Err(error) => self.fall_back(error)?,
            }
        }
        self.local.queue_for_shared(Queued::Cache(entry))
    }

    fn keeps_local_copy(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CallStatus, DatabaseUrl, Identity, StoreOptions};

    /// A shared store on a port of 127.0.0.1 where nothing listens: every connection is refused.
    fn nowhere() -> SharedStore {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        SharedStore {
            url: DatabaseUrl::parse(&format!("postgres://acas:SECRET@127.0.0.1:{port}/acas?sslmode=disable"))
                .unwrap(),
            identity: Identity { repository: "github.com/acme/app".into(), user: "ada@example.com".into() },
        }
    }

    fn call(id: &str) -> ProviderCall {
        ProviderCall {
            id: id.to_owned(),
            at_ms: crate::time::now_ms(),
            provider: "primary".into(),
            model: "m".into(),
            fingerprint: None,
            category: None,
            status: CallStatus::Reserved,
            reserved_micros: 300,
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

    #[test]
    fn an_unreachable_store_falls_back_to_the_workspace_and_queues_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let local = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
        let ledger = Fallback::new(nowhere(), local.clone());
        let verdict = ledger
            .reserve(
                call("a"),
                0,
                0,
                Box::new(|spending| match spending {
                    Spending::Offline(_) => Ok(()),
                    Spending::Recorded(_) => Err("judged as if online".to_owned()),
                }),
            )
            .unwrap();
        assert_eq!(verdict, Ok(()));
        let mut ended = call("a");
        ended.status = CallStatus::Succeeded;
        ended.cost_micros = 100;
        ledger.finish(ended).unwrap();
        let entry = CacheEntry {
            key: "k".into(),
            at_ms: 1,
            fingerprint: "f".into(),
            model: "m".into(),
            provider: "primary".into(),
            reply: "{}".into(),
        };
        ledger.cache_put(entry.clone()).unwrap();
        assert_eq!(ledger.cache_get("k").unwrap(), Some(entry));
        assert_eq!(ledger.spend_since(0, None).unwrap(), 100);

        let state = ledger.state().unwrap();
        assert_eq!(state.waiting, 3);
        assert!(state.offline_since_ms.is_some());
        let why = state.last_error.unwrap();
        assert!(why.contains("cannot be reached") && !why.contains("SECRET"), "{why}");
        // A sync while it still cannot be reached sends nothing and keeps everything.
        let synced = Fallback::new(nowhere(), local).sync(&mut |_| {}).unwrap();
        assert_eq!(synced, Synced { online: false, sent: 0, refused: 0, waiting: 3 });
    }
}
