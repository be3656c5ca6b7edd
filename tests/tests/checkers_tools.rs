//! `acas check --checkers` and `acas run` with the real tools on real projects made in temp
//! dirs: each problem at the tool's own file, line and column, with its category and source.
//!
//! The tools are installed by `scripts/install-checker-tools.sh` (from `.ci/run`) and put on
//! PATH by `cargo xtask test`; a test whose tool is absent fails, saying so.

use std::path::Path;
use std::process::Command;

use acas_e2e::{acas_trusted as acas, need_tool, write_files};
use serde_json::Value;

/// `acas check --checkers=NAMES --format json`: the exit code and the report.
fn check(dir: &Path, names: &str) -> (i32, Value) {
    let (code, stdout, stderr) = acas(&["check", &format!("--checkers={names}"), "--format", "json"], dir);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    for checker in report["checkers"].as_array().unwrap() {
        assert_eq!(checker["status"], "ok", "{checker:#}\n{stderr}");
    }
    (code, report)
}

/// The diagnostic of `source` in `path`, as (line, character, category) from 0.
fn found(report: &Value, path: &str, source: &str) -> Vec<(u64, u64, String)> {
    report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["path"] == path && d["source"] == source)
        .map(|d| {
            let start = &d["range"]["start"];
            (
                start["line"].as_u64().unwrap(),
                start["character"].as_u64().unwrap(),
                d["category"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const CRATE: &str = "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";

#[test]
fn a_cargo_type_error_is_reported_at_rustcs_place_with_a_fingerprint_that_survives_unrelated_edits() {
    need_tool("cargo");
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("Cargo.toml", CRATE), ("src/lib.rs", "pub fn f() -> u32 {\n    \"x\"\n}\n")]);
    let check_names = "cargo-check,clippy";
    let (_, list, _) = acas(&["checkers", "--format", "json"], dir.path());
    let list: Value = serde_json::from_str(&list).unwrap();
    let name = list["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .find(|n| check_names.split(',').any(|c| c == *n))
        .expect("a Rust checker")
        .to_owned();
    let (code, report) = check(dir.path(), &name);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(found(&report, "src/lib.rs", "rustc"), [(1, 4, "type".to_owned())], "{report:#}");
    let d = &report["diagnostics"][0];
    assert_eq!(d["symbol"], "f");
    assert!(d["message"].as_str().unwrap().starts_with("mismatched types"), "{d:#}");
    let fingerprint = d["fingerprint"].clone();

    let (code, text, _) = acas(&["check", &format!("--checkers={name}")], dir.path());
    assert_eq!(code, 1);
    assert!(text.contains("error[type]: mismatched types\n --> src/lib.rs:2:5\n"), "{text}");
    assert!(text.contains("expected `u32` because of return type"), "the related span is shown: {text}");
    assert!(text.contains("by category: 1 type\n"), "{text}");

    // An unrelated edit above it moves the error, not its fingerprint.
    write_files(
        dir.path(),
        &[("src/lib.rs", "/// Other.\npub fn g() {}\n\npub fn f() -> u32 {\n    \"x\"\n}\n")],
    );
    let (_, report) = check(dir.path(), &name);
    assert_eq!(found(&report, "src/lib.rs", "rustc"), [(4, 4, "type".to_owned())]);
    assert_eq!(report["diagnostics"][0]["fingerprint"], fingerprint);
}

#[test]
fn python_ruff_mypy_and_a_failing_pytest_test_are_reported() {
    for tool in ["ruff", "mypy", "pytest"] {
        need_tool(tool);
    }
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("pyproject.toml", "[project]\nname = \"pkg\"\n\n[tool.ruff]\n\n[tool.mypy]\n"),
            ("conftest.py", ""),
            ("pkg/__init__.py", "import os\n\n\ndef total(x: int) -> int:\n    return x + \"1\"\n"),
            ("tests/test_total.py", "def test_total():\n    value = 1 + 1\n    assert value == 3\n"),
        ],
    );
    let (code, report) = check(dir.path(), "ruff,mypy,pytest");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(found(&report, "pkg/__init__.py", "ruff"), [(0, 7, "lint".to_owned())], "{report:#}");
    assert_eq!(found(&report, "pkg/__init__.py", "mypy"), [(4, 15, "type".to_owned())], "{report:#}");
    let test = found(&report, "tests/test_total.py", "pytest");
    assert_eq!(test.len(), 1, "{report:#}");
    assert_eq!((test[0].0, test[0].2.as_str()), (2, "test"), "on the failing assertion: {report:#}");
}

#[test]
fn typescript_tsc_and_eslint_problems_are_reported() {
    need_tool("tsc");
    need_tool("eslint");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (
                "tsconfig.json",
                "{ \"compilerOptions\": { \"strict\": true, \"noEmit\": true }, \"include\": [\"src\"] }\n",
            ),
            (
                "eslint.config.mjs",
                "export default [{ files: [\"**/*.js\"], rules: { \"no-unused-vars\": \"error\" } }];\n",
            ),
            ("package.json", "{ \"name\": \"web\", \"private\": true }\n"),
            ("src/a.ts", "export const n: number = \"s\";\n"),
            ("src/b.js", "function f() {\n  const unused = 1;\n}\nf();\n"),
        ],
    );
    let (code, report) = check(dir.path(), "tsc,eslint");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(found(&report, "src/a.ts", "tsc"), [(0, 13, "type".to_owned())], "{report:#}");
    assert_eq!(found(&report, "src/b.js", "eslint"), [(1, 8, "lint".to_owned())], "{report:#}");
}

