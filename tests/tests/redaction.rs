//! No secret leaves the machine, whatever part of the context it sits in: the broken file, a
//! definition pulled from another file, the history and the uncommitted diff. And the request
//! inspector shows what was removed without any provider or key.

use std::path::Path;
use std::process::Command;

use acas_e2e::acas_bin;
use acas_e2e::fake_provider::{FakeProvider, Format, Reply};
use serde_json::{Value, json};

/// Every secret of the workspace below, none of which may reach a provider.
const SECRETS: &[&str] = &[
    "Zq8rT2mLw9vBn4Ks",
    "Pg5ecretW0rd",
    "Rk3LmQ9vXw2ZpT7nB4yHcD8s",
    "horse battery",
    "abcDEF123456ghiJKL789",
    "ghp_BYOvfZ8UzDzV8fUkkibjL5DZPjN0MEQ7wjJJ",
    "Winter2024!",
];

/// A repository whose `src/app.py` misses a `)` on line 9, calls `connect` from `src/db.py`,
/// was committed with a token in its message, and has since lost a line holding another token
/// (so the uncommitted diff shows it).
fn workspace(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), config).unwrap();
    std::fs::write(
        root.join("src/db.py"),
        "def connect():\n    return Client(host=\"db.internal\", password=\"Zq8rT2mLw9vBn4Ks\", dsn=\"postgres://app:Pg5ecretW0rd@db.internal/app\")\n",
    )
    .unwrap();
    let app = "from db import connect\n\nLEGACY_TOKEN = \"Rk3LmQ9vXw2ZpT7nB4yHcD8s\"\n\n\ndef total(items):\n    client = connect()\n    passphrase = \"correct horse battery staple\"\n    headers = {\"Authorization\": \"Bearer abcDEF123456ghiJKL789\"}\n    return sum(item[\"price\"] for item in items\n";
    std::fs::write(root.join("src/app.py"), app).unwrap();
    let git = |args: &[&str]| acas_e2e::git(root, args);
    git(&["init", "-q"]);
    git(&["add", "src"]);
    git(&["commit", "-q", "-m", "Use token ghp_BYOvfZ8UzDzV8fUkkibjL5DZPjN0MEQ7wjJJ for now"]);
    let changed =
        app.replace("LEGACY_TOKEN = \"Rk3LmQ9vXw2ZpT7nB4yHcD8s\"\n", "DB_PASSWORD = 'Winter2024!'\n");
    std::fs::write(root.join("src/app.py"), changed).unwrap();
    dir
}

fn acas(root: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, Value, String) {
    let mut command = Command::new(acas_bin());
    command
        .args(args)
        .current_dir(root)
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .env("XDG_CACHE_HOME", acas_e2e::tests_cache_home())
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .env_remove("ACAS_FAKE_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), json, format!("{stdout}{stderr}"))
}

fn config(fake: &FakeProvider) -> String {
    format!(
        "[[providers]]\nname = \"primary\"\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"ACAS_FAKE_KEY\"\ntimeout_secs = 30\n",
        fake.base_url()
    )
}

#[test]
fn no_secret_reaches_the_provider_from_any_part_of_the_context() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&config(&fake));
    let answer = json!({ "explanation": "The call to `sum` is not closed.", "fix": null }).to_string();
    fake.push(Reply::text(&answer));
    let key = fake.api_key();
    let (code, _, log) =
        acas(dir.path(), &[("ACAS_FAKE_KEY", &key)], &["explain", "src/app.py:10", "--format", "json"]);
    assert_eq!(code, 0, "{log}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    for secret in SECRETS {
        assert!(!sent.contains(secret), "`{secret}` reached the provider: {sent}");
    }
    // Each source was there, and the code is still code.
    for part in [
        "def total(items):",
        "return sum(item[\\\"price\\\"] for item in items",
        "client = connect()",
        "def connect():",
        "postgres://app:",
        "Uncommitted changes",
        "-LEGACY_TOKEN = \\\"[REDACTED:token]\\\"",
        "Use token [REDACTED:",
    ] {
        assert!(sent.contains(part), "`{part}` is missing from {sent}");
    }
}

