//! Where the real tools' problems land and how `acas checkers` and `acas check` speak of them:
//! a Go test failing in a sub-package, pytest with its tracebacks turned off and with a test
//! module that does not parse, ESLint set up by its flat configuration alone, a configured
//! program that is installed nowhere, a configuration with several mistakes, the tool's own
//! column in the text report, and a quick fix offered only for the problem it fixes.

use std::path::Path;

use acas_e2e::{LspClient, acas_trusted as acas, file_uri, need_tool, write_files};
use serde_json::{Value, json};

/// `acas check --checkers=NAMES --format json`: the exit code and the report.
fn check(dir: &Path, names: &str) -> (i32, Value) {
    let (code, stdout, stderr) = acas(&["check", &format!("--checkers={names}"), "--format", "json"], dir);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    for checker in report["checkers"].as_array().unwrap() {
        assert_eq!(checker["status"], "ok", "{checker:#}\n{stderr}");
    }
    (code, report)
}

/// The diagnostics of `source`, as (path, line from 0, category, message).
fn found(report: &Value, source: &str) -> Vec<(String, u64, String, String)> {
    report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["source"] == source)
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["range"]["start"]["line"].as_u64().unwrap(),
                d["category"].as_str().unwrap().to_owned(),
                d["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `acas checkers --format json`.
fn listed(dir: &Path) -> (i32, Value) {
    let (code, stdout, stderr) = acas(&["checkers", "--format", "json"], dir);
    (code, serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}")))
}

#[test]
fn a_go_test_failing_in_a_sub_package_is_placed_in_that_packages_file() {
    need_tool("go");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("go.mod", "module example.com/g1\n\ngo 1.19\n"),
            ("pkg/p.go", "package pkg\n\nfunc Hello() string { return \"1\" }\n"),
            (
                "pkg/p_test.go",
                "package pkg\n\nimport \"testing\"\n\nfunc TestHello(t *testing.T) {\n\tif Hello() != \"2\" {\n\t\tt.Errorf(\"got %q\", Hello())\n\t}\n}\n",
            ),
            (
                "root_test.go",
                "package g1\n\nimport \"testing\"\n\nfunc TestRoot(t *testing.T) {\n\tt.Error(\"root\")\n}\n",
            ),
        ],
    );
    let (code, report) = check(dir.path(), "go-test");
    assert_eq!(code, 1, "{report:#}");
    let mut tests = found(&report, "go test");
    tests.sort();
    let places: Vec<(&str, u64, &str)> =
        tests.iter().map(|(p, l, c, _)| (p.as_str(), *l, c.as_str())).collect();
    assert_eq!(places, [("pkg/p_test.go", 6, "test"), ("root_test.go", 5, "test")], "{report:#}");
    assert!(tests[0].3.contains("TestHello: got \"1\""), "{tests:?}");
}

#[test]
fn pytest_with_tracebacks_off_still_reports_each_failing_test_from_its_junit_report() {
    need_tool("pytest");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("pytest.ini", "[pytest]\naddopts = --tb=no\n"),
            (
                "tests/test_a.py",
                "import os\n\n\ndef test_x():\n    assert 1 + 1 == 3\n\n\ndef test_y():\n    assert True\n\n\nclass TestGroup:\n    def test_z(self):\n        assert [] == [1]\n",
            ),
        ],
    );
    let (code, report) = check(dir.path(), "pytest");
    assert_eq!(code, 1, "{report:#}");
    let mut tests = found(&report, "pytest");
    tests.sort_by_key(|t| t.1);
    let places: Vec<(&str, u64, &str)> =
        tests.iter().map(|(p, l, c, _)| (p.as_str(), *l, c.as_str())).collect();
    // No traceback says where: each failure is on its test function.
    assert_eq!(places, [("tests/test_a.py", 3, "test"), ("tests/test_a.py", 12, "test")], "{report:#}");
    assert!(tests[0].3.starts_with("test_x: "), "{tests:?}");
    assert!(tests[0].3.contains("assert (1 + 1) == 3"), "the assertion pytest reported: {tests:?}");
    assert!(tests[1].3.starts_with("TestGroup.test_z: "), "{tests:?}");
}

