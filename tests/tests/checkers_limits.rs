//! `acas check --checkers` against what breaks checkers at scale and at the edges: a
//! solution-style tsconfig.json, one-line JSON larger than the line limit, a checker that prints
//! without end, a timeout shorter than the process start-up. Real tools where the case needs them.

use std::path::Path;

use acas_e2e::{acas_trusted as acas, need_tool, write_files};
use serde_json::Value;

/// `acas check [PATH] --checkers=NAMES --format json` in `dir`: the exit code and the report.
fn check(dir: &Path, path: &str, names: &str) -> (i32, Value, String) {
    let (code, stdout, stderr) =
        acas(&["check", path, &format!("--checkers={names}"), "--format", "json"], dir);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, report, stderr)
}

fn diagnostics<'a>(report: &'a Value, source: &str) -> Vec<&'a Value> {
    report["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == source).collect()
}

#[test]
fn a_solution_style_tsconfig_is_checked_through_its_references() {
    need_tool("tsc");
    let dir = tempfile::tempdir().unwrap();
    // The layout `npm create vite` makes: the root project lists no file of its own.
    write_files(
        dir.path(),
        &[
            ("package.json", "{\"name\":\"app\",\"private\":true}\n"),
            (
                "tsconfig.json",
                "{\n  \"files\": [],\n  \"references\": [\n    // the app\n    { \"path\": \"./tsconfig.app.json\" },\n    { \"path\": \"./tsconfig.node.json\" }\n  ]\n}\n",
            ),
            (
                "tsconfig.app.json",
                "{ \"compilerOptions\": { \"composite\": true, \"strict\": true, \"noEmit\": true, \"tsBuildInfoFile\": \"./node_modules/.tmp/app.tsbuildinfo\" }, \"include\": [\"src\"] }\n",
            ),
            (
                "tsconfig.node.json",
                "{ \"compilerOptions\": { \"composite\": true, \"strict\": true, \"noEmit\": true, \"tsBuildInfoFile\": \"./node_modules/.tmp/node.tsbuildinfo\" }, \"include\": [\"vite.config.ts\"] }\n",
            ),
            ("src/main.ts", "const n: number = \"x\";\nexport { n };\n"),
            ("vite.config.ts", "export default {};\n"),
        ],
    );
    let (code, report, stderr) = check(dir.path(), ".", "tsc");
    assert_eq!(code, 1, "{report:#}\n{stderr}");
    let found = diagnostics(&report, "tsc");
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["path"], "src/main.ts");
    assert_eq!(found[0]["range"]["start"]["line"], 0);
    assert_eq!(found[0]["range"]["start"]["character"], 6);
}

#[test]
fn eslint_json_on_one_line_longer_than_the_line_limit_is_read_whole() {
    need_tool("eslint");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("package.json", "{\"name\":\"big\"}\n"),
            (
                "eslint.config.mjs",
                "export default [{ files: [\"**/*.js\"], rules: { \"no-var\": \"warn\" } }];\n",
            ),
        ],
    );
    // ESLint prints each file with a problem with its source: 12 files of 1 MiB make one line of
    // JSON past 8 MiB.
    let filler = format!("// {}\n", "x".repeat(1020)).repeat(1024);
    let files = 12;
    for i in 0..files {
        write_files(dir.path(), &[(&format!("src/f{i}.js"), &format!("var a{i} = 1;\n{filler}"))]);
    }
    let (code, report, stderr) = check(dir.path(), ".", "eslint");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["checkers"][0]["status"], "ok", "{:#}", report["checkers"]);
    let found = diagnostics(&report, "eslint");
    assert_eq!(found.len(), files, "{:#}", report["checkers"]);
    assert!(found.iter().all(|d| d["range"]["start"]["line"] == 0), "{found:#?}");
}

#[test]
fn a_checker_that_prints_without_end_keeps_a_bounded_number_of_problems_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 100_000;
    write_files(
        dir.path(),
        &[
            ("a.py", "x = 1\n"),
            (
                ".acas/config.toml",
                &format!(
                    "[[checkers]]\nname = \"spew\"\ncommand = \"seq 1 {} | sed 's/^/a.py:1: problem /'\"\npattern = '^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$'\n",
                    limit + 5_000
                ),
            ),
        ],
    );
    let (code, report, stderr) = check(dir.path(), ".", "spew");
    assert_eq!(code, 1, "{stderr}");
    let ran = &report["checkers"][0];
    assert_eq!(ran["status"], "ok", "{ran:#}");
    assert_eq!(ran["problems"], limit, "{ran:#}");
    let note = ran["note"].as_str().unwrap_or_else(|| panic!("no note: {ran:#}"));
    assert!(note.contains(&format!("more than {limit} problems")), "{note}");
    assert!(note.contains("5000 more were dropped"), "{note}");
    // The text report says it too.
    let (_, text, _) = acas(&["check", ".", "--checkers=spew"], dir.path());
    assert!(
        text.contains(&format!("more than {limit} problems")),
        "{}",
        &text[text.len().saturating_sub(2000)..]
    );
}

#[test]
fn a_problem_printed_twice_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("a.py", "x = 1\ny = 2\n"),
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"twice\"\ncommand = \"echo 'a.py:2: bad'; echo 'a.py:2: bad'; echo 'a.py:1: other'\"\npattern = '^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$'\n",
            ),
        ],
    );
    let (_, report, stderr) = check(dir.path(), ".", "twice");
    assert_eq!(report["checkers"][0]["problems"], 2, "{report:#}\n{stderr}");
}