#[test]
fn the_dry_run_shows_what_was_redacted_without_any_provider_or_key() {
    // No provider configured and no key in the environment.
    let dir = workspace("");
    let (code, out, log) =
        acas(dir.path(), &[], &["explain", "src/app.py:10", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    let prompt = out["prompt"].as_str().unwrap();
    for secret in SECRETS {
        assert!(!prompt.contains(secret), "`{secret}` in {prompt}");
    }
    let kinds: Vec<(&str, u64)> = out["redactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    for kind in ["password", "url-credentials", "http-auth", "token", "github"] {
        assert!(kinds.iter().any(|(k, n)| *k == kind && *n >= 1), "{kind} not in {kinds:?}");
    }
    assert!(
        out["unavailable"][0]["reason"].as_str().unwrap().contains("no AI provider is configured"),
        "{out:#}"
    );

    // A provider configured, its key not set: the same, with the provider named as not ready.
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = workspace(&config(&fake));
    let (code, out, log) = acas(dir.path(), &[], &["explain", "src/app.py:10", "--dry-run"]);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("# Redacted") && log.contains("× password"), "{log}");
    assert!(log.contains("primary: not ready") && log.contains("ACAS_FAKE_KEY is not set"), "{log}");
    assert!(out.is_null());
    assert!(fake.requests().is_empty());
}

/// Secrets that only the structure of the code gives away (no format, too few character
/// classes for prose), each in a definition the broken code uses.
const STRUCTURAL_SECRETS: &[&str] = &[
    "tripleq7quoted",
    "tuple7second",
    "basicauth7pw",
    "smtplogin7pw",
    "fallback7or",
    "getenv7default",
    "listed7one",
    "listed7two",
];

#[test]
fn secrets_known_only_by_structure_never_reach_the_provider_and_certificates_do() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), config(&fake)).unwrap();
    let certificate = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/secrets/pem/certificate.pem"),
    )
    .unwrap();
    let db = "import os, smtplib, requests\n\n\ndef connect():\n    \
         password = r\"\"\"tripleq7quoted\"\"\"\n    user, secret = \"admin\", \"tuple7second\"\n    \
         requests.get(\"https://api.internal\", auth=requests.auth.HTTPBasicAuth(\"admin\", \"basicauth7pw\"))\n    \
         smtplib.SMTP(\"mail\").login(\"admin\", \"smtplogin7pw\")\n    \
         token = os.environ.get(\"TOKEN\") or \"fallback7or\"\n    \
         pw = os.getenv(\"DB_PASSWORD\", \"getenv7default\")\n    \
         passwords = [\"listed7one\", \"listed7two\"]\n    return Client(password, secret, token, pw, passwords)\n";
    std::fs::write(root.join("src/db.py"), db).unwrap();
    // The certificate sits right above the broken line, inside the window sent.
    let app = format!(
        "from db import connect\n\nCA = \"\"\"{certificate}\"\"\"\n\n\ndef total(items):\n    client = connect(CA)\n    return sum(item[\"price\"] for item in items\n"
    );
    let broken_line = app.lines().count();
    std::fs::write(root.join("src/app.py"), &app).unwrap();
    let answer = json!({ "explanation": "The call to `sum` is not closed.", "fix": null }).to_string();
    fake.push(Reply::text(&answer));
    let key = fake.api_key();
    let at = format!("src/app.py:{broken_line}");
    let (code, _, log) = acas(root, &[("ACAS_FAKE_KEY", &key)], &["explain", &at, "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    assert!(sent.contains("def connect():"), "the definition is missing from {sent}");
    for secret in STRUCTURAL_SECRETS {
        assert!(!sent.contains(secret), "`{secret}` reached the provider: {sent}");
    }
    // The user names and the public certificate are not secrets: they stay.
    assert!(sent.contains("\\\"admin\\\", \\\"[REDACTED:"), "{sent}");
    let body_line = certificate.lines().nth(1).unwrap();
    assert!(sent.contains(body_line), "the certificate was removed: {sent}");
}

/// A value a rule removes from the code, quoted where no rule would see it: another tool's
/// message, a commit message and the uncommitted diff.
#[test]
fn a_value_removed_from_the_code_goes_from_every_other_part_of_the_request() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), config(&fake)).unwrap();
    let git = |args: &[&str]| acas_e2e::git(root, args);
    let app = "def port(n: int) -> int:\n    return n\n\n\npassword = \"hunter2pw\"\nport(password)\n";
    std::fs::write(root.join("app.py"), app).unwrap();
    git(&["init", "-q"]);
    git(&["add", "app.py"]);
    git(&["commit", "-q", "-m", "Staging now logs in with hunter2pw"]);
    std::fs::write(root.join("app.py"), app.replace("port(password)\n", "port(password)  # was hunter2pw\n"))
        .unwrap();

    // mypy, through the editor, quotes the value in its message.
    let py = root.join("app.py");
    let mut client = acas_e2e::LspClient::start_in(root, &[]);
    client.initialize(Some(root), json!({}));
    let range = json!({ "start": { "line": 5, "character": 5 }, "end": { "line": 5, "character": 13 } });
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": acas_e2e::file_uri(&py), "source": "mypy", "diagnostics": [{
            "range": range, "severity": 1, "code": "arg-type",
            "message": "Argument 1 to \"port\" has incompatible type \"Literal['hunter2pw']\"; expected \"int\"" }] }),
    );
    let problems = client.request("acas/problems", json!({}))["result"].clone();
    assert_eq!(problems.as_array().map(Vec::len), Some(1), "{problems:#}");
    assert_eq!(client.shutdown(), 0);

    fake.push(Reply::text(
        &json!({ "explanation": "A string is passed as a port.", "fix": null }).to_string(),
    ));
    let key = fake.api_key();
    let (code, _, log) = acas(root, &[("ACAS_FAKE_KEY", &key)], &["explain", "app.py:6", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    assert!(!sent.contains("hunter2pw"), "the password reached the provider: {sent}");
    for part in ["Literal['[REDACTED:password]']", "logs in with [REDACTED:password]", "Uncommitted changes"]
    {
        assert!(sent.contains(part), "`{part}` is missing from {sent}");
    }
}

/// Lines a hostile tester wrote, each hiding a secret the request inspector must not show, and
/// lines of real code that must come through as they are.
#[test]
fn the_request_inspector_shows_no_hostile_secret_and_keeps_real_code() {
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        // The line being edited, broken itself: the error is on it.
        ("py", "password = \"correct horse battery\n", &["horse battery"], &[]),
        ("py", "smtp.login(\"me\", \"LoginPw_55!x\"\n", &["LoginPw_55!x"], &[]),
        ("py", "ssh.connect(\"host\", 22, \"root\", \"hunter2pw\")\n", &["hunter2pw"], &["\"root\""]),
        ("py", "if prod: user, pw = \"admin\", \"InlinePw_77x\"\n", &["InlinePw_77x"], &["\"admin\""]),
        (
            "go",
            "package m\nfunc f() { user, pw := \"admin\", \"hunter2pw\" }\n",
            &["hunter2pw"],
            &["\"admin\""],
        ),
        ("rs", "const PASSWORD: &str = r#\"hunter2pw\"#;\n", &["hunter2pw"], &["r#\"[REDACTED:password]\"#"]),
        (
            "py",
            "setattr(cfg, \"password\", \"hunter2pw\")\nos.putenv(\"DB_PASSWORD\", \"Pa55w0rd!2024\")\nsubprocess.run([\"mysql\", \"--password\", \"Argv7pass\"])\nu = \"https://api.x.com/v1?user=a&password=querypw55\"\n",
            &["hunter2pw", "Pa55w0rd!2024", "Argv7pass", "querypw55"],
            &[],
        ),
        (
            "go",
            "package m\nfunc f() { sql.Open(\"mysql\", \"root:hunter2pw@tcp(127.0.0.1:3306)/db\") }\n",
            &["hunter2pw"],
            &[],
        ),
        (
            "py",
            "data = \"\"\"\nMC4CAQAwBQYDK2VwBCIEIDmtFqlHDf+Kup/Q4vPvvdqWR913HG5Bzx2eoQgJpNm3\n\"\"\"\n",
            &["IDmtFqlHDf"],
            &[],
        ),
        (
            "py",
            "PUB = \"MCowBQYDK2VwAyEAW7xvNwosxfUkttFDVmE1AQXYbMD8yHXVdNR6b0eTD6Q=\"\nc = auth._parse_www_authenticate(response, \"www-authenticate\")\nERRORS = {\"password\": \"Enter a valid password.\"}\nPASSWORD_HASHERS = [\"django.contrib.auth.hashers.PBKDF2PasswordHasher\"]\n",
            &[],
            &[
                "MCowBQYDK2VwAyEAW7xvNwosxfUkttFDVmE1AQXYbMD8yHXVdNR6b0eTD6Q=",
                "\"www-authenticate\"",
                "Enter a valid password.",
                "PBKDF2PasswordHasher",
            ],
        ),
    ];
    for (ext, text, secrets, kept) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = format!("f.{ext}");
        // A line that does not parse, after a case that does, so that there is an error to
        // explain.
        let broken = text.lines().count() == 1 && !text.trim_end().ends_with([')', ';', '"']);
        let text = if broken { text.to_string() } else { format!("{text}zz = (\n") };
        std::fs::write(dir.path().join(&file), &text).unwrap();
        let at = format!("{file}:{}", text.lines().count());
        let (code, out, log) = acas(dir.path(), &[], &["explain", &at, "--dry-run", "--format", "json"]);
        assert_eq!(code, 0, "{log}");
        let prompt = out["prompt"].as_str().unwrap();
        for secret in *secrets {
            assert!(!prompt.contains(secret), "`{secret}` in {prompt}");
        }
        for part in *kept {
            assert!(prompt.contains(part), "`{part}` was removed from {prompt}");
        }
    }
}

