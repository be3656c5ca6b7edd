//! `acas workflow validate` and `acas workflow list` as a user runs them.

use std::path::{Path, PathBuf};

use acas_e2e::run_acas;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/workflows")
}

/// A workspace with the documented example, a valid minimal workflow and a broken one.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".acas/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::copy(fixtures().join("valid/review_on_save.yaml"), workflows.join("review.yaml")).unwrap();
    std::fs::copy(fixtures().join("valid/minimal.yaml"), workflows.join("minimal.yml")).unwrap();
    std::fs::write(
        workflows.join("broken.yaml"),
        "name: broken\non:\n  schedule: { cron: \"0 9 * *\" }\nsteps:\n  - id: a\n    uses: file.reed\n  - id: b\n    needs: [c]\n    run: [echo]\n",
    )
    .unwrap();
    dir
}

#[test]
fn validate_prints_every_problem_with_its_position_and_fails() {
    let dir = workspace();
    let (code, stdout, stderr) = run_acas(&["workflow", "validate"], dir.path());
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "\
.acas/workflows/broken.yaml:3:21: error: cron expression `0 9 * *` has 4 fields; write 5 (minute hour day month weekday) or 6 (seconds first)
.acas/workflows/broken.yaml:6:11: error: unknown action `file.reed`; did you mean `file.read`?
.acas/workflows/broken.yaml:8:13: error: step `b` needs `c`, which is not a step of this workflow
3 workflow files checked: 3 errors, 0 warnings
"
    );

    let (code, stdout, _) = run_acas(&["workflow", "validate", ".", "--format", "json"], dir.path());
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["files_checked"].as_u64(), report["errors"].as_u64()), (Some(3), Some(3)));
    assert_eq!(
        report["problems"][1],
        json!({
            "file": ".acas/workflows/broken.yaml",
            "line": 6, "column": 11, "end_line": 6, "end_column": 20,
            "severity": "error",
            "message": "unknown action `file.reed`; did you mean `file.read`?",
        })
    );

    // One valid file: nothing to report.
    let (code, stdout, _) = run_acas(&["workflow", "validate", ".acas/workflows/review.yaml"], dir.path());
    assert_eq!((code, stdout.as_str()), (0, "1 workflow file checked: 0 errors, 0 warnings\n"));

    // A file that does not exist is a failure of the command itself.
    let (code, _, stderr) = run_acas(&["workflow", "validate", "nowhere.yaml"], dir.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot open nowhere.yaml"), "{stderr}");
}

#[test]
fn validate_reports_duplicate_workflow_names() {
    let dir = workspace();
    let workflows = dir.path().join(".acas/workflows");
    std::fs::remove_file(workflows.join("broken.yaml")).unwrap();
    std::fs::write(workflows.join("again.yaml"), "name: minimal\nsteps:\n  - id: x\n    run: [\"true\"]\n")
        .unwrap();
    let (code, stdout, _) = run_acas(&["workflow", "validate"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with(
            ".acas/workflows/minimal.yml:1:7: error: workflow name `minimal` is already used by again.yaml; rename one of them\n"
        ),
        "{stdout}"
    );
}

#[test]
fn list_shows_names_files_triggers_steps_and_validity() {
    let dir = workspace();
    let (code, stdout, stderr) = run_acas(&["workflow", "list"], dir.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "\
NAME            FILE                         TRIGGERS                                                   STEPS  VALID
broken          .acas/workflows/broken.yaml  schedule                                                   2      no (3 errors)
minimal         .acas/workflows/minimal.yml  manual                                                     1      yes
review-on-save  .acas/workflows/review.yaml  file_change,schedule,diagnostic,escalation,manual,webhook  4      yes
"
    );

    let (code, stdout, _) = run_acas(&["workflow", "list", "--format", "json"], dir.path());
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        listed["workflows"][2],
        json!({
            "name": "review-on-save",
            "file": ".acas/workflows/review.yaml",
            "triggers": ["file_change", "schedule", "diagnostic", "escalation", "manual", "webhook"],
            "steps": 4,
            "valid": true,
            "errors": 0,
            "warnings": 0,
        })
    );
    assert_eq!(listed["workflows"][0]["valid"], false);

    // A workspace without workflows lists nothing and says where it looked.
    let empty = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_acas(&["workflow", "list", "--format", "json"], empty.path());
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), json!({ "workflows": [] }));
    assert!(stderr.contains("no workflow files"), "{stderr}");
}
