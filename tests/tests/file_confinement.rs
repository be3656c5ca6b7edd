//! Workflow file actions cannot destroy ACAS's own state: a run that tries to overwrite
//! `.acas/state.db` fails with a message naming it, and the run history is intact.

use acas_e2e::run_acas;
use serde_json::Value;

#[test]
fn a_workflow_cannot_overwrite_the_database_of_its_own_runs() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(".acas/workflows");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("wipe.yaml"),
        "name: wipe\nsteps:\n  - id: wipe\n    uses: file.write\n    with: { path: .acas/state.db, content: gone }\n",
    )
    .unwrap();

    let (code, stdout, stderr) = run_acas(&["workflow", "run", "wipe", "--format", "json"], dir.path());
    assert_eq!(code, 1, "the run fails: {stdout}{stderr}");
    assert!(stdout.contains("`.acas/state.db` is refused"), "{stdout}");

    let (code, stdout, stderr) = run_acas(&["workflow", "history", "--format", "json"], dir.path());
    assert_eq!(code, 0, "the history is still readable: {stderr}");
    let history: Value = serde_json::from_str(&stdout).unwrap();
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{history:#}");
    assert_eq!(runs[0]["workflow"], "wipe");
    assert_eq!(runs[0]["status"], "failed");
}