/// A block of passwords, one a line, none shaped like a password on its own line, committed
/// and then changed on one of its lines; and a file git does not track yet, whose diff is cut
/// inside such a block. No line of either reaches the request inspector, through the diff's
/// lines or the context git prints after a hunk's `@@`.
#[test]
fn a_secret_spanning_lines_stays_out_of_the_uncommitted_diff() {
    const BLOCK: &[&str] =
        &["Hy7pQ2wE9rT4", "Wq2eR4tY6uI8", "Pk3mN8bV5cX1", "Tq4mW8xZ2pLr", "Rv6tY1uI3oP5", "OldCode7xQ2m"];
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let committed = format!(
        "import os\n\nBACKUP_PASSWORDS = \"\"\"\n{}\n\"\"\"\n\ndef main():\n    return 1\n",
        BLOCK.join("\n")
    );
    std::fs::write(root.join("app.py"), &committed).unwrap();
    acas_e2e::git(root, &["init", "-q"]);
    acas_e2e::git(root, &["add", "app.py"]);
    acas_e2e::git(root, &["commit", "-q", "-m", "init"]);
    let changed = committed.replace("OldCode7xQ2m", "NewCode9kW4p").replace("return 1", "return (");
    std::fs::write(root.join("app.py"), &changed).unwrap();
    // Not tracked: its diff is the whole file, cut to its limit inside the block.
    let padding: String = (0..300).map(|i| format!("# padding line {i:04} {}\n", ".".repeat(40))).collect();
    let untracked =
        format!("{padding}KEYS = \"\"\"\n{}\n\"\"\"\n{}zz = (\n", BLOCK.join("\n"), "# tail\n".repeat(40));
    std::fs::write(root.join("cut.py"), &untracked).unwrap();

    for (file, text) in [("app.py", &changed), ("cut.py", &untracked)] {
        let at = format!("{file}:{}", text.lines().count());
        let (code, out, log) = acas(root, &[], &["explain", &at, "--dry-run", "--format", "json"]);
        assert_eq!(code, 0, "{log}");
        let prompt = out["prompt"].as_str().unwrap();
        for secret in BLOCK.iter().chain(&["NewCode9kW4p"]) {
            assert!(!prompt.contains(secret), "`{secret}` in {prompt}");
        }
        assert!(prompt.contains("Uncommitted changes"), "{prompt}");
    }
    // The change itself is still shown.
    let (_, out, _) = acas(root, &[], &["explain", "app.py:13", "--dry-run", "--format", "json"]);
    let prompt = out["prompt"].as_str().unwrap();
    assert!(prompt.contains("-    return 1\n+    return ("), "{prompt}");
}

