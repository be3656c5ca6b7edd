//! AI fixes for a checker's errors, verified by that checker on a scratch copy, over real stdio:
//! the quick fix says "verified by <checker>" when the checker no longer reports the error, and
//! says it was not verified when it still does; the user's files are never written.

use std::path::Path;
use std::time::{Duration, Instant};

use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use acas_e2e::{LspClient, file_uri};
use serde_json::{Value, json};

/// A checker that reports each line of the workspace's Python files holding `BAD`.
const CHECKER: &str = r#"
[[checkers]]
name = "badwords"
command = "grep -rHn --include='*.py' BAD . | sed -E 's/^\\.\\/([^:]+):([0-9]+):.*/\\1:\\2:1: the word BAD/'; true"
pattern = '^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$'
"#;

const TEXT: &str = "greeting = \"BAD\"\nfarewell = \"BAD too\"\n";

/// Asks for the code actions on `diagnostic` until the AI fix's title ends as `wanted` says
/// (the verification runs in the background), for at most 60 seconds.
fn ai_fix_title(client: &mut LspClient, uri: &str, diagnostic: &Value, wanted: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let actions = client.request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": uri }, "range": diagnostic["range"], "context": { "diagnostics": [diagnostic] } }),
        )["result"]
            .clone();
        let title = actions
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["title"].as_str())
            .find(|t| t.starts_with("Apply AI fix"))
            .unwrap_or_else(|| panic!("an AI fix among {actions:#}"))
            .to_owned();
        if title.ends_with(wanted) || Instant::now() > deadline {
            return title;
        }
    }
}

#[test]
fn a_fix_for_a_checkers_error_is_verified_by_that_checker_and_one_that_misses_is_not() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(
        root.join(".acas/config.toml"),
        format!("{}\n{CHECKER}", fake.provider_toml("claude", "m")),
    )
    .unwrap();
    std::fs::write(root.join("app.py"), TEXT).unwrap();
    let root = root.canonicalize().unwrap();
    let cache = dir.path().join("cache");
    let key = fake.api_key();
    let mut client =
        LspClient::start(&[("ACAS_FAKE_KEY", key.as_str()), ("XDG_CACHE_HOME", cache.to_str().unwrap())]);
    client.trust_checkers();
    client.initialize(Some(&root), json!({ "window": { "workDoneProgress": true } }));
    let uri = file_uri(&root.join("app.py"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": TEXT } }),
    );
    let published = client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "badwords").count() == 2
    });
    let on_line = |line: u64| {
        published["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["source"] == "badwords" && d["range"]["start"]["line"] == line)
            .unwrap()
            .clone()
    };
    let (first, second) = (on_line(0), on_line(1));

    // A fix that removes the word: the checker, run on a scratch copy, no longer reports it.
    let fix = json!({
        "explanation": "The greeting is rude. Say something kind.",
        "fix": { "description": "Greet kindly", "edits": [{ "old": "\"BAD\"", "new": "\"GOOD\"" }] }
    });
    let done = escalate_answered(&mut client, &fake, &uri, &first, &fix);
    assert!(done["result"]["fixId"].is_string(), "{done:#}");
    let title = ai_fix_title(&mut client, &uri, &first, "(verified by badwords)");
    assert_eq!(title, "Apply AI fix: Greet kindly (verified by badwords)");

    // A fix that leaves the word in: it parses, but the checker still reports the error.
    let miss = json!({
        "explanation": "The farewell is rude.",
        "fix": { "description": "Shout it", "edits": [{ "old": "\"BAD too\"", "new": "\"BAD TOO\"" }] }
    });
    escalate_answered(&mut client, &fake, &uri, &second, &miss);
    let title = ai_fix_title(&mut client, &uri, &second, "(reparsed clean; not verified by badwords)");
    assert_eq!(title, "Apply AI fix: Shout it (reparsed clean; not verified by badwords)");

    // The user's file was never written; the mirror is in the cache directory.
    assert_eq!(std::fs::read_to_string(root.join("app.py")).unwrap(), TEXT);
    assert!(std::fs::read_dir(cache.join("acas/scratch")).unwrap().next().is_some());
    client.shutdown();
}

/// Queues `answer` at the fake provider, escalates `diagnostic` of `uri` through
/// `acas.escalate`, and answers the escalation's end.
fn escalate_answered(
    client: &mut LspClient,
    fake: &FakeProvider,
    uri: &str,
    diagnostic: &Value,
    answer: &Value,
) -> Value {
    fake.push(Reply::text(&answer.to_string()));
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": diagnostic["range"], "diagnostic": diagnostic }] }),
    );
    client.escalation_done(&response)
}

