//! A workspace whose `.acas` (or a file ACAS writes in it) is a symbolic link, as a cloned
//! repository can carry: ACAS refuses to follow it, says so, and writes nothing where it points.
//! The editor is served without state; the commands exit 2.

use std::path::Path;

use acas_e2e::{LspClient, is_progress, run_acas};
use serde_json::{Value, json};

/// Commands that write the state of the workspace in the working directory.
const COMMANDS: &[&[&str]] = &[&["watch", "."], &["workflow", "run", "hello", "--workspace", "."]];

const WORKFLOW: &str = "name: hello\nsteps:\n  - id: say\n    run: [\"true\"]\n";

/// Every entry under `dir`, recursively, with its content for files.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            let content = if path.is_dir() {
                pending.push(path.clone());
                Vec::new()
            } else {
                std::fs::read(&path).unwrap_or_default()
            };
            entries.push((path.strip_prefix(dir).unwrap().display().to_string(), content));
        }
    }
    entries.sort();
    entries
}

/// A workspace and a directory outside it, with the link made by `link(workspace, outside)`.
fn setup(link: impl Fn(&Path, &Path)) -> (tempfile::TempDir, tempfile::TempDir) {
    let workspace = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(workspace.path().join("broken.rs"), "fn f( {}\n").unwrap();
    std::fs::create_dir_all(outside.path().join("workflows")).unwrap();
    std::fs::write(outside.path().join("workflows/hello.yml"), WORKFLOW).unwrap();
    std::fs::write(outside.path().join("notes"), "keep me\n").unwrap();
    link(workspace.path(), outside.path());
    (workspace, outside)
}

/// Makes a link inside the workspace (first path) that points outside (second path).
type MakeLink = Box<dyn Fn(&Path, &Path)>;

fn links() -> Vec<(&'static str, MakeLink)> {
    vec![
        (
            ".acas",
            Box::new(|ws: &Path, outside: &Path| {
                std::os::unix::fs::symlink(outside, ws.join(".acas")).unwrap()
            }),
        ),
        (
            ".gitignore",
            Box::new(|ws: &Path, outside: &Path| {
                std::fs::create_dir_all(ws.join(".acas/workflows")).unwrap();
                std::fs::write(ws.join(".acas/workflows/hello.yml"), WORKFLOW).unwrap();
                std::os::unix::fs::symlink(outside.join("notes"), ws.join(".acas/.gitignore")).unwrap();
            }),
        ),
        (
            "state.db",
            Box::new(|ws: &Path, outside: &Path| {
                std::fs::create_dir_all(ws.join(".acas/workflows")).unwrap();
                std::fs::write(ws.join(".acas/workflows/hello.yml"), WORKFLOW).unwrap();
                // Dangling: SQLite would create the database where it points.
                std::os::unix::fs::symlink(outside.join("state.db"), ws.join(".acas/state.db")).unwrap();
            }),
        ),
    ]
}

#[test]
fn commands_refuse_a_linked_state_and_write_nothing_outside() {
    for (name, link) in links() {
        for args in COMMANDS {
            let (workspace, outside) = setup(&link);
            let before = snapshot(outside.path());
            let (code, stdout, stderr) = run_acas(args, workspace.path());
            assert_eq!(code, 2, "{name}: acas {args:?} should fail\nstdout: {stdout}\nstderr: {stderr}");
            assert!(
                stderr.contains("is a symbolic link"),
                "{name}: acas {args:?} should say what is wrong:\n{stderr}"
            );
            assert_eq!(snapshot(outside.path()), before, "{name}: acas {args:?} wrote outside the workspace");
        }
    }
}

#[test]
fn the_editor_is_served_without_state_when_the_state_is_linked() {
    for (name, link) in links() {
        let (workspace, outside) = setup(&link);
        let before = snapshot(outside.path());
        let mut client = LspClient::start(&[]);
        client.initialize(Some(workspace.path()), json!({}));
        let said = client.expect("a message about the link", |m| {
            m["method"].as_str().is_some_and(|m| m.starts_with("window/"))
                && m["params"]["message"].as_str().is_some_and(|t| t.contains("is a symbolic link"))
        });
        assert!(said["params"]["message"].as_str().unwrap().contains("not being recorded"), "{name}: {said}");
        let status = client.request("acas/status", Value::Null);
        assert!(status.get("result").is_some(), "{name}: {status}");
        assert_eq!(client.shutdown(), 0, "{name}");
        client.finish(|m| {
            is_progress(m)
                || m["method"] == "textDocument/publishDiagnostics"
                || m["method"].as_str().is_some_and(|m| m.starts_with("window/"))
        });
        assert_eq!(snapshot(outside.path()), before, "{name}: the server wrote outside the workspace");
    }
}