/// Secrets quoted by other tools' messages, each one only there (not in the code): a real
/// `acas serve` gets them over `acas/externalDiagnostics`, escalates one of them, and the
/// request the provider receives holds none.
const TOOL_MESSAGES: &[(&str, &str)] = &[
    ("Possible hardcoded password: 'supersecretpassword123'", "supersecretpassword123"),
    ("test_login failed: expected status 200 for admin:Tq4mW8xZ2pLr9vKs, got 401", "Tq4mW8xZ2pLr9vKs"),
    ("Hardcoded secret found:\n    Hy7pQ2wE9rT4yU6iO1", "Hy7pQ2wE9rT4yU6iO1"),
    ("db pw Pk3mN8bV5cX1zL7q rejected by server", "Pk3mN8bV5cX1zL7q"),
    ("AssertionError: assert 'Ab3dE5gH7jK9mN1pQ3' == os.environ['API_TOKEN']", "Ab3dE5gH7jK9mN1pQ3"),
    ("Got 403 from https://api.example.com/v2/items (x-api-key: Rv6tY1uI3oP5aS7dF9)", "Rv6tY1uI3oP5aS7dF9"),
    (
        "redis.exceptions.AuthenticationError: invalid password 'Wq2eR4tY6uI8oP0aS1' for user default",
        "Wq2eR4tY6uI8oP0aS1",
    ),
    ("warning: Authorization header: Token 8f7e6d5c4b3a29181716151413121110ffeeddcc", "8f7e6d5c4b3a2918"),
];