/// A pytest module whose one test fails.
const FAILING_TEST: &str =
    "def add(a, b):\n    return a + b\n\n\ndef test_add():\n    assert add(1, 2) == 4\n";

/// A pytest project (`ws` in a temporary directory) whose one test fails (`add(1, 2) == 4`),
/// with the fake provider and `config` in its `.acas/config.toml`; answers the directory and the
/// project's canonical root.
fn failing_pytest(fake: &FakeProvider, config: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    acas_e2e::need_tool("pytest");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let config = format!("{}\n{config}", fake.provider_toml("claude", "m"));
    acas_e2e::write_files(
        &root,
        &[
            ("pyproject.toml", "[tool.pytest.ini_options]\n"),
            ("test_a.py", FAILING_TEST),
            (".acas/config.toml", &config),
        ],
    );
    let root = root.canonicalize().unwrap();
    (dir, root)
}

/// A failing pytest test is a diagnostic like any other: "Explain and fix with AI" on it shows
/// the answer's fix, verified by running the test again on a scratch copy.
#[test]
fn a_fix_for_a_failing_test_is_offered_and_verified_by_running_the_test() {
    let fake = FakeProvider::start(Format::Anthropic);
    let (dir, root) =
        failing_pytest(&fake, "[[checkers]]\nname = \"pytest\"\non_start = true\non_save = true\n");
    let (cache, test) = (dir.path().join("cache"), FAILING_TEST);
    let key = fake.api_key();
    let mut client =
        LspClient::start(&[("ACAS_FAKE_KEY", key.as_str()), ("XDG_CACHE_HOME", cache.to_str().unwrap())]);
    client.trust_checkers();
    client.initialize(Some(&root), json!({ "window": { "workDoneProgress": true } }));
    let uri = file_uri(&root.join("test_a.py"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": test } }),
    );
    let published = client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().any(|d| d["source"] == "pytest")
    });
    let failure = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "pytest")
        .unwrap()
        .clone();
    assert_eq!(failure["range"]["start"]["line"], 5, "on the failing assertion: {failure:#}");
    // The editor's "Explain and fix with AI" action on the failure, run as the editor runs it.
    let actions = client.request(
        "textDocument/codeAction",
        json!({ "textDocument": { "uri": uri }, "range": failure["range"], "context": { "diagnostics": [failure] } }),
    )["result"]
        .clone();
    let explain = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == "Explain and fix with AI")
        .unwrap_or_else(|| panic!("an AI action among {actions:#}"))
        .clone();
    let fix = json!({
        "explanation": "1 + 2 is 3.",
        "fix": { "description": "Expect 3", "edits": [{ "old": "add(1, 2) == 4", "new": "add(1, 2) == 3" }] }
    });
    fake.push(Reply::text(&fix.to_string()));
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": explain["command"]["command"], "arguments": explain["command"]["arguments"] }),
    );
    let done = client.escalation_done(&response);
    assert!(done["result"]["fixId"].is_string(), "the fix is offered: {done:#}");
    let title = ai_fix_title(&mut client, &uri, &failure, "(verified by pytest)");
    assert_eq!(title, "Apply AI fix: Expect 3 (verified by pytest)");
    assert_eq!(std::fs::read_to_string(root.join("test_a.py")).unwrap(), test);
    client.shutdown();
}

/// The scratch copy has a size limit: a workspace over it is not copied, the fix is offered as
/// one that parses, not verified, and the user is told which limit and how to raise it.
#[test]
fn a_workspace_over_the_scratch_copys_limit_is_not_copied_and_the_user_is_told() {
    let fake = FakeProvider::start(Format::Anthropic);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(
        root.join(".acas/config.toml"),
        format!("{}\n{CHECKER}", fake.provider_toml("claude", "m")),
    )
    .unwrap();
    std::fs::write(root.join("app.py"), TEXT).unwrap();
    // Data the ignore rules keep, far over the limit below.
    std::fs::write(root.join("data.txt"), vec![b'x'; 64 * 1024]).unwrap();
    let root = root.canonicalize().unwrap();
    let cache = dir.path().join("cache");
    let key = fake.api_key();
    let mut client = LspClient::start(&[
        ("ACAS_FAKE_KEY", key.as_str()),
        ("XDG_CACHE_HOME", cache.to_str().unwrap()),
        ("ACAS_SCRATCH_MAX_BYTES", "16384"),
    ]);
    client.trust_checkers();
    client.initialize(Some(&root), json!({ "window": { "workDoneProgress": true } }));
    let uri = file_uri(&root.join("app.py"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": TEXT } }),
    );
    let published = client.expect_diagnostics(&uri, |p| {
        p["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "badwords").count() == 2
    });
    let first = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "badwords" && d["range"]["start"]["line"] == 0)
        .unwrap()
        .clone();
    let fix = json!({
        "explanation": "The greeting is rude.",
        "fix": { "description": "Greet kindly", "edits": [{ "old": "\"BAD\"", "new": "\"GOOD\"" }] }
    });
    let done = escalate_answered(&mut client, &fake, &uri, &first, &fix);
    assert!(done["result"]["fixId"].is_string(), "{done:#}");
    let title = ai_fix_title(&mut client, &uri, &first, "(reparsed clean; not verified by badwords)");
    assert_eq!(title, "Apply AI fix: Greet kindly (reparsed clean; not verified by badwords)");
    let told = client.expect("the limit, told", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"].as_str().is_some_and(|t| t.contains("ACAS_SCRATCH_MAX_BYTES"))
    });
    assert!(told["params"]["message"].as_str().unwrap().contains("limit of 16 KiB"), "{told:#}");
    let scratch: Vec<_> = std::fs::read_dir(cache.join("acas/scratch")).unwrap().flatten().collect();
    assert_eq!(scratch.len(), 1);
    assert!(!scratch[0].path().join("tree/data.txt").exists(), "nothing copied past the limit");
    client.shutdown();
}

