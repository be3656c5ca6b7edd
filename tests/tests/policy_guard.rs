//! What a step's command cannot do to the policy it runs under, against the real binary: rewrite
//! the policy file (through a link it made itself, with `cp`, `sed -i`, `mv`, `rm`, or by
//! checking out a branch with another policy), make `git` run a program through `.git/config`,
//! pick the toolchain an allowed command runs through a variable, or start a nested run that is
//! judged by another policy (without the user's file, or in another `--workspace`).

use std::path::{Path, PathBuf};

use acas_e2e::{acas_bin, git, run_acas, write_files};

/// A git repository with `files` written into it.
fn workspace(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    git(&root, &["init", "-q", "-b", "main", "."]);
    write_files(&root, files);
    (dir, root)
}

/// Runs workflow `name` in `root`: its exit code and everything it printed.
fn run(root: &Path, name: &str) -> (i32, String) {
    let (code, stdout, stderr) = run_acas(&["workflow", "run", name, "--workspace", "."], root);
    (code, format!("{stdout}{stderr}"))
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_default()
}

const DENY_CURL: &str = "defaults:\n  commands:\n    deny: [\"curl\"]\n";

#[test]
fn a_step_that_changes_the_policy_file_fails_and_the_file_is_put_back() {
    // Each script changes the policy in a way judging the command before it runs cannot see:
    // through a link the script makes itself, or with a program that writes its arguments.
    let scripts = [
        "ln -s .acas q; echo 'agents: {}' > q/policy.yaml",
        "printf 'agents: {}\\n' > open.yaml; cp open.yaml .acas/policy.yaml",
        "sed -i s/curl/nothing/ .acas/policy.yaml",
        "printf 'agents: {}\\n' | tee .acas/policy.yaml",
        "mv .acas/policy.yaml gone.yaml",
        "mv .acas moved",
        "rm -f .acas/policy.yaml; ln -s ../open.yaml .acas/policy.yaml",
    ];
    for script in scripts {
        let (_dir, root) = workspace(&[
            (".acas/policy.yaml", DENY_CURL),
            ("open.yaml", "agents: {}\n"),
            (
                ".acas/workflows/a.yaml",
                &format!("name: a\nsteps:\n  - id: s\n    run: {{ shell: {script:?} }}\n"),
            ),
        ]);
        let (code, out) = run(&root, "a");
        assert_eq!(code, 1, "{script}: {out}");
        // Refused before it runs when the judge can see it (a link the script makes), else put
        // back once it ran.
        let refused = out.contains("the policy file is changed by a person, never by a run");
        let put_back = out.contains("the step changed a policy file, which a run never does")
            && out.contains("is put back as it was");
        assert!(refused || put_back, "{script}: {out}");
        let meta = std::fs::symlink_metadata(root.join(".acas/policy.yaml")).unwrap();
        assert!(meta.is_file(), "{script}: the policy is not a file again");
        assert!(std::fs::symlink_metadata(root.join(".acas")).unwrap().is_dir(), "{script}");
        assert_eq!(read(&root, ".acas/policy.yaml"), DENY_CURL, "{script}: {out}");
    }
}

#[test]
fn a_step_that_creates_the_policy_it_runs_without_keeps_it() {
    // Without any policy file nothing is guarded, as before policies existed.
    let (_dir, root) = workspace(&[(
        ".acas/workflows/a.yaml",
        "name: a\nsteps:\n  - id: s\n    run: { shell: \"printf 'agents: {}\\\\n' > .acas/policy.yaml\" }\n",
    )]);
    let (code, out) = run(&root, "a");
    assert_eq!(code, 0, "{out}");
    assert_eq!(read(&root, ".acas/policy.yaml"), "agents: {}\n");
}

