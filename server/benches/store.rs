//! Store throughput: activity inserts and diagnostics-set updates through `record` + `flush`,
//! on a real SQLite file in a temporary directory. Prints a markdown table.
//!
//! Run with `cargo bench -p acas --bench store`.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use acas::store::{
    ActivityQuery, DiagnosticRecord, FileDiagnostics, FileEvent, FileEventKind, Record, Store, StoreOptions,
};

const FILE_EVENTS: i64 = 1_000_000;
const BATCH: i64 = 1_000;
const FILES_WITH_DIAGNOSTICS: usize = 500;
const DIAGNOSTICS_PER_FILE: usize = 20;
const DIAGNOSTIC_ROUNDS: usize = 40;

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::open_workspace(dir.path(), StoreOptions::default()).expect("open store");
    let mut rows: Vec<[String; 2]> = Vec::new();

    let (inserts, elapsed) = file_events(&store);
    rows.push([
        format!("activity inserts ({FILE_EVENTS} file events, batches of {BATCH})"),
        format!("{:.0} events/s ({:.2} s)", inserts as f64 / secs(elapsed), secs(elapsed)),
    ]);
    let size_after_events = store.size_bytes();
    rows.push([
        "database size after the file events".to_owned(),
        format!(
            "{:.1} MiB ({:.0} bytes/event)",
            mib(size_after_events),
            size_after_events as f64 / FILE_EVENTS as f64
        ),
    ]);

    let started = Instant::now();
    let newest = store
        .activity(&ActivityQuery { since_ms: None, limit: 100, path_prefix: Some("src/dir7/".to_owned()) })
        .expect("activity query");
    assert_eq!(newest.len(), 100);
    rows.push([
        "activity query (newest 100 under a prefix)".to_owned(),
        format!("{:.2} ms", secs(started.elapsed()) * 1e3),
    ]);

    for (label, changing) in [("changed", true), ("unchanged", false)] {
        let (sets, elapsed) = diagnostic_sets(&store, changing);
        rows.push([
            format!(
                "diagnostics-set updates, {label} ({FILES_WITH_DIAGNOSTICS} files x \
                 {DIAGNOSTICS_PER_FILE} diagnostics)"
            ),
            format!(
                "{:.0} sets/s = {:.0} diagnostics/s",
                sets as f64 / secs(elapsed),
                (sets * DIAGNOSTICS_PER_FILE) as f64 / secs(elapsed)
            ),
        ]);
    }

    let started = Instant::now();
    let pruned = store.prune(i64::MAX).expect("prune");
    let elapsed = started.elapsed();
    rows.push([
        format!("prune + incremental vacuum ({pruned} rows)"),
        format!("{:.2} s, {:.1} MiB left", secs(elapsed), mib(store.size_bytes())),
    ]);
    store.close().expect("close store");

    println!("| measure | result |");
    println!("|---|---|");
    for [measure, result] in rows {
        println!("| {measure} | {result} |");
    }
}

/// Records `FILE_EVENTS` file events in batches and waits for them to be committed. Building
/// the records is part of the measure, as it is for the watcher.
fn file_events(store: &Store) -> (i64, Duration) {
    let started = Instant::now();
    for batch in 0..FILE_EVENTS / BATCH {
        let records = (0..BATCH)
            .map(|i| {
                let n = batch * BATCH + i;
                Record::File(FileEvent {
                    at_ms: 1_700_000_000_000 + n,
                    kind: FileEventKind::Modified,
                    path: format!("src/dir{}/file{n}.rs", n % 10),
                    to_path: None,
                    size: Some(4_096),
                    language: Some("rust".to_owned()),
                })
            })
            .collect();
        store.record(records);
    }
    store.flush().expect("flush file events");
    (FILE_EVENTS, started.elapsed())
}

/// Records `DIAGNOSTIC_ROUNDS` rounds of a diagnostics set for each file. With `changing`, one
/// diagnostic of each set is replaced every round (one resolves, one appears, the rest move
/// down a line); without, the last set of the changing run is recorded again (only `last_seen`
/// changes).
fn diagnostic_sets(store: &Store, changing: bool) -> (usize, Duration) {
    let started = Instant::now();
    let mut sets = 0;
    for round in 0..DIAGNOSTIC_ROUNDS {
        let records = (0..FILES_WITH_DIAGNOSTICS)
            .map(|file| {
                let shift = if changing { round } else { DIAGNOSTIC_ROUNDS - 1 };
                let diagnostics = (shift..shift + DIAGNOSTICS_PER_FILE)
                    .map(|d| DiagnosticRecord {
                        fingerprint: format!("fp-{file}-{d}"),
                        category: "type".to_owned(),
                        severity: "error".to_owned(),
                        message: format!("mismatched types: expected `u32`, found `i64` ({d})"),
                        source: "rustc".to_owned(),
                        symbol: Some(format!("crate::module{file}::function{d}")),
                        line: (d + shift) as u32,
                        character: 8,
                    })
                    .collect();
                Record::Diagnostics(FileDiagnostics {
                    at_ms: 1_800_000_000_000 + round as i64,
                    path: format!("src/diag/file{file}.rs"),
                    source: "rust-analyzer".to_owned(),
                    diagnostics,
                })
            })
            .collect::<Vec<_>>();
        sets += records.len();
        store.record(records);
    }
    store.flush().expect("flush diagnostics");
    (sets, started.elapsed())
}

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