/// At start, the scratch copies of workspaces that are gone and those unused for weeks are
/// removed; a copy in use lately is kept.
#[test]
fn stale_scratch_copies_are_removed_at_start_and_recent_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    let cache = dir.path().join("cache");
    let scratch = cache.join("acas/scratch");
    let copy = |name: &str, workspace: &Path, age_days: u64| {
        let base = scratch.join(name);
        std::fs::create_dir_all(base.join("tree/src")).unwrap();
        std::fs::write(base.join("tree/src/a.py"), "x = 1\n").unwrap();
        std::fs::write(base.join("lock"), "").unwrap();
        std::fs::write(base.join("workspace"), workspace.to_str().unwrap()).unwrap();
        let at = std::time::SystemTime::now() - Duration::from_secs(age_days * 24 * 3600);
        for file in ["workspace", "lock"] {
            std::fs::File::options().write(true).open(base.join(file)).unwrap().set_modified(at).unwrap();
        }
        base
    };
    let gone = copy("gone", &dir.path().join("deleted-workspace"), 0);
    let old = copy("old", &root, 30);
    let recent = copy("recent", &root, 1);
    let mut client = LspClient::start(&[("XDG_CACHE_HOME", cache.to_str().unwrap())]);
    client.initialize(Some(&root), json!({}));
    client.expect_log(&format!("removed the stale scratch copy {}", gone.display()));
    client.expect_log(&format!("removed the stale scratch copy {}", old.display()));
    assert!(!gone.exists() && !old.exists());
    assert!(recent.join("tree/src/a.py").is_file(), "a copy used yesterday is kept");
    client.shutdown();
}

/// A rule that escalates test failures escalates the failing pytest test by itself, and the
/// answer's fix is offered and verified by running the test.
#[test]
fn a_rule_escalates_a_failing_test_and_its_fix_is_verified_by_the_test() {
    let fake = FakeProvider::start(Format::Anthropic);
    let (dir, root) = failing_pytest(
        &fake,
        "[[rules]]\ncategory = \"test\"\npersists = \"0s\"\nidle = \"0s\"\naction = \"escalate\"\n\n[[checkers]]\nname = \"pytest\"\non_start = true\n",
    );
    let (cache, test) = (dir.path().join("cache"), FAILING_TEST);
    let key = fake.api_key();
    let fix = json!({
        "explanation": "1 + 2 is 3.",
        "fix": { "description": "Expect 3", "edits": [{ "old": "add(1, 2) == 4", "new": "add(1, 2) == 3" }] }
    });
    fake.push(Reply::text(&fix.to_string()));
    let mut client =
        LspClient::start(&[("ACAS_FAKE_KEY", key.as_str()), ("XDG_CACHE_HOME", cache.to_str().unwrap())]);
    client.trust_checkers();
    client.initialize(Some(&root), json!({}));
    let uri = file_uri(&root.join("test_a.py"));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": test } }),
    );
    let published = client.expect_diagnostics(&uri, |p| {
        let diagnostics = p["diagnostics"].as_array().unwrap();
        diagnostics.iter().any(|d| d["source"] == "pytest")
            && diagnostics.iter().any(|d| d["source"] == "acas-ai")
    });
    let failure = published["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"] == "pytest")
        .unwrap()
        .clone();
    let title = ai_fix_title(&mut client, &uri, &failure, "(verified by pytest)");
    assert_eq!(title, "Apply AI fix: Expect 3 (verified by pytest)");
    client.shutdown();
}
