//! Spend limits count the agent a request is for, whichever front end sends it, against the real
//! binary and the fake provider: `acas explain --agent NAME`, `acas explain` and `acas serve`
//! started by a workflow step (the run's agent, whatever the step says), `acas policy explain
//! spend`, and the MCP server with the team's PostgreSQL store, where the calls are recorded.

use std::path::{Path, PathBuf};
use std::process::Command;

use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply};
use acas_e2e::postgres::PgCluster;
use acas_e2e::{acas_bin, write_files};
use serde_json::{Value, json};

/// A repository whose `src/shapes.rs` misses a `)` on line 6, asking `fake` with `policy`.
fn repository(fake: &FakeProvider, policy: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let config = format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n",
        fake.base_url()
    );
    write_files(
        &root,
        &[
            (".acas/config.toml", &config),
            (".acas/policy.yaml", policy),
            ("src/square.rs", "pub fn square(x: f64) -> f64 {\n    x * x\n}\n"),
            (
                "src/shapes.rs",
                "use crate::square::square;\n\npub fn circle_area(r: f64) -> f64 {\n    let _unused = 1;\n\n    std::f64::consts::PI * (square(r)\n}\n",
            ),
        ],
    );
    acas_e2e::git(&root, &["init", "-q"]);
    (dir, root)
}

/// A reply that costs more than $0.01 with gpt-4o-mini's prices.
fn push_costly_reply(fake: &FakeProvider) {
    let text = json!({ "explanation": "The call to `square` opens a parenthesis that is never closed." });
    let usage = FakeUsage { input_tokens: 1000, output_tokens: 40_000, cached_input_tokens: 0 };
    fake.push(Reply::Text { text: text.to_string(), usage });
}

