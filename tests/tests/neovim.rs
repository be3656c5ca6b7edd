//! A real editor against the real binary: Debian's Neovim (0.7), headless, with the README's
//! configuration for Neovim 0.7 as its user configuration, runs `tests/editors/neovim.lua`, which
//! opens a file (the configuration starts `acas serve` and attaches it) and drives the server
//! through Neovim's own LSP client: diagnostics on open and after edits on a line whose text
//! before the error is not ASCII, "Explain and fix with AI" as a code action answered by the fake
//! provider, the quick fix applied to the buffer, a workflow run from `workspace/executeCommand`,
//! and live diagnostics in an open workflow file. The script writes what each step saw to a JSON report, which this
//! test checks.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use acas_e2e::{TIMEOUT, acas_bin};
use serde_json::{Value, json};

const SCRIPT: &str = include_str!("../editors/neovim.lua");
const README: &str = include_str!("../../README.md");
/// The README's heading over the configuration that Debian's Neovim uses.
const NEOVIM_07: &str = "#### Neovim 0.7";

/// The file the editor opens: a call left open after a string with accented letters.
const BROKEN: &str = "fn main() {\n    let s = \"héllo wörld\"; foo(s;\n}\n\nfn foo(_: &str) {}\n";
/// The same file with the call closed.
const FIXED: &str = "fn main() {\n    let s = \"héllo wörld\"; foo(s);\n}\n\nfn foo(_: &str) {}\n";

const HELLO: &str = r#"name: hello
on:
  manual:
    inputs:
      who: { type: string, required: true }
steps:
  - id: greet
    run: ["sh", "-c", "printf 'hello %s' \"$1\" > greeting.txt", "sh", "{{ inputs.who }}"]
"#;

/// A workflow whose step needs a step that does not exist.
const BROKEN_WORKFLOW: &str =
    "name: broken\non:\n  manual: {}\nsteps:\n  - id: a\n    needs: [missing]\n    run: [\"true\"]\n";

/// The steps the script reports, in order.
const STEPS: [&str; 11] = [
    "start",
    "diagnostics on open",
    "edit fixes the error",
    "edit breaks it again",
    "explain action offered",
    "explain runs",
    "quick fix offered",
    "quick fix applied",
    "workflow runs",
    "workflow file diagnostics",
    "stop",
];

/// Bound on the whole editor session. Every wait in the script is bounded by [`TIMEOUT`] and the
/// script stops at the first step that fails, so at most two waits (that step's and stopping the
/// server) run out.
const SESSION: Duration = Duration::from_secs(TIMEOUT.as_secs() * 4);

/// Fails, saying how to get it, when `nvim` is not installed.
fn nvim_version() -> String {
    let output = Command::new("nvim").arg("--version").output().unwrap_or_else(|e| {
        panic!(
            "cannot run `nvim` ({e}): this test drives a real Neovim; install it \
             (`apt-get install -y neovim` on Debian, which .ci/run does)"
        )
    });
    assert!(output.status.success(), "`nvim --version` failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or_default().to_owned()
}

/// The first Lua block under `heading` in the README.
fn readme_snippet(heading: &str) -> &'static str {
    let (_, section) = README
        .split_once(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("README.md has no heading `{heading}`"));
    let (_, block) =
        section.split_once("```lua\n").unwrap_or_else(|| panic!("no Lua block under `{heading}`"));
    block.split_once("```").unwrap_or_else(|| panic!("the Lua block under `{heading}` is not closed")).0
}

struct Session {
    /// The script's report.
    report: Value,
    /// Neovim's stderr and its LSP log (where it files the server's stderr), for failures.
    log: String,
}

