//! Policy end to end, judged by what runs rather than by how it is spelled: wrappers and shells
//! unwrapped, words the shell would change refused, flags in any spelling, the program an allow
//! rule names (not a workspace file of that name), the environment, every redirect hop, a
//! directory as everything beneath it, a path judged again after the approval wait, and every
//! path a `git.checkout` changes. Each case runs the real `acas` binary on a real workspace and
//! checks that nothing it guards happened.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use acas_e2e::run_acas;
use serde_json::Value;

/// A workspace with `.acas/policy.yaml` and the given workflows.
fn workspace(policy: &str, workflows: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/policy.yaml"), policy).unwrap();
    for (name, text) in workflows {
        std::fs::write(root.join(".acas/workflows").join(format!("{name}.yaml")), text).unwrap();
    }
    dir
}

fn run_workflow(root: &Path, name: &str) -> (i32, String) {
    let (code, stdout, stderr) = run_acas(&["workflow", "run", name, "--workspace", "."], root);
    (code, format!("{stdout}{stderr}"))
}

/// The policy decision records, after `acas audit verify` passed.
fn denied(records: &[Value], subject: &str) -> bool {
    records.iter().any(|r| {
        r["subject"].as_str().is_some_and(|s| s.contains(subject)) && r["detail"]["outcome"] == "deny"
    })
}

fn git(root: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(root)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .expect("running git");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn wrapped_shells_expansions_and_reordered_flags_do_not_pass_a_deny_list() {
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().display().to_string();
    std::fs::create_dir_all(outside.path().join("victim")).unwrap();
    let policy = "defaults:\n  commands:\n    deny: [\"rm -rf\", \"touch\", \"git push --force\"]\n";
    let argv = |name: &str, argv: &str| {
        (name.to_owned(), format!("name: {name}\nsteps:\n  - id: s\n    run: {argv}\n"))
    };
    let cases = [
        argv("envsh", &format!("[\"env\", \"sh\", \"-c\", \"touch {out}/envsh\"]")),
        argv("nicesh", &format!("[\"nice\", \"busybox\", \"sh\", \"-c\", \"touch {out}/nicesh\"]")),
        argv("dashdash", &format!("[\"bash\", \"-c\", \"--\", \"touch {out}/dashdash\"]")),
        argv("var", &format!("{{ shell: \"X=tou; ${{X}}ch {out}/var\" }}")),
        argv("ansi", &format!("{{ shell: \"$'\\\\x74ouch' {out}/ansi\" }}")),
        argv("rmfr", &format!("[\"rm\", \"-fr\", \"{out}/victim\"]")),
        argv("rmlong", &format!("[\"rm\", \"--recursive\", \"--force\", \"{out}/victim\"]")),
        argv("push", "[\"git\", \"-C\", \".\", \"push\", \"origin\", \"+main\"]"),
    ];
    let workflows: Vec<(&str, &str)> = cases.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let dir = workspace(policy, &workflows);
    let root = dir.path();
    for (name, _) in &cases {
        let (code, output) = run_workflow(root, name);
        assert_ne!(code, 0, "{name}: {output}");
        assert!(output.contains("policy denies"), "{name}: {output}");
    }
    let left: Vec<String> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["victim"], "what the denied commands made or removed");
    let records = acas_e2e::policy_decisions(root);
    for subject in ["run `env sh -c", "run `bash -c --", "run `X=tou;", "run `rm -fr", "run `git -C . push"] {
        assert!(denied(&records, subject), "no deny record of {subject}: {records:#?}");
    }
    let (code, output, _) =
        run_acas(&["policy", "explain", "run", "X=tou; ${X}ch x", "--workspace", "."], root);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("cannot be judged") && output.contains("argv step"), "{output}");
}

