//! The project's own tools as checkers, from the command line: detection of each language with
//! the real tools (`acas checkers`), running them (`acas check --checkers`), and `acas run`.
//!
//! The tools are the real ones, installed by `scripts/install-checker-tools.sh` (which `.ci/run`
//! runs) and put on PATH by `cargo xtask test`. A test that needs one fails when it is absent.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use acas_e2e::{acas_bin, need_tool, write_files};
use serde_json::Value;

/// Runs `acas ARGS` in `cwd` with `path` as PATH (`None`: the tests' own PATH), in a workspace
/// the user trusts to run its checkers.
fn acas(args: &[&str], cwd: &Path, path: Option<&str>) -> (i32, String, String) {
    acas_e2e::trust(cwd, &acas_e2e::trusting_config_home());
    let mut command = Command::new(acas_bin());
    command
        .args(args)
        .current_dir(cwd)
        .env("ACAS_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", acas_e2e::trusting_config_home());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().expect("running acas");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(args: &[&str], cwd: &Path) -> (i32, Value) {
    let (code, stdout, stderr) = acas(args, cwd, None);
    let value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, value)
}

fn argv(checker: &Value) -> Vec<&str> {
    checker["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect()
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["checkers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no checker `{name}` in {list:#}"))
}

/// A workspace with a project of each language in a directory of its own.
fn monorepo(dir: &Path) {
    write_files(
        dir,
        &[
            ("rust/Cargo.toml", "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
            ("rust/src/lib.rs", "pub fn f() -> u32 {\n    1\n}\n"),
            ("web/tsconfig.json", "{ \"compilerOptions\": { \"strict\": true } }\n"),
            ("web/eslint.config.js", "module.exports = [{ rules: { \"no-unused-vars\": \"error\" } }];\n"),
            ("web/package.json", "{ \"name\": \"web\", \"devDependencies\": { \"jest\": \"^29\" } }\n"),
            ("web/src/a.ts", "export const a: number = 1;\n"),
            (
                "py/pyproject.toml",
                "[project]\nname = \"py\"\n\n[tool.ruff]\n\n[tool.mypy]\n\n[tool.pyright]\n",
            ),
            ("py/pkg/__init__.py", ""),
            ("py/tests/test_pkg.py", "def test_one():\n    assert True\n"),
            ("go/go.mod", "module example.com/demo\n\ngo 1.19\n"),
            ("go/main.go", "package main\n\nfunc main() {}\n"),
            // Ignored directories are not looked into.
            (".gitignore", "ignored/\n"),
            ("ignored/go.mod", "module example.com/ignored\n"),
        ],
    );
}

#[test]
fn each_language_is_detected_with_the_installed_tools() {
    for tool in ["cargo", "tsc", "eslint", "ruff", "mypy", "pytest", "go"] {
        need_tool(tool);
    }
    let dir = tempfile::tempdir().unwrap();
    monorepo(dir.path());
    // A program in the project's node_modules/.bin is preferred to the one on PATH.
    let local = dir.path().join("web/node_modules/.bin");
    std::fs::create_dir_all(&local).unwrap();
    std::os::unix::fs::symlink(need_tool("tsc"), local.join("tsc")).unwrap();

    let (code, list) = json(&["checkers", ".", "--format", "json"], dir.path());
    assert_eq!(code, 0, "{list:#}");
    let names: Vec<&str> =
        list["checkers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    let rust_check = if names.contains(&"clippy@rust") { "clippy@rust" } else { "cargo-check@rust" };
    for name in [
        rust_check,
        "cargo-test@rust",
        "tsc@web",
        "eslint@web",
        "jest@web",
        "ruff@py",
        "mypy@py",
        "pyright@py",
        "pytest@py",
        "go-build@go",
        "go-vet@go",
        "go-test@go",
    ] {
        assert!(names.contains(&name), "{name} is not in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("ignored")), "{names:?}");

    let rust = by_name(&list, rust_check);
    assert_eq!(rust["cwd"], "rust");
    assert_eq!(rust["format"], "cargo");
    assert_eq!((rust["on_save"].as_bool(), rust["kind"].as_str()), (Some(true), Some("check")));
    let command: Vec<&str> =
        rust["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(command.ends_with(&["--workspace", "--all-targets", "--message-format=json"]), "{command:?}");

    let test = by_name(&list, "cargo-test@rust");
    assert_eq!((test["kind"].as_str(), test["on_save"].as_bool()), (Some("test"), Some(false)));
    assert!(test["timeout_seconds"].as_f64().unwrap() > 0.0);

    let tsc = by_name(&list, "tsc@web");
    let argv0 = tsc["command"][0].as_str().unwrap();
    assert_eq!(Path::new(argv0), local.join("tsc"), "{tsc:#}");
    assert!(tsc["why"].as_str().unwrap().contains("web/tsconfig.json"), "{tsc:#}");
    assert_eq!(argv(tsc)[1..], ["--noEmit", "--pretty", "false", "-p", "."]);
    assert_eq!(argv(by_name(&list, "eslint@web"))[1..4], ["--format", "json", "."]);

    // jest is a dependency, installed with the tools; pyright is configured but not installed.
    need_tool("jest");
    let jest = by_name(&list, "jest@web");
    assert_eq!((jest["missing"].as_bool(), jest["kind"].as_str()), (Some(false), Some("test")), "{jest:#}");
    let pyright = by_name(&list, "pyright@py");
    assert_eq!(pyright["missing"], true, "{pyright:#}");
    assert!(pyright["install"].as_str().unwrap().contains("pyright"), "{pyright:#}");
    assert_eq!(pyright["runs"], "missing");
    let mypy = by_name(&list, "mypy@py");
    assert_eq!(mypy["format"], "mypy", "mypy >= 1.11 gives JSON: {mypy:#}");
    assert_eq!(argv(mypy)[1..3], ["--output", "json"]);
    assert_eq!(by_name(&list, "ruff@py")["missing"], false);
    let pytest = by_name(&list, "pytest@py");
    assert_eq!((pytest["kind"].as_str(), pytest["format"].as_str()), (Some("test"), Some("pytest")));
    assert!(pytest["why"].as_str().unwrap().contains("test files"), "{pytest:#}");
    let junit = pytest["command"][1].as_str().unwrap();
    assert!(junit.starts_with("--junitxml=") && junit.contains("/.acas/checkers/"), "{junit}");
    for name in ["go-build@go", "go-vet@go"] {
        assert_eq!(by_name(&list, name)["format"], "go");
    }
    assert_eq!(argv(by_name(&list, "go-test@go"))[1..], ["test", "-json", "./..."]);
}

#[test]
fn acas_checkers_says_what_runs_what_is_off_what_is_missing_and_where_the_configuration_is_wrong() {
    need_tool("cargo");
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("Cargo.toml", "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
            ("src/lib.rs", "pub fn f() {}\n"),
            ("pyproject.toml", "[tool.mypy]\nstrict = true\n"),
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"cargo-test\"\nenabled = false\n\n[[checkers]]\nname = \"mystery\"\nenabled = true\n",
            ),
        ],
    );
    // mypy is configured; with only the system's directories on PATH it is not installed.
    let path = format!("{}:/usr/bin:/bin", Path::new(&need_tool("cargo")).parent().unwrap().display());
    let (code, stdout, stderr) = acas(&["checkers"], dir.path(), Some(&path));
    assert_eq!(code, 2, "a configuration error: {stdout}\n{stderr}");
    // A section is a title line and the indented lines under it.
    let section = |title: &str| {
        let mut lines = stdout.lines().skip_while(|l| *l != title);
        assert!(lines.next().is_some(), "no {title:?} in\n{stdout}");
        lines.take_while(|l| l.starts_with(' ')).collect::<Vec<_>>().join("\n")
    };
    let will_run = section("Will run:");
    assert!(will_run.contains("on save, at start: cargo "), "{stdout}");
    let missing = section("Missing (configured, not installed):");
    assert!(missing.contains("mypy") && missing.contains("install: pip install mypy"), "{stdout}");
    let off = section("Off:");
    assert!(off.contains("cargo-test") && off.contains("turned off in .acas/config.toml"), "{stdout}");
    let errors = &stdout[stdout.find("Configuration errors:").expect(&stdout)..];
    assert!(errors.contains(".acas/config.toml:6:8: checker `mystery`"), "{stdout}");
}

#[test]
fn an_unknown_checker_name_is_refused_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[("go.mod", "module example.com/demo\n"), ("main.go", "package main\n")]);
    let (code, _, stderr) = acas(&["check", "--checkers=go-vet,nope"], dir.path(), None);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no checker named `nope`") && stderr.contains("go-build, go-vet"), "{stderr}");
}

#[test]
fn a_missing_tool_is_reported_once_and_the_exit_code_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("pyproject.toml", "[tool.mypy]\n"),
            ("pkg/a.py", "x = 1\n"),
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"lint\"\ncommand = [\"acas-no-such-lint\", \".\"]\nformat = \"go\"\n",
            ),
        ],
    );
    for format in ["text", "json"] {
        let (code, stdout, stderr) =
            acas(&["check", "--checkers", "--format", format], dir.path(), Some("/usr/bin:/bin"));
        assert_eq!(code, 3, "{stdout}\n{stderr}");
        let all = format!("{stdout}{stderr}");
        assert_eq!(all.matches("`mypy` is not installed").count(), 1, "{format}: {all}");
        assert_eq!(all.matches("`acas-no-such-lint` is not installed").count(), 1, "{format}: {all}");
        if format == "json" {
            let report: Value = serde_json::from_str(&stdout).unwrap();
            let statuses: Vec<(&str, &str)> = report["checkers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
                .collect();
            assert_eq!(statuses, [("mypy", "missing"), ("lint", "missing")]);
            assert!(report["diagnostics"].is_array() && report["files_checked"] == 1, "{report:#}");
        } else {
            assert!(stdout.contains("checkers: mypy missing, lint missing"), "{stdout}");
            assert!(stdout.contains("pip install mypy"), "{stdout}");
        }
    }
}