/// Runs the script in headless Neovim on `root` and returns its report.
fn run_neovim(root: &Path, fake: &FakeProvider) -> Session {
    let home = tempfile::tempdir().unwrap();
    let init = home.path().join("init.lua");
    std::fs::write(&init, SCRIPT).unwrap();
    let config = home.path().join("config.lua");
    std::fs::write(&config, readme_snippet(NEOVIM_07)).unwrap();
    // The configuration runs `acas` from PATH, as a user's would.
    let bin_dir = acas_bin().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let result = home.path().join("report.json");
    let key = fake.api_key();
    let mut nvim = Command::new("nvim");
    nvim.args(["--headless", "--clean", "-u"])
        .arg(&init)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("ACAS_NVIM_CONFIG", &config)
        .env("PATH", path)
        .env("ACAS_NVIM_ROOT", root)
        .env("ACAS_NVIM_RESULT", &result)
        .env("ACAS_NVIM_WAIT_MS", TIMEOUT.as_millis().to_string())
        .env("ACAS_FAKE_KEY", &key)
        .env("ACAS_LOG", "info")
        .env("ANTHROPIC_API_KEY", "")
        .env("OPENAI_API_KEY", "")
        .env("GEMINI_API_KEY", "");
    // Neovim's files (its LSP log among them) and the server's user configuration stay here.
    for (variable, dir) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        nvim.env(variable, home.path().join(dir));
    }
    let mut child = nvim.spawn().expect("starting nvim");
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Neovim's stderr closes when it exits.
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let stderr = rx.recv_timeout(SESSION);
    if stderr.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().expect("waiting for nvim");
    let lsp_log = std::fs::read_to_string(home.path().join("cache/nvim/lsp.log")).unwrap_or_default();
    let log = format!(
        "nvim exited with {status}\nnvim stderr:\n{}\nNeovim's LSP log:\n{lsp_log}",
        stderr.as_deref().unwrap_or("(nvim did not exit in time and was killed)")
    );
    assert!(stderr.is_ok(), "nvim did not finish within {SESSION:?}\n{log}");
    let report = std::fs::read_to_string(&result)
        .unwrap_or_else(|e| panic!("the script wrote no report at {} ({e})\n{log}", result.display()));
    let report: Value =
        serde_json::from_str(&report).unwrap_or_else(|e| panic!("the report is not JSON ({e}): {report}"));
    assert!(status.success(), "{log}");
    Session { report, log }
}

/// Column of `needle` in `line`, in UTF-16 code units (the encoding Neovim 0.7 negotiates).
fn utf16_column(line: &str, needle: &str) -> u64 {
    let at = line.find(needle).unwrap_or_else(|| panic!("`{needle}` not in `{line}`"));
    line[..at].encode_utf16().count() as u64
}

/// Byte column of the UTF-16 column `utf16` in `line`.
fn byte_column(line: &str, utf16: u64) -> u64 {
    let mut units = 0;
    for (at, c) in line.char_indices() {
        if units >= utf16 {
            return at as u64;
        }
        units += c.len_utf16() as u64;
    }
    line.len() as u64
}