#[test]
fn glob_deny_rules_match_every_command_that_would_run() {
    let dir = workspace("defaults:\n  commands:\n    deny: [\"rm -rf *\", \"curl*\"]\n", &[]);
    for command in ["sudo rm -rf /x", "xargs rm -rf /x", "env curl x", "nice curl x", "rm -rf /x", "curl x"] {
        let (code, stdout, _) =
            run_acas(&["policy", "explain", "run", command, "--workspace", "."], dir.path());
        assert_eq!(code, 1, "{command}: {stdout}");
        assert!(stdout.starts_with("deny"), "{command}: {stdout}");
    }
    let (code, stdout, _) = run_acas(&["policy", "explain", "run", "ls -la", "--workspace", "."], dir.path());
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn an_allowed_program_is_the_one_on_path_and_its_environment_is_judged() {
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().display().to_string();
    let workflow = format!(
        "name: e\nsteps:\n  - id: s\n    run:\n      argv: [\"git\", \"status\", \"--short\"]\n      env:\n        \
         GIT_CONFIG_COUNT: \"1\"\n        GIT_CONFIG_KEY_0: core.fsmonitor\n        \
         GIT_CONFIG_VALUE_0: \"touch {out}/env-pwned; false\"\n    continue_on_error: true\n  \
         - id: t\n    run: [\"./git\", \"status\"]\n    continue_on_error: true\n"
    );
    let dir = workspace(
        "defaults:\n  commands:\n    allow: [\"git status\"]\n    deny: [\"touch\"]\n",
        &[("e", workflow.as_str())],
    );
    let root = dir.path();
    git(root, &["init", "-q"]);
    let fake = root.join("git");
    std::fs::write(&fake, format!("#!/bin/sh\necho ran > {out}/fake-git\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (_, output) = run_workflow(root, "e");
    assert!(
        !outside.path().join("env-pwned").exists(),
        "git ran the denied command from its environment: {output}"
    );
    assert!(!outside.path().join("fake-git").exists(), "the workspace's ./git ran: {output}");
    let records = acas_e2e::policy_decisions(root);
    assert!(denied(&records, "run with environment GIT_CONFIG_COUNT"), "{records:#?}");
    assert!(denied(&records, "run `./git status`"), "{records:#?}");
    // The real git, without the environment, is what the rule allows.
    let (code, stdout, _) =
        run_acas(&["policy", "explain", "run", "git status --short", "--workspace", "."], root);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn every_redirect_hop_is_judged() {
    // The denied host: nothing answers; a request to it waits in the listen queue.
    let denied_host = TcpListener::bind("127.0.0.1:0").unwrap();
    let denied_port = denied_host.local_addr().unwrap().port();
    // The allowed host redirects once to the denied one, then stops.
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = allowed.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Some(Ok(mut stream)) = allowed.incoming().next() {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://localhost:{denied_port}/leak?secret=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let workflow = format!(
        "name: h\nsteps:\n  - id: redir\n    uses: http.request\n    with: {{ url: \"http://127.0.0.1:{allowed_port}/start\", timeout: 5s }}\n"
    );
    let dir = workspace("defaults:\n  hosts:\n    allow: [\"127.0.0.1\"]\n", &[("h", workflow.as_str())]);
    let (code, output) = run_workflow(dir.path(), "h");
    assert_ne!(code, 0, "{output}");
    assert!(
        output.contains("redirect 1 to http://localhost") && output.contains("policy denies http localhost"),
        "{output}"
    );
    denied_host.set_nonblocking(true).unwrap();
    assert!(denied_host.accept().is_err(), "the request reached the denied host: {output}");
    assert!(denied(&acas_e2e::policy_decisions(dir.path()), "http localhost"));
}

#[test]
fn a_directory_is_judged_as_everything_beneath_it() {
    let workflows = [
        (
            "mv",
            "name: mv\nsteps:\n  - id: s\n    uses: file.move\n    with: { from: \"secrets\", to: \"public\" }\n",
        ),
        (
            "rm",
            "name: rm\nsteps:\n  - id: s\n    uses: file.delete\n    with: { path: \"secrets\", recursive: true }\n",
        ),
    ];
    let dir = workspace("defaults:\n  paths:\n    deny: [\".env\", \"secrets/\", \"*.pem\"]\n", &workflows);
    let root = dir.path();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    std::fs::create_dir_all(root.join("secrets")).unwrap();
    std::fs::write(root.join("secrets/key"), "s").unwrap();
    for name in ["mv", "rm"] {
        let (code, output) = run_workflow(root, name);
        assert_ne!(code, 0, "{name}: {output}");
        assert!(output.contains("secrets/"), "{name}: {output}");
        assert_eq!(std::fs::read_to_string(root.join("secrets/key")).unwrap(), "s");
    }
    assert!(!root.join("public").exists());
}

#[test]
fn a_path_swapped_for_a_link_while_it_waits_for_approval_is_refused() {
    let policy = "approval_timeout: 60s\ndefaults:\n  commands:\n    deny: [\"curl\"]\n  approve:\n    paths: [\"src/gated/**\"]\n";
    let workflow = "name: sw\nsteps:\n  - id: write\n    uses: file.write\n    with: { path: \"src/gated/policy.yaml\", content: \"version: 1\\n\" }\n";
    let dir = workspace(policy, &[("sw", workflow)]);
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join("src/gated")).unwrap();
    let run = acas_e2e::start_workflow_run(&root, "sw", true);
    let listed = acas_e2e::wait_for_approval(&root, "src/gated/policy.yaml");
    // While the person reads the question, the directory becomes a link into `.acas`.
    std::fs::remove_dir(root.join("src/gated")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("../.acas", root.join("src/gated")).unwrap();
    let id = listed.split_whitespace().next().unwrap().to_owned();
    let (code, stdout, stderr) = run_acas(&["approve", &id, "--workspace", "."], &root);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let output = run.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "{said}");
    assert_eq!(std::fs::read_to_string(root.join(".acas/policy.yaml")).unwrap(), policy, "{said}");
    assert!(said.contains(".acas/policy.yaml"), "{said}");
}

#[test]
fn a_checkout_that_would_rewrite_the_policy_is_refused_with_the_paths_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.email", "a@b"]);
    git(root, &["config", "user.name", "a"]);
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::create_dir_all(root.join("secrets")).unwrap();
    std::fs::write(root.join(".gitignore"), ".acas/state.db*\n.no-user-config\n").unwrap();
    std::fs::write(root.join(".acas/policy.yaml"), "defaults:\n  commands:\n    deny: [\"curl\"]\n").unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "base"]);
    git(root, &["checkout", "-q", "-b", "open"]);
    std::fs::write(root.join(".acas/policy.yaml"), "version: 1\n").unwrap();
    std::fs::write(root.join("secrets/key"), "leaked").unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "open"]);
    git(root, &["checkout", "-q", "main"]);
    let strict = "defaults:\n  paths:\n    deny: [\"secrets/\"]\n  commands:\n    deny: [\"curl\"]\n";
    std::fs::write(root.join(".acas/policy.yaml"), strict).unwrap();
    std::fs::write(
        root.join(".acas/workflows/co.yaml"),
        "name: co\nsteps:\n  - id: co\n    uses: git.checkout\n    with: { branch: open }\n",
    )
    .unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "strict"]);
    let (code, output) = run_workflow(root, "co");
    assert_ne!(code, 0, "{output}");
    assert!(output.contains(".acas/policy.yaml") || output.contains("secrets/key"), "{output}");
    assert_eq!(std::fs::read_to_string(root.join(".acas/policy.yaml")).unwrap(), strict);
    assert!(!root.join("secrets/key").exists());
    let records = acas_e2e::policy_decisions(root);
    assert!(
        denied(&records, "write .acas/policy.yaml") || denied(&records, "write secrets/key"),
        "{records:#?}"
    );
}

