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