#[test]
fn a_timeout_shorter_than_the_start_up_is_a_timeout_every_time() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("a.py", "x = 1\n"),
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"zt\"\ncommand = \"sleep 30\"\npattern = '^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$'\ntimeout = \"1ms\"\n",
            ),
        ],
    );
    for _ in 0..6 {
        let (code, report, stderr) = check(dir.path(), ".", "zt");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(report["checkers"][0]["status"], "timed_out", "{report:#}\n{stderr}");
        assert_eq!(code, 3);
    }
}

const LINE_PATTERN: &str = "pattern = '^(?P<file>[^:]+):(?P<line>\\d+): (?P<message>.*)$'\n";

#[test]
fn a_file_or_a_subdirectory_is_checked_by_the_checkers_of_its_project() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("top.py", "x = 1\n"),
            ("pkg/a.py", "y = 2\n"),
            (
                ".acas/config.toml",
                &format!(
                    "[[checkers]]\nname = \"lint\"\ncommand = \"echo 'pkg/a.py:1: in the package'; echo 'top.py:1: at the top'\"\n{LINE_PATTERN}"
                ),
            ),
        ],
    );
    for path in ["pkg", "pkg/a.py"] {
        let (code, report, stderr) = check(dir.path(), path, "");
        assert_eq!(code, 1, "{path}: {report:#}\n{stderr}");
        assert_eq!(report["checkers"][0]["name"], "lint", "{path}: {report:#}");
        let found = diagnostics(&report, "lint");
        assert_eq!(found.len(), 1, "{path}: {report:#}");
        assert_eq!(found[0]["message"], "in the package");
    }
}

#[test]
fn files_outside_the_workspace_are_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write_files(
        dir.path(),
        &[
            ("outside/secret.txt", "the secret line\n"),
            ("ws/a.py", "x = 1\n"),
            (
                "ws/.acas/config.toml",
                &format!(
                    "[[checkers]]\nname = \"m\"\ncommand = \"echo 'link.txt:1: through a link'; echo '../outside/secret.txt:1: up'; echo '{}:1: absolute'\"\n{LINE_PATTERN}",
                    dir.path().join("outside/secret.txt").display()
                ),
            ),
        ],
    );
    std::os::unix::fs::symlink(dir.path().join("outside/secret.txt"), ws.join("link.txt")).unwrap();
    let (_, report, stderr) = check(&ws, ".", "m");
    assert_eq!(report["checkers"][0]["status"], "ok", "{report:#}\n{stderr}");
    assert!(diagnostics(&report, "m").is_empty(), "{report:#}");
    for format in ["text", "sarif"] {
        let (_, out, _) = acas(&["check", "--checkers=m", "--format", format], &ws);
        assert!(!out.contains("the secret line") && !out.contains("secret.txt"), "{out}");
    }
}

#[test]
fn mypy_checks_the_files_its_configuration_names() {
    need_tool("mypy");
    let dir = tempfile::tempdir().unwrap();
    // Two scripts of the same module name outside `files`: `mypy .` dies on them.
    write_files(
        dir.path(),
        &[
            ("pyproject.toml", "[tool.mypy]\nfiles = [\"src\"]\n"),
            ("src/pkg/__init__.py", ""),
            ("src/pkg/core.py", "x: int = \"no\"\n"),
            ("scripts/utils.py", "a = 1\n"),
            ("tools/utils.py", "b = 2\n"),
        ],
    );
    let (code, report, stderr) = check(dir.path(), ".", "mypy");
    assert_eq!(report["checkers"][0]["status"], "ok", "{report:#}\n{stderr}");
    assert_eq!(code, 1);
    let found = diagnostics(&report, "mypy");
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["path"], "src/pkg/core.py");
}

#[test]
fn pytests_report_is_never_written_through_a_link_the_repository_carries() {
    need_tool("pytest");
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    write_files(
        dir.path(),
        &[
            ("victim.txt", "IMPORTANT USER FILE\n"),
            ("ws/pyproject.toml", "[tool.pytest.ini_options]\n"),
            ("ws/test_a.py", "def test_a():\n    assert 1 == 2\n"),
        ],
    );
    std::fs::create_dir_all(ws.join(".acas/checkers")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("victim.txt"), ws.join(".acas/checkers/pytest.xml")).unwrap();
    let (_, report, stderr) = check(&ws, ".", "pytest");
    assert_eq!(std::fs::read_to_string(dir.path().join("victim.txt")).unwrap(), "IMPORTANT USER FILE\n");
    assert_eq!(report["checkers"][0]["status"], "ok", "{report:#}\n{stderr}");
    assert_eq!(diagnostics(&report, "pytest").len(), 1, "{report:#}");

    // `.acas` itself a link: nothing is made in its target, and the checker says why.
    let ws2 = dir.path().join("ws2");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    write_files(
        dir.path(),
        &[
            ("ws2/pyproject.toml", "[tool.pytest.ini_options]\n"),
            ("ws2/test_a.py", "def test_a():\n    assert 1 == 2\n"),
        ],
    );
    std::os::unix::fs::symlink(&elsewhere, ws2.join(".acas")).unwrap();
    let (code, report, _) = check(&ws2, ".", "pytest");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "something was made through the link");
    assert_eq!(code, 3, "{report:#}");
    let message = report["checkers"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("writes nothing through links"), "{report:#}");
}
