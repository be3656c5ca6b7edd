//! Every command that reads or writes `.acas/state.db` when the state is not usable: it says
//! what is wrong and what to do, and exits 2.

use std::path::Path;

use acas_e2e::run_acas;

/// Commands that open the state of the workspace in the working directory.
const COMMANDS: &[&[&str]] = &[
    &["stats", "."],
    &["cost", "."],
    &["activity", "."],
    &["explain", "broken.rs:1"],
    &["explain", "broken.rs:1", "--dry-run"],
    &["watch", "."],
    &["plan", "tidy up", "--dry-run"],
    &["workflow", "history", "--workspace", "."],
    &["workflow", "status", "1", "--workspace", "."],
];

/// Commands that read `.acas/workflows` but not the database: a `.acas` of the wrong kind must
/// not read as "no workflows".
const WORKFLOW_FILE_COMMANDS: &[&[&str]] = &[
    &["workflow", "list", "."],
    &["workflow", "validate", "."],
    &["workflow", "run", "minimal", "--workspace", "."],
];

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.rs"), "fn f( {}\n").unwrap();
    dir
}

fn assert_refused(dir: &Path, expected: &str) {
    assert_refused_by(COMMANDS, dir, expected);
}

fn assert_refused_by(commands: &[&[&str]], dir: &Path, expected: &str) {
    for args in commands {
        let (code, stdout, stderr) = run_acas(args, dir);
        assert_eq!(code, 2, "acas {args:?} should fail\nstdout: {stdout}\nstderr: {stderr}");
        assert!(stderr.contains(expected), "acas {args:?} should say `{expected}`, said:\n{stderr}");
        assert!(stderr.contains("move"), "acas {args:?} should say what to do:\n{stderr}");
    }
}

#[test]
fn a_state_directory_that_is_a_file_is_refused_by_every_command() {
    let dir = workspace();
    std::fs::write(dir.path().join(".acas"), "not a directory\n").unwrap();
    assert_refused(dir.path(), ".acas is not a directory");
    assert_refused_by(WORKFLOW_FILE_COMMANDS, dir.path(), ".acas is not a directory");
    assert_eq!(std::fs::read_to_string(dir.path().join(".acas")).unwrap(), "not a directory\n");
}

#[test]
fn a_database_that_is_a_directory_is_refused_by_every_command() {
    let dir = workspace();
    std::fs::create_dir_all(dir.path().join(".acas/state.db")).unwrap();
    assert_refused(dir.path(), "state.db is not a file");
    assert_refused_by(WORKFLOW_FILE_COMMANDS, dir.path(), "state.db is not a file");
}

#[test]
fn a_database_that_is_not_a_database_is_refused_by_every_command() {
    let dir = workspace();
    std::fs::create_dir_all(dir.path().join(".acas")).unwrap();
    let junk = "this is a text file, not SQLite\n".repeat(200);
    std::fs::write(dir.path().join(".acas/state.db"), &junk).unwrap();
    assert_refused(dir.path(), "is damaged");
    assert_eq!(std::fs::read_to_string(dir.path().join(".acas/state.db")).unwrap(), junk);
}

#[test]
fn reading_history_creates_no_state() {
    let dir = workspace();
    let (code, stdout, stderr) = run_acas(&["workflow", "history", "--workspace", "."], dir.path());
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(!dir.path().join(".acas").exists(), "`workflow history` created .acas");
}

const HELLO: &str = "name: hello\nsteps:\n  - id: say\n    run: [\"true\"]\n";

