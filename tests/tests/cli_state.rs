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