#[test]
fn a_configured_checker_with_a_pattern_is_run_and_its_problems_shown_on_their_line() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("notes/todo.txt", "first line\nsecond TODO here\n"),
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"todo\"\ncommand = [\"sh\", \"-c\", \"echo notes/todo.txt:2:8: a TODO is left\"]\npattern = '^(?P<file>[^:]+):(?P<line>\\d+):(?P<column>\\d+): (?P<message>.+)$'\nseverity = \"warning\"\n",
            ),
        ],
    );
    let (code, stdout, stderr) = acas(&["check", "--checkers=todo"], dir.path(), None);
    assert_eq!(code, 0, "a warning is not an error: {stdout}\n{stderr}");
    let expected = "warning[other]: a TODO is left\n --> notes/todo.txt:2:8\n  |\n2 | second TODO here\n  |        ^^^^\n  |\n  = source: todo";
    assert!(stdout.contains(expected), "{stdout}");
    assert!(stdout.contains("checkers: todo (1 problem,"), "{stdout}");
    let (_, report) = json(&["check", "--checkers=todo", "--format", "json"], dir.path());
    let d = &report["diagnostics"][0];
    assert_eq!((d["path"].as_str(), d["source"].as_str()), (Some("notes/todo.txt"), Some("todo")));
    assert_eq!(d["range"]["start"], serde_json::json!({ "line": 1, "character": 7 }));
    let (_, sarif) = json(&["check", "--checkers=todo", "--format", "sarif"], dir.path());
    let run = &sarif["runs"][0];
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    assert_eq!(run["results"][0]["properties"]["source"], "todo");
}

