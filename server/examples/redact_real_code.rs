//! Measures false redactions on real code: redacts every file of the given directories (a
//! deterministic sample of them with `--sample N`, or stdin with `-`) and prints each changed
//! line, then the number of files, lines and changed lines.
//!
//! ```sh
//! cargo run --release -p acas --example redact_real_code -- /usr/lib/python3.11
//! cargo run --release -p acas --example redact_real_code -- --sample 400 ~/.cargo/registry/src
//! ```

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Read;
use std::path::{Path, PathBuf};

use acas::escalate::redact::{Redactor, redact_text};

const EXTENSIONS: &[&str] = &["py", "rs"];

fn main() {
    let mut sample = None;
    let mut roots = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--sample" {
            sample = args.next().and_then(|n| n.parse::<usize>().ok());
        } else {
            roots.push(arg);
        }
    }
    if roots == ["-"] {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).expect("stdin is text");
        print!("{}", redact_text(&text, false).0);
        return;
    }
    let mut files = Vec::new();
    for root in &roots {
        walk(Path::new(root), &mut files);
    }
    files.sort();
    if let Some(n) = sample {
        // Every k-th file of the sorted list: the same sample on every run.
        let step = (files.len() / n.max(1)).max(1);
        files = files.into_iter().step_by(step).take(n).collect();
    }
    // A secret spanning lines leaves a marker on each, so that lines compare one to one.
    let redactor = Redactor::new(&[]).expect("no globs to compile");
    let (mut lines, mut changed, mut read) = (0, 0, 0);
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        read += 1;
        lines += text.lines().count();
        let (redacted, _) = redactor.redact_keeping_lines(&text, false);
        if redacted == text {
            continue;
        }
        for (number, (before, after)) in text.lines().zip(redacted.lines()).enumerate() {
            if before != after {
                changed += 1;
                println!("{}:{}: {}\n    -> {}", path.display(), number + 1, before.trim(), after.trim());
            }
        }
    }
    let rate = 100.0 * changed as f64 / lines.max(1) as f64;
    println!("{read} files, {lines} lines, {changed} lines changed ({rate:.4}%)");
}

fn walk(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else { return };
        for entry in entries.flatten() {
            walk(&entry.path(), files);
        }
    } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e)) {
        files.push(path.to_path_buf());
    }
}
