//! `acas explain` and `acas cost` against the fake provider, in a real git repository.

use std::path::Path;
use std::process::Command;

use acas_e2e::acas_bin;
use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply};
use serde_json::{Value, json};

const SECRET: &str = "sk-ant-api03-Zq8xP1mNw4TvY7uBc2LdK9eRf5GhJ3sAa0";

/// A repository whose `src/shapes.rs` has a missing `)` committed by Ada, and a helper in
/// another file that the broken function calls.
fn repository(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), config).unwrap();
    std::fs::write(
        root.join("src/square.rs"),
        "/// The square of a length.\npub fn square(x: f64) -> f64 {\n    x * x\n}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/shapes.rs"),
        format!(
            "use crate::square::square;\n\npub fn circle_area(r: f64) -> f64 {{\n    let _token = \"{SECRET}\";\n\n    std::f64::consts::PI * (square(r)\n}}\n"
        ),
    )
    .unwrap();
    let git = |args: &[&str]| acas_e2e::git(root, args);
    git(&["init", "-q"]);
    git(&["add", "src"]);
    git(&["commit", "-q", "-m", "Compute circle areas"]);
    dir
}

fn config(fake: &FakeProvider, budget: &str) -> String {
    format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n\n[budget]\n{budget}\n",
        fake.base_url()
    )
}

fn acas(root: &Path, fake: &FakeProvider, args: &[&str]) -> (i32, Value, String) {
    let output = Command::new(acas_bin())
        .args(args)
        .current_dir(root)
        .env("ACAS_FAKE_KEY", fake.api_key())
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env("XDG_CACHE_HOME", acas_e2e::tests_cache_home())
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, format!("{stdout}{stderr}"))
}

fn reply(fix_new: &str) -> String {
    json!({
        "explanation": "The call to `square` opens a parenthesis that is never closed. The expression needs `)` before the end of the line.",
        "fix": { "description": "Close the parenthesis", "edits": [{ "old": "(square(r)\n", "new": fix_new }] }
    })
    .to_string()
}

