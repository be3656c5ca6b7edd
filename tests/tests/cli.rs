//! `acas check`, `acas watch` and `acas activity` as a user runs them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use acas_e2e::{TIMEOUT, acas_bin, run_acas};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn check_json(dir: &Path) -> (i32, Value) {
    let (code, stdout, stderr) = run_acas(&["check", ".", "--format", "json"], dir);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, report)
}

#[test]
fn check_reports_the_sample_workspace_in_every_format() {
    let sample = fixtures().join("sample");
    let (code, report) = check_json(&sample);
    assert_eq!(code, 1);
    assert_eq!(report["files_checked"], 8);
    let diagnostics = report["diagnostics"].as_array().unwrap();
    let mut located: Vec<(String, u64)> = diagnostics
        .iter()
        .map(|d| (d["path"].as_str().unwrap().to_owned(), d["range"]["start"]["line"].as_u64().unwrap()))
        .collect();
    located.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(
        located,
        [("scripts/report.py".to_owned(), 8), ("src/lib.rs".to_owned(), 9), ("web/app.ts".to_owned(), 10)]
    );
    for d in diagnostics {
        assert_eq!(d["severity"], "error");
        assert_eq!(d["category"], "syntax");
        assert_eq!(d["source"], "acas");
        assert!(d["fingerprint"].as_str().is_some_and(|f| f.len() >= 8), "{d}");
        assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let symbols: Vec<&str> = diagnostics.iter().filter_map(|d| d["symbol"].as_str()).collect();
    assert!(symbols.contains(&"shapes::Circle::area"), "{symbols:?}");
    assert!(symbols.contains(&"Report.total"), "{symbols:?}");

    let (code, sarif, _) = run_acas(&["check", ".", "--format", "sarif"], &sample);
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), diagnostics.len());
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["region"]["startLine"], 9);

    let (code, text, _) = run_acas(&["check", "src/lib.rs"], &sample);
    assert_eq!(code, 1);
    // rustc's layout: the title, the place, the line with a caret, the related span.
    assert!(text.starts_with("error[syntax]: missing `)`"), "{text}");
    assert!(text.contains("--> lib.rs:10:56\n"), "{text}");
    assert!(text.contains("- `(` opened here"), "{text}");
    assert!(text.contains("by category: 1 syntax\n"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when piped: {text}");
    assert!(text.contains("1 file checked"), "{text}");

    let (code, text, _) = run_acas(&["check", "src/main.rs"], &sample);
    assert_eq!((code, text.trim()), (0, "1 file checked, 0 diagnostics (0 errors) in 0 files"));
}

#[test]
fn check_fails_clearly_on_a_missing_path_and_a_broken_config() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_acas(&["check", "nowhere"], dir.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot open nowhere"), "{stderr}");

    std::fs::create_dir(dir.path().join(".acas")).unwrap();
    std::fs::write(dir.path().join(".acas/config.toml"), "[files]\nmax_size = -3\n").unwrap();
    let (code, _, stderr) = run_acas(&["check"], dir.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("config.toml:2:12"), "{stderr}");
}

#[test]
fn bad_files_are_skipped_and_nothing_else_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |name: &str, bytes: &[u8]| std::fs::write(root.join(name), bytes).unwrap();
    write("broken.rs", b"fn f( {}\n");
    write("latin1.py", b"name = 'caf\xe9'\n");
    write("binary.js", b"\x7fELF\x00\x00\x01garbage(((");
    let mut huge = b"const x = [\n".to_vec();
    huge.resize(3 * 1024 * 1024, b' ');
    write("huge.ts", &huge);
    std::os::unix::fs::symlink(root, root.join("loop")).unwrap();
    std::os::unix::fs::symlink(root.join("missing.rs"), root.join("dangling.rs")).unwrap();
    let fifo = root.join("pipe.go");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    let (code, report) = check_json(root);
    assert_eq!(code, 1);
    assert_eq!(report["files_checked"], 1);
    let paths: Vec<&str> =
        report["diagnostics"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert!(paths.iter().all(|p| *p == "broken.rs"), "{paths:?}");
    assert!(!paths.is_empty());

    // The size limit is configurable: raised, the huge file is parsed and reported.
    std::fs::create_dir(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), "[files]\nmax_size = 4194304\n").unwrap();
    let (_, report) = check_json(root);
    assert_eq!(report["files_checked"], 2);
}

