//! Paths a workflow step acts on, judged as what they are when the step acts, against the real
//! binary: a step's working directory (outside the workspace, through a link, where path rules
//! deny), a move to a directory that does not exist yet (a rename, judged with what it brings),
//! and a parallel step of the same run that swaps a judged directory for a link to a denied one.

use std::path::{Path, PathBuf};

use acas_e2e::{run_acas, write_files};
use serde_json::Value;

/// A workspace with `policy` and `files` written into it, in a directory of its own (so that
/// what escapes it stays in the test's temporary directory).
fn workspace(policy: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("ws");
    write_files(&root, &[(".acas/policy.yaml", policy)]);
    write_files(&root, files);
    (dir, root)
}

fn run_workflow(root: &Path, name: &str) -> (i32, String) {
    let (code, stdout, stderr) = run_acas(&["workflow", "run", name, "--workspace", "."], root);
    (code, format!("{stdout}{stderr}"))
}

fn decision(records: &[Value], subject: &str) -> Option<String> {
    records
        .iter()
        .find(|r| r["subject"] == subject)
        .map(|r| r["detail"]["outcome"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn a_steps_working_directory_is_judged() {
    let outside = tempfile::tempdir().unwrap();
    let outside = outside.path().canonicalize().unwrap();
    let one = |cwd: &str| {
        format!("name: w\nsteps:\n  - id: s\n    run: {{ argv: [\"touch\", \"made\"], cwd: \"{cwd}\" }}\n")
    };
    let (_dir, root) = workspace(
        "defaults:\n  paths:\n    deny: [\"secrets/\"]\n",
        &[("secrets/key", "k"), ("src/main.rs", "fn main() {}\n"), ("sub/x", "")],
    );
    std::os::unix::fs::symlink(root.join("secrets"), root.join("src/keys")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    let outside_text = outside.to_string_lossy().into_owned();
    let denied = [
        ("up", "sub/../.."),
        ("absolute", outside_text.as_str()),
        ("secret", "secrets"),
        ("link-in", "src/keys"),
        ("link-out", "out"),
    ];
    for (name, cwd) in denied {
        write_files(
            &root,
            &[(
                &format!(".acas/workflows/{name}.yaml"),
                &one(cwd).replace("name: w", &format!("name: {name}")),
            )],
        );
        let (code, output) = run_workflow(&root, name);
        assert_ne!(code, 0, "{name}: {output}");
        assert!(output.contains("policy denies run in"), "{name}: {output}");
    }
    assert!(!outside.join("made").exists() && !root.parent().unwrap().join("made").exists());
    assert!(!root.join("secrets/made").exists());
    // Inside the workspace, where the rules allow, the step runs there.
    write_files(&root, &[(".acas/workflows/fine.yaml", &one("src").replace("name: w", "name: fine"))]);
    let (code, output) = run_workflow(&root, "fine");
    assert_eq!(code, 0, "{output}");
    assert!(root.join("src/made").exists());
    let records = acas_e2e::policy_decisions(&root);
    assert_eq!(
        decision(&records, &format!("run in {outside_text}")).as_deref(),
        Some("deny"),
        "{records:#?}"
    );
    assert_eq!(decision(&records, "run in src/keys").as_deref(), Some("deny"), "{records:#?}");
    assert_eq!(decision(&records, "run in src").as_deref(), Some("allow"), "{records:#?}");
}

#[test]
fn a_move_to_a_directory_that_does_not_exist_is_judged_as_the_rename_it_is() {
    let (_dir, root) = workspace(
        "defaults:\n  paths:\n    deny: [\"public/\", \"release/**/*.pem\"]\n",
        &[
            ("drafts/post.md", "hello"),
            (
                ".acas/workflows/publish.yaml",
                "name: publish\nsteps:\n  - id: s\n    uses: file.move\n    with: { from: \"drafts\", to: \"public/\" }\n",
            ),
            ("keys/deep/key.pem", "k"),
            (
                ".acas/workflows/stash.yaml",
                "name: stash\nsteps:\n  - id: s\n    uses: file.move\n    with: { from: \"keys/deep\", to: \"release\" }\n",
            ),
        ],
    );
    let (code, output) = run_workflow(&root, "publish");
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("policy denies write public/ with what drafts holds"), "{output}");
    assert!(root.join("drafts/post.md").exists() && !root.join("public").exists());
    // What the directory holds is judged under its new name, by every rule.
    let (code, output) = run_workflow(&root, "stash");
    assert_ne!(code, 0, "{output}");
    assert!(output.contains("release/key.pem"), "{output}");
    assert!(root.join("keys/deep/key.pem").exists());
}

#[test]
fn a_parallel_step_cannot_swap_a_judged_directory_for_a_link_to_a_denied_one() {
    // `build/` is allowed, `secrets/` is not. `writer` is judged while `build` is a directory,
    // then waits (bounded) until `swapper` has made `build` a link to `secrets`, and writes.
    let wait = "i=0\nwhile [ ! -L build ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done\n";
    let workflow = "name: race\nsteps:\n  - id: swapper\n    run: { shell: \"rm -rf build && ln -s secrets build\" }\n  - id: writer\n    run: { shell: \"sh wait.sh && echo leaked > build/out\" }\n";
    let (_dir, root) = workspace(
        "defaults:\n  paths:\n    deny: [\"secrets/\"]\n",
        &[
            ("build/old", "o"),
            ("secrets/key", "k"),
            ("wait.sh", wait),
            (".acas/workflows/race.yaml", workflow),
        ],
    );
    for round in 0..3 {
        let (_, output) = run_workflow(&root, "race");
        assert!(!root.join("secrets/out").exists(), "round {round}: the write landed in secrets/: {output}");
        // Back to a directory for the next round.
        let _ = std::fs::remove_file(root.join("build"));
        std::fs::create_dir_all(root.join("build")).unwrap();
    }
    let records = acas_e2e::policy_decisions(&root);
    assert!(
        records.iter().any(|r| r["subject"] == "run `sh wait.sh && echo leaked > build/out`"),
        "{records:#?}"
    );
}
