//! Save → first checker diagnostic on a Cargo crate with an error: `cargo check` run by hand,
//! `acas serve` told of the save over stdio, and bacon (when `BACON` names its binary), in
//! alternating rounds on the same crate.
//!
//! Run with `cargo build --release -p acas && BACON=$(command -v bacon) cargo bench -p acas-e2e
//! --bench checkers`. Each round changes a comment in the broken module, so that Cargo checks the
//! crate again, then measures:
//! - by hand: `cargo check --message-format=json` from its start to the first error it prints,
//!   and to its exit;
//! - ACAS, with the module open as in an editor and the workspace trusted: from the file's write
//!   (with `didChange` and `didSave` right after it) to the first `publishDiagnostics` with the
//!   error from `rustc` (the first save of a burst starts the checker at once); ACAS is told to
//!   run `cargo check` as by hand (it would run clippy where it is installed);
//! - bacon: `bacon --headless --export-locations --job check` from the file's write to
//!   `.bacon-locations` naming the error (bacon's own watcher and debounce included).

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use acas_e2e::{LspClient, file_uri};
use serde_json::{Value, json};

const ROUNDS: usize = 10;
const MODULES: usize = 40;

fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path().join("crate");
    make_crate(&root);
    // Warm: dependencies and the crate's own build once, outside the figures.
    let warm =
        Command::new("cargo").args(["check", "--message-format=json", "-q"]).current_dir(&root).output();
    assert!(warm.is_ok(), "cargo runs");

    // One tool at a time: two builds of one crate would wait on each other's lock.
    let mut by_hand_first = Vec::new();
    let mut by_hand_exit = Vec::new();
    let mut round = 0;
    for _ in 0..ROUNDS {
        round += 1;
        touch(&root, round);
        let (first, exit) = cargo_by_hand(&root);
        by_hand_first.push(first);
        by_hand_exit.push(exit);
    }
    let mut acas = Vec::new();
    let mut client = start_acas(&root, round);
    for _ in 0..ROUNDS {
        round += 1;
        acas.push(acas_round(&mut client, &root, round));
    }
    client.shutdown();
    let bacon = match std::env::var_os("BACON").map(PathBuf::from) {
        Some(bacon_bin) => bacon_rounds(&bacon_bin, &root, &mut round),
        None => Vec::new(),
    };
    println!("# Save → first checker diagnostic ({MODULES} modules, one error, {ROUNDS} rounds)\n");
    println!("| path | p50 ms | p95 ms | max ms |\n|---|---|---|---|");
    for (name, mut figures) in [
        ("cargo check by hand: first error", by_hand_first),
        ("cargo check by hand: exit", by_hand_exit),
        ("acas serve: save → rustc diagnostic", acas),
        ("bacon --headless: write → .bacon-locations", bacon),
    ] {
        if figures.is_empty() {
            continue;
        }
        figures.sort();
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            percentile(&figures, 0.5),
            percentile(&figures, 0.95),
            percentile(&figures, 1.0)
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn make_crate(root: &Path) {
    acas_e2e::generated_crate(root, MODULES);
    // The same command as by hand: ACAS would run clippy where it is installed.
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(
        root.join(".acas/config.toml"),
        "[[checkers]]\nname = \"clippy\"\ncommand = [\"cargo\", \"check\", \"--message-format=json\"]\nformat = \"cargo\"\n",
    )
    .unwrap();
    touch(root, 0);
}

/// Rewrites the broken module: an error that names the round (`missing_N` is not found), on
/// another line than the round before, so that what a round waits for cannot be what the
/// previous round published (moved with the edit).
fn touch(root: &Path, round: usize) {
    let padding = "//\n".repeat(round % 7);
    std::fs::write(
        root.join("src/m0.rs"),
        format!("// round {round}\n{padding}pub fn broken() -> u32 {{\n    missing_{round}\n}}\n"),
    )
    .unwrap();
}

/// The 1-based line of the error after [`touch`] of `round`.
fn error_line(round: usize) -> u64 {
    (round % 7) as u64 + 3
}

fn cargo_by_hand(root: &Path) -> (Duration, Duration) {
    let started = Instant::now();
    let mut child = Command::new("cargo")
        .args(["check", "--message-format=json"])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo starts");
    let mut first = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
        if first.is_none() && line.contains("\"level\":\"error\"") && line.contains("missing_") {
            first = Some(started.elapsed());
        }
    }
    child.wait().unwrap();
    (first.expect("cargo reported the error"), started.elapsed())
}

fn start_acas(root: &Path, round: usize) -> LspClient {
    let mut client = LspClient::start_in(root, &[("ACAS_LOG", "warn")]);
    client.trust_checkers();
    client.initialize(Some(root), json!({}));
    // The checkers' first run at start-up, outside the figures; the broken module is open.
    let path = root.join("src/m0.rs");
    let uri = file_uri(&path);
    let text = std::fs::read_to_string(&path).unwrap();
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "rust", "version": round, "text": text } }),
    );
    client.expect_diagnostics(&uri, |p| has_rustc_error(p, round));
    client
}

/// Whether `params` hold rustc's error about `missing_<round>` on its line.
fn has_rustc_error(params: &Value, round: usize) -> bool {
    let (name, line) = (format!("missing_{round}"), error_line(round) - 1);
    params["diagnostics"].as_array().is_some_and(|d| {
        d.iter().any(|d| {
            d["source"] == "rustc"
                && d["severity"] == 1
                && d["range"]["start"]["line"] == line
                && d["message"].as_str().is_some_and(|m| m.contains(&name))
        })
    })
}

fn acas_round(client: &mut LspClient, root: &Path, round: usize) -> Duration {
    let path = root.join("src/m0.rs");
    let uri = file_uri(&path);
    // Whatever the previous round left queued is read first.
    client.take_all(|_| true);
    // As an editor saves an open document: its new text, the write, then the save.
    let started = Instant::now();
    touch(root, round);
    let text = std::fs::read_to_string(&path).unwrap();
    client.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": round }, "contentChanges": [{ "text": text }] }),
    );
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    client.expect_diagnostics(&uri, |p| has_rustc_error(p, round));
    started.elapsed()
}

fn bacon_rounds(bacon: &Path, root: &Path, round: &mut usize) -> Vec<Duration> {
    let locations = root.join(".bacon-locations");
    let mut child = Command::new(bacon)
        .args(["--headless", "--export-locations", "--job", "check"])
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bacon starts");
    wait_for_locations(&locations, SystemTime::UNIX_EPOCH, &format!("m0.rs:{}", error_line(*round)));
    let mut figures = Vec::new();
    for _ in 0..ROUNDS {
        *round += 1;
        let before = modified(&locations);
        let started = Instant::now();
        touch(root, *round);
        wait_for_locations(&locations, before, &format!("m0.rs:{}", error_line(*round)));
        figures.push(started.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    figures
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Waits (polling every millisecond, for at most a minute) until `.bacon-locations` is newer than
/// `after` and names `place` (`m0.rs:LINE`).
fn wait_for_locations(path: &Path, after: SystemTime, place: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if modified(path) > after && std::fs::read_to_string(path).is_ok_and(|t| t.contains(place)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("bacon wrote no location for the error within a minute");
}