#[test]
fn explain_sends_the_whole_story_and_offers_a_verified_fix() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository(&config(&fake, "daily_usd = 2.0"));
    let root = dir.path();
    let usage = FakeUsage { input_tokens: 1234, output_tokens: 567, cached_input_tokens: 200 };
    fake.push(Reply::Text { text: reply("(square(r))\n"), usage });

    let (code, out, log) = acas(root, &fake, &["explain", "src/shapes.rs:6", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert!(out["explanation"].as_str().unwrap().starts_with("The call to `square`"));
    assert_eq!(out["fix"]["verified"], true, "{out:#}");
    assert_eq!(out["fix"]["edits"][0]["path"], "src/shapes.rs");
    assert_eq!(out["fix"]["edits"][0]["new"], "(square(r))\n");
    assert_eq!((out["provider"].as_str(), out["model"].as_str()), (Some("primary"), Some("gpt-4o-mini")));
    assert_eq!(out["usage"]["input_tokens"], 1234);
    assert_eq!(out["usage"]["output_tokens"], 567);
    assert_eq!(out["cached"], false);
    // gpt-4o-mini: $0.15/M input, $0.075/M cached input, $0.60/M output.
    let expected = (1034.0 * 0.15 + 200.0 * 0.075 + 567.0 * 0.6) / 1e6;
    assert!((out["cost_usd"].as_f64().unwrap() - expected).abs() < 1e-6, "{out:#}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    assert!(sent.contains("Ada Lovelace") && sent.contains("Compute circle areas"), "blame: {sent}");
    assert!(sent.contains("function circle_area"), "enclosing function: {sent}");
    assert!(sent.contains("pub fn square(x: f64) -> f64"), "definition: {sent}");
    assert!(sent.contains("missing `)`"), "diagnostic: {sent}");
    assert!(!sent.contains(SECRET), "the secret left the machine");
    assert!(sent.contains("[REDACTED:anthropic]"));

    // The same question again is answered from the cache: nothing sent, nothing spent.
    let (code, again, log) = acas(root, &fake, &["explain", "src/shapes.rs:6", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(again["cached"], true);
    assert_eq!(again["cost_usd"], 0.0);
    assert_eq!(again["explanation"], out["explanation"]);
    assert_eq!(fake.requests().len(), 1);

    // acas cost agrees to the cent with the usage the provider reported.
    let (code, cost, log) = acas(root, &fake, &["cost", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert!((cost["total_usd"].as_f64().unwrap() - expected).abs() < 1e-6, "{cost:#}");
    let row = &cost["rows"][0];
    assert_eq!((row["provider"].as_str(), row["category"].as_str()), (Some("primary"), Some("syntax")));
    assert_eq!((row["calls"].as_u64(), row["cached"].as_u64()), (Some(1), Some(1)));
}

#[test]
fn a_fix_that_breaks_the_syntax_is_not_offered() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository(&config(&fake, ""));
    fake.push(Reply::text(&reply("(square(r)))\n")));
    let (code, out, log) = acas(dir.path(), &fake, &["explain", "src/shapes.rs:6", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(out["fix"]["verified"], false);
    assert!(out["fix"]["reason"].as_str().unwrap().starts_with("the fix leaves a syntax error"), "{out:#}");
    assert!(out["explanation"].as_str().is_some_and(|e| !e.is_empty()));
}

#[test]
fn a_reply_that_is_not_json_is_repaired_once() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository(&config(&fake, ""));
    fake.push(Reply::text("The parenthesis is not closed, add one."));
    fake.push(Reply::text(&format!("```json\n{}\n```", reply("(square(r))\n"))));
    let (code, out, log) = acas(dir.path(), &fake, &["explain", "src/shapes.rs:6", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(out["fix"]["verified"], true);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].body.to_string().contains("could not be used"));
}

#[test]
fn the_budget_refuses_before_anything_is_sent() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository(&config(&fake, "daily_usd = 0.0001"));
    fake.push(Reply::text(&reply("(square(r))\n")));
    let (code, _, log) = acas(dir.path(), &fake, &["explain", "src/shapes.rs:6", "--format", "json"]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("the workspace daily budget of $0.0001 would be exceeded"), "{log}");
    assert!(fake.requests().is_empty());
    let (_, cost, _) = acas(dir.path(), &fake, &["cost", "--format", "json"]);
    assert_eq!(cost["rows"][0]["refused"], 1, "{cost:#}");
    assert_eq!(cost["total_usd"], 0.0);
}

#[test]
fn a_dry_run_prints_the_request_and_sends_nothing() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository(&config(&fake, ""));
    let (code, out, log) =
        acas(dir.path(), &fake, &["explain", "src/shapes.rs:6", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(out["dry_run"], true);
    assert!(out["prompt"].as_str().unwrap().contains(">>    6 |"), "{out:#}");
    assert!(out["estimated_input_tokens"].as_u64().unwrap() > 100);
    assert_eq!(out["estimates"][0]["provider"], "primary");
    assert_eq!(out["redactions"][0]["kind"], "anthropic");
    assert!(fake.requests().is_empty());
}

#[test]
fn explain_fails_clearly_without_a_provider_or_a_diagnostic() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository("");
    let (code, _, log) = acas(dir.path(), &fake, &["explain", "src/shapes.rs:6"]);
    assert_eq!(code, 2);
    assert!(log.contains("no AI provider is configured"), "{log}");
    let dir = repository(&config(&fake, ""));
    let (code, _, log) = acas(dir.path(), &fake, &["explain", "src/shapes.rs:1"]);
    assert_eq!(code, 2);
    assert!(log.contains("no diagnostic on src/shapes.rs:1"), "{log}");
    let (code, _, log) = acas(dir.path(), &fake, &["explain", "src/shapes.rs"]);
    assert_eq!(code, 2);
    assert!(log.contains("is not FILE:LINE"), "{log}");
}

/// The stored rows of the symbol index: path, format and entries, by path.
fn symbol_rows(root: &Path) -> Vec<(String, i64, String)> {
    let conn = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
    let mut stmt = conn.prepare("SELECT path, format, entries FROM symbol_file ORDER BY path").unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn explain_keeps_the_symbol_index_in_the_store_and_trusts_no_stale_row() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository(&config(&fake, ""));
    let root = dir.path();
    std::fs::write(root.join("src/old.rs"), "pub fn retired() {}\n").unwrap();
    fake.push(Reply::text(&reply("(square(r))\n")));
    let (code, _, log) = acas(root, &fake, &["explain", "src/shapes.rs:6", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    let paths: Vec<String> = symbol_rows(root).into_iter().map(|r| r.0).collect();
    assert_eq!(paths, ["src/old.rs", "src/shapes.rs", "src/square.rs"]);

    // The helper changes shape, a file goes away: the next explain sends the new definition
    // and forgets the file.
    std::fs::write(
        root.join("src/square.rs"),
        "/// Helpers first.\npub fn cube(x: f32) -> f32 {\n    x * x * x\n}\n\n/// The square, in single precision.\npub fn square(x: f32) -> f32 {\n    x * x\n}\n",
    )
    .unwrap();
    std::fs::remove_file(root.join("src/old.rs")).unwrap();
    let dry_run = |root: &Path| {
        let (code, out, log) =
            acas(root, &fake, &["explain", "src/shapes.rs:6", "--dry-run", "--format", "json"]);
        assert_eq!(code, 0, "{log}");
        out["prompt"].as_str().unwrap().to_owned()
    };
    let prompt = dry_run(root);
    assert!(prompt.contains("pub fn square(x: f32) -> f32 {\n"), "{prompt}");
    assert!(!prompt.contains("x * x * x"), "{prompt}");
    let rows = symbol_rows(root);
    assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["src/shapes.rs", "src/square.rs"]);
    assert!(rows[1].2.contains("\"cube\""), "{rows:?}");

    // A damaged row and one of an older encoding are indexed again, not used.
    let conn = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
    conn.execute_batch(
        "UPDATE symbol_file SET entries = '{\"definitions\":[{\"name\":\"square\",\"kind\":\"function\",\"start\":0,\"end\":9000,\"line\":0}],\"uses\":[]}' WHERE path = 'src/square.rs';
         UPDATE symbol_file SET format = 0 WHERE path = 'src/shapes.rs';",
    )
    .unwrap();
    drop(conn);
    assert_eq!(dry_run(root), prompt);
    let rows = symbol_rows(root);
    assert!(rows.iter().all(|r| r.1 > 0 && r.2.contains("\"end\"")), "{rows:?}");
    assert!(rows[1].2.contains("\"cube\""), "{rows:?}");
}

/// `acas explain --dry-run` in `root` with the user's cache in `cache`, logging at `info`.
fn dry_run_with_cache(root: &Path, cache: &Path) -> (i32, Value, String) {
    let output = Command::new(acas_bin())
        .args(["--log-level", "info", "explain", "src/shapes.rs:6", "--dry-run", "--format", "json"])
        .current_dir(root)
        .env("XDG_CONFIG_HOME", cache.join("no-user-config"))
        .env("XDG_CACHE_HOME", cache)
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn a_dry_run_without_state_keeps_the_symbol_index_in_the_users_cache() {
    let dir = repository("");
    let root = dir.path();
    std::fs::remove_dir_all(root.join(".acas")).unwrap();
    let cache = tempfile::tempdir().unwrap();

    let (code, first, log) = dry_run_with_cache(root, cache.path());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("symbol index, files: 0 from the store, 2 parsed"), "{log}");
    let prompt = first["prompt"].as_str().unwrap().to_owned();
    assert!(prompt.contains("pub fn square(x: f64)"), "{prompt}");
    // Nothing is written into the workspace; the index is in one database of the cache.
    assert!(!root.join(".acas").exists());
    let kept: Vec<_> = std::fs::read_dir(cache.path().join("acas/index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".db"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");

    // The next dry run parses nothing and sends the same request.
    let (code, second, log) = dry_run_with_cache(root, cache.path());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("symbol index, files: 2 from the store, 0 parsed"), "{log}");
    assert_eq!(second["prompt"], first["prompt"]);

    // A changed file is parsed again, and what it defines now is what is sent.
    std::fs::write(
        root.join("src/square.rs"),
        "/// The square, in single precision.\npub fn square(x: f32) -> f32 {\n    x * x\n}\n",
    )
    .unwrap();
    let (code, third, log) = dry_run_with_cache(root, cache.path());
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("symbol index, files: 1 from the store, 1 parsed"), "{log}");
    assert!(third["prompt"].as_str().unwrap().contains("pub fn square(x: f32)"), "{third:#}");
}

#[test]
fn an_agents_spend_limit_counts_its_own_spend_only() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = repository(&config(&fake, ""));
    let root = dir.path();
    std::fs::write(
        root.join(".acas/policy.yaml"),
        "agents:\n  agent-a:\n    spend:\n      daily_usd: 0.0001\n  \"*\":\n    spend:\n      daily_usd: 0.0001\n",
    )
    .unwrap();
    let usage = FakeUsage { input_tokens: 1234, output_tokens: 567, cached_input_tokens: 0 };
    fake.push(Reply::Text { text: reply("(square(r))\n"), usage });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join("spend.py");
    let output = Command::new(acas_e2e::python_with("mcp"))
        .arg(&script)
        .arg(acas_bin())
        .arg(root)
        .env("ACAS_FAKE_KEY", fake.api_key())
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env("XDG_CACHE_HOME", acas_e2e::tests_cache_home())
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .output()
        .expect("running the MCP client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the MCP client failed ({}):\n{stderr}\n{stdout}", output.status);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    // agent-a spent over its limit with its first answer: its second call is refused, naming
    // the agent, the limit and what it spent.
    assert_eq!(seen["a"][0]["ok"], true, "{seen:#}");
    let spent = seen["a"][0]["cost_usd"].as_f64().unwrap();
    assert!(spent > 0.0001, "{seen:#}");
    assert_eq!(seen["a"][1]["ok"], false, "{seen:#}");
    let refusal = seen["a"][1]["message"].as_str().unwrap();
    assert!(
        refusal.contains("agent-a spent")
            && refusal.contains(&format!("${spent:.4}"))
            && refusal.contains("$0.0001 a day"),
        "{refusal}"
    );
    // agent-b's limit counts its own spend, not agent-a's.
    assert_eq!(seen["b"][0]["ok"], true, "{seen:#}");
    assert_eq!(fake.requests().len(), 1);
    // The ledger names the agent of each call.
    let db = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
    let mut rows: Vec<(String, String)> = db
        .prepare("SELECT coalesce(agent, ''), status FROM provider_call ORDER BY at_ms, id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [("agent-a".to_owned(), "succeeded".to_owned()), ("agent-b".to_owned(), "cached".to_owned())]
    );
}

/// `timeout`, a service manager or a closed terminal stop `acas explain` with SIGTERM or SIGHUP
/// while its provider has not answered: the call ends as cancelled, as on Ctrl-C, and its
/// reservation no longer holds the budget.
#[test]
fn explain_stopped_by_sigterm_or_sighup_ends_its_reservation() {
    for (n, signal) in ["-TERM", "-HUP"].into_iter().enumerate() {
        let fake = FakeProvider::start(Format::OpenAi);
        fake.push(Reply::Hang);
        let dir = repository(&config(&fake, "daily_usd = 5.0"));
        let root = dir.path();
        let mut child = Command::new(acas_bin())
            .args(["explain", "src/shapes.rs:6", "--format", "json"])
            .current_dir(root)
            .env("ACAS_FAKE_KEY", fake.api_key())
            .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
            .env("XDG_CACHE_HOME", acas_e2e::tests_cache_home())
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("GEMINI_API_KEY")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        fake.wait_for_requests(1);
        let pid = child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
        let status = child.wait().unwrap();
        assert!(status.code().is_some(), "{signal}: exits on its own, not killed by the signal: {status}");
        let conn = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
        let statuses: Vec<String> = conn
            .prepare("SELECT status FROM provider_call")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(statuses, ["cancelled"], "case {n} ({signal})");
    }
}