/// `acas ARGS` in `root` with the fake provider's key and no user configuration.
fn acas(root: &Path, fake: &FakeProvider, args: &[&str]) -> (i32, String) {
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
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

/// The agent and status of each provider call in the workspace's ledger, in order.
fn calls(root: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(root.join(".acas/state.db")).unwrap();
    db.prepare("SELECT coalesce(agent, ''), status FROM provider_call ORDER BY at_ms, id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The policy decisions on spending, as (actor, outcome).
fn spend_decisions(root: &Path) -> Vec<(String, String)> {
    acas_e2e::policy_decisions(root)
        .into_iter()
        .filter(|r| r["subject"].as_str().is_some_and(|s| s.starts_with("spend")))
        .map(|r| {
            (r["actor"].as_str().unwrap().to_owned(), r["detail"]["outcome"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn an_agent_named_on_the_command_line_is_held_to_its_own_limit() {
    let fake = FakeProvider::start(Format::OpenAi);
    let (_dir, root) = repository(&fake, "agents:\n  bot:\n    spend:\n      daily_usd: 0.005\n");
    push_costly_reply(&fake);
    let (code, out) = acas(&root, &fake, &["explain", "src/shapes.rs:6", "--agent", "Bot"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(calls(&root), [("bot".to_owned(), "succeeded".to_owned())]);

    // What the agent spent is what `policy explain` counts, and its next request is refused
    // before anything is sent.
    let (code, out) =
        acas(&root, &fake, &["policy", "explain", "--agent", "bot", "spend", "0", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(answer["outcome"], "deny", "{answer:#}");
    assert!(answer["reason"].as_str().unwrap().contains("bot spent $0.0"), "{answer:#}");
    let (code, out) = acas(&root, &fake, &["explain", "src/shapes.rs:6", "--agent", "bot"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("policy denies spend") && out.contains("$0.005 a day allowed to bot"), "{out}");
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        spend_decisions(&root),
        [("bot".to_owned(), "allow".to_owned()), ("bot".to_owned(), "deny".to_owned())]
    );
    // Another agent's limit counts its own spend.
    let (code, out) =
        acas(&root, &fake, &["policy", "explain", "--agent", "other", "spend", "0", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    // A name that is no agent's is refused before anything is read or sent.
    for bad in ["", " ", "*", "a\u{202e}b", &"x".repeat(129)] {
        let (code, out) = acas(&root, &fake, &["explain", "src/shapes.rs:6", "--agent", bad]);
        assert_ne!(code, 0, "{bad:?}: {out}");
        assert!(out.contains("is not an agent's name"), "{bad:?}: {out}");
    }
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn explain_inside_a_step_asks_for_the_runs_agent_whatever_it_says() {
    let fake = FakeProvider::start(Format::OpenAi);
    let (_dir, root) = repository(&fake, "agents:\n  cli:\n    spend:\n      daily_usd: 0.005\n");
    push_costly_reply(&fake);
    push_costly_reply(&fake);
    let step = |id: &str| {
        format!(
            "  - id: {id}\n    run: [\"{}\", \"explain\", \"src/shapes.rs:6\", \"--agent\", \"sneaky\"]\n",
            acas_bin().display()
        )
    };
    let workflow = format!("name: ask\nsteps:\n{}{}    needs: [first]\n", step("first"), step("second"));
    write_files(&root, &[(".acas/workflows/ask.yaml", &workflow)]);
    let (code, out) = acas(&root, &fake, &["workflow", "run", "ask", "--workspace", "."]);
    // The run's agent (`cli`, who started it) spent its day with the first answer.
    assert_ne!(code, 0, "{out}");
    assert_eq!(calls(&root), [("cli".to_owned(), "succeeded".to_owned())]);
    assert_eq!(fake.requests().len(), 1);
    let decided = spend_decisions(&root);
    assert_eq!(decided.iter().map(|(_, o)| o.as_str()).collect::<Vec<_>>(), ["allow", "deny"], "{decided:?}");
    assert!(decided.iter().all(|(actor, _)| actor == "cli"), "{decided:?}");
}

#[test]
fn an_editor_server_a_step_starts_escalates_for_the_runs_agent() {
    let fake = FakeProvider::start(Format::OpenAi);
    let (_dir, root) = repository(
        &fake,
        "agents:\n  nested-agent:\n    workflows:\n      allow: [\"outer\"]\n    spend:\n      daily_usd: 5\n",
    );
    push_costly_reply(&fake);
    let editor = Path::new(env!("CARGO_MANIFEST_DIR")).join("lsp").join("escalate.py");
    let workflow = format!(
        "name: outer\nsteps:\n  - id: editor\n    run: [\"python3\", \"{}\", \"{}\", \".\", \"src/shapes.rs\"]\n",
        editor.display(),
        acas_bin().display()
    );
    write_files(&root, &[(".acas/workflows/outer.yaml", &workflow)]);
    let config = tempfile::tempdir().unwrap();
    acas_e2e::trust(&root, config.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join("nested.py");
    let output = Command::new(acas_e2e::python_with("mcp"))
        .arg(&script)
        .arg(acas_bin())
        .arg(&root)
        .arg("outer")
        .env("XDG_CONFIG_HOME", config.path())
        .env("ACAS_FAKE_KEY", fake.api_key())
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .output()
        .expect("running the MCP client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the MCP client failed ({}):\n{stderr}\n{stdout}", output.status);
    let state: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(state["status"], "succeeded", "{state:#}");
    assert_eq!(fake.requests().len(), 1, "{state:#}");
    // The editor's escalation is the run's agent's spend, asked of its limit in its session.
    assert_eq!(calls(&root), [("nested-agent".to_owned(), "succeeded".to_owned())]);
    let decided = spend_decisions(&root);
    assert_eq!(decided.len(), 1, "{decided:?}");
    let session = decided[0].0.strip_prefix("nested-agent/").unwrap_or_else(|| panic!("{decided:?}"));
    assert_eq!(session.len(), 8, "{decided:?}");
    assert_eq!(decided[0].1, "allow");
}

/// Runs `tests/mcp/spend.py` (the official MCP SDK) on `root` with the shared store at `url`:
/// `agent-a` asks `explain` twice, then `agent-b` once; what each call answered.
fn spend_over_mcp(root: &Path, url: &str, fake: &FakeProvider) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp").join("spend.py");
    let output = Command::new(acas_e2e::python_with("mcp"))
        .arg(&script)
        .arg(acas_bin())
        .arg(root)
        .env("ACAS_DATABASE_URL", url)
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
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

#[test]
fn agent_limits_count_the_calls_recorded_in_the_shared_store() {
    let cluster = PgCluster::start();
    let url = cluster.database();
    let fake = FakeProvider::start(Format::OpenAi);
    let policy = "agents:\n  agent-a:\n    spend:\n      daily_usd: 0.005\n";
    // Two clones of one repository, on one team store.
    let (_first, first) = repository(&fake, policy);
    let (_second, second) = repository(&fake, policy);
    push_costly_reply(&fake);
    push_costly_reply(&fake);
    let seen = spend_over_mcp(&first, &url, &fake);
    // agent-a's first answer, recorded in PostgreSQL, took it over its limit.
    assert_eq!(seen["a"][0]["ok"], true, "{seen:#}");
    assert_eq!(seen["a"][1]["ok"], false, "{seen:#}");
    let refusal = seen["a"][1]["message"].as_str().unwrap();
    assert!(refusal.contains("agent-a spent $0.0") && refusal.contains("$0.005 a day"), "{refusal}");
    assert_eq!(seen["b"][0]["ok"], true, "{seen:#}");
    // In the other clone, whose own state holds no call, agent-a has spent its day too.
    let seen = spend_over_mcp(&second, &url, &fake);
    assert_eq!(seen["a"][0]["ok"], false, "{seen:#}");
    assert!(seen["a"][0]["message"].as_str().unwrap().contains("agent-a spent $0.0"), "{seen:#}");
    assert_eq!(seen["b"][0]["ok"], true, "{seen:#}");
    assert_eq!(fake.requests().len(), 1);
    let recorded =
        acas_e2e::postgres::psql_url(&url, "SELECT string_agg(DISTINCT agent, ',') FROM provider_call");
    assert_eq!(recorded, "agent-a,agent-b", "{recorded}");

    // `policy explain` reads the same ledger.
    let output = Command::new(acas_bin())
        .args(["policy", "explain", "--agent", "agent-a", "spend", "0"])
        .current_dir(&second)
        .env("ACAS_DATABASE_URL", &url)
        .env("XDG_CONFIG_HOME", second.join(".no-user-config"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.starts_with("deny:"), "{text}");
}
