//! Sync after an hour offline: how long a workspace takes to send its outbox to the shared store
//! once PostgreSQL is back, on a cluster started for the run (`acas_e2e::postgres`).
//!
//! Run with `cargo bench -p acas-e2e --bench offline_sync --profile dev`. Prints a markdown table.
//!
//! An hour of a busy developer offline: 600 AI calls (one every 6 seconds: rules firing as they
//! type, agents and workflows asking), each reserved offline, ended, and its reply (2 KiB)
//! cached: 1,800 outbox rows, written through the same calls `acas` makes offline
//! (`Store::reserve_offline`, `Store::queue_for_shared`).
//! Timed is `Fallback::sync`, from the first connection to the last batch marked sent, into a
//! fresh database each time, three times per size.

use std::time::Instant;

use acas::store::outbox::Queued;
use acas::store::{
    CacheEntry, CallStatus, DatabaseUrl, Fallback, Identity, ProviderCall, SharedStore, Store, StoreOptions,
};
use acas_e2e::postgres::PgCluster;

const CALLS_PER_HOUR: usize = 600;

fn call(i: usize, at_ms: i64) -> ProviderCall {
    ProviderCall {
        id: format!("{at_ms:x}-bench-{i}"),
        at_ms,
        provider: "primary".to_owned(),
        model: "gpt-4o-mini".to_owned(),
        fingerprint: Some(format!("fp{}", i % 50)),
        category: Some("explain".to_owned()),
        status: CallStatus::Reserved,
        reserved_micros: 800,
        input_tokens: 0,
        output_tokens: 0,
        cached_input_tokens: 0,
        cost_micros: 0,
        latency_ms: None,
        error: None,
        user: Some("ada@example.com".to_owned()),
        agent: None,
    }
}

/// A workspace whose outbox holds `hours` of offline work.
fn offline_workspace(hours: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
    let start = acas::time::now_ms() - 3_600_000;
    for i in 0..hours * CALLS_PER_HOUR {
        let mut call = call(i, start + i as i64);
        let verdict = store.reserve_offline(call.clone(), 0, 0, Box::new(|_| Ok(()))).unwrap();
        assert!(verdict.is_ok());
        call.status = CallStatus::Succeeded;
        call.input_tokens = 900;
        call.output_tokens = 400;
        call.cost_micros = 375;
        call.latency_ms = Some(900);
        store.queue_for_shared(Queued::Call(call.clone())).unwrap();
        let entry = CacheEntry {
            key: format!("key-{i}"),
            at_ms: call.at_ms,
            fingerprint: "fp".to_owned(),
            model: call.model.clone(),
            provider: call.provider.clone(),
            reply: "x".repeat(2048),
        };
        store.queue_for_shared(Queued::Cache(entry)).unwrap();
    }
    (dir, store)
}

fn main() {
    let cluster = PgCluster::start();
    println!("| hours offline | AI calls | outbox rows | sync, run 1 | run 2 | run 3 | rows/s (best) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for hours in [1] {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..3 {
            let (_dir, store) = offline_workspace(hours);
            rows = store.link_state().unwrap().waiting;
            let shared = SharedStore {
                url: DatabaseUrl::parse(&cluster.database()).unwrap(),
                identity: Identity {
                    repository: "github.com/acme/bench".to_owned(),
                    user: "ada@example.com".to_owned(),
                },
            };
            let fallback = Fallback::new(shared, store);
            let started = Instant::now();
            let synced = fallback.sync(&mut |_| {}).unwrap();
            times.push(started.elapsed());
            assert!(synced.online && synced.sent == rows, "{synced:?}");
        }
        let best = times.iter().min().unwrap().as_secs_f64();
        let ms: Vec<String> = times.iter().map(|t| format!("{:.0} ms", t.as_secs_f64() * 1000.0)).collect();
        println!(
            "| {hours} | {} | {rows} | {} | {} | {} | {:.0} |",
            hours * CALLS_PER_HOUR,
            ms[0],
            ms[1],
            ms[2],
            rows as f64 / best
        );
    }
}
