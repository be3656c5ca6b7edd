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

/// Links planted while the server runs, to a file and to a directory outside the workspace, as
/// a script or an agent can make them: nothing they lead to is read, placed or recorded as a file
/// of the workspace, while a real file created beside them is.
#[test]
fn links_planted_while_serving_bring_nothing_from_outside() {
    let workspace = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (ws, out) = (workspace.path(), outside.path());
    std::fs::create_dir(ws.join("src")).unwrap();
    std::fs::write(ws.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(out.join("creds.rs"), "SECRET=topsecret\n").unwrap();
    std::fs::create_dir(out.join("vendor")).unwrap();
    std::fs::write(out.join("vendor/leak.rs"), "fn leak( {}\n").unwrap();

    let mut client = LspClient::start(&[]);
    client.initialize(Some(ws), json!({}));
    // The watcher is live once a file created now is placed.
    std::fs::write(ws.join("src/first.rs"), "fn first( {}\n").unwrap();
    client.expect_diagnostics(&acas_e2e::file_uri(&ws.join("src/first.rs")), |d| {
        d["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });

    std::os::unix::fs::symlink(out.join("vendor"), ws.join("src/vendor")).unwrap();
    std::os::unix::fs::symlink(out.join("creds.rs"), ws.join("src/creds.rs")).unwrap();
    client.expect_log("creds.rs: it leads out of the workspace");
    std::fs::write(ws.join("src/second.rs"), "fn second( {}\n").unwrap();
    client.expect_diagnostics(&acas_e2e::file_uri(&ws.join("src/second.rs")), |d| {
        d["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    assert_eq!(client.shutdown(), 0);
    let published: Vec<String> = client
        .take_all(|m| m["method"] == "textDocument/publishDiagnostics")
        .iter()
        .filter(|m| m["params"]["diagnostics"].as_array().is_some_and(|d| !d.is_empty()))
        .map(|m| m["params"]["uri"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        published.iter().all(|uri| !uri.contains("creds.rs") && !uri.contains("vendor")),
        "diagnostics of files outside the workspace: {published:?}"
    );

    let (code, stdout, stderr) = run_acas(&["activity", "--format", "json", "--limit", "100"], ws);
    assert_eq!(code, 0, "{stderr}");
    let activity: Value = serde_json::from_str(&stdout).unwrap();
    let paths: Vec<&str> =
        activity["activity"].as_array().unwrap().iter().filter_map(|a| a["path"].as_str()).collect();
    assert!(paths.contains(&"src/second.rs"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("src/vendor/")), "files outside recorded: {paths:?}");
}
