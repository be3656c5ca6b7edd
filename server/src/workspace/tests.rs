//! The loop driven without stdio: a script of events goes in, every output comes out, and the
//! transcript is compared with a snapshot (`expect-test`; `UPDATE_EXPECT=1` rewrites it).
//!
//! The workspace is a real temporary directory with a real store. After each line of the script
//! the harness waits (bounded) until the loop has settled: no background work in flight and no
//! analysis pending ([`Request::Settled`]). Paths print relative to the root and durations as
//! `_`, so transcripts do not depend on the machine.
//!
//! Script lines (texts are quoted, with `\n` and `\"` escapes):
//! - `open PATH VERSION TEXT`, `change PATH VERSION L:C-L:C TEXT` (`*` for the whole text),
//!   `close PATH`: the editor's document sync;
//! - `write PATH TEXT`: writes a file on disk, telling no one; `modified PATH`: a file event,
//!   sent as the watcher's thread sends it but without the set of known files that thread keeps
//!   (so a rescan reports a file it did not know as created);
//! - `external PATH SOURCE [L:C-L:C SEVERITY CODE MESSAGE]`: a tool's complete report (none
//!   clears it);
//! - `copy FROM TO`: copies a file on disk, telling no one;
//! - `save PATH`: the editor saved a document; `run-checkers [NAME...]`: the command, answer
//!   printed (a step settles once the checkers' runs are over);
//! - `status`, `problems`: the requests, answers printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use expect_test::{Expect, expect};

use super::*;
use crate::classify::Severity;
use crate::text::{Position, TextRange};

/// How long one step may take to settle.
const SETTLE: Duration = Duration::from_secs(30);

fn check(script: &str, expected: Expect) {
    check_with(&[], script, expected);
}

/// [`check`] in a workspace that has `files` (path, text) before the loop starts.
/// A user configuration directory of the tests' own, where they trust their workspaces, set
/// once for the process before any thread of the test starts.
fn test_config_home() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        let home = std::env::temp_dir().join("acas-unit-tests-config");
        // SAFETY: the tests run with nextest, one process per test, and this runs before the
        // test starts any thread that reads the environment.
        unsafe { std::env::set_var("XDG_CONFIG_HOME", home) };
    });
}

fn check_with(files: &[(&str, &str)], script: &str, expected: Expect) {
    test_config_home();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let actual = runtime.block_on(run_script(files, script));
    expected.assert_eq(&actual);
}

async fn run_script(files: &[(&str, &str)], script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for (path, text) in files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    // The user trusts the workspace to run its checkers.
    crate::trust::trust(&root).unwrap();
    let options = Options {
        root: root.clone(),
        encoding: PositionEncoding::Utf16,
        settings: Default::default(),
        scan: true,
        watch: false,
        record: true,
        symbols: false,
        analysis_threads: 1,
        acting_for: None,
    };
    let (handle, mut outputs) = start(options);
    let mut out = String::new();
    // The initial scan's progress depends on the order of the walk's end and the analyses of
    // what it found (the store's files): not part of the transcript.
    settle(&handle).await;
    transcript(&root, &mut outputs, &mut String::new());
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        out.push_str(&format!("> {line}\n"));
        step(&root, &handle, line, &mut out).await;
        settle(&handle).await;
        transcript(&root, &mut outputs, &mut out);
    }
    handle.shutdown().await;
    out.replace(&root.display().to_string(), "$ROOT")
}

async fn settle(handle: &Handle) {
    tokio::time::timeout(SETTLE, handle.settled())
        .await
        .expect("the loop settles")
        .expect("the loop is running");
}

