//! Throughput of each checker output parser on large real outputs: the outputs captured under
//! `fixtures/checkers/` grown to about 32 MB each, line formats by repeating their lines, JSON
//! documents by repeating their entries (ESLint's files, Ruff's diagnostics, Pyright's
//! diagnostics, Jest's and Vitest's test files), so that every byte is real tool output.
//!
//! `cargo bench -p acas --bench parsers -- [--mb 32]`

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acas::checkers::Format;
use acas::checkers::parse::{self, Parser, Stream};

fn fixture(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/checkers").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The files' lines repeated until the text is at least `bytes` long.
fn repeated_lines(files: &[&str], bytes: usize) -> String {
    let one: String = files.iter().map(|f| fixture(f)).collect::<Vec<_>>().join("\n");
    let mut text = String::with_capacity(bytes + one.len());
    while text.len() < bytes {
        text.push_str(&one);
        text.push('\n');
    }
    text
}

/// The JSON document with the array at `pointer` repeated until the document is at least
/// `bytes` long, printed as the tool prints it (pretty for Ruff, compact for the others).
fn repeated_entries(file: &str, pointer: &str, bytes: usize, pretty: bool) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&fixture(file)).expect("the fixture is JSON");
    let entries = doc.pointer(pointer).and_then(|v| v.as_array()).cloned().expect("the array is there");
    let one = serde_json::to_string(&entries).unwrap().len().max(1);
    let times = bytes / one + 1;
    let grown: Vec<serde_json::Value> = (0..times).flat_map(|_| entries.iter().cloned()).collect();
    *doc.pointer_mut(pointer).unwrap() = serde_json::Value::Array(grown);
    if pretty { serde_json::to_string_pretty(&doc).unwrap() } else { serde_json::to_string(&doc).unwrap() }
}

fn measure(name: &str, make: &dyn Fn() -> Box<dyn Parser>, stream: Stream, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let mut best = Duration::MAX;
    let mut problems = 0;
    for _ in 0..3 {
        let mut parser = make();
        let mut out = Vec::new();
        let mut count = 0;
        let started = Instant::now();
        for line in &lines {
            parser.line(stream, line, &mut out);
            count += out.len();
            out.clear();
        }
        parser.finish(&mut out);
        count += out.len();
        best = best.min(started.elapsed());
        problems = count;
    }
    let mb = text.len() as f64 / 1e6;
    println!(
        "| {name} | {mb:.1} | {} | {problems} | {:.0} | {:.2} |",
        lines.len(),
        mb / best.as_secs_f64(),
        best.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb: usize = args
        .iter()
        .position(|a| a == "--mb")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let bytes = mb * 1_000_000;
    // The fixtures' projects were captured in /tmp/acas-fixtures; go test reads go.mod there.
    let cwd = PathBuf::from("/tmp/acas-fixtures/go-test");
    let format = |f: Format| {
        let cwd = cwd.clone();
        move || parse::parser(&f, &cwd)
    };
    let root = PathBuf::from("/tmp/acas-fixtures/crash");
    let crash = move || parse::crash(&root);
    let out = Stream::Stdout;
    let err = Stream::Stderr;

    println!("| parser | MB | lines | problems | MB/s | seconds |");
    println!("|---|---|---|---|---|---|");
    measure(
        "cargo (rustc JSON)",
        &format(Format::Cargo),
        out,
        &repeated_lines(&["cargo/check.jsonl", "cargo/clippy.jsonl"], bytes),
    );
    measure(
        "cargo test (with backtraces)",
        &format(Format::CargoTest),
        out,
        &repeated_lines(&["cargo-test/test-backtrace.out", "cargo-test/nextest.out"], bytes),
    );
    measure("tsc", &format(Format::Tsc), out, &repeated_lines(&["tsc/tsc.out"], bytes));
    measure(
        "eslint (JSON)",
        &format(Format::Eslint),
        out,
        &repeated_entries("eslint/eslint.json", "", bytes, false),
    );
    measure("ruff (JSON)", &format(Format::Ruff), out, &repeated_entries("ruff/ruff.json", "", bytes, true));
    measure("mypy (JSON lines)", &format(Format::Mypy), out, &repeated_lines(&["mypy/mypy.jsonl"], bytes));
    measure("mypy (plain)", &format(Format::Mypy), out, &repeated_lines(&["mypy/mypy-columns.out"], bytes));
    measure(
        "pyright (JSON)",
        &format(Format::Pyright),
        out,
        &repeated_entries("pyright/pyright.json", "/generalDiagnostics", bytes, true),
    );
    measure(
        "go build / vet",
        &format(Format::Go),
        err,
        &repeated_lines(&["go/build.out", "go/vet.out"], bytes),
    );
    measure("go test -json", &format(Format::GoTest), out, &repeated_lines(&["go-test/test.jsonl"], bytes));
    let pytest_cwd = cwd.clone();
    let pytest = move || {
        parse::parser(&Format::Pytest { junit_xml: PathBuf::from("/nonexistent/report.xml") }, &pytest_cwd)
    };
    measure(
        "pytest (long and native tracebacks)",
        &pytest,
        out,
        &repeated_lines(&["pytest/pytest.out", "pytest/pytest-native.out"], bytes),
    );
    measure(
        "jest (JSON)",
        &format(Format::Jest),
        out,
        &repeated_entries("jest/jest.json", "/testResults", bytes, false),
    );
    measure(
        "vitest (JSON)",
        &format(Format::Jest),
        out,
        &repeated_entries("jest/vitest.json", "/testResults", bytes, false),
    );
    measure(
        "crash (every trace and compiler)",
        &crash,
        err,
        &repeated_lines(
            &[
                "crash/python.out",
                "crash/python-library.out",
                "crash/rust-backtrace.out",
                "crash/node.out",
                "crash/node-esm.out",
                "crash/go.out",
                "crash/rustc.out",
                "crash/go-build.out",
            ],
            bytes,
        ),
    );
    measure(
        "crash (long lines with no crash)",
        &crash,
        err,
        &repeated_lines(&["cargo/check.jsonl", "eslint/eslint.json"], bytes),
    );
}