#[test]
fn a_shell_redirection_is_judged_as_a_write_and_cannot_rewrite_the_policy() {
    let policy = "defaults:\n  commands:\n    allow: [\"echo\", \"git status\"]\n";
    let workflows = [
        (
            "echopol",
            "name: echopol\nsteps:\n  - id: m\n    run: { shell: \"echo 'defaults: {}' > .acas/policy.yaml\" }\n",
        ),
        ("echoout", "name: echoout\nsteps:\n  - id: m\n    run: { shell: \"echo hi > ../outside-file\" }\n"),
        (
            "forpath",
            "name: forpath\nsteps:\n  - id: m\n    run: { shell: \"for PATH in bin; do git status; done\" }\n",
        ),
    ];
    let dir = workspace(policy, &workflows);
    let root = dir.path();
    for (name, _) in &workflows {
        let (code, output) = run_workflow(root, name);
        assert_ne!(code, 0, "{name}: {output}");
        assert!(output.contains("policy denies"), "{name}: {output}");
    }
    assert_eq!(std::fs::read_to_string(root.join(".acas/policy.yaml")).unwrap(), policy);
    assert!(!root.parent().unwrap().join("outside-file").exists());
    let (code, stdout, _) =
        run_acas(&["policy", "explain", "run", "echo ok > /dev/null 2>&1", "--workspace", "."], root);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn a_huge_script_or_command_is_decided_without_blowing_up() {
    let dir = workspace("defaults:\n  commands:\n    deny: [\"rm -rf *\", \"curl*\"]\n", &[]);
    let wordy = format!("echo {}", "a ".repeat(20_000));
    let (code, stdout, _) = run_acas(&["policy", "explain", "run", &wordy, "--workspace", "."], dir.path());
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) =
        run_acas(&["policy", "explain", "run", "echo a; x curl y", "--workspace", "."], dir.path());
    assert_eq!(code, 1, "{stdout}");
    let long = "$x;".repeat(40_000);
    let (code, stdout, _) = run_acas(&["policy", "explain", "run", &long, "--workspace", "."], dir.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("64 KiB"), "{stdout}");
}