/// Runs `acas run -- ARGS` with `stdin` as its input; returns (code, stdout, stderr) as bytes.
fn acas_run(dir: &Path, args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
    let mut child = Command::new(acas_bin())
        .args(["run", "--"])
        .args(args)
        .current_dir(dir)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", dir.join(".no-user-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap_or(-1), output.stdout, output.stderr)
}

#[test]
fn acas_run_passes_input_output_and_exit_code_through_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // Every byte value, no trailing newline, on both streams, and the input echoed back.
    let all: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    std::fs::write(dir.path().join("bytes"), &all).unwrap();
    let script = "cat bytes; printf 'half a line' >&2; cat; exit 42";
    let (code, stdout, stderr) = acas_run(dir.path(), &["sh", "-c", script], b"typed\r\ninput\x00");
    assert_eq!(code, 42);
    let mut expected = all.clone();
    expected.extend_from_slice(b"typed\r\ninput\x00");
    assert!(stdout == expected, "stdout differs: {} bytes, {} expected", stdout.len(), expected.len());
    assert_eq!(String::from_utf8_lossy(&stderr), "half a line");
}

#[test]
fn acas_run_exits_128_plus_the_signal_that_ended_the_command() {
    let dir = tempfile::tempdir().unwrap();
    for (signal, number) in [("TERM", 15), ("KILL", 9), ("SEGV", 11)] {
        let (code, stdout, _) =
            acas_run(dir.path(), &["sh", "-c", &format!("printf before; kill -{signal} $$")], b"");
        assert_eq!((code, stdout.as_slice()), (128 + number, &b"before"[..]), "SIG{signal}");
    }
    let (code, _, stderr) = acas_run(dir.path(), &["acas-no-such-command"], b"");
    assert_eq!(code, 127);
    assert!(String::from_utf8_lossy(&stderr).contains("`acas-no-such-command` was not found"));
}

#[test]
fn acas_run_ends_when_nobody_reads_its_output_any_more() {
    // `acas run -- yes | head -1`: the command ends by SIGPIPE, as it would without ACAS.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(acas_bin())
        .args(["run", "--", "yes"])
        .current_dir(dir.path())
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", dir.path().join(".no-user-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 2];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    assert_eq!(&first, b"y\n");
    // The reading end is closed (dropped above); acas must end by itself.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    let status = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("acas run went on after its reader closed (the command still writes)"))
        .unwrap();
    assert_eq!(status.code(), Some(128 + 13), "the command's own end by SIGPIPE: {status:?}");
}