#[test]
fn secrets_in_other_tools_messages_sent_by_the_editor_never_reach_the_provider() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), config(&fake)).unwrap();
    let text = "import os\n\ndef f():\n    return os.environ[\"X\"] + 1\n";
    let path = root.join("a.py");
    std::fs::write(&path, text).unwrap();
    fake.push(Reply::text(&json!({ "explanation": "A string plus a number.", "fix": null }).to_string()));

    let key = fake.api_key();
    let mut client = acas_e2e::LspClient::start_in(root, &[("ACAS_FAKE_KEY", key.as_str())]);
    client.initialize(Some(root), json!({}));
    let uri = acas_e2e::file_uri(&path);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": text } }),
    );
    let range = json!({ "start": { "line": 3, "character": 4 }, "end": { "line": 3, "character": 10 } });
    let diagnostics: Vec<Value> = TOOL_MESSAGES
        .iter()
        .map(|(message, _)| json!({ "range": range, "severity": 1, "source": "pytest", "message": message }))
        .collect();
    client.notify(
        "acas/externalDiagnostics",
        json!({ "uri": uri, "source": "pytest", "diagnostics": diagnostics }),
    );
    let problems = client.request("acas/problems", json!({}))["result"].clone();
    assert_eq!(problems.as_array().map(Vec::len), Some(TOOL_MESSAGES.len()), "{problems:#}");
    // The editor sends back the diagnostic it shows, as VS Code does from a quick fix.
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": range, "diagnostic": diagnostics[1] }] }),
    );
    let done = client.escalation_done(&response);
    assert!(done["result"]["explanation"].is_string(), "{done:#}");
    assert_eq!(client.shutdown(), 0);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    for (_, secret) in TOOL_MESSAGES {
        assert!(!sent.contains(secret), "`{secret}` reached the provider: {sent}");
    }
    // The messages are there, without their secrets.
    for part in
        ["test_login failed: expected status 200 for admin:", "rejected by server", "for user default"]
    {
        assert!(sent.contains(part), "`{part}` is missing from {sent}");
    }
}