#[test]
fn git_checkout_as_a_command_cannot_swap_in_another_policy() {
    let (_dir, root) = workspace(&[(".acas/policy.yaml", "defaults:\n  commands:\n    allow: [\"*\"]\n")]);
    git(&root, &["add", ".acas/policy.yaml"]);
    git(&root, &["commit", "-qm", "open"]);
    git(&root, &["branch", "evil"]);
    let strict = "defaults:\n  commands:\n    allow: [\"git checkout\", \"git switch\"]\n";
    write_files(&root, &[(".acas/policy.yaml", strict)]);
    git(&root, &["commit", "-qam", "strict"]);
    for step in ["[git, checkout, -q, evil]", "[git, switch, -q, evil]"] {
        git(&root, &["checkout", "-q", "-f", "main"]);
        write_files(
            &root,
            &[(".acas/workflows/a.yaml", &format!("name: a\nsteps:\n  - {{ id: s, run: {step} }}\n"))],
        );
        let (code, out) = run(&root, "a");
        assert_eq!(code, 1, "{step}: {out}");
        assert!(out.contains("is put back as it was"), "{step}: {out}");
        assert_eq!(read(&root, ".acas/policy.yaml"), strict, "{step}: {out}");
    }
}

#[test]
fn a_step_cannot_make_git_run_a_program_through_its_configuration_or_hooks() {
    let (_dir, root) = workspace(&[
        (".acas/policy.yaml", "defaults:\n  commands:\n    allow: [\"echo\", \"git status\", \"cd\"]\n"),
        (
            ".acas/workflows/config.yaml",
            "name: config\nsteps:\n  - id: s\n    run: { shell: \"echo '[core]' >> .git/config; echo 'fsmonitor = id > pwned' >> .git/config; git status\" }\n",
        ),
        (
            ".acas/workflows/spelled.yaml",
            "name: spelled\nsteps:\n  - id: s\n    run: { shell: \"cd .git && echo 'fsmonitor = id > ../pwned' >> ./CONFIG >> config\" }\n",
        ),
        (
            ".acas/workflows/hook.yaml",
            "name: hook\nsteps:\n  - { id: w, uses: file.write, with: { path: .git/hooks/pre-commit, content: \"#!/bin/sh\\nid > pwned\\n\" } }\n",
        ),
    ]);
    let config = read(&root, ".git/config");
    for name in ["config", "spelled", "hook"] {
        let (code, out) = run(&root, name);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains("files in .git (configuration, hooks) name programs git runs"), "{name}: {out}");
    }
    assert!(!root.join("pwned").exists());
    assert_eq!(read(&root, ".git/config"), config);
    assert!(!root.join(".git/hooks/pre-commit").exists());
}

#[test]
fn variables_that_pick_the_toolchain_or_options_of_an_allowed_command_are_judged() {
    let (_dir, root) = workspace(&[
        (
            ".acas/policy.yaml",
            "defaults:\n  commands:\n    allow: [\"cargo test\", \"tar\", \"env\", \"true\"]\n",
        ),
        (
            ".acas/workflows/a.yaml",
            "name: a\nsteps:\n  - id: s\n    run: { argv: [cargo, test], env: { RUSTUP_TOOLCHAIN: evil } }\n",
        ),
    ]);
    let (code, out) = run(&root, "a");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("run with environment RUSTUP_TOOLCHAIN"), "{out}");
    for script in [
        "RUSTUP_TOOLCHAIN=./evil cargo test",
        "PYENV_VERSION=x true",
        "TAR_OPTIONS=--to-command=x tar xf a.tar",
        "RSYNC_RSH=x true",
        "OPENSSL_CONF=x true",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=./x cargo test",
        "env -u HOME true",
        "env --unset=XDG_CONFIG_HOME true",
        "env -iuHOME true",
    ] {
        let (code, stdout, stderr) =
            run_acas(&["policy", "explain", "--workspace", ".", "run", script], &root);
        assert_eq!(code, 1, "{script}: {stdout}{stderr}");
        assert!(stdout.starts_with("deny:"), "{script}: {stdout}");
    }
}

#[test]
fn a_nested_run_is_judged_by_the_users_policy_whatever_its_environment() {
    let acas = acas_bin();
    let (_dir, root) = workspace(&[
        (".no-user-config/acas/policy.yaml", "defaults:\n  paths:\n    deny: [\"secrets/\"]\n"),
        (
            ".acas/workflows/inner.yaml",
            "name: inner\nsteps:\n  - { id: w, uses: file.write, with: { path: secrets/x, content: leaked } }\n",
        ),
        (
            ".acas/workflows/outer.yaml",
            &format!(
                "name: outer\nsteps:\n  - {{ id: nested, run: [env, -u, XDG_CONFIG_HOME, -u, HOME, {:?}, workflow, run, inner] }}\n",
                acas.display().to_string()
            ),
        ),
    ]);
    std::fs::create_dir(root.join("secrets")).unwrap();
    let (code, out) = run(&root, "outer");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("paths deny rule `secrets/` matches"), "{out}");
    assert!(!root.join("secrets/x").exists(), "the nested run shed the user's policy: {out}");
}