async fn step(root: &Path, handle: &Handle, line: &str, out: &mut String) {
    let words = split(line);
    let path = |i: usize| root.join(&words[i]);
    match words[0].as_str() {
        "open" => handle.send(Event::Opened {
            path: path(1),
            version: words[2].parse().unwrap(),
            language_id: String::new(),
            text: words[3].clone(),
        }),
        "change" => handle.send(Event::Changed {
            path: path(1),
            version: words[2].parse().unwrap(),
            changes: vec![ContentChange {
                range: (words[3] != "*").then(|| range(&words[3])),
                text: words[4].clone(),
            }],
        }),
        "close" => handle.send(Event::Closed { path: path(1) }),
        "save" => handle.send(Event::Saved { path: path(1) }),
        "copy" => {
            std::fs::copy(path(1), path(2)).unwrap();
        }
        // The user trusts the workspace's checkers as they are now (`acas trust`).
        "trust" => {
            crate::trust::trust(root).unwrap();
        }
        "run-checkers" => match handle.run_checkers(words[1..].to_vec()).await.unwrap() {
            Ok(started) => out.push_str(&format!("  started: {}\n", started.join(", "))),
            Err(refused) => out.push_str(&format!("  refused: {refused}\n")),
        },
        "write" => {
            let file = path(1);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, &words[2]).unwrap();
        }
        "modified" => handle
            .send(Event::Files(watch::Batch { changes: vec![Change::Modified(path(1))], rescan: false })),
        "external" => {
            let diagnostics = match &words[3..] {
                [] => Vec::new(),
                [at, severity, code, message] => vec![ExternalDiagnostic {
                    range: range(at),
                    severity: match severity.as_str() {
                        "error" => Severity::Error,
                        _ => Severity::Warning,
                    },
                    code: Some(code.clone()),
                    tool: None,
                    message: message.clone(),
                }],
                other => panic!("external takes a range, a severity, a code and a message: {other:?}"),
            };
            handle.send(Event::External { path: path(1), source: words[2].clone(), diagnostics });
        }
        "status" => {
            let status = handle.status().await.unwrap();
            out.push_str(&format!(
                "  status: {} files, {} open, {} with errors, store {}\n",
                status.files,
                status.open_documents,
                status.files_with_errors,
                if status.store_bytes > 0 { "written" } else { "empty" },
            ));
            for (name, state, detail) in status.subsystems {
                let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
                out.push_str(&format!("    {name}: {state}{detail}\n"));
            }
        }
        "problems" => {
            let (_, rows) = handle.problems(None, None).await.unwrap().unwrap();
            if rows.is_empty() {
                out.push_str("  problems: none\n");
            }
            for row in rows {
                let at: Vec<String> =
                    row.locations.iter().map(|(p, l, c)| format!("{p}:{}:{}", l + 1, c + 1)).collect();
                out.push_str(&format!(
                    "  problem: {} {} {} {:?} in {} at {}\n",
                    row.source,
                    row.severity,
                    row.category,
                    row.message,
                    row.symbol.as_deref().unwrap_or("-"),
                    at.join(", "),
                ));
            }
        }
        other => panic!("unknown script command `{other}`"),
    }
}

/// Appends every output the loop sent so far.
fn transcript(root: &Path, outputs: &mut mpsc::UnboundedReceiver<Output>, out: &mut String) {
    let rel = |p: &PathBuf| relative(root, p);
    while let Ok(output) = outputs.try_recv() {
        let line = match output {
            Output::Diagnostics { path, version, diagnostics } => {
                let mut line = format!(
                    "  diagnostics {}{}:",
                    rel(&path),
                    version.map(|v| format!(" v{v}")).unwrap_or_default()
                );
                if diagnostics.is_empty() {
                    line.push_str(" none");
                }
                for d in diagnostics.iter() {
                    line.push_str(&format!(
                        "\n    {}:{}-{}:{} {} {} {}: {}",
                        d.range.start.line + 1,
                        d.range.start.character + 1,
                        d.range.end.line + 1,
                        d.range.end.character + 1,
                        d.severity.as_str(),
                        d.category.as_str(),
                        d.source,
                        d.message
                    ));
                }
                line
            }
            Output::Changes(changes) => {
                let changes: Vec<String> = changes.iter().map(|c| format!("{c:?}")).collect();
                format!("  changes: {}", changes.join(", "))
            }
            Output::Message { level, text } => format!("  message {level:?}: {text}"),
            Output::Progress(progress) => format!("  progress: {progress:?}"),
            Output::WorkflowRun(state) => format!("  run: {state:?}"),
            Output::AskTrust { text, .. } => format!("  ask trust: {text}"),
        };
        out.push_str(&seconds(&line));
        out.push('\n');
    }
}

/// `in 0.3 s` as `in _ s`.
fn seconds(line: &str) -> String {
    let re = regex::Regex::new(r"in \d+\.\d+ s").unwrap();
    re.replace_all(line, "in _ s").into_owned()
}

fn range(text: &str) -> TextRange {
    let (start, end) = text.split_once('-').expect("a range is L:C-L:C");
    let position = |p: &str| {
        let (line, column) = p.split_once(':').expect("a position is L:C");
        Position { line: line.parse::<u32>().unwrap() - 1, character: column.parse::<u32>().unwrap() - 1 }
    };
    TextRange { start: position(start), end: position(end) }
}

/// Splits a script line into words; a quoted word may hold spaces and `\n`, `\"` escapes.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some(other) => word.push(other),
                        None => {}
                    },
                    c => word.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