/// Runs `acas ARGS` on a pseudo-terminal (util-linux's `script`), as a person at a terminal
/// would; returns what the terminal showed.
fn on_a_terminal(dir: &Path, args: &str, no_color: bool) -> String {
    acas_e2e::trust(dir, &acas_e2e::trusting_config_home());
    let script = need_tool("script");
    let mut command = Command::new(script);
    command
        .args(["-qec", &format!("'{}' {args}", acas_bin().display()), "/dev/null"])
        .current_dir(dir)
        .env("ACAS_LOG", "warn")
        .env("XDG_CONFIG_HOME", acas_e2e::trusting_config_home())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let output = command.output().expect("running script");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn text_is_coloured_on_a_terminal_with_progress_and_plain_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("broken.py", "def f(:\n    pass\n"),
            (
                ".acas/config.toml",
                "[[checkers]]\nname = \"todo\"\ncommand = [\"sh\", \"-c\", \"echo broken.py:2:5: a TODO\"]\npattern = '^(?P<file>[^:]+):(?P<line>\\d+):(?P<column>\\d+): (?P<message>.+)$'\n",
            ),
        ],
    );
    let shown = on_a_terminal(dir.path(), "check --checkers", false);
    assert!(shown.contains("\x1b["), "coloured on a terminal: {shown:?}");
    assert!(shown.contains("todo: running sh -c"), "progress on stderr: {shown:?}");
    assert!(shown.contains("todo: 1 problem in "), "{shown:?}");
    let plain = on_a_terminal(dir.path(), "check --checkers", true);
    assert!(!plain.contains("\x1b["), "NO_COLOR: {plain:?}");
    assert!(plain.contains("error[other]: a TODO"), "{plain:?}");
}

/// What a run of a command recorded is cleared by its next run that no longer reports it.
#[test]
fn a_later_run_of_the_same_command_clears_what_the_earlier_run_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let traceback = "Traceback (most recent call last):\n  File \"crash.py\", line 2, in <module>\n    1 / 0\nZeroDivisionError: division by zero\n";
    write_files(dir.path(), &[("crash.py", "x = 1\n1 / 0\n"), ("out.txt", traceback)]);
    let open = || -> Vec<(String, String, i64)> {
        let db = rusqlite::Connection::open(dir.path().join(".acas/state.db")).unwrap();
        db.prepare("SELECT path, source, line FROM open_diagnostic")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    // An editor is running on the workspace; it lists the open problems from the store.
    let root = dir.path().canonicalize().unwrap();
    let mut editor = acas_e2e::LspClient::start(&[]);
    editor.initialize(Some(&root), serde_json::json!({}));
    let problems = |editor: &mut acas_e2e::LspClient| -> Vec<String> {
        let response = editor.request("acas/problems", Value::Null);
        let rows = response["result"].as_array().cloned().unwrap_or_else(|| panic!("{response:#}"));
        rows.iter().map(|p| p["message"].as_str().unwrap_or_default().to_owned()).collect()
    };
    let command = ["sh", "-c", "cat out.txt >&2"];
    let (_, _, stderr) = acas_run(dir.path(), &command, b"");
    assert!(String::from_utf8_lossy(&stderr).contains("recognised 1 problem"));
    assert_eq!(open(), [("crash.py".to_owned(), "python".to_owned(), 1)]);
    let shown = problems(&mut editor);
    assert!(shown.len() == 1 && shown[0].contains("ZeroDivisionError"), "{shown:?}");
    // Another command reporting nothing clears nothing.
    acas_run(dir.path(), &["sh", "-c", "true"], b"");
    assert_eq!(open().len(), 1);
    // The same command, now successful and silent, clears it, in the store and in the editor.
    std::fs::write(dir.path().join("out.txt"), "").unwrap();
    let (code, _, stderr) = acas_run(dir.path(), &command, b"");
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&stderr));
    assert_eq!(open(), Vec::<(String, String, i64)>::new());
    assert_eq!(problems(&mut editor), Vec::<String>::new());
    assert_eq!(editor.shutdown(), 0);
}

/// Output far faster than the parser reads it still comes through whole and unchanged, with the
/// problems in it looked for as far as the parser keeps up.
#[test]
fn acas_run_passes_a_flood_of_output_through_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::with_capacity(48 << 20);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    while bytes.len() < 48 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(dir.path().join("big.bin"), &bytes).unwrap();
    let (code, stdout, stderr) =
        acas_run(dir.path(), &["sh", "-c", "cat big.bin; cat big.bin >&2; exit 3"], b"");
    assert_eq!(code, 3);
    assert!(
        stdout == bytes,
        "stdout differs from the command's ({} bytes against {})",
        stdout.len(),
        bytes.len()
    );
    assert!(
        stderr.len() >= bytes.len() && stderr[..bytes.len()] == bytes[..],
        "stderr differs from the command's"
    );
}