#[test]
fn a_nested_run_in_another_workspace_is_judged_by_the_enclosing_runs_policy() {
    let acas = acas_bin();
    let (_dir, root) = workspace(&[
        (
            ".acas/policy.yaml",
            "defaults:\n  commands:\n    deny: [\"touch\"]\n  paths:\n    deny: [\"sub/secrets/\"]\n",
        ),
        ("sub/.acas/workflows/i.yaml", "name: i\nsteps:\n  - { id: t, run: [touch, ../nested-ran] }\n"),
        (
            "sub/.acas/workflows/w.yaml",
            "name: w\nsteps:\n  - { id: w, uses: file.write, with: { path: secrets/x, content: leaked } }\n",
        ),
        (
            ".acas/workflows/outer.yaml",
            &format!(
                "name: outer\nsteps:\n  - {{ id: i, continue_on_error: true, run: [{0:?}, workflow, run, i, --workspace, sub] }}\n  - {{ id: w, run: [{0:?}, workflow, run, w, --workspace, sub] }}\n",
                acas.display().to_string()
            ),
        ),
    ]);
    let (code, out) = run(&root, "outer");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("commands deny rule `touch` matches"), "{out}");
    assert!(out.contains("paths deny rule `sub/secrets/` matches"), "{out}");
    assert!(!root.join("nested-ran").exists(), "{out}");
    assert!(!root.join("sub/secrets/x").exists(), "{out}");
}

#[test]
fn a_nested_run_started_after_its_step_changed_the_policy_denies_everything() {
    // The step rewrites the policy and starts a run in the same breath: that run is judged by the
    // policy as it was when the step started, and a file that changed since denies.
    let acas = acas_bin();
    let (_dir, root) = workspace(&[
        (".acas/policy.yaml", DENY_CURL),
        ("open.yaml", "agents: {}\n"),
        (".acas/workflows/inner.yaml", "name: inner\nsteps:\n  - { id: t, run: [touch, nested-ran] }\n"),
        (
            ".acas/workflows/outer.yaml",
            &format!(
                "name: outer\nsteps:\n  - id: s\n    run: {{ shell: \"cp open.yaml .acas/policy.yaml; '{}' workflow run inner\" }}\n",
                acas.display()
            ),
        ),
    ]);
    let (code, out) = run(&root, "outer");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("changed since the workflow step that started this process began"), "{out}");
    assert!(!root.join("nested-ran").exists(), "{out}");
    assert_eq!(read(&root, ".acas/policy.yaml"), DENY_CURL);
}

#[test]
fn every_step_running_while_the_policy_was_rewritten_fails_and_none_after_is_judged_by_it() {
    // `a` opens the policy and waits (bounded) until it is put back; `c` runs meanwhile, waiting
    // for `a`'s mark, and `b` would start after `c`.
    let wait = "i=0\nwhile {cond} && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n";
    let strict = "defaults:\n  commands:\n    deny: [\"mkdir\"]\n";
    let (_dir, root) = workspace(&[
        (".acas/policy.yaml", strict),
        ("open.yaml", "agents: {}\n"),
        (
            "a.sh",
            &format!(
                "cp open.yaml .acas/policy.yaml\n: > marker\n{}",
                wait.replace("{cond}", "! grep -q mkdir .acas/policy.yaml")
            ),
        ),
        ("c.sh", &wait.replace("{cond}", "[ ! -e marker ]")),
        (
            ".acas/workflows/p.yaml",
            "name: p\nsteps:\n  - { id: a, run: [sh, a.sh] }\n  - { id: c, run: [sh, c.sh] }\n  - { id: b, needs: [c], run: [mkdir, b-ran] }\n",
        ),
    ]);
    let (code, out) = run(&root, "p");
    assert_eq!(code, 1, "{out}");
    for step in ["a", "c"] {
        let line = out.lines().find(|l| l.contains(&format!("failed     {step} "))).unwrap_or_default();
        assert!(line.contains("is put back as it was"), "{step}: {out}");
    }
    assert!(!root.join("b-ran").exists(), "{out}");
    assert_eq!(read(&root, ".acas/policy.yaml"), strict);
}