#[test]
fn an_unreadable_directory_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("broken.py"), "def f(:\n").unwrap();
    std::fs::create_dir(root.join("secret")).unwrap();
    std::fs::write(root.join("secret/hidden.py"), "def g(:\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();

    // Root reads every directory, so run as an unprivileged user when the tests run as root.
    let mut command = if unsafe_is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(acas_bin());
        c
    } else {
        Command::new(acas_bin())
    };
    let output = command
        .args(["check", ".", "--format", "json"])
        .current_dir(root)
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .output()
        .unwrap();
    std::fs::set_permissions(root.join("secret"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let paths: Vec<&str> =
        report["diagnostics"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"broken.py") && !paths.contains(&"secret/hidden.py"), "{paths:?}");
}

fn unsafe_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `acas watch --format json` as a child, with its stdout lines on a channel.
struct Watch {
    child: std::process::Child,
    lines: mpsc::Receiver<Value>,
}

impl Watch {
    fn start(root: &Path) -> Watch {
        let mut child = Command::new(acas_bin())
            .args(["watch", ".", "--format", "json"])
            .current_dir(root)
            .env("ACAS_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value: Value = serde_json::from_str(&line).expect("watch prints JSON lines");
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut watch = Watch { child, lines };
        watch.expect(|l| l["event"] == "scan");
        watch
    }

    fn expect(&mut self, predicate: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.lines.recv_timeout(TIMEOUT) {
                Ok(line) if predicate(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("acas watch printed nothing expected within {TIMEOUT:?}"),
            }
        }
    }

    /// Interrupts it as Ctrl-C would and waits for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
    }
}

fn activity(root: &Path, limit: usize) -> Vec<Value> {
    let (code, stdout, stderr) =
        run_acas(&["activity", "--format", "json", "--limit", &limit.to_string()], root);
    assert_eq!(code, 0, "{stderr}");
    let value: Value = serde_json::from_str(&stdout).unwrap();
    value["activity"].as_array().unwrap().clone()
}

#[test]
fn watch_prints_classified_changes_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("start.rs"), "fn start() {}\n").unwrap();
    let mut watch = Watch::start(root);

    std::fs::write(root.join("new.py"), "def f(:\n    pass\n").unwrap();
    let line = watch.expect(|l| l["event"] == "diagnostics" && l["path"] == "new.py");
    assert_eq!(line["diagnostics"][0]["category"], "syntax");
    std::fs::write(root.join("new.py"), "def f():\n    pass\n").unwrap();
    watch.expect(|l| {
        l["event"] == "diagnostics" && l["path"] == "new.py" && l["diagnostics"] == Value::Array(vec![])
    });
    std::fs::rename(root.join("new.py"), root.join("renamed.py")).unwrap();
    watch.expect(|l| l["event"] == "change" && l["kind"] == "renamed" && l["to"] == "renamed.py");
    std::fs::remove_file(root.join("renamed.py")).unwrap();
    watch.expect(|l| l["event"] == "change" && l["kind"] == "deleted" && l["path"] == "renamed.py");
    watch.stop();

    let rows = activity(root, 100);
    let has = |kind: &str, action: &str, path: &str| {
        rows.iter().any(|r| r["kind"] == kind && r["action"] == action && r["path"] == path)
    };
    assert!(has("file", "created", "new.py"), "{rows:#?}");
    assert!(has("file", "renamed", "new.py"), "{rows:#?}");
    assert!(has("file", "deleted", "renamed.py"), "{rows:#?}");
    assert!(has("diagnostic", "appeared", "new.py"), "{rows:#?}");
    assert!(has("diagnostic", "resolved", "new.py"), "{rows:#?}");
}

#[test]
fn a_burst_of_100k_file_events_loses_none() {
    const FILES: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut watch = Watch::start(root);
    // A branch switch: 100 directories of 1,000 new files each, as fast as the disk allows.
    for d in 0..100 {
        let sub = root.join(format!("d{d:03}"));
        std::fs::create_dir(&sub).unwrap();
        for f in 0..1000 {
            std::fs::write(sub.join(format!("f{f:04}.txt")), b"x").unwrap();
        }
    }
    let mut created = std::collections::HashSet::new();
    while created.len() < FILES {
        let line = watch.expect(|l| l["event"] == "change" && l["kind"] == "created");
        created.insert(line["path"].as_str().unwrap().to_owned());
    }
    watch.stop();
    let rows = activity(root, 1_000_000);
    let recorded: std::collections::HashSet<&str> = rows
        .iter()
        .filter(|r| r["kind"] == "file" && r["action"] == "created")
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(recorded.len(), FILES);
}