#[test]
fn a_go_vet_error_is_reported() {
    need_tool("go");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("go.mod", "module example.com/demo\n\ngo 1.19\n"),
            (
                "main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Printf(\"%d\\n\", \"x\")\n}\n",
            ),
        ],
    );
    let (_, report) = check(dir.path(), "go-build,go-vet");
    let vet = found(&report, "main.go", "go");
    assert_eq!(vet.len(), 1, "{report:#}");
    assert_eq!((vet[0].0, vet[0].1), (5, 1), "{report:#}");
    let message = report["diagnostics"][0]["message"].as_str().unwrap();
    assert!(message.contains("fmt.Printf format %d has arg \"x\" of wrong type string"), "{message}");
}

#[test]
fn acas_run_passes_a_traceback_through_and_records_it_on_the_innermost_frame() {
    let python = need_tool("python3");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[("crash.py", "def divide(a, b):\n    return a / b\n\n\nprint(\"start\")\ndivide(1, 0)\n")],
    );
    let by_hand = Command::new(&python).arg("crash.py").current_dir(dir.path()).output().unwrap();
    let (code, stdout, stderr) = acas(&["run", "--", python.to_str().unwrap(), "crash.py"], dir.path());
    assert_eq!(code, by_hand.status.code().unwrap());
    assert_eq!(stdout.as_bytes(), by_hand.stdout);
    let (passed, summary) = stderr.split_at(by_hand.stderr.len());
    assert_eq!(passed.as_bytes(), by_hand.stderr, "the traceback is passed through as it is");
    assert!(summary.starts_with("acas run: recognised 1 problem:\n  crash.py:2:"), "{summary}");
    assert!(summary.contains("ZeroDivisionError: division by zero"), "{summary}");

    let db = rusqlite::Connection::open(dir.path().join(".acas/state.db")).unwrap();
    let rows: Vec<(String, String, i64)> = db
        .prepare("SELECT path, source, line FROM open_diagnostic")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [("crash.py".to_owned(), "python".to_owned(), 1)]);
}

/// A project with `node_modules` of its own: the tools' installation, linked in.
fn node_project(dir: &Path, tool: &str, files: &[(&str, &str)]) {
    let bin = need_tool(tool);
    let modules = bin.parent().and_then(Path::parent).expect("node_modules/.bin/TOOL");
    std::os::unix::fs::symlink(modules, dir.join("node_modules")).unwrap();
    write_files(dir, files);
}

/// The diagnostics of `source` in `path`, as (line, code, message) with the line from 0.
fn found_messages(report: &Value, path: &str, source: &str) -> Vec<(u64, String, String)> {
    report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["path"] == path && d["source"] == source)
        .map(|d| {
            (
                d["range"]["start"]["line"].as_u64().unwrap(),
                d["category"].as_str().unwrap().to_owned(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const FAILING_TEST: &str = "function add(a, b) {\n  return a + b;\n}\n\ntest('adds', () => {\n  const total = add(1, 1);\n  expect(total).toBe(3);\n});\n";

#[test]
fn a_failing_jest_test_is_placed_on_its_assertion_line() {
    let dir = tempfile::tempdir().unwrap();
    node_project(
        dir.path(),
        "jest",
        &[
            (
                "package.json",
                "{ \"name\": \"demo\", \"private\": true, \"devDependencies\": { \"jest\": \"30\" } }\n",
            ),
            ("sum.test.js", FAILING_TEST),
        ],
    );
    let (code, report) = check(dir.path(), "jest");
    assert_eq!(code, 1, "{report:#}");
    let failures = found_messages(&report, "sum.test.js", "jest");
    assert_eq!(failures.len(), 1, "{report:#}");
    assert_eq!((failures[0].0, failures[0].1.as_str()), (6, "test"), "{report:#}");
    assert!(failures[0].2.contains("adds"), "{report:#}");
}

#[test]
fn a_failing_vitest_test_is_placed_on_its_assertion_line() {
    let dir = tempfile::tempdir().unwrap();
    node_project(
        dir.path(),
        "vitest",
        &[
            (
                "package.json",
                "{ \"name\": \"demo\", \"private\": true, \"type\": \"module\", \"devDependencies\": { \"vitest\": \"3\" } }\n",
            ),
            ("sum.test.js", &format!("import {{ test, expect }} from 'vitest';\n{FAILING_TEST}")),
        ],
    );
    let (code, report) = check(dir.path(), "vitest");
    assert_eq!(code, 1, "{report:#}");
    let failures = found_messages(&report, "sum.test.js", "vitest");
    assert_eq!(failures.len(), 1, "{report:#}");
    assert_eq!((failures[0].0, failures[0].1.as_str()), (7, "test"), "{report:#}");
    assert!(failures[0].2.contains("adds"), "{report:#}");
}

#[test]
fn a_staticcheck_finding_is_reported_with_its_code() {
    need_tool("go");
    need_tool("go-staticcheck");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("go.mod", "module example.com/demo\n\ngo 1.19\n"),
            (
                "main.go",
                "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tok := len(\"x\") > 0\n\tif ok == true {\n\t\tfmt.Println(\"yes\")\n\t}\n}\n",
            ),
        ],
    );
    let (_, report) = check(dir.path(), "staticcheck");
    let findings: Vec<&Value> =
        report["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "staticcheck").collect();
    assert_eq!(findings.len(), 1, "{report:#}");
    let d = findings[0];
    assert_eq!(d["path"], "main.go", "{d:#}");
    assert!(d["message"].as_str().unwrap().contains("should omit comparison to bool constant"), "{d:#}");
    assert_eq!(d["range"]["start"], serde_json::json!({ "line": 6, "character": 4 }), "{d:#}");
}