#[test]
fn neovim_shows_diagnostics_explains_applies_the_fix_and_runs_a_workflow() {
    let version = nvim_version();
    let fake = FakeProvider::start(Format::Anthropic);
    let reply = json!({
        "explanation": "The call to `foo` is never closed. Add `)` after `s`.",
        "fix": { "description": "Close the call", "edits": [{ "old": "foo(s;", "new": "foo(s);" }] }
    });
    fake.push(Reply::text(&reply.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), fake.provider_toml("claude", "claude-haiku-4-5")).unwrap();
    std::fs::write(root.join(".acas/workflows/hello.yaml"), HELLO).unwrap();
    std::fs::write(root.join(".acas/workflows/broken.yaml"), BROKEN_WORKFLOW).unwrap();
    std::fs::write(root.join("src/main.rs"), BROKEN).unwrap();

    let Session { report, log } = run_neovim(&root, &fake);
    let steps = report["steps"].as_array().unwrap_or_else(|| panic!("no steps in {report:#}\n{log}"));
    let failed: Vec<&Value> = steps.iter().filter(|s| s["ok"] != true).collect();
    assert!(failed.is_empty(), "{version}: steps failed: {failed:#?}\nwhole report: {report:#}\n{log}");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, STEPS, "{report:#}");
    let saw = |name: &str| &steps[STEPS.iter().position(|s| *s == name).unwrap()]["saw"];

    let start = saw("start");
    assert_eq!(start["name"], "acas", "{start:#}");
    assert_eq!(start["started"][0]["cmd"], json!(["acas", "serve"]), "{start:#}");
    assert_eq!(start["started"][0]["root_dir"], root.display().to_string(), "{start:#}");
    assert_eq!(start["filetype"], "rust", "{start:#}");
    assert_eq!(start["offset_encoding"], "utf-16", "{start:#}");
    let commands = start["commands"].as_array().unwrap();
    assert!(commands.contains(&json!("acas.escalate")) && commands.contains(&json!("acas.workflow.run")));

    // On open: the error is on the line of the open call, at a UTF-16 column after the accented
    // text, and Neovim placed it at the matching byte column.
    let line = BROKEN.lines().nth(1).unwrap();
    let open = saw("diagnostics on open");
    assert_eq!(open["line"], line);
    let diagnostic = open["diagnostics"].as_array().unwrap().iter().find(|d| d["source"] == "acas").unwrap();
    let start_at = &diagnostic["range"]["start"];
    assert_eq!(start_at["line"], 1, "{open:#}");
    let character = start_at["character"].as_u64().unwrap();
    let (call, end) = (utf16_column(line, "foo("), line.encode_utf16().count() as u64);
    assert!(
        (call..=end).contains(&character),
        "the error is not on the call, UTF-16 columns {call}..={end}: {open:#}"
    );
    let shown = open["vim_diagnostics"].as_array().unwrap().iter().find(|d| d["source"] == "acas").unwrap();
    assert_eq!(
        (shown["lnum"].as_u64(), shown["col"].as_u64()),
        (Some(1), Some(byte_column(line, character))),
        "{open:#}"
    );

    // Edits made with byte columns reach the server as the right text.
    let fixed = saw("edit fixes the error");
    assert_eq!(fixed["text"], FIXED);
    assert_eq!(fixed["diagnostics"], json!([]), "{fixed:#}");
    let broken = saw("edit breaks it again");
    assert_eq!(broken["text"], BROKEN);
    assert!(broken["diagnostics"].as_array().unwrap().iter().any(|d| d["source"] == "acas"), "{broken:#}");

    let offered = saw("explain action offered");
    assert_eq!(offered["action"]["command"]["command"], "acas.escalate", "{offered:#}");
    let explained = saw("explain runs");
    assert_eq!(explained["ai"]["message"], "The call to `foo` is never closed.", "{explained:#}");
    let sent = fake.requests();
    assert_eq!(sent.len(), 1, "one request to the provider");
    assert!(sent[0].body.to_string().contains("héllo wörld"), "{:?}", sent[0].body);

    let quick_fix = saw("quick fix offered");
    assert_eq!(quick_fix["titles"][0], "Apply AI fix: Close the call (reparsed clean)", "{quick_fix:#}");
    assert_eq!(quick_fix["action"]["command"]["command"], "acas.fixApplied");
    assert_eq!(saw("quick fix applied")["text"], FIXED);

    let workflow = saw("workflow runs");
    assert_eq!(workflow["finished"]["status"], "succeeded", "{workflow:#}");
    assert_eq!(workflow["greeting"], "hello nvim");
    assert_eq!(std::fs::read_to_string(root.join("greeting.txt")).unwrap(), "hello nvim");

    // YAML is among the configuration's file types, so the open workflow file has live diagnostics.
    let workflow_file = saw("workflow file diagnostics");
    assert_eq!(workflow_file["filetype"], "yaml", "{workflow_file:#}");
    let problem = &workflow_file["diagnostics"][0];
    assert_eq!(problem["message"], "step `a` needs `missing`, which is not a step of this workflow");
    assert_eq!(problem["range"]["start"], json!({ "line": 5, "character": 12 }), "{workflow_file:#}");

    let stop = saw("stop");
    assert_eq!(stop["exited"], json!({ "code": 0, "signal": 0 }), "{stop:#}");

    // The server recorded that the fix was offered and applied, from Neovim's command.
    let (code, stdout, stderr) = acas_e2e::run_acas(&["stats", "--format", "json"], &root);
    assert_eq!(code, 0, "{stderr}");
    let stats: Value = serde_json::from_str(&stdout).unwrap();
    let row = &stats["fixes"][0];
    assert_eq!((row["offered"].as_u64(), row["applied"].as_u64()), (Some(1), Some(1)), "{stats:#}");
}