#[test]
fn a_syntax_error_typed_and_fixed_in_an_open_document() {
    check(
        r#"
open a.rs 1 "fn main() {\n    let x = (1;\n}\n"
change a.rs 2 2:15-2:15 ")"
change a.rs 3 * "fn main() {\n    let x = 1\n}\n"
close a.rs
"#,
        expect![[r#"
            > open a.rs 1 "fn main() {\n    let x = (1;\n}\n"
              diagnostics a.rs v1:
                2:15-2:16 error syntax acas: missing `)` to close `(` at 2:13
            > change a.rs 2 2:15-2:15 ")"
              diagnostics a.rs v2: none
            > change a.rs 3 * "fn main() {\n    let x = 1\n}\n"
              diagnostics a.rs v3:
                2:14-2:14 error syntax acas: expected `;`
            > close a.rs
              diagnostics a.rs: none
        "#]],
    );
}

#[test]
fn changes_with_a_stale_version_are_ignored() {
    check(
        r#"
open a.rs 5 "fn main() {}\n"
change a.rs 5 1:12-1:12 "("
change a.rs 4 1:12-1:12 "("
status
change a.rs 6 1:12-1:12 "("
"#,
        expect![[r#"
            > open a.rs 5 "fn main() {}\n"
              diagnostics a.rs v5: none
            > change a.rs 5 1:12-1:12 "("
            > change a.rs 4 1:12-1:12 "("
            > status
              status: 0 files, 1 open, 0 with errors, store written
                store: ok
                watcher: off
                config: ok
                scan: ok
                checkers: off
            > change a.rs 6 1:12-1:12 "("
              diagnostics a.rs v6:
                1:13-1:14 error syntax acas: missing `)` to close `(` at 1:12
        "#]],
    );
}

#[test]
fn another_tools_report_replaces_the_last_and_an_empty_one_clears_it() {
    check(
        r#"
write b.rs "fn helper() {\n    missing();\n}\n"
external b.rs rustc 2:5-2:12 error E0425 "cannot find function `missing` in this scope"
problems
external b.rs rustc 2:5-2:12 warning W1 "unused result"
problems
external b.rs rustc
problems
"#,
        expect![[r#"
            > write b.rs "fn helper() {\n    missing();\n}\n"
            > external b.rs rustc 2:5-2:12 error E0425 "cannot find function `missing` in this scope"
            > problems
              problem: rustc error name "cannot find function `missing` in this scope" in helper at b.rs:2:5
            > external b.rs rustc 2:5-2:12 warning W1 "unused result"
            > problems
              problem: rustc warning other "unused result" in helper at b.rs:2:5
            > external b.rs rustc
            > problems
              problems: none
        "#]],
    );
}

#[test]
fn a_file_event_for_an_unopened_file_is_analysed_off_the_loop() {
    check(
        r#"
write c.rs "fn broken( {}\n"
modified c.rs
status
write c.rs "fn fixed() {}\n"
modified c.rs
status
"#,
        expect![[r#"
            > write c.rs "fn broken( {}\n"
            > modified c.rs
              changes: Modified("$ROOT/c.rs")
              diagnostics c.rs:
                1:12-1:13 error syntax acas: missing `)` to close `(` at 1:10
            > status
              status: 1 files, 0 open, 1 with errors, store written
                store: ok
                watcher: off
                config: ok
                scan: ok
                checkers: off
            > write c.rs "fn fixed() {}\n"
            > modified c.rs
              changes: Modified("$ROOT/c.rs")
              diagnostics c.rs: none
            > status
              status: 1 files, 0 open, 0 with errors, store written
                store: ok
                watcher: off
                config: ok
                scan: ok
                checkers: off
        "#]],
    );
}

#[test]
fn a_bad_configuration_keeps_the_last_one_until_it_is_fixed() {
    check(
        r#"
write .acas/config.toml "[files\nmax_size = 10\n"
modified .acas/config.toml
status
write .acas/config.toml "[files]\nmax_size = 100000\n"
modified .acas/config.toml
status
"#,
        expect![[r#"
            > write .acas/config.toml "[files\nmax_size = 10\n"
            > modified .acas/config.toml
              changes: Modified("$ROOT/.acas/config.toml")
              message Error: $ROOT/.acas/config.toml:1:7: unclosed table, expected `]`; the previous settings stay in force
              diagnostics .acas/config.toml:
                1:7-1:8 error build acas: unclosed table, expected `]`
            > status
              status: 0 files, 0 open, 0 with errors, store written
                store: ok
                watcher: off
                config: degraded ($ROOT/.acas/config.toml:1:7: unclosed table, expected `]`)
                scan: ok
                checkers: off
            > write .acas/config.toml "[files]\nmax_size = 100000\n"
            > modified .acas/config.toml
              changes: Modified("$ROOT/.acas/config.toml")
              diagnostics .acas/config.toml: none
              changes: Created("$ROOT/.acas/config.toml")
            > status
              status: 0 files, 0 open, 0 with errors, store written
                store: ok
                watcher: off
                config: ok
                scan: ok
                checkers: off
        "#]],
    );
}

/// A request waits for the background work started before it, not for work started after: a
/// stream of later work (another tool reporting on file after file) cannot hold it forever.
#[test]
fn a_request_waits_only_for_the_work_started_before_it() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let (tx, _rx) = mpsc::unbounded_channel();
        let (output, _outputs) = mpsc::unbounded_channel();
        let options = Options::detached(PositionEncoding::Utf16, Default::default());
        let mut workspace = Workspace::new(options, Handle { tx }, output);
        let before = workspace.next_work;
        workspace.off_loop("work before the request", || (), |()| Done::Nothing);
        let (reply, mut answered) = oneshot::channel();
        workspace.handle(Event::Request(Request::Status(reply)));
        workspace.answer_deferred();
        assert!(answered.try_recv().is_err(), "answered before the work started ahead of it was back");

        let after = workspace.next_work;
        workspace.off_loop("work after the request", || (), |()| Done::Nothing);
        workspace.handle(Event::Done(before, Done::Nothing));
        workspace.answer_deferred();
        let (status, _) = answered.try_recv().expect("answered once the work before it was back");
        assert_eq!(status.open_documents, 0);
        assert!(workspace.in_flight.contains(&after), "the later work is still in flight");
    });
}

/// Reports of other tools being located hold up only the requests that read them: a flood of
/// reports for unopened files does not hold a status or a hover. And one report per file and
/// tool is located at a time; the newest that arrived meanwhile follows.
#[test]
fn locating_other_tools_reports_holds_only_the_requests_that_read_them() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.rs");
        std::fs::write(&file, "fn helper() {\n    missing();\n}\n").unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let (output, _outputs) = mpsc::unbounded_channel();
        let options = Options::detached(PositionEncoding::Utf16, Default::default());
        let mut workspace = Workspace::new(options, Handle { tx }, output);
        let report = |message: &str| ExternalDiagnostic {
            range: TextRange {
                start: Position { line: 1, character: 4 },
                end: Position { line: 1, character: 11 },
            },
            severity: Severity::Error,
            code: None,
            tool: None,
            message: message.to_owned(),
        };
        for message in ["first", "second", "third"] {
            workspace.handle(Event::External {
                path: file.clone(),
                source: "rustc".into(),
                diagnostics: vec![report(message)],
            });
        }
        assert_eq!(workspace.locating.len(), 1, "one report located at a time per file and tool");
        let locating = *workspace.locating.first().unwrap();

        let (reply, mut status) = oneshot::channel();
        workspace.handle(Event::Request(Request::Status(reply)));
        let (reply, mut problems) = oneshot::channel();
        workspace.handle(Event::Request(Request::Problems(reply)));
        workspace.answer_deferred();
        assert!(status.try_recv().is_ok(), "the status does not wait for other tools' reports");
        assert!(problems.try_recv().is_err(), "the problems wait for them");

        // The first report comes back stale; the third (the newest) is located next.
        workspace.handle(Event::Done(
            locating,
            Done::Located {
                path: file.clone(),
                source: "rustc".into(),
                seq: 1,
                diagnostics: vec![report("first")],
                symbols: vec![None],
            },
        ));
        workspace.answer_deferred();
        assert!(problems.try_recv().is_ok(), "answered once the report before it was back");
        assert_eq!(workspace.locating.len(), 1, "the newest waiting report is being located");
        assert!(workspace.external_current.is_empty(), "the stale report was not applied");
    });
}

/// A checker configured for `*.py` files that prints `report.txt` in the matcher's format.
const LINT: &str = r#"
[[checkers]]
name = "lint"
command = "cat report.txt"
pattern = '^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<code>\w+) (?P<message>.+)$'
columns = "chars"
on_start = false
files = ["**/*.py"]
"#;

#[test]
fn a_checker_runs_on_save_replaces_its_diagnostics_clears_what_it_no_longer_reports_and_moves_with_edits() {
    check_with(
        &[
            (".acas/config.toml", LINT),
            ("a.py", "x = 'é'; y = z\n"),
            ("b.py", "w = 1\n"),
            ("report.txt", "a.py:1:14: E1 undefined name `z`\nb.py:1:1: E2 unused w\n"),
        ],
        r#"
        open a.py 1 "x = 'é'; y = z\n"
        save a.py
        write report.txt "a.py:1:14: E1 undefined name `z`\n"
        run-checkers
        change a.py 2 1:1-1:1 "import os\n"
        write report.txt "a.py:2:14: E1 undefined name `z`\n"
        save a.py
        change a.py 3 2:14-2:15 "zz"
        save notes.txt
        status
        problems
        run-checkers nothing
        "#,
        expect![[r#"
            > open a.py 1 "x = 'é'; y = z\n"
              diagnostics a.py v1: none
            > save a.py
              diagnostics a.py v1:
                1:14-1:15 error other lint: undefined name `z`
              diagnostics b.py:
                1:1-1:2 error other lint: unused w
            > write report.txt "a.py:1:14: E1 undefined name `z`\n"
            > run-checkers
              started: lint
              diagnostics b.py: none
            > change a.py 2 1:1-1:1 "import os\n"
              diagnostics a.py v2:
                2:14-2:15 error other lint: undefined name `z`
            > write report.txt "a.py:2:14: E1 undefined name `z`\n"
            > save a.py
            > change a.py 3 2:14-2:15 "zz"
              diagnostics a.py v3: none
            > save notes.txt
            > status
              status: 2 files, 1 open, 0 with errors, store written
                store: ok
                watcher: off
                config: ok
                scan: ok
                checkers: ok (lint)
            > problems
              problem: lint error other "undefined name `z`" in - at a.py:1:14
            > run-checkers nothing
              refused: the workspace has no checker `nothing`; it has lint; define it under [[checkers]] in .acas/config.toml
        "#]],
    );
}

#[test]
fn a_missing_checker_is_told_once_and_shown_in_the_status() {
    check_with(
        &[
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"lint\"\ncommand = [\"acas-no-such-tool\"]\npattern = '^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.+)$'\non_start = false\n",
            ),
            ("a.py", "x = 1\n"),
        ],
        r#"
        save a.py
        save a.py
        status
        "#,
        expect![[r#"
            > save a.py
              message Warning: checker `lint`: `acas-no-such-tool` was not found (looked on PATH from $ROOT/); install it, or turn the checker off in .acas/config.toml with `[[checkers]] name = "lint"` and `enabled = false`
            > save a.py
            > status
              status: 1 files, 0 open, 0 with errors, store written
                store: ok
                watcher: off
                config: ok
                scan: ok
                checkers: degraded (checker `lint`: `acas-no-such-tool` was not found (looked on PATH from $ROOT/); install it, or turn the checker off in .acas/config.toml with `[[checkers]] name = "lint"` and `enabled = false`)
        "#]],
    );
}

/// A checker whose program is not installed.
const GHOST: &str = r#"
[[checkers]]
name = "ghost"
command = ["acas-no-such-tool"]
pattern = '^(?P<file>[^:]+):(?P<line>\d+): (?P<message>.+)$'
on_start = false
"#;

#[test]
fn a_changed_configuration_detects_the_checkers_again_and_tells_a_failure_again() {
    let next = format!("{}timeout = \"10s\"\n{LINT}", GHOST);
    check_with(
        &[
            (".acas/config.toml", GHOST),
            (".acas/next.toml", &next),
            ("a.py", "x = 1\n"),
            ("report.txt", "a.py:1:1: E1 one\n"),
        ],
        r#"
        save a.py
        save a.py
        run-checkers lint
        copy .acas/next.toml .acas/config.toml
        trust
        modified .acas/config.toml
        run-checkers
        "#,
        expect![[r#"
            > save a.py
              message Warning: checker `ghost`: `acas-no-such-tool` was not found (looked on PATH from $ROOT/); install it, or turn the checker off in .acas/config.toml with `[[checkers]] name = "ghost"` and `enabled = false`
            > save a.py
            > run-checkers lint
              refused: the workspace has no checker `lint`; it has ghost; define it under [[checkers]] in .acas/config.toml
            > copy .acas/next.toml .acas/config.toml
            > trust
            > modified .acas/config.toml
              changes: Modified("$ROOT/.acas/config.toml")
            > run-checkers
              started: ghost, lint
              message Warning: checker `ghost`: `acas-no-such-tool` was not found (looked on PATH from $ROOT/); install it, or turn the checker off in .acas/config.toml with `[[checkers]] name = "ghost"` and `enabled = false`
              diagnostics a.py:
                1:1-1:2 error other lint: one
        "#]],
    );
}