/// The real file `name` on `PATH`.
#[cfg(unix)]
fn on_path(name: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} on PATH"))
}

/// A workflow `name` of one step `s` that runs `run` (YAML).
fn step(name: &str, run: &str) -> (String, String) {
    (name.to_owned(), format!("name: {name}\nsteps:\n  - id: s\n    run: {run}\n"))
}

#[cfg(unix)]
#[test]
fn a_relative_program_is_judged_from_the_directory_it_runs_in() {
    let policy = "defaults:\n  commands:\n    deny: [\"touch\"]\n";
    let cases = [
        step("cwdargv", "{ argv: [\"tools/mk\", \"cwd-argv\"], cwd: sub }"),
        step("cwdshell", "{ shell: \"./tools/mk cwd-shell\", cwd: sub }"),
        step("cdshell", "{ shell: \"cd sub && ./tools/mk cd-shell\" }"),
        step("pushd", "[\"bash\", \"-c\", \"pushd sub >/dev/null; tools/mk pushd\"]"),
    ];
    let workflows: Vec<(&str, &str)> = cases.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let dir = workspace(policy, &workflows);
    let root = dir.path();
    // `sub/tools/mk` is `touch` under another name; nothing of that name is at the root.
    std::fs::create_dir_all(root.join("sub/tools")).unwrap();
    std::os::unix::fs::symlink(on_path("touch"), root.join("sub/tools/mk")).unwrap();
    for (name, _) in &cases {
        let (code, output) = run_workflow(root, name);
        assert_ne!(code, 0, "{name}: {output}");
        assert!(output.contains("policy denies"), "{name}: {output}");
    }
    let made: Vec<String> = std::fs::read_dir(root.join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(made, ["tools"], "what the denied program made");
    let records = acas_e2e::policy_decisions(root);
    for subject in ["run `tools/mk cwd-argv` in sub", "run `./tools/mk cwd-shell` in sub", "run `cd sub &&"] {
        assert!(denied(&records, subject), "no deny record of {subject}: {records:#?}");
    }
}

#[test]
fn a_redirection_after_cd_is_judged_where_the_shell_writes_it() {
    // No commands rule: only the paths the redirections write are judged.
    let policy = "defaults:\n  paths:\n    deny: [\"secrets/\"]\n";
    let cases = [
        step("cdacas", "{ shell: \"cd .acas && echo 'defaults: {}' > policy.yaml\" }"),
        step("cdout", "{ shell: \"cd .. && echo hi > outside-by-cd\" }"),
        step("cwdacas", "{ shell: \"echo 'defaults: {}' > policy.yaml\", cwd: .acas }"),
        step("cdvar", "{ shell: \"cd \\\"$D\\\" && echo 'defaults: {}' > policy.yaml\", env: { D: .acas } }"),
        step("cdsubst", "{ shell: \"cd $(printf .acas) && echo 'defaults: {}' > policy.yaml\" }"),
    ];
    let workflows: Vec<(&str, &str)> = cases.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let dir = workspace(policy, &workflows);
    let root = dir.path();
    for (name, _) in &cases {
        let (code, output) = run_workflow(root, name);
        assert_ne!(code, 0, "{name}: {output}");
        assert!(output.contains("policy denies"), "{name}: {output}");
    }
    assert_eq!(std::fs::read_to_string(root.join(".acas/policy.yaml")).unwrap(), policy);
    assert!(!root.parent().unwrap().join("outside-by-cd").exists());
    assert!(!root.join("policy.yaml").exists() && !root.join("outside-by-cd").exists());
    // A cd into a plain directory writes there, as the shell would.
    std::fs::create_dir_all(root.join("build")).unwrap();
    let (code, stdout, _) =
        run_acas(&["policy", "explain", "run", "cd build && echo x > out.txt", "--workspace", "."], root);
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) =
        run_acas(&["policy", "explain", "run", "cd secrets && echo x > key", "--workspace", "."], root);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("secrets/key"), "{stdout}");
}