#[test]
fn a_test_module_that_does_not_parse_is_a_syntax_error_in_that_module_not_in_python() {
    need_tool("pytest");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("pyproject.toml", "[project]\nname = \"p\"\n\n[tool.pytest.ini_options]\n"),
            ("tests/test_ok.py", "def test_a():\n    pass\n"),
            ("tests/test_syn.py", "import os\n\ndef test_b(:\n    pass\n"),
        ],
    );
    for tb in ["", "--tb=no"] {
        if !tb.is_empty() {
            write_files(
                dir.path(),
                &[(
                    "pyproject.toml",
                    "[project]\nname = \"p\"\n\n[tool.pytest.ini_options]\naddopts = \"--tb=no\"\n",
                )],
            );
        }
        let (_, report) = check(dir.path(), "pytest");
        let places: Vec<(String, u64, String)> =
            found(&report, "pytest").into_iter().map(|(p, l, c, _)| (p, l, c)).collect();
        assert_eq!(places, [("tests/test_syn.py".to_owned(), 2, "syntax".to_owned())], "{tb}: {report:#}");
    }
}

#[test]
fn eslint_is_detected_from_its_flat_configuration_alone() {
    need_tool("eslint");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (
                "eslint.config.mjs",
                "export default [{ files: [\"**/*.js\"], rules: { \"no-var\": \"error\" } }];\n",
            ),
            ("a.js", "var x = 1;\nconsole.log(x);\n"),
        ],
    );
    let (_, list) = listed(dir.path());
    let eslint = list["checkers"].as_array().unwrap().iter().find(|c| c["name"] == "eslint");
    let eslint = eslint.unwrap_or_else(|| panic!("eslint detected: {list:#}"));
    assert_eq!(eslint["runs"], "on save, at start", "{eslint:#}");
    assert!(eslint["why"].as_str().unwrap().starts_with("eslint.config.mjs"), "{eslint:#}");
    let (code, report) = check(dir.path(), "eslint");
    assert_eq!(code, 1, "{report:#}");
    let problems = found(&report, "eslint");
    assert_eq!(problems.len(), 1, "{report:#}");
    assert_eq!((problems[0].0.as_str(), problems[0].1), ("a.js", 0), "{report:#}");
}

#[test]
fn a_configured_program_found_nowhere_is_listed_as_missing_not_as_will_run() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"shellcheck\"\ncommand = [\"acas-no-such-tool-xyz\", \"-f\", \"gcc\", \"x.sh\"]\nformat = \"go\"\n\n[[checkers]]\nname = \"local\"\ncommand = [\"./tools/lint.sh\"]\nformat = \"go\"\n\n[[checkers]]\nname = \"shell\"\ncommand = \"true\"\nformat = \"go\"\n",
            ),
            ("x.sh", "echo hi\n"),
        ],
    );
    let (code, list) = listed(dir.path());
    assert_eq!(code, 0, "{list:#}");
    let by_name = |name: &str| {
        list["checkers"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap()
    };
    for name in ["shellcheck", "local"] {
        let c = by_name(name);
        assert_eq!((c["missing"].as_bool(), c["runs"].as_str()), (Some(true), Some("missing")), "{c:#}");
        assert!(c["install"].as_str().unwrap().contains("command"), "{c:#}");
    }
    assert_eq!(by_name("shell")["missing"], false);
    let (_, text, _) = acas(&["checkers"], dir.path());
    let missing = text.split("Missing (configured, not installed):").nth(1).unwrap_or("");
    assert!(missing.contains("shellcheck") && missing.contains("acas-no-such-tool-xyz"), "{text}");
    let will_run = text.split("Will run:").nth(1).unwrap_or("");
    assert!(!will_run.split("Missing").next().unwrap().contains("shellcheck"), "{text}");
}

#[test]
fn every_checker_configuration_error_is_listed_and_the_good_entries_still_are() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            ".acas/config.toml",
            "[[checkers]]\nname = \"a\"\ncommand = \"echo\"\npattern = '('\n\n[[checkers]]\nname = \"b\"\ncommand = \"echo\"\nformat = \"nope\"\n\n[[checkers]]\nname = \"c\"\ncommand = \"echo\"\nformat = \"go\"\npatern = 'x'\n\n[[checkers]]\nname = \"ok\"\ncommand = \"echo\"\nformat = \"ruff\"\n",
        )],
    );
    let (code, text, _) = acas(&["checkers"], dir.path());
    assert_eq!(code, 2, "{text}");
    let errors = text.split("Configuration errors:").nth(1).unwrap_or_else(|| panic!("{text}"));
    for (line, what) in
        [(1, "checker `a`: `pattern` does not compile"), (6, "unknown format `nope`"), (11, "patern")]
    {
        let at = format!(".acas/config.toml:{line}:");
        assert!(
            errors.lines().any(|l| l.contains(&at) && l.contains(what)),
            "{what} at line {line} in:\n{text}"
        );
    }
    let will_run = text.split("Will run:").nth(1).unwrap_or_else(|| panic!("`ok` still listed: {text}"));
    assert!(will_run.contains("  ok "), "{text}");
    assert!(!text.contains("defines none"), "{text}");
    let (code, list) = listed(dir.path());
    assert_eq!(code, 2);
    assert_eq!(list["errors"].as_array().unwrap().len(), 3, "{list:#}");
}

