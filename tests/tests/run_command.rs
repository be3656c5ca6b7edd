//! `acas run -- CMD` against the real binary and real commands: it ends when the command ends
//! although a process the command left behind keeps its output open, it records only files
//! inside the workspace, and a running `acas serve` shows what it recorded and what a later run
//! cleared.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use acas_e2e::{LspClient, acas_bin, file_uri, write_files};
use serde_json::{Value, json};

/// Starts `acas run -- ARGS` in `dir`; its stdout and stderr are pipes the caller reads.
fn start_run(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(acas_bin())
        .args(["run", "--"])
        .args(args)
        .current_dir(dir)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `acas run` to end, for at most `limit`; answers (code, stdout, stderr), or `None`
/// when it had not ended by then (it is then killed).
fn wait_run(mut child: std::process::Child, limit: Duration) -> Option<(i32, Vec<u8>, Vec<u8>)> {
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let err = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            bytes
        });
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let status = child.wait().unwrap();
        let _ = tx.send((status.code().unwrap_or(-1), out, err.join().unwrap()));
    });
    match rx.recv_timeout(limit) {
        Ok(ended) => Some(ended),
        Err(_) => {
            kill(pid);
            None
        }
    }
}

/// SIGKILL to `pid`, a process this test started.
fn kill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// The pid a script printed on a line `pid N` of `text`.
fn printed_pid(text: &str) -> Option<u32> {
    text.lines().find_map(|l| l.strip_prefix("pid ")?.trim().parse().ok())
}

#[test]
fn acas_run_ends_with_the_command_although_a_background_process_keeps_its_output_open() {
    let dir = tempfile::tempdir().unwrap();
    // Output written just before the command exits still comes through whole.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
    std::fs::write(dir.path().join("big.bin"), &bytes).unwrap();
    // The background `sleep` inherits stdout and stderr, as a server started with `&` does.
    let script = "sleep 300 & echo \"pid $!\" >&2; cat big.bin; exit 7";
    let child = start_run(dir.path(), &["sh", "-c", script]);
    let ended = wait_run(child, Duration::from_secs(60));
    let Some((code, stdout, stderr)) = ended else {
        panic!(
            "acas run was still running 60 s after its command exited (a background process holds its output)"
        )
    };
    let stderr = String::from_utf8_lossy(&stderr);
    if let Some(pid) = printed_pid(&stderr) {
        kill(pid);
    }
    assert_eq!(code, 7, "{stderr}");
    assert!(stdout == bytes, "stdout: {} bytes of {}", stdout.len(), bytes.len());
}

#[test]
fn acas_run_passes_all_the_commands_output_to_a_reader_slower_than_the_drain() {
    let dir = tempfile::tempdir().unwrap();
    // Small enough to sit in the pipes while nobody reads: the command exits before its output
    // is taken, as with `acas run -- cmd | less` and a person who pages slowly.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(150_000).collect();
    std::fs::write(dir.path().join("out.bin"), &bytes).unwrap();
    let script = "sleep 300 & echo \"pid $!\" >&2; cat out.bin; : > exited";
    let mut child = start_run(dir.path(), &["sh", "-c", script]);
    let exited = dir.path().join("exited");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !exited.exists() {
        assert!(std::time::Instant::now() < deadline, "the command never exited");
        std::thread::yield_now();
    }
    // The reader takes its time, longer than the drain after the command's exit.
    std::thread::sleep(Duration::from_secs(4));
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    child.wait().unwrap();
    if let Some(pid) = printed_pid(&stderr) {
        kill(pid);
    }
    assert!(stdout == bytes, "stdout: {} bytes of {}", stdout.len(), bytes.len());
}

/// The rows of `.acas/state.db`'s open diagnostics: (path, source, message of the problem).
fn open_rows(root: &Path) -> Vec<(String, String, String)> {
    let db = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
    db.prepare(
        "SELECT o.path, o.source, p.message FROM open_diagnostic o JOIN problem p USING (fingerprint)
         ORDER BY o.path",
    )
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn acas_run_records_no_file_outside_the_workspace_whatever_the_trace_names() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().canonicalize().unwrap();
    let ws = top.join("ws");
    write_files(
        &top,
        &[("outside/secret.py", "x = 1\n"), ("ws2/evil.py", "x = 1\n"), ("ws/app.py", "x = 1\n")],
    );
    std::os::unix::fs::symlink("../outside", ws.join("linkout")).unwrap();
    let w = ws.display();
    let traces: String = [
        "../outside/secret.py".to_owned(),
        format!("{w}/../outside/secret.py"),
        "linkout/secret.py".to_owned(),
        format!("{w}/linkout/secret.py"),
        format!("{}/ws2/evil.py", top.display()),
        format!("{w}/.acas/state.db"),
        "app.py".to_owned(),
    ]
    .iter()
    .enumerate()
    .map(|(i, file)| {
        format!("Traceback (most recent call last):\n  File \"{file}\", line 1, in <module>\nValueError: case {i}\n")
    })
    .collect();
    std::fs::write(ws.join("out.txt"), traces).unwrap();
    // The state must exist for `.acas/state.db` to be a file the trace can name.
    std::fs::create_dir_all(ws.join(".acas")).unwrap();
    let child = start_run(&ws, &["sh", "-c", "cat out.txt >&2; exit 3"]);
    let (code, _, stderr) = wait_run(child, Duration::from_secs(60)).expect("acas run ends");
    assert_eq!(code, 3, "{}", String::from_utf8_lossy(&stderr));
    let rows = open_rows(&ws);
    assert_eq!(
        rows,
        [("app.py".to_owned(), "python".to_owned(), "ValueError: case 6".to_owned())],
        "only the file inside the workspace is recorded"
    );
}

#[test]
fn what_acas_run_records_is_shown_in_a_running_editor_and_cleared_by_a_later_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let module = "def divide(a, b):\n    return a / b\n";
    write_files(
        &root,
        &[
            ("pkg/__init__.py", ""),
            ("pkg/mod.py", module),
            (
                "crash.py",
                "import os\nfrom pkg.mod import divide\n\nif os.path.exists(\"crash-now\"):\n    divide(1, 0)\n",
            ),
            ("crash-now", ""),
        ],
    );
    let mut editor = LspClient::start(&[]);
    editor.initialize(Some(&root), json!({}));
    let uri = file_uri(&root.join("pkg/mod.py"));
    editor.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": module } }),
    );
    editor.expect_diagnostics(&uri, |p| p["diagnostics"].as_array().is_some_and(|d| d.is_empty()));

    let run = |root: &Path| {
        let child = start_run(root, &["python3", "crash.py"]);
        wait_run(child, Duration::from_secs(60)).expect("acas run ends")
    };
    let (code, _, stderr) = run(&root);
    let stderr = String::from_utf8_lossy(&stderr);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("ZeroDivisionError"), "{stderr}");
    let shown = editor.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().is_some_and(|d| d.iter().any(|d| d["source"] == "python"))
    });
    let crash: Vec<&Value> =
        shown["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "python").collect();
    assert_eq!(crash.len(), 1, "{shown:#}");
    assert_eq!(crash[0]["range"]["start"]["line"], 1, "on `return a / b`: {shown:#}");
    assert!(crash[0]["message"].as_str().unwrap().contains("ZeroDivisionError"), "{shown:#}");

    // The same command, now running clean, clears it in the editor too.
    std::fs::remove_file(root.join("crash-now")).unwrap();
    let (code, _, stderr) = run(&root);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&stderr));
    editor.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().is_some_and(|d| !d.iter().any(|d| d["source"] == "python"))
    });
    assert_eq!(editor.shutdown(), 0);
}
