//! Tests on real SQLite files in temporary directories. Synchronisation is `flush`, never sleep.

use std::path::Path;
use std::time::Duration;

use expect_test::{Expect, expect};
use rusqlite::Connection;

use super::*;

fn options() -> StoreOptions {
    StoreOptions { busy_timeout: Duration::from_millis(100), ..StoreOptions::default() }
}

fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_workspace(dir.path(), options()).unwrap();
    (dir, store)
}

fn file(at_ms: i64, kind: FileEventKind, path: &str) -> Record {
    Record::File(FileEvent { at_ms, kind, path: path.to_owned(), to_path: None, size: None, language: None })
}

fn editor(at_ms: i64, kind: EditorEventKind, path: &str, version: i32) -> Record {
    Record::Editor(EditorEvent {
        at_ms,
        kind,
        path: path.to_owned(),
        version: Some(version),
        language: Some("rust".to_owned()),
    })
}

fn diagnostic(fingerprint: &str, line: u32) -> DiagnosticRecord {
    DiagnosticRecord {
        fingerprint: fingerprint.to_owned(),
        category: "syntax".to_owned(),
        severity: "error".to_owned(),
        message: format!("problem {fingerprint}"),
        source: "acas".to_owned(),
        symbol: Some("main".to_owned()),
        line,
        character: 4,
    }
}

fn diagnostics(at_ms: i64, path: &str, set: Vec<DiagnosticRecord>) -> Record {
    Record::Diagnostics(FileDiagnostics {
        at_ms,
        path: path.to_owned(),
        source: "acas-syntax".to_owned(),
        diagnostics: set,
    })
}

fn all_activity(store: &Store) -> Vec<ActivityRow> {
    store.activity(&ActivityQuery { since_ms: None, limit: usize::MAX, path_prefix: None }).unwrap()
}

fn render_activity(rows: &[ActivityRow]) -> String {
    rows.iter()
        .map(|r| {
            let detail = r.detail.as_deref().unwrap_or("-");
            format!("{} {} {} {} ({detail})\n", r.at_ms, r.kind.as_str(), r.action, r.path)
        })
        .collect()
}

fn check_activity(store: &Store, query: &ActivityQuery, expected: Expect) {
    expected.assert_eq(&render_activity(&store.activity(query).unwrap()));
}

fn problem(store: &Store, fingerprint: &str) -> ProblemRow {
    let all = store.problems(&ProblemQuery { include_resolved: true, ..ProblemQuery::default() }).unwrap();
    all.into_iter()
        .find(|p| p.fingerprint == fingerprint)
        .unwrap_or_else(|| panic!("no problem {fingerprint}"))
}

fn count(db_path: &Path, sql: &str) -> i64 {
    Connection::open(db_path).unwrap().query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn store_is_a_cheap_shareable_handle() {
    fn assert_handle<T: Clone + Send + Sync + 'static>() {}
    assert_handle::<Store>();
}

#[test]
fn migrates_an_empty_database_and_reopens_without_migrating_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_workspace(dir.path(), options()).unwrap();
    let db_path = dir.path().join(".acas/state.db");
    assert_eq!(store.path(), db_path);
    store.record(vec![file(1, FileEventKind::Created, "a.rs")]);
    store.close().unwrap();

    let conn = Connection::open(&db_path).unwrap();
    let pragma = |name: &str| -> String {
        conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, rusqlite::types::Value>(0))
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(pragma("user_version"), format!("Integer({})", schema::LATEST_VERSION));
    assert_eq!(pragma("journal_mode"), r#"Text("wal")"#);
    assert_eq!(pragma("auto_vacuum"), "Integer(2)", "2 is INCREMENTAL");
    drop(conn);

    let store = Store::open_workspace(dir.path(), options()).unwrap();
    store.record(vec![file(2, FileEventKind::Modified, "a.rs")]);
    store.flush().unwrap();
    assert_eq!(all_activity(&store).len(), 2, "data survives a reopen");
    store.close().unwrap();
    assert_eq!(count(&db_path, "PRAGMA user_version"), schema::LATEST_VERSION);
}

#[test]
fn gitignore_is_created_then_appended_never_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let ignore = dir.path().join(".acas/.gitignore");
    let reopen = || Store::open_workspace(dir.path(), options()).unwrap().close().unwrap();

    reopen();
    assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "state.db*\n");
    reopen();
    assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "state.db*\n");

    std::fs::write(&ignore, "cache/").unwrap();
    reopen();
    assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "cache/\nstate.db*\n");
    reopen();
    assert_eq!(std::fs::read_to_string(&ignore).unwrap(), "cache/\nstate.db*\n");
}