/// Runs `acas ARGS` in `dir` with `env`; as root, as the unprivileged user `nobody`, for whom
/// file permissions hold (root ignores them).
fn acas_as_user(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(acas_e2e::acas_bin());
    command
        .args(args)
        .current_dir(dir)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"));
    for (name, value) in env {
        command.env(name, value);
    }
    if is_root() {
        command.uid(65534).gid(65534);
    }
    let output = command.output().expect("running acas");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A workspace with one finished run recorded, readable by everyone.
fn recorded_workspace() -> tempfile::TempDir {
    let dir = workspace();
    std::fs::create_dir_all(dir.path().join(".acas/workflows")).unwrap();
    std::fs::write(dir.path().join(".acas/workflows/hello.yaml"), HELLO).unwrap();
    let (code, stdout, stderr) = run_acas(&["workflow", "run", "hello", "--workspace", "."], dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    chmod(dir.path(), 0o755);
    dir
}

/// Every file under `.acas` with its bytes.
fn state_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(".acas"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// The read commands answer from a state they cannot write, and say it is read-only; the
/// commands that must write refuse with exit 2; nothing under `.acas` changes.
fn check_read_only(dir: &Path, env: &[(&str, &str)]) {
    std::fs::write(dir.join("bad.py"), "x = (\n").unwrap();
    let before = state_files(dir);
    let reads: &[&[&str]] = &[
        &["stats", "."],
        &["cost", "."],
        &["activity", "."],
        &["workflow", "list", "."],
        &["workflow", "status", "1", "--workspace", ".", "--format", "json"],
        &["workflow", "history", "--workspace", ".", "--format", "json"],
        &["explain", "bad.py:1", "--dry-run"],
    ];
    for args in reads {
        let (code, stdout, stderr) = acas_as_user(args, dir, env);
        assert_eq!(code, 0, "acas {args:?}\nstdout: {stdout}\nstderr: {stderr}");
        if args[0] != "workflow" || args[1] != "list" {
            assert!(stderr.contains("is read-only"), "acas {args:?} should say so:\n{stderr}");
        }
    }
    let (_, history, _) =
        acas_as_user(&["workflow", "history", "--workspace", ".", "--format", "json"], dir, env);
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["runs"][0]["workflow"], "hello", "{history}");
    let writes: &[&[&str]] = &[
        &["workflow", "run", "hello", "--workspace", "."],
        &["workflow", "rerun", "1", "--workspace", "."],
        &["watch", "."],
        &["plan", "tidy up", "--dry-run"],
        &["explain", "bad.py:1"],
    ];
    for args in writes {
        let (code, stdout, stderr) = acas_as_user(args, dir, env);
        assert_eq!(code, 2, "acas {args:?}\nstdout: {stdout}\nstderr: {stderr}");
        assert!(stderr.contains("is read-only") && stderr.contains("must write"), "acas {args:?}:\n{stderr}");
    }
    assert_eq!(state_files(dir), before, "the read-only state was written");
}

#[test]
fn a_state_the_user_cannot_write_is_read_and_never_written() {
    let dir = recorded_workspace();
    let acas = dir.path().join(".acas");
    for entry in std::fs::read_dir(&acas).unwrap() {
        let path = entry.unwrap().path();
        chmod(&path, if path.is_dir() { 0o555 } else { 0o444 });
    }
    chmod(&acas, 0o555);
    check_read_only(dir.path(), &[]);
    chmod(&acas, 0o755);
}

#[test]
fn a_state_forced_read_only_is_read_and_never_written() {
    let dir = recorded_workspace();
    check_read_only(dir.path(), &[("ACAS_STATE_READ_ONLY", "1")]);
}

/// A database whose pages past the schema are damaged: opening reads only the first pages, so
/// the damage shows where a command reads it, and `acas check-state` reads every page to find it.
/// Both say it is damaged and what to do, exit 2, and leave the file as it was.
#[test]
fn damage_past_the_schema_is_found_by_check_state_and_by_reads() {
    use acas::store::{FileEvent, FileEventKind, Record, Store, StoreOptions};
    let dir = workspace();
    let store = Store::open_workspace(dir.path(), StoreOptions::default()).unwrap();
    let events = (0..2_000).map(|i| {
        let path = format!("f{i}");
        Record::File(FileEvent {
            at_ms: i,
            kind: FileEventKind::Created,
            path,
            to_path: None,
            size: None,
            language: None,
        })
    });
    store.record(events.collect());
    store.close().unwrap();
    // Everything into the database file itself, so that the damage below is what is read: the
    // store's own integrity check, still running on its thread, may keep the log from being
    // written back at close.
    let deadline = std::time::Instant::now() + acas_e2e::TIMEOUT;
    loop {
        let db = rusqlite::Connection::open(dir.path().join(".acas/state.db")).unwrap();
        let (busy, log, done): (i64, i64, i64) = db
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        if busy == 0 && log == done {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the log was never written back");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, stdout, stderr) = run_acas(&["check-state", "."], dir.path());
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("the state is sound"), "{stdout}");

    let db_path = dir.path().join(".acas/state.db");
    let mut bytes = std::fs::read(&db_path).unwrap();
    // Every page but the schema's (the first, and those holding `CREATE` statements).
    for page in bytes.chunks_mut(4096).skip(1) {
        if !page.windows(6).any(|w| w == b"CREATE") {
            page.fill(0x5a);
        }
    }
    std::fs::write(&db_path, &bytes).unwrap();

    assert_refused_by(&[&["check-state", "."], &["activity", "."]], dir.path(), "is damaged");
    assert_eq!(std::fs::read(&db_path).unwrap(), bytes);
}

#[test]
fn check_state_of_a_workspace_without_state_creates_none() {
    let dir = workspace();
    let (code, stdout, stderr) = run_acas(&["check-state", "."], dir.path());
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("no state recorded yet"), "{stdout}");
    assert!(!dir.path().join(".acas").exists(), "`check-state` created .acas");
}