/// The editor shows every `[[checkers]]` mistake in the configuration file, each on its line.
#[test]
fn the_editor_shows_every_checker_configuration_error_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    write_files(
        &root,
        &[(
            ".acas/config.toml",
            "[[checkers]]\nname = \"a\"\ncommand = \"echo\"\npattern = '('\n\n[[checkers]]\nname = \"b\"\ncommand = \"echo\"\nformat = \"nope\"\n\n[[checkers]]\nname = \"ok\"\ncommand = \"echo\"\nformat = \"ruff\"\n",
        )],
    );
    let mut client = LspClient::start(&[]);
    client.initialize(Some(&root), json!({}));
    let published = client.expect_diagnostics(&file_uri(&root.join(".acas/config.toml")), |d| {
        d["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
    });
    let lines: Vec<u64> = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["range"]["start"]["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [0, 5], "{published:#}");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn the_text_report_gives_each_tools_own_column() {
    need_tool("tsc");
    need_tool("go");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (
                "tsconfig.json",
                "{ \"compilerOptions\": { \"strict\": true, \"noEmit\": true }, \"include\": [\"src\"] }\n",
            ),
            ("src/a.ts", "const s = \"😀é\"; const n: number = \"x\";\nexport { s, n };\n"),
            ("go.mod", "module example.com/c\n\ngo 1.19\n"),
            (
                "main.go",
                "package main\n\nfunc main() {\n\ts := \"😀é\"; var n int = \"x\"\n\t_, _ = s, n\n}\n",
            ),
        ],
    );
    let (_, text, stderr) = acas(&["check", "--checkers=tsc,go-build"], dir.path());
    // tsc counts UTF-16 units (😀 is two), Go bytes (😀 is four, é two).
    assert!(text.contains(" --> src/a.ts:1:24\n"), "{text}\n{stderr}");
    assert!(text.contains(" --> main.go:4:29\n"), "{text}\n{stderr}");
}

#[test]
fn an_eslint_quick_fix_is_offered_only_for_the_problem_it_fixes() {
    need_tool("eslint");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let text = "let y = \"😀\"; let z = 2;\nconsole.log(y, z);\n";
    write_files(
        &root,
        &[
            (
                "eslint.config.mjs",
                "export default [{ files: [\"**/*.js\"], rules: { \"prefer-const\": \"error\" } }];\n",
            ),
            ("package.json", "{ \"name\": \"t\", \"private\": true }\n"),
            ("src/b.js", text),
        ],
    );
    let mut client = LspClient::start(&[]);
    client.trust_checkers();
    client.initialize(Some(&root), json!({ "window": { "workDoneProgress": true } }));
    client.expect("the question whether to trust the workspace", |m| {
        m["method"] == "window/showMessageRequest"
    });
    let uri = file_uri(&root.join("src/b.js"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "javascript", "version": 1, "text": text } }),
    );
    let published = client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "eslint").count() == 2
    });
    let diagnostics: Vec<Value> = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["source"] == "eslint")
        .cloned()
        .collect();
    for d in &diagnostics {
        let actions = client.request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": uri }, "range": d["range"], "context": { "diagnostics": [d] } }),
        );
        let fixes: Vec<&Value> = actions["result"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["title"].as_str().is_some_and(|t| t.starts_with("Fix: ")))
            .collect();
        assert_eq!(fixes.len(), 1, "one fix for {d:#}: {actions:#}");
        let edit = &fixes[0]["edit"]["changes"][&uri][0];
        // prefer-const rewrites the declaration the diagnostic is on.
        let edit_start = edit["range"]["start"]["character"].as_u64().unwrap();
        let d_start = d["range"]["start"]["character"].as_u64().unwrap();
        assert!(edit_start <= d_start && d_start - edit_start <= 4, "{d:#} {edit:#}");
        assert_eq!(fixes[0]["diagnostics"], json!([d]), "{:#}", fixes[0]);
    }
    // Asked without a diagnostic (a menu on the line), each fix is tied to its own.
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } }, "context": { "diagnostics": [] } }),
    );
    let fixes: Vec<&Value> = actions["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["title"].as_str().is_some_and(|t| t.starts_with("Fix: ")))
        .collect();
    assert_eq!(fixes.len(), 2, "{actions:#}");
    assert_ne!(fixes[0]["title"], fixes[1]["title"], "titles tell them apart: {actions:#}");
    assert_eq!(client.shutdown(), 0);
}