#[test]
fn activity_round_trips_with_since_limit_and_prefix() {
    let (_dir, store) = open_temp();
    store.record(vec![
        Record::File(FileEvent {
            at_ms: 100,
            kind: FileEventKind::Created,
            path: "src/main.rs".to_owned(),
            to_path: None,
            size: Some(120),
            language: Some("rust".to_owned()),
        }),
        Record::File(FileEvent {
            at_ms: 200,
            kind: FileEventKind::Renamed,
            path: "src/old.rs".to_owned(),
            to_path: Some("src/new.rs".to_owned()),
            size: None,
            language: None,
        }),
        file(300, FileEventKind::Deleted, "docs/notes.md"),
        editor(400, EditorEventKind::Open, "src/main.rs", 1),
        editor(500, EditorEventKind::Save, "src/main.rs", 2),
    ]);
    store.flush().unwrap();

    let everything = ActivityQuery { since_ms: None, limit: 100, path_prefix: None };
    check_activity(
        &store,
        &everything,
        expect![[r#"
            500 editor save src/main.rs (version 2, rust)
            400 editor open src/main.rs (version 1, rust)
            300 file deleted docs/notes.md (-)
            200 file renamed src/old.rs (to src/new.rs)
            100 file created src/main.rs (120 bytes, rust)
        "#]],
    );
    check_activity(
        &store,
        &ActivityQuery { since_ms: Some(200), limit: 2, ..everything.clone() },
        expect![[r#"
            500 editor save src/main.rs (version 2, rust)
            400 editor open src/main.rs (version 1, rust)
        "#]],
    );
    check_activity(
        &store,
        &ActivityQuery { since_ms: Some(150), limit: 10, path_prefix: Some("src/".to_owned()) },
        expect![[r#"
            500 editor save src/main.rs (version 2, rust)
            400 editor open src/main.rs (version 1, rust)
            200 file renamed src/old.rs (to src/new.rs)
        "#]],
    );
    check_activity(&store, &ActivityQuery { limit: 0, ..everything }, expect![""]);
}

#[test]
fn consecutive_editor_changes_of_a_path_in_one_batch_are_coalesced() {
    let (_dir, store) = open_temp();
    store.record(vec![
        editor(1, EditorEventKind::Open, "a.rs", 1),
        editor(2, EditorEventKind::Change, "a.rs", 2),
        editor(3, EditorEventKind::Change, "b.rs", 7),
        editor(4, EditorEventKind::Change, "a.rs", 3),
        editor(5, EditorEventKind::Change, "a.rs", 4),
        editor(6, EditorEventKind::Save, "a.rs", 4),
        editor(7, EditorEventKind::Change, "a.rs", 5),
    ]);
    store.flush().unwrap();
    // A later batch starts a new row even for the same path.
    store.record(vec![editor(8, EditorEventKind::Change, "a.rs", 6)]);
    store.flush().unwrap();
    check_activity(
        &store,
        &ActivityQuery { since_ms: None, limit: 100, path_prefix: None },
        expect![[r#"
            8 editor change a.rs (version 6, rust)
            7 editor change a.rs (version 5, rust)
            6 editor save a.rs (version 4, rust)
            5 editor change a.rs (version 4, 3 changes, rust)
            3 editor change b.rs (version 7, rust)
            1 editor open a.rs (version 1, rust)
        "#]],
    );
}

#[test]
fn a_diagnostic_appears_persists_resolves_and_reappears() {
    let (_dir, store) = open_temp();
    store.record(vec![diagnostics(100, "a.rs", vec![diagnostic("fp1", 3)])]);
    store.record(vec![diagnostics(200, "a.rs", vec![diagnostic("fp1", 5)])]);
    store.flush().unwrap();
    let open = problem(&store, "fp1");
    assert_eq!(
        (open.occurrences, open.first_seen_ms, open.last_seen_ms, open.resolved_at_ms),
        (1, 100, 200, None),
        "moving to another line is the same occurrence"
    );
    assert_eq!(open.locations, vec![("a.rs".to_owned(), 5, 4)]);

    store.record(vec![diagnostics(300, "a.rs", vec![])]);
    store.flush().unwrap();
    let resolved = problem(&store, "fp1");
    assert_eq!(resolved.resolved_at_ms, Some(300));
    assert_eq!(resolved.resolved_at_ms.unwrap() - resolved.appeared_ms, 200);
    assert!(resolved.locations.is_empty());
    assert!(
        store.problems(&ProblemQuery::default()).unwrap().is_empty(),
        "resolved problems are hidden unless asked for"
    );

    store.record(vec![diagnostics(400, "a.rs", vec![diagnostic("fp1", 9)])]);
    store.flush().unwrap();
    let again = problem(&store, "fp1");
    assert_eq!((again.occurrences, again.first_seen_ms, again.last_seen_ms), (2, 100, 400));
    assert_eq!((again.appeared_ms, again.resolved_at_ms), (400, None));

    let diagnostic_rows = ActivityQuery { since_ms: None, limit: 10, path_prefix: None };
    check_activity(
        &store,
        &diagnostic_rows,
        expect![[r#"
            400 diagnostic appeared a.rs (syntax: problem fp1)
            300 diagnostic resolved a.rs (syntax: problem fp1)
            100 diagnostic appeared a.rs (syntax: problem fp1)
        "#]],
    );
}

#[test]
fn recording_the_same_set_twice_changes_only_last_seen() {
    let (_dir, store) = open_temp();
    let set = vec![diagnostic("fp1", 1), diagnostic("fp2", 2)];
    store.record(vec![diagnostics(100, "a.rs", set.clone())]);
    store.flush().unwrap();
    let before = (problem(&store, "fp1"), all_activity(&store));
    store.record(vec![diagnostics(200, "a.rs", set)]);
    store.flush().unwrap();
    let after = (problem(&store, "fp1"), all_activity(&store));
    assert_eq!(after.0, ProblemRow { last_seen_ms: 200, ..before.0 });
    assert_eq!(after.1, before.1, "no new activity rows");
}

#[test]
fn a_fingerprint_in_two_files_resolves_only_when_gone_from_both() {
    let (_dir, store) = open_temp();
    store.record(vec![
        diagnostics(100, "a.rs", vec![diagnostic("shared", 1)]),
        diagnostics(110, "b.rs", vec![diagnostic("shared", 2)]),
    ]);
    store.flush().unwrap();
    let both = problem(&store, "shared");
    assert_eq!(both.occurrences, 2, "appearing in a second file is an appearance");
    assert_eq!(both.locations, vec![("a.rs".to_owned(), 1, 4), ("b.rs".to_owned(), 2, 4)]);

    store.record(vec![diagnostics(200, "a.rs", vec![])]);
    store.flush().unwrap();
    let one = problem(&store, "shared");
    assert_eq!(one.resolved_at_ms, None);
    assert_eq!(one.locations, vec![("b.rs".to_owned(), 2, 4)]);

    store.record(vec![diagnostics(300, "b.rs", vec![])]);
    store.flush().unwrap();
    assert_eq!(problem(&store, "shared").resolved_at_ms, Some(300));
}

#[test]
fn deleting_a_file_resolves_its_diagnostics() {
    let (_dir, store) = open_temp();
    store.record(vec![
        diagnostics(100, "a.rs", vec![diagnostic("fp1", 1)]),
        file(200, FileEventKind::Deleted, "a.rs"),
    ]);
    store.flush().unwrap();
    assert_eq!(problem(&store, "fp1").resolved_at_ms, Some(200));
}

#[test]
fn problems_filter_by_category_and_path() {
    let (_dir, store) = open_temp();
    let lint = DiagnosticRecord { category: "lint".to_owned(), ..diagnostic("unused", 7) };
    store.record(vec![
        diagnostics(100, "a.rs", vec![diagnostic("fp1", 1), lint]),
        diagnostics(100, "b.rs", vec![diagnostic("fp2", 1)]),
        diagnostics(200, "c.rs", vec![diagnostic("gone", 1)]),
        diagnostics(300, "c.rs", vec![]),
    ]);
    store.flush().unwrap();
    let fingerprints = |query: ProblemQuery| -> Vec<String> {
        let mut fps: Vec<String> =
            store.problems(&query).unwrap().into_iter().map(|p| p.fingerprint).collect();
        fps.sort();
        fps
    };
    assert_eq!(
        fingerprints(ProblemQuery { category: Some("lint".to_owned()), ..ProblemQuery::default() }),
        ["unused"]
    );
    assert_eq!(
        fingerprints(ProblemQuery { path: Some("a.rs".to_owned()), ..ProblemQuery::default() }),
        ["fp1", "unused"]
    );
    assert_eq!(
        fingerprints(ProblemQuery { path: Some("c.rs".to_owned()), ..ProblemQuery::default() }),
        Vec::<String>::new()
    );
    assert_eq!(
        fingerprints(ProblemQuery {
            path: Some("c.rs".to_owned()),
            include_resolved: true,
            ..ProblemQuery::default()
        }),
        ["gone"]
    );
}

#[test]
fn a_hundred_thousand_file_events_in_batches_are_all_stored() {
    let (dir, store) = open_temp();
    for batch in 0..100 {
        let records = (0..1_000)
            .map(|i| {
                let n = batch * 1_000 + i;
                file(n, FileEventKind::Modified, &format!("src/file{n}.rs"))
            })
            .collect();
        store.record(records);
    }
    store.flush().unwrap();
    let db_path = dir.path().join(".acas/state.db");
    assert_eq!(count(&db_path, "SELECT count(*) FROM activity"), 100_000);
    assert_eq!(count(&db_path, "SELECT count(DISTINCT path) FROM activity"), 100_000);
}

#[test]
fn several_threads_record_concurrently_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_workspace(dir.path(), StoreOptions { queue_batches: 2, ..options() }).unwrap();
    std::thread::scope(|scope| {
        for thread in 0..8 {
            let store = store.clone();
            scope.spawn(move || {
                for batch in 0..50 {
                    let records = (0..100)
                        .map(|i| {
                            let path = format!("t{thread}/b{batch}/f{i}.rs");
                            file(i, FileEventKind::Created, &path)
                        })
                        .collect();
                    store.record(records);
                }
            });
        }
    });
    store.flush().unwrap();
    let db_path = store.path().to_owned();
    store.close().unwrap();
    assert_eq!(count(&db_path, "SELECT count(DISTINCT path) FROM activity"), 8 * 50 * 100);
}

#[test]
fn dropping_the_last_handle_commits_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_workspace(dir.path(), options()).unwrap();
    let db_path = store.path().to_owned();
    let other = store.clone();
    store.record(vec![file(1, FileEventKind::Created, "a.rs")]);
    drop(store);
    other.record(vec![file(2, FileEventKind::Created, "b.rs")]);
    drop(other);
    assert_eq!(count(&db_path, "SELECT count(*) FROM activity"), 2);
}

#[test]
fn prune_deletes_only_old_rows_and_shrinks_the_file() {
    let (_dir, store) = open_temp();
    let day_ms = 24 * 60 * 60 * 1000;
    let now_ms = 100 * day_ms;
    let padding = "x".repeat(200);
    for batch in 0..40 {
        let old = (0..1_000)
            .map(|i| file(batch * 1_000 + i, FileEventKind::Modified, &format!("{padding}/{i}")))
            .collect();
        store.record(old);
    }
    store.record(vec![
        file(now_ms - 29 * day_ms, FileEventKind::Created, "recent.rs"),
        file(now_ms - 31 * day_ms, FileEventKind::Created, "stale.rs"),
    ]);
    store.flush().unwrap();
    let before = store.size_bytes();

    assert_eq!(store.prune(now_ms).unwrap(), 40_001);
    assert_eq!(count(store.path(), "PRAGMA freelist_count"), 0, "freed pages are vacuumed");
    let after = store.size_bytes();
    assert!(after < before, "{after} bytes after pruning, {before} before");
    check_activity(
        &store,
        &ActivityQuery { since_ms: None, limit: 10, path_prefix: None },
        expect![[r#"
            6134400000 file created recent.rs (-)
        "#]],
    );
    assert_eq!(store.prune(now_ms).unwrap(), 0, "nothing left to prune");
    assert!(store.size_bytes() <= after);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let acas = dir.path().join(".acas");
    std::fs::create_dir_all(&acas).unwrap();
    let db_path = acas.join("state.db");
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&db_path, &garbage).unwrap();

    let err = Store::open_workspace(dir.path(), options()).err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    let message = err.to_string();
    assert!(message.contains(&db_path.display().to_string()), "{message}");
    assert!(message.contains("move it aside"), "{message}");
    assert!(!message.ends_with('.'), "{message}");
    assert_eq!(std::fs::read(&db_path).unwrap(), garbage);
    assert!(!acas.join("state.db-wal").exists());
}

#[test]
fn a_damaged_database_is_refused_and_left_untouched() {
    let (dir, store) = open_temp();
    store.record((0..2_000).map(|i| file(i, FileEventKind::Created, &format!("f{i}"))).collect());
    store.close().unwrap();
    let db_path = dir.path().join(".acas/state.db");
    let mut bytes = std::fs::read(&db_path).unwrap();
    assert!(bytes.len() > 16 * 4096);
    for byte in &mut bytes[4096..] {
        *byte = 0x5a;
    }
    std::fs::write(&db_path, &bytes).unwrap();

    let err = Store::open(&db_path, options()).err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    assert_eq!(std::fs::read(&db_path).unwrap(), bytes);
    let err = Store::check_integrity(&db_path, &options()).err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    assert_eq!(std::fs::read(&db_path).unwrap(), bytes);
}

/// Damage past the schema: opening reads only the first pages, so it opens; the integrity check
/// (run after opening on a thread of its own, or by `acas check-state`) and every read of a
/// damaged page give the damaged-database error with its way out.
#[test]
fn damage_past_the_schema_is_found_by_the_integrity_check_and_by_reads() {
    let (dir, store) = open_temp();
    store.record((0..2_000).map(|i| file(i, FileEventKind::Created, &format!("f{i}"))).collect());
    store.close().unwrap();
    let db_path = dir.path().join(".acas/state.db");
    // Every row in the database file itself, not in the write-ahead log: a close that another
    // holder of the store (the integrity check started at open) outlives leaves the log.
    rusqlite::Connection::open(&db_path).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    let mut bytes = std::fs::read(&db_path).unwrap();
    // Every page but the schema's (the first, and those holding `CREATE` statements).
    for page in bytes.chunks_mut(4096).skip(1) {
        if !page.windows(6).any(|w| w == b"CREATE") {
            page.fill(0x5a);
        }
    }
    std::fs::write(&db_path, &bytes).unwrap();

    let err = Store::check_integrity(&db_path, &options()).err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("move it aside"), "{err}");
    assert_eq!(std::fs::read(&db_path).unwrap(), bytes);

    let store = Store::open(&db_path, options()).unwrap();
    let err = store
        .activity(&ActivityQuery { since_ms: None, limit: usize::MAX, path_prefix: None })
        .err()
        .unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains("move it aside"), "{err}");
    store.close().unwrap();
    assert_eq!(std::fs::read(&db_path).unwrap(), bytes);
}

#[test]
fn a_database_from_a_newer_acas_is_refused() {
    let (dir, store) = open_temp();
    store.close().unwrap();
    let db_path = dir.path().join(".acas/state.db");
    let newer = schema::LATEST_VERSION + 1;
    Connection::open(&db_path).unwrap().pragma_update(None, "user_version", newer).unwrap();

    let err = Store::open(&db_path, options()).err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::NewerSchema, "{err}");
    assert!(err.to_string().contains("upgrade ACAS"), "{err}");
    assert_eq!(count(&db_path, "PRAGMA user_version"), newer);
}

#[test]
fn an_exclusive_lock_held_elsewhere_gives_locked() {
    let (dir, store) = open_temp();
    store.close().unwrap();
    let db_path = dir.path().join(".acas/state.db");
    let other = Connection::open(&db_path).unwrap();
    other.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;").unwrap();

    let err = Store::open(&db_path, options()).err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Locked, "{err}");
    assert!(err.to_string().contains("locked"), "{err}");

    other.execute_batch("COMMIT").unwrap();
    drop(other);
    Store::open(&db_path, options()).unwrap().close().unwrap();
}

#[test]
fn a_failed_batch_is_retried_then_reported_and_the_writer_keeps_going() {
    let (dir, store) = open_temp();
    let db_path = dir.path().join(".acas/state.db");
    let other = Connection::open(&db_path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    store.record(vec![file(1, FileEventKind::Created, "lost.rs")]);
    let err = store.flush().err().unwrap();
    assert_eq!(err.kind(), StoreErrorKind::Locked, "{err}");
    assert!(err.to_string().contains("dropped"), "{err}");

    other.execute_batch("ROLLBACK").unwrap();
    store.record(vec![file(2, FileEventKind::Created, "kept.rs")]);
    store.flush().unwrap();
    check_activity(
        &store,
        &ActivityQuery { since_ms: None, limit: 10, path_prefix: None },
        expect![[r#"
            2 file created kept.rs (-)
        "#]],
    );
}

fn call(id: &str, at_ms: i64, provider: &str, status: CallStatus) -> ProviderCall {
    ProviderCall {
        id: id.to_owned(),
        at_ms,
        provider: provider.to_owned(),
        model: "model-a".to_owned(),
        fingerprint: Some("fp1".to_owned()),
        category: Some("type".to_owned()),
        status,
        reserved_micros: 0,
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

fn reserved(id: &str, at_ms: i64, provider: &str, reserved_micros: u64) -> Record {
    Record::ProviderCall(ProviderCall { reserved_micros, ..call(id, at_ms, provider, CallStatus::Reserved) })
}

fn ended(id: &str, at_ms: i64, provider: &str, status: CallStatus, cost_micros: u64) -> Record {
    Record::ProviderCall(ProviderCall {
        reserved_micros: 5_000,
        input_tokens: 100,
        output_tokens: 10,
        cost_micros,
        latency_ms: Some(800),
        ..call(id, at_ms, provider, status)
    })
}

#[test]
fn a_reserved_call_is_completed_in_the_same_row() {
    let (dir, store) = open_temp();
    store.record(vec![reserved("r1", 1_000, "anthropic", 5_000)]);
    store.flush().unwrap();
    store.record(vec![Record::ProviderCall(ProviderCall {
        reserved_micros: 5_000,
        input_tokens: 1200,
        output_tokens: 300,
        cached_input_tokens: 800,
        cost_micros: 1234,
        latency_ms: Some(950),
        ..call("r1", 2_000, "anthropic", CallStatus::Succeeded)
    })]);
    // A late `Reserved` for a call that has ended does not undo it.
    store.record(vec![reserved("r1", 3_000, "anthropic", 5_000)]);
    store.flush().unwrap();

    let db_path = dir.path().join(".acas/state.db");
    assert_eq!(count(&db_path, "SELECT count(*) FROM provider_call"), 1);
    let row: (i64, String, i64, i64, i64, i64, i64) = Connection::open(&db_path)
        .unwrap()
        .query_row(
            "SELECT at_ms, status, input_tokens, output_tokens, cached_input_tokens, cost_micros,
                    latency_ms FROM provider_call WHERE id = 'r1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (1_000, "succeeded".to_owned(), 1200, 300, 800, 1234, 950),
        "at_ms is the first record's"
    );
    assert_eq!(store.spend_since(0, None).unwrap(), 1234);
}

#[test]
fn spend_counts_reservations_and_actual_costs_but_not_refused_or_cached() {
    let (_dir, store) = open_temp();
    store.record(vec![
        reserved("a1", 1_000, "anthropic", 5_000),
        ended("a1", 1_500, "anthropic", CallStatus::Succeeded, 1234),
        reserved("a2", 2_000, "anthropic", 7_000), // still in flight
        reserved("a3", 2_100, "anthropic", 3_000),
        ended("a3", 2_200, "anthropic", CallStatus::Failed, 17),
        reserved("a4", 2_300, "anthropic", 3_000),
        ended("a4", 2_400, "anthropic", CallStatus::Cancelled, 0),
        reserved("o1", 3_000, "openai", 4_000),
        ended("o1", 3_500, "openai", CallStatus::Succeeded, 2_001),
        ended("o2", 3_600, "openai", CallStatus::Refused, 0),
        ended("o3", 3_700, "openai", CallStatus::Cached, 0),
        // Even with a cost on the row, a refused or cached call spends nothing.
        ended("o4", 3_800, "openai", CallStatus::Refused, 999),
        ended("o5", 3_900, "openai", CallStatus::Cached, 999),
        reserved("old", 10, "anthropic", 1_000_000),
    ]);
    // No flush: spend_since sees what was recorded before it.
    assert_eq!(store.spend_since(1_000, Some("anthropic")).unwrap(), 1234 + 7_000 + 17);
    assert_eq!(store.spend_since(1_000, Some("openai")).unwrap(), 2_001);
    assert_eq!(store.spend_since(1_000, None).unwrap(), 1234 + 7_000 + 17 + 2_001);
    assert_eq!(store.spend_since(0, None).unwrap(), 1_000_000 + 1234 + 7_000 + 17 + 2_001);
    assert_eq!(store.spend_since(2_000, None).unwrap(), 7_000 + 17 + 2_001, "since is inclusive");
    assert_eq!(store.spend_since(1_000, Some("gemini")).unwrap(), 0);
    assert_eq!(store.spend_since(10_000, None).unwrap(), 0);
}

#[test]
fn spend_since_leaves_a_writer_error_for_flush() {
    let (dir, store) = open_temp();
    let other = Connection::open(dir.path().join(".acas/state.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    store.record(vec![file(1, FileEventKind::Created, "lost.rs")]);
    let spent = store.spend_since(0, None);
    other.execute_batch("ROLLBACK").unwrap();
    assert!(spent.is_ok(), "{spent:?}");
    assert_eq!(store.flush().err().map(|e| e.kind()), Some(StoreErrorKind::Locked));
}

fn render_costs(rows: &[CostRow]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {} {:?}: calls {} cached {} refused {} tokens {}/{} cost {}\n",
                r.day,
                r.provider,
                r.model,
                r.category,
                r.calls,
                r.cached,
                r.refused,
                r.input_tokens,
                r.output_tokens,
                r.cost_micros
            )
        })
        .collect()
}

#[test]
fn cost_report_groups_by_day_provider_model_and_category() {
    let (_dir, store) = open_temp();
    let day_ms = 24 * 60 * 60 * 1000;
    let jan_1 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
    let with = |id: &str, at_ms: i64, model: &str, category: Option<&str>, status, cost_micros| {
        Record::ProviderCall(ProviderCall {
            model: model.to_owned(),
            category: category.map(str::to_owned),
            input_tokens: 1000,
            output_tokens: 100,
            cost_micros,
            ..call(id, at_ms, "anthropic", status)
        })
    };
    store.record(vec![
        with("1", jan_1, "sonnet", Some("type"), CallStatus::Succeeded, 1234),
        with("2", jan_1 + day_ms - 1, "sonnet", Some("type"), CallStatus::Succeeded, 1234),
        with("3", jan_1 + 5, "sonnet", Some("type"), CallStatus::Cached, 0),
        with("4", jan_1 + 6, "sonnet", Some("type"), CallStatus::Refused, 0),
        with("5", jan_1 + 7, "sonnet", None, CallStatus::Failed, 3),
        with("6", jan_1 + 8, "haiku", Some("type"), CallStatus::Succeeded, 101),
        with("7", jan_1 + day_ms, "sonnet", Some("type"), CallStatus::Succeeded, 1234),
        Record::ProviderCall(ProviderCall {
            reserved_micros: 9_999,
            ..call("8", jan_1 + day_ms + 1, "openai", CallStatus::Reserved)
        }),
        with("9", jan_1 - 1, "sonnet", Some("type"), CallStatus::Succeeded, 1_000_000),
    ]);
    store.flush().unwrap();
    let report = store.cost_report(jan_1).unwrap();
    expect![[r#"
        2024-01-01 anthropic haiku "type": calls 1 cached 0 refused 0 tokens 1000/100 cost 101
        2024-01-01 anthropic sonnet "": calls 1 cached 0 refused 0 tokens 1000/100 cost 3
        2024-01-01 anthropic sonnet "type": calls 2 cached 1 refused 1 tokens 2000/200 cost 2468
        2024-01-02 anthropic sonnet "type": calls 1 cached 0 refused 0 tokens 1000/100 cost 1234
        2024-01-02 openai model-a "type": calls 1 cached 0 refused 0 tokens 0/0 cost 0
    "#]]
    .assert_eq(&render_costs(&report));
    assert_eq!(report.iter().map(|r| r.cost_micros).sum::<u64>(), 1234 * 3 + 3 + 101);
    assert!(store.cost_report(jan_1 + 2 * day_ms).unwrap().is_empty());
}

#[test]
fn cache_entries_round_trip_miss_and_expire_with_the_retention() {
    let (_dir, store) = open_temp();
    let day_ms = 24 * 60 * 60 * 1000;
    let now_ms = 100 * day_ms;
    let entry = |key: &str, at_ms: i64, reply: &str| CacheEntry {
        key: key.to_owned(),
        at_ms,
        fingerprint: "fp1".to_owned(),
        model: "sonnet".to_owned(),
        provider: "anthropic".to_owned(),
        reply: reply.to_owned(),
    };
    store.record(vec![
        Record::CacheEntry(entry("abc123", now_ms - day_ms, r#"{"text":"first"}"#)),
        Record::CacheEntry(entry("abc123", now_ms, r#"{"text":"é \"quoted\""}"#)),
        Record::CacheEntry(entry("stale", now_ms - 31 * day_ms, "{}")),
        reserved("old-call", 1, "anthropic", 42),
    ]);
    store.flush().unwrap();
    assert_eq!(
        store.cache_get("abc123").unwrap(),
        Some(entry("abc123", now_ms, r#"{"text":"é \"quoted\""}"#))
    );
    assert_eq!(store.cache_get("missing").unwrap(), None);
    assert!(store.cache_get("stale").unwrap().is_some());

    store.prune(now_ms).unwrap();
    assert_eq!(store.cache_get("stale").unwrap(), None, "older than the retention");
    assert!(store.cache_get("abc123").unwrap().is_some());
    assert_eq!(store.spend_since(0, None).unwrap(), 42, "provider calls are never pruned");
}

fn fix(fix_id: &str, at_ms: i64, outcome: Outcome) -> FixOutcome {
    FixOutcome {
        fix_id: fix_id.to_owned(),
        at_ms,
        fingerprint: "fp1".to_owned(),
        category: "type".to_owned(),
        provider: "anthropic".to_owned(),
        model: "sonnet".to_owned(),
        outcome,
        description: Some(format!("fix {fix_id}")),
        old: Some(format!("old {fix_id}")),
        new: Some(format!("new {fix_id}")),
        verified: Some("parses".to_owned()),
    }
}

#[test]
fn fix_stats_count_distinct_fixes_per_provider_model_and_category() {
    let (_dir, store) = open_temp();
    let other_model = |f: FixOutcome| FixOutcome { model: "haiku".to_owned(), ..f };
    let other_category = |f: FixOutcome| FixOutcome { category: "lint".to_owned(), ..f };
    store.record(
        [
            fix("a", 1, Outcome::Offered),
            fix("a", 2, Outcome::Applied),
            fix("a", 3, Outcome::Resolved),
            fix("b", 4, Outcome::Offered),
            fix("b", 5, Outcome::Applied),
            fix("b", 6, Outcome::Reverted),
            fix("c", 7, Outcome::Offered),
            fix("c", 8, Outcome::Dismissed),
            fix("c", 9, Outcome::Offered), // offered again: still one fix
            other_model(fix("d", 10, Outcome::Offered)),
            other_category(fix("e", 11, Outcome::Offered)),
            other_category(fix("e", 12, Outcome::Applied)),
        ]
        .into_iter()
        .map(Record::FixOutcome)
        .collect(),
    );
    store.flush().unwrap();
    let rendered: String = store
        .fix_stats()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}: offered {} applied {} resolved {} reverted {} dismissed {}\n",
                r.provider, r.model, r.category, r.offered, r.applied, r.resolved, r.reverted, r.dismissed
            )
        })
        .collect();
    expect![[r#"
        anthropic haiku type: offered 1 applied 0 resolved 0 reverted 0 dismissed 0
        anthropic sonnet lint: offered 1 applied 1 resolved 0 reverted 0 dismissed 0
        anthropic sonnet type: offered 3 applied 2 resolved 1 reverted 1 dismissed 1
    "#]]
    .assert_eq(&rendered);
}

#[test]
fn past_fixes_are_accepted_fixes_newest_first() {
    let (_dir, store) = open_temp();
    let no_edit = |f: FixOutcome| FixOutcome { old: None, new: None, ..f };
    let elsewhere = |f: FixOutcome| FixOutcome { fingerprint: "fp2".to_owned(), ..f };
    store.record(
        [
            fix("a", 10, Outcome::Offered),
            fix("a", 11, Outcome::Applied),
            no_edit(fix("a", 12, Outcome::Resolved)), // keeps the applied event with the edit
            fix("b", 20, Outcome::Applied),
            fix("b", 21, Outcome::Reverted),
            fix("c", 30, Outcome::Offered),
            fix("c", 31, Outcome::Dismissed),
            fix("d", 40, Outcome::Applied),
            fix("d", 41, Outcome::Resolved),
            no_edit(fix("e", 50, Outcome::Applied)),
            elsewhere(fix("f", 60, Outcome::Applied)),
            fix("g", 5, Outcome::Applied),
        ]
        .into_iter()
        .map(Record::FixOutcome)
        .collect(),
    );
    store.flush().unwrap();
    let summary = |limit| -> Vec<(String, i64, Outcome)> {
        store.past_fixes("fp1", limit).unwrap().into_iter().map(|f| (f.fix_id, f.at_ms, f.outcome)).collect()
    };
    assert_eq!(
        summary(10),
        [
            ("d".to_owned(), 41, Outcome::Resolved),
            ("a".to_owned(), 11, Outcome::Applied),
            ("g".to_owned(), 5, Outcome::Applied)
        ]
    );
    assert_eq!(summary(2).len(), 2);
    assert_eq!(store.past_fixes("fp1", 1).unwrap(), vec![fix("d", 41, Outcome::Resolved)]);
    assert!(store.past_fixes("unknown", 10).unwrap().is_empty());
}

#[test]
fn a_version_1_database_is_migrated_with_its_rows_intact() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("state.db");
    {
        let conn = Connection::open(&db_path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO activity (at_ms, kind, action, path) VALUES (7, 'file', 'created', 'kept.rs')",
            [],
        )
        .unwrap();
    }

    let store = Store::open(&db_path, options()).unwrap();
    check_activity(
        &store,
        &ActivityQuery { since_ms: None, limit: 10, path_prefix: None },
        expect![[r#"
            7 file created kept.rs (-)
        "#]],
    );
    store.record(vec![reserved("r1", 8, "anthropic", 1234)]);
    assert_eq!(store.spend_since(0, None).unwrap(), 1234);
    store.close().unwrap();
    assert_eq!(count(&db_path, "PRAGMA user_version"), schema::LATEST_VERSION);
    // Every later migration ran, the symbol index's table among them.
    assert_eq!(count(&db_path, "SELECT count(*) FROM sqlite_master WHERE name = 'symbol_file'"), 1);
}

#[test]
fn file_events_of_a_holder_that_lost_the_lease_are_not_recorded() {
    let (_dir, store) = open_temp();
    let expiry = Duration::from_millis(1000);
    let pid = std::process::id();
    let holder = |id: &str| Holder { id: id.to_owned(), pid, host: "here".to_owned() };
    let mut paused = Lease::open(store.path(), holder("paused"), expiry).unwrap();
    let mut other = Lease::open(store.path(), holder("other"), expiry).unwrap();
    let t0 = std::time::Instant::now();
    assert!(paused.try_take_at(1_000, t0).unwrap());
    let stale = paused.fence().unwrap();
    // The holder stops renewing (paused); the other process takes over after the expiry.
    assert!(!other.try_take_at(1_100, t0).unwrap());
    assert!(other.try_take_at(2_200, t0 + Duration::from_millis(1_100)).unwrap());
    let current = other.fence().unwrap();

    let event = |path: &str| FileEvent {
        at_ms: 3_000,
        kind: FileEventKind::Created,
        path: path.to_owned(),
        to_path: None,
        size: None,
        language: None,
    };
    store.record(vec![
        Record::FencedFile { fence: stale.clone(), event: event("src/stale.txt") },
        Record::FencedFile { fence: current, event: event("src/current.txt") },
    ]);
    store.flush().unwrap();
    let paths: Vec<String> = all_activity(&store).into_iter().map(|row| row.path).collect();
    assert_eq!(paths, ["src/current.txt"]);

    // Taking the lease again is a new tenure: the old token stays refused.
    other.release().unwrap();
    assert!(paused.try_take_at(4_000, t0 + Duration::from_millis(1_200)).unwrap());
    assert_ne!(paused.fence().unwrap(), stale);
    store.record(vec![Record::FencedFile { fence: stale, event: event("src/stale-again.txt") }]);
    store.flush().unwrap();
    assert_eq!(all_activity(&store).len(), 1);
}

#[test]
fn escalations_and_fix_outcomes_are_audit_records() {
    let (dir, store) = open_temp();
    store.record(vec![reserved("c1", 10, "anthropic", 500)]);
    store.record(vec![Record::ProviderCall(ProviderCall {
        cost_micros: 400,
        ..call("c1", 10, "anthropic", CallStatus::Succeeded)
    })]);
    // A late `reserved` after the call ended changes nothing, so it records nothing.
    store.record(vec![reserved("c1", 10, "anthropic", 500)]);
    store.record(vec![Record::FixOutcome(FixOutcome {
        fix_id: "f1".to_owned(),
        at_ms: 20,
        fingerprint: "fp".to_owned(),
        category: "syntax".to_owned(),
        provider: "anthropic".to_owned(),
        model: "m".to_owned(),
        outcome: Outcome::Applied,
        description: None,
        old: None,
        new: None,
        verified: Some("parses".to_owned()),
    })]);
    store.flush().unwrap();
    let mut log = AuditLog::open(dir.path(), Duration::from_secs(5)).unwrap();
    let records = log.records(&audit::AuditQuery::default()).unwrap();
    let summary: Vec<(String, String)> =
        records.iter().map(|r| (r.kind.clone(), r.subject.clone())).collect();
    assert_eq!(
        summary,
        [
            ("escalation".to_owned(), "call c1".to_owned()),
            ("escalation".to_owned(), "call c1".to_owned()),
            ("fix_outcome".to_owned(), "fix f1".to_owned()),
        ]
    );
    assert!(records[1].detail.contains("\"status\":\"succeeded\""), "{}", records[1].detail);
    assert_eq!(log.verify(None).unwrap().0.first_break, None);
}

#[test]
fn the_symbols_of_texts_keep_the_newest_few() {
    let (dir, store) = open_temp();
    let text = |i: i64| SymbolText {
        hash: format!("{i:064x}"),
        language: "rust".to_owned(),
        size: 10,
        format: 1,
        entries: r#"{"definitions": [], "uses": []}"#.to_owned(),
        stored_ms: i,
    };
    for batch in (0..types::SYMBOL_TEXTS_KEPT + 10).collect::<Vec<_>>().chunks(7) {
        store.record(batch.iter().map(|&i| Record::SymbolText(text(i))).collect());
    }
    store.flush().unwrap();
    let newest = types::SYMBOL_TEXTS_KEPT + 9;
    assert_eq!(store.symbol_text(&format!("{newest:064x}")).unwrap(), Some(text(newest)));
    assert_eq!(store.symbol_text(&format!("{:064x}", 9)).unwrap(), None);
    store.close().unwrap();
    let db_path = dir.path().join(".acas/state.db");
    assert_eq!(count(&db_path, "SELECT count(*) FROM symbol_text"), types::SYMBOL_TEXTS_KEPT);
    assert_eq!(count(&db_path, "SELECT min(stored_ms) FROM symbol_text"), 10);
}