/// The same through a checker the workspace configures: its output quotes secrets that are in
/// no file, the language server runs it on save and publishes its problems, and escalating one
/// of them sends it without any secret.
#[test]
fn secrets_in_a_checkers_messages_never_reach_the_provider() {
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join(".acas")).unwrap();
    let checker = format!(
        "{}\n[[checkers]]\nname = \"lint\"\ncommand = \"cat report.txt\"\npattern = '^(?P<file>[^:]+):(?P<line>\\d+):(?P<column>\\d+): (?P<message>.+)$'\non_start = false\n",
        config(&fake)
    );
    std::fs::write(root.join(".acas/config.toml"), checker).unwrap();
    let report: String = TOOL_MESSAGES
        .iter()
        .map(|(message, _)| format!("a.py:4:5: {}\n", message.replace('\n', " ")))
        .collect();
    std::fs::write(root.join("report.txt"), report).unwrap();
    let text = "import os\n\ndef f():\n    return os.environ[\"X\"] + 1\n";
    let path = root.join("a.py");
    std::fs::write(&path, text).unwrap();
    fake.push(Reply::text(&json!({ "explanation": "A string plus a number.", "fix": null }).to_string()));

    let key = fake.api_key();
    let mut client = acas_e2e::LspClient::start(&[("ACAS_FAKE_KEY", key.as_str())]);
    client.trust_checkers();
    client.initialize(Some(&root), json!({}));
    let uri = acas_e2e::file_uri(&path);
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "python", "version": 1, "text": text } }),
    );
    client.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }));
    let lint = |p: &Value| -> Vec<Value> {
        p["diagnostics"].as_array().unwrap().iter().filter(|d| d["source"] == "lint").cloned().collect()
    };
    let published = client.expect_diagnostics(&uri, |p| lint(p).len() == TOOL_MESSAGES.len());
    let chosen =
        lint(&published).into_iter().find(|d| d["message"].as_str().unwrap().contains("db pw")).unwrap();
    let response = client.request(
        "workspace/executeCommand",
        json!({ "command": "acas.escalate", "arguments": [{ "uri": uri, "range": chosen["range"], "diagnostic": chosen }] }),
    );
    let done = client.escalation_done(&response);
    assert!(done["result"]["explanation"].is_string(), "{done:#}");
    assert_eq!(client.shutdown(), 0);

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    assert!(
        sent.contains("from lint") && sent.contains("rejected by server"),
        "not the checker's problem: {sent}"
    );
    for (_, secret) in TOOL_MESSAGES {
        assert!(!sent.contains(secret), "`{secret}` reached the provider: {sent}");
    }
}

/// A block of passphrases in a committed file, one of its lines then changed: `git.diff` in a
/// workflow gives its patch to an `ai.ask` step, and the request the provider receives holds no
/// line of the block, while the change itself is still there.
#[test]
fn a_secret_spanning_lines_stays_out_of_the_git_diff_action_sent_to_a_provider() {
    // The change is far enough into the block that the hunk does not show the block's name.
    const BLOCK: &[&str] = &[
        "violet marble thunder",
        "copper lantern meadow",
        "silent falcon garden",
        "pepper window horse",
        "marble river staple",
        "orange garden falcon",
        "thunder copper battery",
        "meadow lantern violet",
    ];
    let fake = FakeProvider::start(Format::OpenAi);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let committed = format!(
        "import os\n\nBACKUP_PASSPHRASES = \"\"\"\n{}\n\"\"\"\n\ndef main():\n    return 1\n",
        BLOCK.join("\n")
    );
    std::fs::write(root.join("app.py"), &committed).unwrap();
    acas_e2e::git(root, &["init", "-q"]);
    acas_e2e::git(root, &["add", "app.py"]);
    acas_e2e::git(root, &["commit", "-q", "-m", "init"]);
    let changed =
        committed.replace("thunder copper battery", "orange river window").replace("return 1", "return 2");
    std::fs::write(root.join("app.py"), &changed).unwrap();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/config.toml"), fake.provider_toml("primary", "gpt-4o-mini")).unwrap();
    std::fs::write(
        root.join(".acas/workflows/review.yaml"),
        "name: review\nsteps:\n  - id: d\n    uses: git.diff\n  - id: r\n    needs: [d]\n    uses: ai.ask\n    with: { prompt: \"Review:\\n{{ steps.d.output.diff }}\" }\n",
    )
    .unwrap();
    fake.push(Reply::text("Fine."));
    let key = fake.api_key();
    let (code, run, log) =
        acas(root, &[("ACAS_FAKE_KEY", &key)], &["workflow", "run", "review", "--format", "json"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(run["steps"][1]["status"], "succeeded", "{run:#}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    for secret in BLOCK.iter().chain(&["orange river window"]) {
        assert!(!sent.contains(secret), "`{secret}` reached the provider: {sent}");
    }
    assert!(sent.contains("-    return 1\\n+    return 2"), "{sent}");
}
