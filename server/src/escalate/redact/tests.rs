use super::*;

fn redactor() -> Redactor {
    Redactor::new(&DEFAULT_NO_EGRESS.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/secrets").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Redacts `text` and checks that `secret` is gone and `kind` was reported.
#[track_caller]
fn check(text: &str, secret: &str, kind: &str) {
    let (redacted, found) = redact_text(text, false);
    assert!(!redacted.contains(secret), "`{secret}` survived in `{redacted}`");
    let kinds: Vec<&str> = found.kinds.iter().map(|(k, _)| *k).collect();
    assert!(kinds.contains(&kind), "expected {kind}, found {kinds:?} in `{redacted}`");
}

#[test]
fn every_vendored_rule_compiles() {
    assert!(skipped_rules().is_empty(), "{:?}", skipped_rules());
    assert!(vendored_rules() > 200, "{}", vendored_rules());
    for rule in &rules().leaks {
        assert!(rules().marker.is_match(&format!("[REDACTED:{}]", rule.id)), "{}", rule.id);
    }
}

#[test]
fn every_secret_in_the_fixture_corpus_is_removed() {
    for line in fixture("corpus.txt").lines().filter(|l| !l.starts_with('#')) {
        let (_, text) = line.split_once(' ').unwrap();
        let secret = text
            .rsplit(['=', ' ', '"', '\'', ':'])
            .find(|s| s.len() >= 8)
            .unwrap()
            .trim_end_matches([';', ')', '"', '\'']);
        let (redacted, found) = redact_text(text, false);
        assert!(!redacted.contains(secret), "`{secret}` survived in `{redacted}`");
        assert!(found.total() >= 1, "{text}");
    }
}

#[test]
fn values_of_secret_names_go_whatever_their_case_and_characters() {
    check(r#"password = "Zq8rT2mLw9vBn4Ks""#, "Zq8rT2mLw9vBn4Ks", "password");
    check(r#"db_password = "correct horse battery staple""#, "horse battery", "password");
    check("PASSPHRASE=correct horse battery staple\n", "horse battery", "password");
    check("passphrase: correct horse battery staple\n", "correct horse", "password");
    check(r#"connect(host="db", password="Hunter2Hunter2!")"#, "Hunter2Hunter2!", "password");
    check(r#"{"password": "Zq8rT2mLw9vBn4Ks", "user": "ada"}"#, "Zq8rT2mLw9vBn4Ks", "password");
    check(r#"{'api_key': 'AbCdEf0123456789'}"#, "AbCdEf0123456789", "api-key");
    check("password: Zq8rT2mLw9vBn4Ks\n", "Zq8rT2mLw9vBn4Ks", "password");
    check("DB_PASSWORD=letmein\n", "letmein", "password");
    check(r#"$dbPassword = 'Winter2024!';"#, "Winter2024!", "password");
    check(r#"'password' => 'Winter2024!',"#, "Winter2024!", "password");
    check(r#"password := "Winter2024!""#, "Winter2024!", "password");
    check(r#"let password: &str = "Winter2024!";"#, "Winter2024!", "password");
    check(r#"private static final String CLIENT_SECRET = "q9Vd-Lm2x";"#, "q9Vd-Lm2x", "secret");
    check(r#"builder.password("Winter2024!")"#, "Winter2024!", "password");
    check("mysql -u root --password Winter2024! db\n", "Winter2024!", "password");
    check("psql -h db -password Winter2024! db\n", "Winter2024!", "password");
    check("-LEGACY_TOKEN = \"Rk3LmQ9vXw2ZpT7nB4yHcD8s\"\n", "Rk3LmQ9vXw2ZpT7nB4yHcD8s", "token");
    assert_eq!(redact_text("-LEGACY_TOKEN = \"Rk3Lm\"\n", false).0, "-LEGACY_TOKEN = \"[REDACTED:token]\"\n");
    check("<password>Winter2024!</password>", "Winter2024!", "password");
    check(r#"token = "3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d""#, "3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d", "token");
}

#[test]
fn long_hex_and_base64_values_of_key_like_names_go() {
    check(r#"sig = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08""#, "9f86d0818", "key");
    check(r#"hmacKey: "dGhpcyBpcyBhIHNlY3JldCBrZXkgMTIz""#, "dGhpcyBpcyBh", "key");
    check("signing_key = 'c2VjcmV0LXNpZ25pbmcta2V5LTQ1Ng=='", "c2VjcmV0LXNp", "secret");
}

#[test]
fn credentials_in_urls_and_headers_go() {
    for url in [
        "postgres://app:s3cretPw@db.internal:5432/app",
        "mysql://root:s3cretPw@localhost/db",
        "redis://:s3cretPw@cache:6379/0",
        "amqp://guest:s3cretPw@mq/vhost",
        "mongodb+srv://admin:s3cretPw@cluster0.example.net/test",
        "https://deploy:s3cretPw@git.example.com/repo.git",
    ] {
        check(&format!("DATABASE_URL = \"{url}\""), "s3cretPw", "url-credentials");
    }
    check(
        "requests.get(url, headers={'Authorization': 'Bearer abcDEF123456ghiJKL'})",
        "abcDEF123456ghiJKL",
        "http-auth",
    );
    check(
        r#"headers = {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}"#,
        "YWxhZGRpbjpvcGVuc2VzYW1l",
        "http-auth",
    );
    check("Authorization: SSWS 00QCjAl4MlV-WPXM-ABCDEFGHIJKL-0HmjFx-vbGua", "00QCjAl4MlV", "http-auth");
    check("machine api.github.com login ziggy password 012345abcdef\n", "012345abcdef", "password");
    check(
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==;EndpointSuffix=core.windows.net",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==",
        "key",
    );
    check("//registry.npmjs.org/:_authToken=npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789\n", "npm_AbCdEf", "npm");
    check("//npm.example.com/:_authToken=a1b2c3d4-e5f6\n", "a1b2c3d4-e5f6", "token");
}

#[test]
fn high_entropy_tokens_in_any_assignment_go() {
    check(r#"const upstream = "Qm9vbGVhbkZsYWdTZWNyZXQxMjM0NTY3ODk";"#, "Qm9vbGVhbkZsYWdT", "high-entropy");
    check("WEBHOOK=Xk9pL2mQ8rT4vB7nW1zY5cF3\n", "Xk9pL2mQ8rT4vB7nW1zY5cF3", "high-entropy");
}

#[test]
fn private_keys_and_env_values_are_removed() {
    let (redacted, found) = redactor().redact(&fixture("id_ed25519.txt"), false);
    assert_eq!(redacted, "some text before\n[REDACTED:private-key]\nsome text after\n");
    assert_eq!(found.kinds, vec![("private-key", 1)]);

    let dotenv = fixture("dotenv.txt");
    let (redacted, _) = redactor().redact(&dotenv, true);
    assert!(redacted.contains("SESSION_KEY=[REDACTED"), "{redacted}");
    assert!(redacted.contains("DEBUG=true") && redacted.contains("APP_NAME=acas-demo"), "{redacted}");
    assert!(is_env_like(".env.local") && is_env_like("config/prod.env") && !is_env_like("src/env.rs"));
}

#[test]
fn ordinary_code_is_left_alone() {
    let code = r#"
fn login(password: &str) -> bool { check(password) }
let token = tokens.next();
password = get_password()
const apiKey = process.env.API_KEY;
let commit = "3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39";
let id = "123e4567-e89b-12d3-a456-426614174000";
token_type = "bearer"
let key = event.key;
if key == "Enter" { submit() }
self.password = password
password_field = "password"
api_key_env = "OPENAI_API_KEY"
password = os.environ["DB_PASSWORD"]
password: ${{ secrets.DB_PASSWORD }}
token: Token,
password: String,
def connect(password: str = None): ...
const config = { password: value, user };
checksum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
"integrity": "sha512-bKuiRQtqZ4XKXwNAI3ozcW9RPX4cy1w6R6MwUMQeAVj33ftGKaVfkr6EoyrXD5yTYeRPw+Q/S4o7Jf+mW0WfIw=="
img = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
version = "1.2.3-beta.4"
import { readFile } from "node:fs/promises";
color: #1e90ff;
"#;
    let (redacted, found) = redact_text(code, false);
    assert_eq!(redacted, code, "{found:?}");
}

#[test]
fn a_realistic_file_keeps_its_code() {
    let code = r#"import os
from dataclasses import dataclass

DB_URL = "postgres://app:Zq8rT2mLw9vBn4Ks@db.internal:5432/app"

@dataclass
class Settings:
    host: str = "db.internal"
    password: str = "Zq8rT2mLw9vBn4Ks"

def total(items):
    # The error: summing strings.
    return sum(item["price"] for item in items) + "tax"
"#;
    let (redacted, found) = redact_text(code, false);
    assert!(!redacted.contains("Zq8rT2mLw9vBn4Ks"), "{redacted}");
    assert_eq!(found.total(), 2, "{found:?}");
    for kept in [
        "import os",
        "class Settings:",
        "host: str = \"db.internal\"",
        "return sum(item[\"price\"] for item in items) + \"tax\"",
        "postgres://app:",
        "@db.internal:5432/app",
    ] {
        assert!(redacted.contains(kept), "`{kept}` lost from `{redacted}`");
    }
}

#[test]
fn no_egress_files_are_never_sent() {
    let redactor = redactor();
    for path in [".env", "config/.env.production", "certs/server.pem", "keys/deploy.key", "home/id_rsa.pub"] {
        assert!(!redactor.may_send(path), "{path}");
    }
    for path in ["src/main.rs", "env.ts", "docs/keys.md"] {
        assert!(redactor.may_send(path), "{path}");
    }
}

#[test]
fn requests_are_redacted_and_left_alone_when_clean() {
    let request = CompletionRequest {
        system: "You fix code.".into(),
        prompt: "password = \"Zq8rT2mLw9vBn4Ks\"".into(),
        max_tokens: 100,
        temperature: None,
        json_schema: None,
    };
    let (sent, found) = redact_request(&request);
    assert_eq!(sent.prompt, "password = \"[REDACTED:password]\"");
    assert_eq!(found.total(), 1);
    let (clean, none) = redact_request(&sent);
    assert!(matches!(clean, Cow::Borrowed(_)) && none.total() == 0);
}

mod properties {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::super::redact_text;

    /// Secrets of several kinds, and the code they sit in.
    const SECRETS: &[&str] = &[
        "sk-ant-api03-PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA_2O76UMFxFkM",
        "ghp_BYOvfZ8UzDzV8fUkkibjL5DZPjN0MEQ7wjJJ",
        "AKIADPMRCG629BE2U66M",
        "xoxb-150587706589-4811311440242-0B26R08qzjI6GKFSufrdZSlB",
        "Zq8rT2mLw9vBn4Ks",
        "correct horse battery staple",
    ];
    const TEMPLATES: &[&str] = &[
        "password = \"{}\"\n",
        "{\"api_key\": \"{}\"}",
        "TOKEN={}\n",
        "connect(secret='{}')",
        "postgres://app:{}@db/main ",
        "Authorization: Bearer {}\n",
        // Names that receive a value by structure.
        "password = r\"\"\"{}\"\"\"\n",
        "user, password = \"admin\", \"{}\"\n",
        "requests.get(url, auth=HTTPBasicAuth(\"admin\", \"{}\"))\n",
        "token = os.environ.get(\"TOKEN\") or \"{}\"\n",
        "db = os.getenv(\"DB_PASSWORD\", \"{}\")\n",
        "API_KEYS = {\"ci\": \"{}\"}\n",
        "  POSTGRES_PASSWORD: ${PW:-{}}\n",
    ];

    /// Whether a template holds a value that cannot hold spaces (a URL, a header, a default
    /// in a shell expansion).
    fn no_spaces(t: usize) -> bool {
        TEMPLATES[t].contains("://") || TEMPLATES[t].contains("Bearer") || TEMPLATES[t].contains("${")
    }
    const PLAIN: &[&str] = &[
        "fn", "let", "items", "total", "parse", "value", "return", "the", "cart", "sum", "=", "(", ")", "{",
        "}", ";", ":", ",", ".", "\"", "'", "\n", " ", "  ", "0", "42", "if", "else", "user", "name",
        "price", "->", "#", "//", "[", "]", "map", "x", "y",
    ];

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            (0..SECRETS.len(), 0..TEMPLATES.len())
                .prop_filter("URLs and headers hold no spaces", |(s, t)| !(SECRETS[*s].contains(' ')
                    && no_spaces(*t)))
                .prop_map(|(s, t)| TEMPLATES[t].replace("{}", SECRETS[s])),
            any::<String>(),
            "[ -~\n]{0,60}",
            proptest::sample::select(PLAIN).prop_map(str::to_owned),
            Just("[REDACTED:password]".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn redaction_is_idempotent_and_never_panics(parts in vec(fragment(), 0..10), env_like: bool) {
            let text = parts.concat();
            let (once, _) = redact_text(&text, env_like);
            let (twice, again) = redact_text(&once, env_like);
            prop_assert_eq!(&twice, &once);
            prop_assert_eq!(again.total(), 0);
        }

        #[test]
        fn a_secret_never_comes_back(
            before in vec(fragment(), 0..4),
            s in 0..SECRETS.len(),
            t in 0..TEMPLATES.len(),
            after in vec(fragment(), 0..4),
        ) {
            let secret = SECRETS[s];
            // A URL or an HTTP header holds no spaces.
            prop_assume!(!(secret.contains(' ') && no_spaces(t)));
            let text = format!("{}\n{}\n{}", before.concat(), TEMPLATES[t].replace("{}", secret), after.concat());
            let (once, found) = redact_text(&text, false);
            prop_assert!(!once.contains(secret), "{}", once);
            prop_assert!(found.total() >= 1);
            let (twice, _) = redact_text(&once, false);
            prop_assert!(!twice.contains(secret));
        }

        #[test]
        fn text_without_secret_like_content_is_unchanged(words in vec(proptest::sample::select(PLAIN), 0..80)) {
            // Words run together can spell a secret-like name (`map` + `if` holds `api`), and
            // their run a token: separate them.
            let text = words.join(" ");
            let (redacted, found) = redact_text(&text, false);
            prop_assert_eq!(&redacted, &text);
            prop_assert_eq!(found.total(), 0);
        }
    }
}

#[tokio::test]
async fn every_built_provider_redacts_what_it_sends() {
    // `cat` answers with what it was sent: the reply is the request as it left ACAS.
    let config: crate::escalate::ProviderConfig =
        toml::from_str("kind = \"command\"\nname = \"echo\"\ncommand = [\"cat\"]\n").unwrap();
    let provider = crate::escalate::build(&config, &|_| None).unwrap();
    let request = CompletionRequest {
        system: "You fix code.".into(),
        prompt: "conn = connect(password=\"Zq8rT2mLw9vBn4Ks\", url=\"redis://:s3cretPw@cache\")\nfix it"
            .into(),
        max_tokens: 100,
        temperature: None,
        json_schema: None,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let reply = provider.complete(&request, &mut |_| {}, &cancel).await.unwrap();
    assert!(!reply.text.contains("Zq8rT2mLw9vBn4Ks") && !reply.text.contains("s3cretPw"), "{}", reply.text);
    assert!(reply.text.contains("conn = connect(password=\"[REDACTED:password]\""), "{}", reply.text);
    assert!(reply.text.contains("fix it"), "{}", reply.text);
}

/// The positive examples of Nosey Parker's rules: the secret its pattern captures (the last
/// group; earlier ones are often context such as a host or a user name) is removed. Tokens that
/// only a prefix identifies, with no name or known format around them, are missed: the figure
/// is printed, and may not drop.
#[test]
#[allow(clippy::print_stdout)] // The figure is this test's output, for BENCHMARKS.md.
fn nosey_parker_examples_are_redacted() {
    let mut missed = Vec::new();
    let mut total = 0;
    for line in fixture("noseyparker-examples.jsonl").lines().filter(|l| !l.starts_with('#')) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let (rule, pattern, example) = (
            entry["rule"].as_str().unwrap(),
            entry["pattern"].as_str().unwrap(),
            entry["example"].as_str().unwrap(),
        );
        let Ok(pattern) = regex::Regex::new(pattern) else { continue };
        let Some(captures) = pattern.captures(example) else { continue };
        let Some(secret) = captures.iter().skip(1).flatten().last().map(|m| m.as_str()) else { continue };
        total += 1;
        let (redacted, _) = redact_text(example, false);
        if redacted.contains(secret) {
            missed.push(format!("{rule}: `{secret}`"));
        }
    }
    let recall = 100.0 * (total - missed.len()) as f64 / total as f64;
    println!("Nosey Parker examples: {} of {total} secrets removed ({recall:.1}%)", total - missed.len());
    for m in &missed {
        println!("  missed {m}");
    }
    assert!(total > 250, "only {total} examples were usable");
    assert!(recall >= RECALL_FLOOR, "recall {recall:.1}% fell under {RECALL_FLOOR}%");
}

const RECALL_FLOOR: f64 = 92.5;

#[test]
fn code_on_the_right_hand_side_is_never_redacted() {
    for line in [
        "result = computeFinancialSummaryForQuarter3(accountHolderId42)\n",
        "const handler = createRequestHandlerV2(ctx);\n",
        "secret = config[\"secret\"]\n",
        "pw = pw[:-1]\n",
        "password = password_from_vault2\n",
        "factory = \"HttpRequestHandlerFactoryV3Impl\"\n",
        "secrets_manager_arn = \"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf\"\n",
        "auth = \"Basic\"\n",
        "ns = types.SimpleNamespace(x=1, y=2)\n",
        "        self.client = poplib.POP3_SSL(self.server.host, self.server.port)\n",
        "charset = _charset.UNKNOWN8BIT\n",
        // From the standard library's smtplib, ftplib and urllib.
        "    def login(self, user, password, *, initial_response_ok=True):\n",
        "    def login(self, user='', passwd='', acct='', secure=True):\n",
        "        user_pass = '%s:%s' % (unquote(user), unquote(password))\n",
        "        self.putcmd('AUTH=%s' % mechanism)\n",
    ] {
        let (redacted, found) = redact_text(line, false);
        assert_eq!(redacted, line, "{found:?}");
    }
    // Literals and configuration values are still read.
    check("password = \"pw[:-1]\"\n", "pw[:-1]", "password");
    check("DB_PASSWORD=hunter2\n", "hunter2", "password");
    check("WEBHOOK=Xk9pL2mQ8rT4vB7nW1zY5cF3\n", "Xk9pL2mQ8rT4vB7nW1zY5cF3", "high-entropy");
}

#[test]
fn text_that_looks_like_a_marker_does_not_shield_a_secret() {
    check("password = \"[REDACTED:x]hunter2\"\n", "hunter2", "password");
    check("password = \"hunter2[REDACTED:password]\"\n", "hunter2", "password");
    check(
        "key = \"[REDACTED:x] sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345\"\n",
        "sk-ant-api03",
        "anthropic",
    );
    // What the redactor wrote stays as it is when the text is redacted again.
    let once = redact_text("password = \"hunter2\"\npw = hunter3\n", false).0;
    assert_eq!(redact_text(&once, false).0, once);
}

/// The redactor's own source and tests, the context builder's test, the webhook tests (which
/// sign with a literal secret) and the test that MCP audit records leave secrets out hold
/// secrets on purpose.
const HOLDS_TEST_SECRETS: &[&str] = &[
    "escalate/redact",
    "escalate/context.rs",
    "workflow/triggers/webhook.rs",
    "workflow/outbox.rs",
    "mcp/agents.rs",
    "store/postgres/url.rs",
    "store/postgres/identity.rs",
];

#[test]
#[allow(clippy::print_stdout)] // The figure is this test's output, for BENCHMARKS.md.
fn the_servers_own_source_goes_through_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root.clone()];
    let (mut checked, mut lines) = (0, 0);
    let mut changed = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        if path.extension().is_none_or(|e| e != "rs")
            || HOLDS_TEST_SECRETS.iter().any(|p| relative.starts_with(p))
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (redacted, _) = redact_text(&text, false);
        checked += 1;
        lines += text.lines().count();
        for (before, after) in text.lines().zip(redacted.lines()) {
            if before != after {
                changed.push(format!("{relative}: {before}\n    -> {after}"));
            }
        }
    }
    println!("{checked} files, {lines} lines, {} lines changed", changed.len());
    assert!(checked > 50, "{checked}");
    assert!(changed.is_empty(), "{} lines changed:\n{}", changed.len(), changed.join("\n"));
}

#[test]
fn secrets_in_prose_comments_and_messages_go() {
    let aws = "q7Hs2LmP0vXr9TbN4wKz/+8cYdEf3GaJ1iUo5RtB";
    check("# prod password is Zq8rT2mLw9vBn4Ks\nx = 1\n", "Zq8rT2mLw9vBn4Ks", "password");
    check(
        "# The staging password is \"Zq8rT2mLw9vBn4Ks\" (rotate monthly)\n",
        "Zq8rT2mLw9vBn4Ks",
        "password",
    );
    check("rotate db password to Zq8rT2mLw9vBn4Ks; and more\n", "Zq8rT2mLw9vBn4Ks", "password");
    let message = format!(
        "Hardcoded credential: value is Zq8rT2mLw9vBn4Ks; matched AWS secret {aws} (rule aws-secret)"
    );
    check(&message, "Zq8rT2mLw9vBn4Ks", "credential");
    check(&message, aws, "secret");
    // Prose about secrets keeps its words.
    for line in [
        "Please enter your password to continue\n",
        "# the token is refreshed every 3600 seconds\n",
        "Use Basic authentication with your username and password\n",
        "/// The secret names a vendor rule, e.g. aws-secret-access-key.\n",
        "// Tokens of 20 characters or more count (see TOKEN_MIN_LEN).\n",
    ] {
        assert_eq!(redact_text(line, false).0, line);
    }
}

#[test]
fn pem_bodies_without_their_armour_go() {
    let line = |i: usize| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC{i:02}x7Hq2LmP0vX");
    let body: Vec<String> = (0..5).map(line).collect();
    let window = format!(
        "    12 |     {}\n    13 |     {}\n    14 | {}\n    15 | rest of it==\n",
        body[2], body[3], body[4]
    );
    assert_eq!(line(0).len(), 64);
    let (redacted, found) = redact_text(&window, false);
    for line in &body[2..] {
        assert!(!redacted.contains(line.as_str()), "{redacted}");
    }
    assert_eq!(found.kinds, vec![("private-key", 1)]);
    // One base64 line is data, not a key.
    let one = format!("# {}\n", body[0]);
    assert!(redact_text(&one, false).0.contains(&body[0]));
}

#[test]
fn vendor_tokens_go_with_no_name_around_them() {
    for (token, kind) in [
        ("dckr_pat_AbCdEfGhIjKlMnOpQrStUvWxYz0", "docker"),
        ("GOCSPX-AbCdEfGhIjKlMnOpQrStUvWxYz01", "google-oauth"),
        ("ya29.a0AfH6SMBxAbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "google-oauth"),
        ("dp.st.prd.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg", "doppler"),
        ("ops_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij", "onepassword"),
        ("ATATT3xFfGF0AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "atlassian"),
        ("whsec_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "stripe"),
        ("ntn_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij", "notion"),
        ("NRAK-ABCDEFGHIJKLMNOPQRSTUVWXYZ0", "newrelic"),
        ("gsk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmn", "groq"),
        ("r8_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789a", "replicate"),
        ("xai-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmn", "xai"),
        ("key-0123456789abcdef0123456789abcdef", "mailgun"),
        ("MTAbCdEfGhIjKlMnOpQrStUvWx.Gh1-2_.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab", "discord"),
        ("1234567890:AAbCdEfGhIjKlMnOpQrStUvWxYz01234567", "telegram"),
        ("odt_AbCdEfGhIjKlMnOpQrStUvWxYz012345", "dependency-track"),
        ("sgp_0123456789abcdef_0123456789abcdef0123456789abcdef01234567", "sourcegraph"),
        ("sq0atp-AbCdEfGhIjKlMnOpQrStUv", "square"),
        ("tvly-AbCdEfGhIjKlMnOpQrStUvWxYz012345", "tavily"),
        ("oy2abcdefghijklmnopqrstuvwxyz0123456789abcdefg", "nuget"),
        ("hvs.CAESIAbCdEfGhIjKlMnOpQrStUvWxYz0123", "vault"),
        ("$2b$12$AbCdEfGhIjKlMnOpQrStUuAbCdEfGhIjKlMnOpQrStUvWxYz01234", "password-hash"),
    ] {
        check(&format!("c = Client(\"{token}\")\n# {token}\n"), token, kind);
    }
    check(
        "https://0123456789abcdef0123456789abcdef@o123456.ingest.sentry.io/1234567",
        "0123456789abcdef0123",
        "sentry",
    );
    check(
        "curl -H 'Authorization: token 0123456789abcdef0123456789abcdef01234567'",
        "0123456789abcdef01",
        "http-auth",
    );
    check("https://maps.example.com/api?q=x&key=AbCdEfGhIjKlMnOpQrSt01", "AbCdEfGhIjKlMnOpQrSt01", "url-key");
    check(
        "otpauth://totp/Acme:ada?secret=JBSWY3DPEHPK3PXPJBSWY3DP&issuer=Acme",
        "JBSWY3DPEHPK3PXP",
        "totp-seed",
    );
}

#[test]
fn long_values_and_passwords_with_an_at_sign_go() {
    let long = "Zq8rT2mLw9vBn4Ks".repeat(300);
    check(&format!("password = \"{long}\"\n"), &long[..64], "password");
    check("DATABASE_URL=postgres://app:p@ss@w0rd@db.internal:5432/app\n", "ss@w0rd", "url-credentials");
}

#[test]
fn prefixed_and_wrapped_literals_of_secret_names_go() {
    for line in [
        "password = r\"Zq8rT2mLw9vBn4Ks\"\n",
        "password = b'Zq8rT2mLw9vBn4Ks'\n",
        "password = f\"Zq8rT2mLw9vBn4Ks\"\n",
        "password = rb\"Zq8rT2mLw9vBn4Ks\"\n",
        "password: SecretStr = SecretStr(\"Zq8rT2mLw9vBn4Ks\")\n",
        "password = str(\"Zq8rT2mLw9vBn4Ks\")\n",
        "password: str = Field(default=\"Zq8rT2mLw9vBn4Ks\")\n",
        "let password = String::from(\"Zq8rT2mLw9vBn4Ks\");\n",
    ] {
        check(line, "Zq8rT2mLw9vBn4Ks", "password");
    }
}

#[test]
fn secrets_named_in_a_string_or_a_statement_go() {
    // A password glued to its flag inside an argv list.
    check(
        "subprocess.run([\"mysql\", \"-u\", \"root\", \"-pS3cr3tPassw0rdZ9\"])\n",
        "S3cr3tPassw0rdZ9",
        "password",
    );
    let pw = "Zq8rT2mLw9vBn4Ks";
    for text in [
        format!("os.environ[\"DB_PASSWORD\"] = \"{pw}\"\n"),
        format!("env:\n  - name: DB_PASSWORD\n    value: {pw}\n"),
        format!("env:\n  - name: DB_PASSWORD\n    value: \"{pw}\"\n"),
        format!("<add key=\"ApiKey\" value=\"{pw}\"/>\n"),
        format!("<property name=\"password\" value=\"{pw}\"/>\n"),
        format!("[{{\"Name\":\"DB_PASSWORD\",\"Value\":\"{pw}\"}}]\n"),
        format!("ENV API_TOKEN {pw}\n"),
        format!("CREATE USER app WITH PASSWORD '{pw}';\n"),
        format!("CREATE USER 'app'@'%' IDENTIFIED BY '{pw}';\n"),
        format!("mysql -u root -p{pw} app < dump.sql\n"),
        format!("sshpass -p {pw} ssh deploy@host\n"),
        format!("db:\n  password: |\n    {pw}\n  user: app\n"),
    ] {
        let (redacted, found) = redact_text(&text, false);
        assert!(!redacted.contains(pw), "`{pw}` survived in `{redacted}`");
        assert!(found.total() >= 1, "{text}");
    }
    // A name/value pair about something else keeps its value, and `mysql -P` is a port.
    for text in ["- name: LOG_LEVEL\n  value: debug\n", "mysql -h db -P3306 app\n"] {
        assert_eq!(redact_text(text, false).0, text);
    }
}

#[test]
fn high_entropy_literals_go_wherever_they_are() {
    check(
        "c = Client(\"2hpChYgCfrL1spNxnyVmihA+2O76UMFxFkM+R5Kj\")\n",
        "2hpChYgCfrL1spNxnyVmihA",
        "high-entropy",
    );
    check(
        "connect('us-east-1', 'AKIDEXAMPLE', 'q7Hs2LmP0vXr9TbN4wKz/+8cYdEf3GaJ1iUo5RtB')\n",
        "q7Hs2LmP0vXr",
        // The third argument of a DB-API style `connect` is a password by position.
        "password",
    );
    let code = "log.info(\"HttpRequestHandlerFactoryV3Impl\")\nopen(\"/var/lib/acas/state.db\")\n";
    assert_eq!(redact_text(code, false).0, code);
}

/// Values that no luck of other rules catches: lower-case letters and digits only (too few
/// character classes for prose), or a passphrase of words.
#[test]
fn python_string_prefixes_and_triple_quotes_go_for_every_name_rule() {
    for (text, secret) in [
        (r#"password = r"""correct horse staple""""#, "horse staple"),
        (r#"password = """hunter2hunter""""#, "hunter2hunter"),
        ("password = '''hunter2hunter'''", "hunter2hunter"),
        ("password = rb'''hunter2hunter'''", "hunter2hunter"),
        ("password = r'hunter2hunter'", "hunter2hunter"),
        (r#"password = b"hunter2hunter""#, "hunter2hunter"),
        (r#"password = f"hunter2hunter""#, "hunter2hunter"),
        (r#"connect(password='''hunter2hunter''')"#, "hunter2hunter"),
        (r#"connect(password=r"hunter2hunter")"#, "hunter2hunter"),
        (r#"d = {"password": r"""hunter2hunter"""}"#, "hunter2hunter"),
        (r#"x = {"token": """hunter2hunter"""}"#, "hunter2hunter"),
        ("secret = \"\"\"\nline one hunter2\nline two hunter3\n\"\"\"\n", "hunter2"),
    ] {
        let (redacted, found) = redact_text(text, false);
        assert!(!redacted.contains(secret), "`{secret}` survived in `{redacted}`");
        assert!(found.total() >= 1, "{text}");
    }
}

#[test]
fn tuple_and_destructuring_assignments_pair_names_with_values() {
    for text in [
        r#"user, password = "admin", "hunter2hunter""#,
        r#"(user, password) = ("admin", "hunter2hunter")"#,
        r#"[user, password] = ["admin", "hunter2hunter"]"#,
        r#"const [user, pass] = ["admin", "hunter2hunter"];"#,
        r#"user, pass := "admin", "hunter2hunter""#,
        r#"let {password: p} = {password: "hunter2hunter"};"#,
    ] {
        let (redacted, _) = redact_text(text, false);
        assert!(!redacted.contains("hunter2hunter"), "survived in `{redacted}`");
        // The user name is in the position of a name that is no secret: it stays.
        assert!(redacted.contains("admin") || !text.contains("admin"), "user name taken in `{redacted}`");
    }
    let plain = "host, port = \"db.internal\", \"5432\"\n";
    assert_eq!(redact_text(plain, false).0, plain);
}

#[test]
fn credentials_passed_by_position_to_auth_calls_go() {
    for text in [
        r#"auth = HTTPBasicAuth("admin", "hunter2hunter")"#,
        r#"auth = HTTPDigestAuth("admin", "hunter2hunter")"#,
        r#"r = requests.get(url, auth=("admin", "hunter2hunter"))"#,
        r#"r = requests.get(url, auth=["admin", "hunter2hunter"])"#,
        r#"session = aiohttp.ClientSession(auth=aiohttp.BasicAuth("admin", "hunter2hunter"))"#,
        r#"smtp.login(user, "hunter2hunter")"#,
        r#"ftp.login("admin", "hunter2hunter")"#,
        r#"creds = Credentials("admin", "hunter2hunter")"#,
        r#"conn = pymysql.connect("db.internal", "admin", "hunter2hunter", "app")"#,
        r#"conn = mysql.connector.connect(user="admin", password="hunter2hunter")"#,
    ] {
        let (redacted, found) = redact_text(text, false);
        assert!(!redacted.contains("hunter2hunter"), "survived in `{redacted}`");
        assert!(redacted.contains("admin") || !text.contains("\"admin\""), "user name taken in `{redacted}`");
        assert!(found.total() >= 1);
    }
    // Other calls keep their string arguments.
    let plain =
        "logging.basicConfig(\"a\", \"b\")\nclient.get(\"users\", \"active\")\nconnect(\"db\", 5432)\n";
    assert_eq!(redact_text(plain, false).0, plain);
}

#[test]
fn fallback_values_of_secret_names_go() {
    for text in [
        r#"password = os.environ.get("PW") or "hunter2hunter""#,
        r#"password = getpass() or "hunter2hunter""#,
        r#"pw = os.getenv("X", "hunter2hunter")"#,
        r#"db = os.getenv("DB_PASSWORD", "hunter2hunter")"#,
        r#"db = os.environ.get("API_TOKEN", "hunter2hunter")"#,
        r#"const password = process.env.PW || "hunter2hunter";"#,
        r#"const password = process.env.PW ?? "hunter2hunter";"#,
        r#"let password = env::var("PW").unwrap_or("hunter2hunter".into());"#,
        "      POSTGRES_PASSWORD: ${PW:-hunter2hunter}\n",
        "export PGPASSWORD=\"${DB_PASSWORD:-hunter2hunter}\"\n",
        "psql \"postgres://app@db/app\" --set=x=${DB_PASSWORD:=hunter2hunter}\n",
    ] {
        let (redacted, found) = redact_text(text, false);
        assert!(!redacted.contains("hunter2hunter"), "survived in `{redacted}`");
        assert!(found.total() >= 1);
    }
    // A fallback inside an argument is not the secret's, and other defaults stay.
    for plain in [
        "PASSWD = getpass.getpass(\"password for %s: \" % (host or \"localhost\"))\n",
        "port = os.getenv(\"PORT\", \"8080\")\n",
        "HOME=${HOME:-/root}\n",
    ] {
        assert_eq!(redact_text(plain, false).0, plain);
    }
}

#[test]
fn collections_given_to_secret_names_go() {
    for text in [
        r#"passwords = ["hunter2hunter", "hunter3hunter"]"#,
        r#"API_KEYS = {"a": "hunter2hunter", "b": "hunter3hunter"}"#,
        r#"tokens = {"ci": "hunter2hunter", "deploy": "hunter3hunter"}"#,
        r#"SECRETS = ("hunter2hunter", "hunter3hunter")"#,
        r#"passwords = set(["hunter2hunter", "hunter3hunter"])"#,
        "secrets = [\n    \"hunter2hunter\",\n    \"hunter3hunter\",\n]\n",
    ] {
        let (redacted, _) = redact_text(text, false);
        assert!(
            !redacted.contains("hunter2hunter") && !redacted.contains("hunter3hunter"),
            "survived in `{redacted}`"
        );
    }
    // A tokenizer's table of tokens is code.
    let plain = "tokens = [\"(\", \")\", \"def\", \"lambda\"]\nKEYS = [\"name\", \"id\"]\n";
    assert_eq!(redact_text(plain, false).0, plain);
}

fn pem(name: &str) -> String {
    fixture(&format!("pem/{name}"))
}

/// The base64 body of a PEM file, without its armour.
fn body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).map(|l| format!("{l}\n")).collect()
}

#[test]
fn certificates_and_public_keys_are_kept_armoured_or_not() {
    for name in ["certificate.pem", "public-key.pem", "rsa-public-key.pem", "ed25519.pub", "rsa.pub"] {
        let text = pem(name);
        assert_eq!(redact_text(&text, false).0, text, "{name}");
        let bare = body(&text);
        assert_eq!(redact_text(&bare, false).0, bare, "{name} without armour");
        let one_line: String = bare.lines().collect();
        let assigned = format!("public_key = \"{one_line}\"\nCERT = \"{one_line}\"\n");
        assert_eq!(redact_text(&assigned, false).0, assigned, "{name} on one line");
    }
}

#[test]
fn private_keys_go_armoured_or_not() {
    for name in
        ["rsa-private-key.pem", "pkcs8-private-key.pem", "ec-private-key.pem", "encrypted-private-key.pem"]
    {
        let text = pem(name);
        let bare = body(&text);
        let secret = bare.lines().nth(1).unwrap();
        for (what, text) in [("armoured", text.clone()), ("bare", bare.clone())] {
            let (redacted, found) = redact_text(&text, false);
            assert!(!redacted.contains(secret), "{name} {what}: {redacted}");
            assert_eq!(found.kinds.first().map(|(k, _)| *k), Some("private-key"), "{name} {what}");
        }
    }
    // A body cut short (a window starting inside it) cannot be read, and goes.
    let cert = body(&pem("certificate.pem"));
    let cut: String = cert.lines().skip(2).map(|l| format!("{l}\n")).collect();
    assert_ne!(redact_text(&cut, false).0, cut);
}

/// Lines of the Python standard library and of crates from the registry that earlier rules
/// changed, one or more per cause (see `BENCHMARKS.md` for the whole-corpus figures).
#[test]
fn real_code_that_was_redacted_by_mistake_stays() {
    let lines = [
        // parameters, documentation cookies, dictionaries and prose read by the cookie, prose
        // and colon rules
        "def seek(self, cookie, whence=0):",
        "def output(self, attrs=None, header=\"Set-Cookie:\", sep=\"\\015\\012\"):",
        "Set-Cookie: oreo=doublestuff; Path=/",
        "'Set-Cookie: number=7\\r\\nSet-Cookie: string=seven'",
        "Set-Cookie: keebler=\"E=everybody; L=\\\"Loves\\\"; fudge=\\012;\"",
        "'password': config.get(server, 'password'),",
        "'pass': ('pass', ''),",
        "// One case per set of branches that pass: those ran, and the rest fail outright.",
        // Rust constants with suffixed numbers, long types and generic bindings
        "pub const ALLJOYN_CRED_NEW_PASSWORD: u16 = 4097u16;",
        "pub const PASSWORD_GENERATED_BY_APPLICATION: alljoyn_claimcapabilityadditionalinfo_masks = 2i32;",
        "    Input: Stream<Token = u8>,",
        // fields of code examples and grammar in comments
        "///                         colon2_token: Colon2,",
        "///             brace_token: empty_brace_token,",
        "//   PrivateKeyInfo ::= SEQUENCE {",
        "// First pass: count segments and calculate string capacity",
        // comparisons of tokenizer tokens and signatures
        "if token == \"@\":",
        "if token == 'def':",
        "if cache_token != current_token:",
        "elif tokenH == 0x10:  # int",
        "if token == 0x00:",
        "if sig != stringEndArchive64Locator:",
        "if endrec[_ECD_SIGNATURE] == stringEndArchive64:",
        "if token != END_ELEMENT:",
        // an earlier word that means something else
        "'MODULE_PWD_STATE': 'yes',",
        "pass_stmt ::= \"pass\"",
        "proxy_auth_hdr = \"Proxy-Authorization\"",
        "GetPassWarning: When we were unable to turn echo off on the input.",
        "longopt_pat = r'[a-zA-Z](?:[a-zA-Z0-9-]*)'",
        // prose read as YAML
        "# First pass: determine maximum length of long option names",
        "- password: password to use with username",
        "//    - ASCII capture & whole-block pass (`compact_whole_data_blocks`): The linear ASCII",
        // the word Basic in prose
        "\"\"\"Policy Object basic framework.",
        "# Use the first matching Basic challenge.",
        "\"Register an object to receive basic DTD-related events.\"",
        // numbers and paths
        "SERVER_AUTH = '1.3.6.1.5.5.7.3.1'",
        "'RUNSHARED': 'LD_LIBRARY_PATH=/build/reproducible-path/python3.11-3.11.2/build-shared',",
        "'Modules/xxlimited_35.cpython-311-x86_64-linux-gnu.so',",
        "\"-requires\", \"Microsoft.VisualStudio.Component.VC.Tools.x86.x64\",",
        ">>> PathDistribution._name_from_stem('CherryPy-3.0.dist-info')",
        "# find the name: w3.org/TR/html5/tokenization.html#tag-name-state",
        "base64 (like =?iso-8859-1?b?bmloISBuaWgh?=) -- please use the high",
        // code
        "RegEnumKey = win32api.RegEnumKey",
        "TOKEN_ENDS = TSPECIALS | WSP",
        "if node.type == token.SEMI: # *sigh*",
        "token = \"'\", token[0][1:-1]",
        "\"\"\"splitpasswd('user:passwd') -> 'user', 'passwd'.\"\"\"",
        "PASSWD = getpass.getpass(\"IMAP password for %s on %s: \" % (USER, host or \"localhost\"))",
        "pub(crate) fn start_encryption_tls12(&mut self, secrets: &ConnectionSecrets, side: Side) {",
        "//! # const IGNORE_TOKENS: &str = stringify! {",
        // crates of the registry
        "if skip_token!(self, Token::Ident(\"if\")) {",
        "assert_tokens(&UTC, &[Token::String(\"Europe/London\")]);",
        "pub(crate) const TOKEN: &str = \"$serde_json::private::Number\";",
        "let alphabet = \"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\";",
        "let key = r\"SOFTWARE\\WOW6432Node\\Microsoft\\VisualStudio\\SxS\\VS7\";",
        "/// The exclusive end value of the Basic Multilingual Plane, i.e. the first code point.",
        "/// abc://username:password@example.com:123/path/data?key=value&key2=value2#fragid1",
        "\"http://a:b@127.0.0.1:1234/\",",
        "/// - `EXPORTER_SECRET`: `secret` is the post-handshake exporter secret",
        "/// Full Gregorian year (FW=4, PW=\u{221e}).",
    ];
    // A regular expression naming the private-key marker, and code up to a later `END` marker.
    let regexes = "consistent!(click_1, r\"-----BEGIN PRIVATE KEY-----\");\n\nfn f() { g(); }\n\
                   consistent!(click_2, r\"-----END PRIVATE KEY-----\");\n";
    assert_eq!(redact_text(regexes, false).0, regexes);
    for line in lines {
        let text = format!("{line}\n");
        assert_eq!(redact_text(&text, false).0, text);
    }
}

#[test]
fn a_removed_value_goes_from_every_part_of_the_request() {
    // The prompt's code gives the value away; the system prompt and tools' messages only quote it.
    let request = CompletionRequest {
        system: "Earlier the user said Zebra7pass was fine".into(),
        prompt: "mypy: Literal['Zebra7pass']\ntsc: Type '\"Zebra7pass\"'\n```\ndb_password = \"Zebra7pass\"\n```\n".into(),
        max_tokens: 10,
        temperature: None,
        json_schema: None,
    };
    let (clean, found) = redact_request(&request);
    assert!(!clean.system.contains("Zebra7pass"), "{}", clean.system);
    assert!(!clean.prompt.contains("Zebra7pass"), "{}", clean.prompt);
    assert_eq!(clean.system, "Earlier the user said [REDACTED:password] was fine");
    assert_eq!(found.total(), 4, "{found:?}");
    // Short values are not chased: they would take ordinary words with them.
    let (clean, _) = redact_parts(&["pw = \"abc12\" and abc12s"], &mut Secrets::default());
    assert_eq!(clean[0], "pw = \"[REDACTED:password]\" and abc12s");
}

/// A number at the end of a name names one of several secrets, and they go as the first.
#[test]
fn numbered_secret_names_are_secret_names() {
    check("DB_PASSWORD_1 = \"letmein99\"\n", "letmein99", "password");
    check("password2 = \"Summer2024!\"\n", "Summer2024!", "password");
    check("API_KEY_2 = \"abc123def456\"\n", "abc123def456", "api-key");
    check("{\"password2\": \"Hunter22x\", \"apiKey2\": \"Srv_K2_Abc12345\"}\n", "Hunter22x", "password");
}

/// A removed value is chased as a whole value only, and not when it is a plain word: the same
/// word elsewhere is code or prose, and stays.
#[test]
fn a_removed_value_is_not_chased_into_names_or_words() {
    let parts = [
        "DEFAULT_PASSWORD = \"default\"\ndef f(x, default=None):\n    pass\n",
        "password = \"postgres\"\nURL = \"postgresql://db/app\"\nuser = \"postgres\"\n",
        "{\"password\": \"Zebra7pass\"}\nZebra7passport = 1\n",
        "access_token = parser.get(SECTION, \"access_token\")\nself.access_token = access_token\n",
    ];
    let (clean, _) = redact_parts(&parts, &mut Secrets::default());
    assert!(clean[0].contains("def f(x, default=None):"), "{}", clean[0]);
    assert!(
        clean[1].contains("postgresql://db/app") && clean[1].contains("user = \"postgres\""),
        "{}",
        clean[1]
    );
    assert!(clean[2].contains("Zebra7passport = 1") && !clean[2].contains("\"Zebra7pass\""), "{}", clean[2]);
    assert!(clean[3].contains("self.access_token = access_token"), "{}", clean[3]);
}

#[test]
fn a_string_left_open_on_the_line_being_edited_goes_to_the_end_of_the_line() {
    check("password = \"correct horse battery\nx = 1\n", "horse battery", "password");
    check("password = \"\"\"correct horse battery\nx = 1\n", "horse battery", "password");
    check("var password = \"correct horse battery", "horse battery", "password");
    check("smtp.login(\"me\", \"LoginPw_55!x\"\nx = 1\n", "LoginPw_55!x", "password");
    check("DB = \"postgres://admin:LoginPw_55!x@db/x\nx = 1\n", "LoginPw_55!x", "url-credentials");
    // The next line is code, and stays.
    let (clean, _) = redact_text("password = \"Open7string\nx = compute(1)\n", false);
    assert_eq!(clean, "password = \"[REDACTED:password]\nx = compute(1)\n");
}

#[test]
fn positions_count_ports_and_statements_after_a_colon_or_a_brace() {
    let (clean, _) = redact_text("ssh.connect(\"host\", 22, \"root\", \"hunter2pw\")\n", false);
    assert_eq!(clean, "ssh.connect(\"host\", 22, \"root\", \"[REDACTED:password]\")\n");
    let (clean, _) = redact_text("if prod: user, pw = \"admin\", \"InlinePw_77x\"\n", false);
    assert_eq!(clean, "if prod: user, pw = \"admin\", \"[REDACTED:password]\"\n");
    let (clean, _) = redact_text("func f() { user, pw := \"admin\", \"hunter2pw\" }\n", false);
    assert_eq!(clean, "func f() { user, pw := \"admin\", \"[REDACTED:password]\" }\n");
    let (clean, _) = redact_text("fn f() { let (user, pass) = (\"a\", \"hunter2pw\"); }\n", false);
    assert_eq!(clean, "fn f() { let (user, pass) = (\"a\", \"[REDACTED:password]\"); }\n");
    // A parameter list is not a tuple: the keyword argument is still read as one.
    check("def connect(host: str, password=\"Kw7default\"):\n", "Kw7default", "password");
}

#[test]
fn rust_raw_strings_go_whole() {
    for (text, secret) in [
        ("const PASSWORD: &str = r#\"hunter2pw\"#;\n", "hunter2pw"),
        ("let password = r##\"a \"quoted\" pass\"##;\n", "quoted"),
        ("let password = br#\"hunter2pw\"#;\n", "hunter2pw"),
    ] {
        let (clean, _) = redact_text(text, false);
        assert!(!clean.contains(secret), "{clean}");
        assert!(clean.contains("#\"[REDACTED:password]\"#"), "{clean}");
    }
}

#[test]
fn names_given_as_strings_lose_the_value_next_to_them() {
    for (text, secret) in [
        ("setattr(cfg, \"password\", \"hunter2pw\")\n", "hunter2pw"),
        ("os.putenv(\"DB_PASSWORD\", \"Pa55w0rd!2024\")\n", "Pa55w0rd!2024"),
        ("monkeypatch.setenv(\"DB_PASSWORD\", \"Pa55w0rd!2024\")\n", "Pa55w0rd!2024"),
        ("os.Setenv(\"DB_PASSWORD\", \"Pa55w0rd!2024\")\n", "Pa55w0rd!2024"),
        ("std::env::set_var(\"DB_PASSWORD\", \"Pa55w0rd!2024\");\n", "Pa55w0rd!2024"),
        ("m.set(\"password\", \"hunter2pw\");\n", "hunter2pw"),
        ("subprocess.run([\"mysql\", \"--password\", \"Pa55w0rd!2024\"])\n", "Pa55w0rd!2024"),
        (
            "subprocess.run([\"docker\", \"login\", \"-u\", \"bob\", \"-p\", \"Pa55w0rd!2024\"])\n",
            "Pa55w0rd!2024",
        ),
        ("run([\"openssl\", \"pkcs12\", \"-passin\", \"pass:Pa55w0rd!2024\"])\n", "Pa55w0rd!2024"),
        ("u = \"https://api.x.com/v1?user=a&password=querypw55\"\n", "querypw55"),
        ("j = \"jdbc:postgresql://db/x?user=bob&password=Hq7pw_Zx2\"\n", "Hq7pw_Zx2"),
        ("{\"Default\": \"Server=db;User Id=bob;Password=summer2024;\"}\n", "summer2024"),
        ("c = \"Driver={ODBC};Server=db;UID=bob;PWD=summer2024;\"\n", "summer2024"),
        ("sql.Open(\"mysql\", \"root:hunter2pw@tcp(127.0.0.1:3306)/db\")\n", "hunter2pw"),
        ("    password: str = field(default=\"hunter2pw\")\n", "hunter2pw"),
    ] {
        let (clean, found) = redact_text(text, false);
        assert!(!clean.contains(secret), "`{secret}` survived in `{clean}`");
        assert!(found.total() >= 1, "{clean}");
    }
    // Ports, sets of names, ordinary setters and placeholders stay.
    for text in [
        "subprocess.run([\"docker\", \"run\", \"-p\", \"8080:80\", \"img\"])\n",
        "FIELDS = {\"password\", \"username\"}\n",
        "m.set(\"colour\", \"blue\")\n",
        "url = f\"https://x/cb?token={token}&password={pw}\"\n",
        "os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")\n",
    ] {
        assert_eq!(redact_text(text, false).0, text);
    }
}

#[test]
fn bare_private_keys_go_at_any_width_and_one_line_public_keys_stay() {
    for (text, piece) in [
        // PKCS #8 Ed25519 on one line.
        ("data = \"MC4CAQAwBQYDK2VwBCIEIDmtFqlHDf+Kup/Q4vPvvdqWR913HG5Bzx2eoQgJpNm3\"\n", "IDmtFqlHDf"),
        (
            "data = \"\"\"\nMC4CAQAwBQYDK2VwBCIEIDmtFqlHDf+Kup/Q4vPvvdqWR913HG5Bzx2eoQgJpNm3\n\"\"\"\n",
            "IDmtFqlHDf",
        ),
        // SEC 1 EC wrapped at 76.
        (
            "data = \"\"\"\nMHcCAQEEINj0KPBx3hnPlk8S7zXWGMElmYbhRthavwhppdbF+WFToAoGCCqGSM49AwEHoUQDQgAE\nt4GKFxJYBsgqk0yB3unujAdBWa2WolJrjglhbI4BrQXjw/8k7wLPA2OIuGYoOUwQseZZOsjdjgMU\nwuO8vqooWA==\n\"\"\"\n",
            "wuO8vqooWA",
        ),
        // OpenSSH, wrapped at 70 as ssh-keygen writes it.
        (
            "key = \"\"\"\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACCA/TurT/2veJLK9d58ettQDLUwiZFYOlb9M1zMQ3ZU5wAAAIhSYDo+UmA6\nPgAAAAtzc2gtZWQyNTUxOQAAACCA/TurT/2veJLK9d58ettQDLUwiZFYOlb9M1zMQ3ZU5w\nAAAEB6EAKSK0LP0ZsSdUr+GF9owzUAzL29vl7HalMyFwFY1oD9O6tP/a94ksr13nx621AM\ntTCJkVg6Vv0zXMxDdlTnAAAAAAECAwQF\n\"\"\"\n",
            "tTCJkVg6Vv0z",
        ),
    ] {
        let (clean, found) = redact_text(text, false);
        assert!(!clean.contains(piece), "`{piece}` survived in `{clean}`");
        assert!(found.kinds.iter().any(|(k, _)| *k == "private-key"), "{found:?} in {clean}");
    }
    // Public keys on one line: Ed25519 and P-256 SubjectPublicKeyInfo.
    for text in [
        "PUB = \"MCowBQYDK2VwAyEAW7xvNwosxfUkttFDVmE1AQXYbMD8yHXVdNR6b0eTD6Q=\"\n",
        "PUB = \"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1tubZYQ2abop5UtFg9l5obw5cf8VS/EcpjneLau4FmwPvTUc8webIUDGNkA58mc/Q8Wbp72/kL2AqgCXeD879A==\"\n",
    ] {
        assert_eq!(redact_text(text, false).0, text);
    }
}

#[test]
fn names_messages_and_dotted_paths_found_in_real_code_stay() {
    for text in [
        "c = auth._parse_www_authenticate(response, \"www-authenticate\")\n",
        "scheme = token(\"scheme\")\n",
        "# perform a basic username/password authentication\n",
        "x = \"ipaddress.IPv6Network\"\n",
        "ERRORS = {\"password\": \"Enter a valid password.\", \"token\": \"Zugangsschluessel\"}\n",
        "PASSWORD_HASHERS = [\"django.contrib.auth.hashers.PBKDF2PasswordHasher\"]\n",
    ] {
        assert_eq!(redact_text(text, false).0, text);
    }
    // The same shapes with a secret in them still go.
    check("smtp.login(\"me\", \"Login7pw\")\n", "Login7pw", "password");
    check("ERRORS = {\"password\": \"Zugangsschluessel\"}\n", "Zugangsschluessel", "password");
    check("headers = {\"Authorization\": \"Basic dXNlcjpwYXNz\"}\n", "dXNlcjpwYXNz", "http-auth");
}

#[test]
fn a_closing_quote_or_a_flag_is_not_an_open_value() {
    for text in [
        "def unix_getpass(prompt='Password: ', stream=None):\n",
        "    print(\"shlex: token=\" + repr(raw))\n",
        "parser.add_argument('-p', '--pattern', dest='pattern',\n",
        "(see :attr:`IPv6Address.ipv4_mapped`)::\n",
    ] {
        assert_eq!(redact_text(text, false).0, text);
    }
}

#[test]
fn more_names_of_secrets_and_token_headers_in_dictionaries() {
    for name in ["pass_phrase", "psw", "cred", "bearer"] {
        check(&format!("{name} = \"Pa55w0rdX2024\"\n"), "Pa55w0rdX2024", secret_name(name).unwrap().label());
    }
    check(
        "headers = {\"Authorization\": \"Token 9f8e7d6c5b4a39281706f5e4d3c2b1a0\"}\n",
        "9f8e7d6c5b4a3928",
        "http-auth",
    );
    // A phrase on its own, and a pass of a compiler, are not secrets' names.
    assert_eq!(secret_name("phrase"), None);
    assert_eq!(secret_name("pass_count"), None);
}

#[test]
fn the_other_branch_and_an_optional_password_go_too() {
    let (clean, _) = redact_text("password = \"dev\" if DEBUG else \"ProdPw_9x\"\n", false);
    assert_eq!(clean, "password = \"[REDACTED:password]\" if DEBUG else \"[REDACTED:password]\"\n");
    let (clean, _) = redact_text("fn f() { c.get(u).basic_auth(\"user\", Some(\"hunter2pw\")); }\n", false);
    assert_eq!(clean, "fn f() { c.get(u).basic_auth(\"user\", Some(\"[REDACTED:password]\")); }\n");
}

/// Redacts `text` and checks that it came through unchanged.
#[track_caller]
fn keep(text: &str) {
    let (redacted, found) = redact_text(text, false);
    assert_eq!(redacted, text, "{found:?}");
}

#[test]
fn literals_wrapped_in_a_conversion_go() {
    for line in [
        "key := []byte(\"Zq8rT2mLw9vBn4KsXy7\")\n",
        "password := []byte(\"Zq8rT2mLw9vBn4Ks\")\n",
        "secret_key = bytes.fromhex(\"9f86d081884c7d659a2feaa0c55ad015a3\")\n",
        "password = b\"Zq8rT2mLw9vBn4Ks\"\n",
        "let password = b\"Zq8rT2mLw9vBn4Ks\";\n",
        "Config { password: String::from(\"Zq8rT2mLw9vBn4Ks\"), user }\n",
        "Config {\n    password: \"Zq8rT2mLw9vBn4Ks\".to_string(),\n    user,\n}\n",
        "let password: String = \"Zq8rT2mLw9vBn4Ks\".into();\n",
        "let api_token = \"Zq8rT2mLw9vBn4Ks\".to_owned();\n",
        "const secret = Buffer.from(\"Zq8rT2mLw9vBn4Ks\");\n",
        "const secret = Buffer.from(\"Zq8rT2mLw9vBn4Ks\", \"utf8\");\n",
        "let password = Secret::new(\"Zq8rT2mLw9vBn4Ks\");\n",
        "let api_key = SecretString::from(\"Zq8rT2mLw9vBn4Ks\");\n",
        "String password = new String(\"Zq8rT2mLw9vBn4Ks\");\n",
        "client.login(\"me\", String::from(\"Zq8rT2mLw9vBn4Ks\"))\n",
        "cfg = Config(password=SecretStr(\"Zq8rT2mLw9vBn4Ks\"))\n",
    ] {
        let (clean, found) = redact_text(line, false);
        assert!(!clean.contains("Zq8rT2mLw9vBn4Ks") && !clean.contains("9f86d0818"), "survived in `{clean}`");
        assert!(found.total() >= 1, "{clean}");
    }
    // A call that reads the secret from somewhere else is code, and stays.
    for line in [
        "password = input(\"Password: \")\n",
        "password = getpass.getpass(\"Enter the password\")\n",
        "token = os.getenv(\"TOKEN\")\n",
        "password = _(\"Password\")\n",
        "secret = read_secret(\"db/password\")\n",
        "let token = Token::new(\"if\");\n",
    ] {
        keep(line);
    }
}

#[test]
fn secrets_returned_by_a_function_with_a_secret_name_go() {
    for text in [
        "def get_password():\n    return \"Zq8rT2mLw9vBn4Ks\"\n",
        "def get_password(self) -> str:\n    \"\"\"The password.\"\"\"\n    return 'Zq8rT2mLw9vBn4Ks'\n",
        "fn api_key() -> &'static str {\n    \"Zq8rT2mLw9vBn4Ks\"\n}\n",
        "fn api_key() -> String { \"Zq8rT2mLw9vBn4Ks\".to_string() }\n",
        "func Token() string { return \"Zq8rT2mLw9vBn4Ks\" }\n",
        "func (c *Config) Password() string {\n\treturn \"Zq8rT2mLw9vBn4Ks\"\n}\n",
        "class C {\n  get password() { return \"Zq8rT2mLw9vBn4Ks\"; }\n}\n",
        "public String getPassword() {\n    return \"Zq8rT2mLw9vBn4Ks\";\n}\n",
        "fun apiToken() = \"Zq8rT2mLw9vBn4Ks\"\n",
        "const getSecret = () => \"Zq8rT2mLw9vBn4Ks\";\n",
    ] {
        let (clean, found) = redact_text(text, false);
        assert!(!clean.contains("Zq8rT2mLw9vBn4Ks"), "survived in `{clean}`");
        assert!(found.total() >= 1, "{clean}");
    }
    for text in [
        "def get_password_hash(password):\n    return hashlib.sha256(password).hexdigest()\n",
        "def get_password(self):\n    return self._password\n",
        "def password_help():\n    return \"Enter the password you chose when you signed up.\"\n",
        "def token(self):\n    return \"if\"\n",
        "fn password_field() -> &'static str {\n    \"password\"\n}\n",
        "let password = get_password();\n",
        "if token(\"x\") { return \"Zq\" }\n",
    ] {
        keep(text);
    }
}

#[test]
fn nested_tuples_and_keys_given_as_byte_arrays_go() {
    let (clean, _) = redact_text("user, (password, host) = \"a\", (\"Zq8rT2mLw9vBn4Ks\", \"h\")\n", false);
    assert_eq!(clean, "user, (password, host) = \"a\", (\"[REDACTED:password]\", \"h\")\n");
    let (clean, _) = redact_text("(user, [pw, port]) = (\"a\", [\"Zq8rT2mLw9vBn4Ks\", 5432])\n", false);
    assert!(!clean.contains("Zq8rT2mLw9vBn4Ks"), "{clean}");
    let bytes =
        "0x4f, 0x1a, 0x9c, 0x22, 0xe0, 0x7b, 0x35, 0xd1, 0x88, 0x03, 0xfa, 0x6e, 0x12, 0xc4, 0x5d, 0x97";
    for text in [
        format!("let key: [u8; 16] = [{bytes}];\n"),
        format!("key = bytes([{bytes}])\n"),
        format!("static const uint8_t key[16] = {{{bytes}}};\n"),
        format!("var secretKey = []byte{{\n\t{}\n}}\n", bytes.replace(", 0x5d", ",\n\t0x5d")),
        format!(
            "SIGNING_KEY = bytearray([{}])\n",
            "79, 26, 156, 34, 224, 123, 53, 209, 136, 3, 250, 110, 18, 196, 93, 151"
        ),
    ] {
        let (clean, found) = redact_text(&text, false);
        assert!(!clean.contains("0xfa") && !clean.contains("250"), "survived in `{clean}`");
        assert!(found.total() >= 1, "{clean}");
    }
    // Tables of small numbers given to other names stay, and so do short arrays.
    for text in [
        format!("static CRC_TABLE: [u8; 16] = [{bytes}];\n"),
        format!("table = bytes([{bytes}])\n"),
        "let key: [u8; 4] = [1, 2, 3, 4];\n".to_owned(),
        "KEYS = [\"a\", \"b\"]\n".to_owned(),
    ] {
        keep(&text);
    }
}

#[test]
fn cookies_session_values_and_registry_tokens_go() {
    for (text, secret) in [
        ("headers = {\"Cookie\": \"sid=Zq8rT2mLw9vBn4Ks; csrftoken=Hq7pw9Zx2Lm4\"}\n", "Zq8rT2mLw9vBn4Ks"),
        ("headers = {\"Cookie\": \"sid=Zq8rT2mLw9vBn4Ks; csrftoken=Hq7pw9Zx2Lm4\"}\n", "Hq7pw9Zx2Lm4"),
        ("Set-Cookie: sessionid=Zq8rT2mLw9vBn4Ks; Path=/; HttpOnly\n", "Zq8rT2mLw9vBn4Ks"),
        ("curl -H 'Cookie: sessionid=Zq8rT2mLw9vBn4Ks' https://x.example.com\n", "Zq8rT2mLw9vBn4Ks"),
        ("document.cookie = \"token=Zq8rT2mLw9vBn4Ks; path=/\";\n", "Zq8rT2mLw9vBn4Ks"),
        ("session_id = \"8f3a9c1e7b2d4f60\"\n", "8f3a9c1e7b2d4f60"),
        ("cookies = {\"sessionid\": \"w7x9k2m4p6q8r1s3\"}\n", "w7x9k2m4p6q8r1s3"),
        ("//registry.example.com/:_authToken=abcdefghijklmnop\n", "abcdefghijklmnop"),
        ("//registry.example.com/:_authToken=\"Zq8rT2mLw9vBn4Ks\"\n", "Zq8rT2mLw9vBn4Ks"),
        (
            "npmRegistries:\n  \"https://npm.example.com\":\n    npmAuthToken: abcdefghijklmnop\n",
            "abcdefghijklmnop",
        ),
        ("npmAuthToken: abcdefghijklmnop\nnpmAlwaysAuth: true\n", "abcdefghijklmnop"),
    ] {
        let (clean, found) = redact_text(text, false);
        assert!(!clean.contains(secret), "`{secret}` survived in `{clean}`");
        assert!(found.total() >= 1, "{clean}");
    }
    // Cookie names, attributes and the code that handles them stay.
    for text in [
        "SESSION_COOKIE_NAME = \"sessionid\"\n",
        "cookie = request.cookies.get(\"sid\")\n",
        "res.cookie(\"sid\", value, { httpOnly: true });\n",
        "CSRF_COOKIE_NAME = \"csrftoken\"\n",
        "session_id = request.session_id\n",
        "headers = {\"Cookie\": \"sid\"}\n",
        "cookie = \"sid\"\n",
    ] {
        keep(text);
    }
}

#[test]
fn key_value_pairs_in_comments_and_messages_and_slashed_logins_go() {
    for (text, secret) in [
        ("# password=hunter2pw\nx = 1\n", "hunter2pw"),
        ("// token: hunter2pw (rotated monthly)\n", "hunter2pw"),
        ("line 12: 3f2a9c1e Ada Lovelace 2025-10-09 \"Fix login, password=hunter2pw\"\n", "hunter2pw"),
        ("- 3f2a9c1e Ada Lovelace 2025-10-09 \"temp api_key=abcdefghij123 for CI\"\n", "abcdefghij123"),
        ("app.py:10:5: error secret from scanner password=hunter2pw: hard-coded\n", "hunter2pw"),
        ("# login admin/Zq8rT2mLw9\n", "Zq8rT2mLw9"),
        ("Log in with admin/Zq8rT2mLw9 on staging.\n", "Zq8rT2mLw9"),
        ("# credentials: root/hunter2pw\n", "hunter2pw"),
    ] {
        let (clean, found) = redact_text(text, false);
        assert!(!clean.contains(secret), "`{secret}` survived in `{clean}`");
        assert!(found.total() >= 1, "{clean}");
    }
    // The user name stays.
    assert_eq!(redact_text("# login admin/Zq8rT2mLw9\n", false).0, "# login admin/[REDACTED:password]\n");
    for text in [
        "# password/passphrase prompts are handled by the agent\n",
        "# login with username/password\n",
        "    conn = connect(host=h,\n        password=pw)\n",
        "let password=pw;\n",
        "# see src/auth/login.py for the login flow\n",
        "# key=value pairs are parsed below\n",
    ] {
        keep(text);
    }
}

#[test]
fn full_width_secret_names_are_secret_names() {
    for text in [
        "ｐａｓｓｗｏｒｄ = \"Zq8rT2mLw9vBn4Ks\"\n",
        "ＤＢ＿ＰＡＳＳＷＯＲＤ=Zq8rT2mLw9vBn4Ks\n",
        "{\"ａｐｉ＿ｋｅｙ\": \"Zq8rT2mLw9vBn4Ks\"}\n",
        "ｐａｓｓｗｏｒｄ ＝ \"Zq8rT2mLw9vBn4Ks\"\n",
        "𝐩𝐚𝐬𝐬𝐰𝐨𝐫𝐝 = \"Zq8rT2mLw9vBn4Ks\"\n",
    ] {
        let (clean, found) = redact_text(text, false);
        assert!(!clean.contains("Zq8rT2mLw9vBn4Ks"), "survived in `{clean}`");
        assert!(found.total() >= 1, "{clean}");
    }
    // The rest of the text keeps its letters.
    let (clean, _) = redact_text("ｐａｓｓｗｏｒｄ = \"Zq8rT2mLw9vBn4Ks\" # ｎｏｔｅ\n", false);
    assert_eq!(clean, "ｐａｓｓｗｏｒｄ = \"[REDACTED:password]\" # ｎｏｔｅ\n");
    // A full-width value goes whole.
    let (clean, _) = redact_text("password = \"ｈｕｎｔｅｒ２ｐｗ\"\n", false);
    assert_eq!(clean, "password = \"[REDACTED:password]\"\n");
    keep("ｎａｍｅ = \"ｖａｌｕｅ\"\n");
}

#[test]
fn changed_copies_of_a_removed_value_go_from_the_whole_request() {
    let secret = "Zq8rT2mLw9vBn4KsXy7";
    let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    let base64 = "WnE4clQybUx3OXZCbjRLc1h5Nw==";
    let request = CompletionRequest {
        system: "You fix code.".into(),
        prompt: format!(
            "db_password = \"{secret}\"\nlog: AUTH FAILED FOR {upper}\nmypy: Literal['{cut}...']\n\
             dump: {hex}\nDUMP: {hex_upper}\nheader: {base64}\nurlsafe: WnE4clQybUx3OXZCbjRLc1h5Nw\n",
            upper = secret.to_uppercase(),
            cut = &secret[..13],
            hex_upper = hex.to_uppercase(),
        ),
        max_tokens: 10,
        temperature: None,
        json_schema: None,
    };
    let (clean, found) = redact_request(&request);
    for copy in [
        secret.to_owned(),
        secret.to_uppercase(),
        secret[..12].to_owned(),
        hex.clone(),
        hex.to_uppercase(),
        base64.trim_end_matches('=').to_owned(),
    ] {
        assert!(!clean.prompt.contains(&copy), "`{copy}` survived in `{}`", clean.prompt);
    }
    assert!(found.total() >= 7, "{found:?}");
    // The words around the copies stay, and short prefixes are not chased.
    assert!(clean.prompt.contains("log: AUTH FAILED FOR [REDACTED:password]"), "{}", clean.prompt);
    let (clean, _) = redact_parts(
        &["password = \"Zq8rT2mLw9vBn4KsXy7\"\nZq8rT2mLw is a prefix\n"],
        &mut Secrets::default(),
    );
    assert!(clean[0].contains("Zq8rT2mLw is a prefix"), "{}", clean[0]);
}

/// Hostile lines dense with candidates, repeated `n` times on one line: the redactor's work on
/// them grows linearly (it grew with the square of the line's length).
fn hostile(pattern: usize, n: usize) -> String {
    match pattern {
        0 => format!("\"Server=x;{}\"\n", "Password=a;".repeat(n)),
        1 => format!("# {}\n", "password=".repeat(n)),
        2 => format!("s='{}'\n", "token=&".repeat(n)),
        3 => format!("x = {}\n", "login(".repeat(n)),
        4 => format!("{}\n", "getenv(\"PASSWORD\", ".repeat(n)),
        5 => format!("{}\n", "setattr(c, \"password\", ".repeat(n)),
        6 => format!("{}\n", "password = ".repeat(n)),
        _ => format!("s='{}'\n", (0..n).map(|i| format!("Password=v{i};")).collect::<String>()),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, ..Default::default() })]

    #[test]
    // Lines long enough that the reach of each candidate (up to 1 KiB each side) is mostly
    // whole: on shorter ones it grows with the line until it is, which is not the square.
    fn work_grows_linearly_with_hostile_input(pattern in 0usize..8, n in 600usize..1200) {
        let work = |text: &str| {
            let before = super::steps();
            redact_text(text, false);
            super::steps() - before
        };
        let once = work(&hostile(pattern, n));
        let four_times = work(&hostile(pattern, 4 * n));
        // Linear work quadruples (give or take the ends of the line); quadratic work grows
        // sixteen times.
        proptest::prop_assert!(four_times <= 5 * once + 100_000, "pattern {pattern}: {once} then {four_times}");
    }
}

#[test]
fn a_text_too_long_to_redact_is_withheld_whole() {
    let text = format!("password = \"Zq8rT2mLw9vBn4Ks\"\n{}", "x".repeat(super::MAX_REDACTED_LEN));
    let (redacted, found) = redact_text(&text, false);
    assert_eq!(redacted, "[REDACTED:withheld]");
    assert_eq!(found.kinds, vec![("withheld", 1)]);
    let mut known = super::Secrets::default();
    let (parts, _) = super::redact_parts(&[&text, "fine"], &mut known);
    assert_eq!(parts, vec!["[REDACTED:withheld]".to_owned(), "fine".to_owned()]);
}

/// Redacts `text` and checks that `secret` is gone, whatever the kind.
#[track_caller]
fn gone(text: &str, secret: &str) {
    let (redacted, found) = redact_text(text, false);
    assert!(!redacted.contains(secret), "`{secret}` survived in `{redacted}`");
    assert!(found.total() >= 1, "{redacted}");
}

/// Redacts `text` and checks that nothing changed.
#[track_caller]
fn kept(text: &str) {
    let (redacted, found) = redact_text(text, false);
    assert_eq!(redacted, text, "{found:?}");
}

const S: &str = "Zq8rT2mLw9vBn4Ks";

#[test]
fn password_shaped_tokens_go_wherever_they_stand() {
    for text in [
        // Arguments by position, raw Authorization values, a Basic built from a literal.
        "var auth = smtp.PlainAuth(\"\", \"me@example.com\", \"§\", \"smtp.gmail.com\")",
        "var u = url.UserPassword(\"admin\", \"§\")",
        "let r = client.get(url).bearer_auth(\"§\").send();",
        "axios.defaults.headers.common[\"Authorization\"] = \"§\";",
        "HEADERS = {\"Authorization\": \"§\"}",
        "let r = client.get(u).header(AUTHORIZATION, \"§\");",
        "const h = \"Basic \" + btoa(\"admin:§\");",
        "h = \"Basic \" + base64.b64encode(b\"admin:§\").decode()",
        // Defaults of parsers and lookups.
        "parser.add_argument(\"--password\", default=\"§\")",
        "@click.option(\"--api-token\", default=\"§\")",
        "var pw = cmp.Or(os.Getenv(\"DB_PASSWORD\"), \"§\")",
        "config.password ??= \"§\";",
        "keyring.set_password(\"svc\", \"me\", \"§\")",
        "std::env::var(\"DB_PASSWORD\").unwrap_or_else(|_| \"§\".to_string())",
        // Command lines in strings.
        "os.system(\"7z a -p§ out.7z secret.txt\")",
        "os.system(\"htpasswd -b .htpasswd admin §\")",
        "os.system(\"openssl enc -aes-256-cbc -k § -in f -out f.enc\")",
        "os.system(\"redis-cli -h cache -a § ping\")",
        "subprocess.run([\"zip\", \"-P\", \"§\", \"out.zip\", \"f\"])",
        "SCRIPT = \"\"\"\ncat > ~/.pgpass <<EOF\ndb:5432:app:admin:§\nEOF\n\"\"\"",
        // Escaped JSON, literal forms, templated literals, name/value parameters.
        "const body = \"{\\\"token\\\":\\\"§\\\"}\"",
        "const PASSWORD: &CStr = c\"§\";",
        "const PASSWORD: &CStr = cr#\"§\"#;",
        "const password = String.raw`§`;",
        "const password = <string>\"§\";",
        "password = f\"{user}§\"",
        "password = \"%s§\" % x",
        "password = \"{}§\".format(x)",
        "[{\"ParameterKey\": \"DBPassword\", \"ParameterValue\": \"§\"}]",
        "ssm.put_parameter(Name=\"/prod/db/password\", Value=\"§\", Type=\"SecureString\")",
        // Values on the line after their name.
        "password = \\\n    \"§\"",
        "const cfg = {\n  password:\n    \"§\",\n};",
        "fn f() { let password =\n    \"§\"; }",
        // Prose: comments, commit messages, other tools' messages, other languages.
        "# our openai key is §",
        "# creds -> admin:§",
        "# DB_PASS §",
        "# TODO remove: admin / §",
        "# Kennwort: §",
        "# パスワード: §",
        "# 密码：§",
        "hardcode db pw § until vault works",
        "Password→§",
        "test_login failed: expected status 200 for admin:§, got 401",
        "Got 403 from https://api.example.com/v2/items (x-api-key: §)",
        // Names the redactor did not know.
        "pass_word = \"§\"",
        "PASS_WORD = \"§\"",
        "pswd = \"§\"",
        "otp_seed = \"§\"",
        "refreshTok = \"§\"",
    ] {
        gone(&text.replace('§', S), S);
    }
}

#[test]
fn a_value_that_merely_holds_a_placeholder_shape_is_a_secret() {
    for (text, secret) in [
        ("password = \"Xk9{mP2#qL}vR7w\"", "mP2#qL"),
        ("conn = connect(user=\"app\", password=\"Xk9{mP2qL}vR7w\")", "mP2qL"),
        ("const dbPassword = \"Kq7}vR2{xN9pLm4W\"", "xN9pLm4W"),
        ("const config = { password: \"p@ss{w0rd}Zq8!Lw9\" };", "Zq8!Lw9"),
        ("DB = \"postgres://admin:Xk9{mP2qL}vR7w@db.example.com/app\"", "mP2qL"),
        ("DB_PASSWORD = \"$Tr0ngP4ssw0rd2024\"", "Tr0ngP4ssw0rd2024"),
        ("DB = \"redis://default:$Zq8rT2mLw9vBn4@cache:6379\"", "Zq8rT2mLw9vBn4"),
        ("password = \"%Zq8rT2mLw9vBn4Ks%\"", S),
        ("password = \"arn:Zq8rT2mLw9vBn4Ks\"", S),
        ("password = \"[REDACTED:k7x9-q2m4-z8p1-w3r5]\"", "k7x9-q2m4-z8p1-w3r5"),
        ("password = \"hG7%fKq2!mZw9Lp\"", "Kq2!mZw9Lp"),
        ("api_secret = \"Qw3%xRt5Yu7Io9Pa\"", "xRt5Yu7Io9Pa"),
        ("DB = \"mysql://admin:Zq8%dT2mLw9@db.example.com/app\"", "T2mLw9"),
    ] {
        gone(text, secret);
    }
    // Wholly placeholders stay.
    for text in [
        "password = \"${DB_PASSWORD}\"",
        "password = \"{{ secrets.db }}\"",
        "cache_key = \"user:{}:profile\"",
        "idempotency_key = \"order-{order_id}-{attempt}\"",
        "auth = \"Bearer {token}\"",
        "password = \"%(password)s\"",
        "password = \"$PASSWORD\"",
        "password = \"%APPDATA%\"",
        "role = \"arn:aws:iam::123456789012:role/deploy\"",
    ] {
        kept(text);
    }
}

#[test]
fn webhooks_vendor_prefixes_and_key_material_by_position_go() {
    for (text, secret) in [
        (
            "U = \"https://discord.com/api/webhooks/1234567890123456789/7VIrxaR7kQfWv52uvEgoqiXnLAC1lIAYJRfza0hW-rdE2oapzzQbkrck_z1iYylswfgI\"",
            "7VIrxaR7kQfWv52uvEgoqiXnLAC1lIAYJRfza0hW",
        ),
        (
            "U = \"https://mattermost.example.com/hooks/efxgb37mxfpaq7ma2qbg70dq4u\"",
            "efxgb37mxfpaq7ma2qbg70dq4u",
        ),
        (
            "T = \"https://outlook.office.com/webhook/tIepZEuf/IncomingWebhook/UlSoU5AZzcWQa3oBC4IPlNKnhdW2_SFi/2DmZVVrLvHdgwHvpsbgh5AXLbTKs9JrlLpi1\"",
            "UlSoU5AZzcWQa3oBC4IPlNKnhdW2_SFi",
        ),
        (
            "use(\"sk_f9c70bfc88dd5c0f93406ae7d6623e426a98d5f289f8b6c0\")",
            "f9c70bfc88dd5c0f93406ae7d6623e426a98d5f289f8b6c0",
        ),
        (
            "use(\"FlyV1 fm2_jgVvVqE1SkHbn88HxjSI6bWHtP3fS2qHx6kwXoIIXGvOoNZYW2mZp0zVZomHFwUbbYrEqmSM9wCZ7Uw9\")",
            "jgVvVqE1SkHbn88HxjSI6bWHtP3fS2qHx6kwXoIIX",
        ),
        ("use(\"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\")", "a51c80c34ea289d5313d168b99881b81"),
        ("use(\"31a321c5dd0e3327950d8463a0c17138-us12\")", "31a321c5dd0e3327950d8463a0c17138"),
        ("use(\"sbp_a50501c88197d79eec0a3e0031cfb31d8751c387\")", "a50501c88197d79eec0a3e0031cfb31d8751c387"),
        (
            "const wallet = new ethers.Wallet(\"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\");",
            "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        ),
        (
            "acct = Account.from_key(\"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\")",
            "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        ),
        ("warning: Authorization header: Token 8f7e6d5c4b3a29181716151413121110ffeeddcc", "8f7e6d5c4b3a2918"),
        ("os.system(\"sshpass -p 'Zq8 rT2 mLw9' ssh host\")", "Zq8 rT2 mLw9"),
    ] {
        gone(text, secret);
    }
    let array: Vec<String> = (0..64).map(|i| ((i * 37 + 11) % 256).to_string()).collect();
    gone(
        &format!("const kp = Keypair.fromSecretKey(Uint8Array.from([{}]));", array.join(",")),
        &array[..8].join(","),
    );
    // Transaction hashes and addresses given to other calls stay.
    kept(
        "const tx = await provider.getTransaction(\"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\");",
    );
}

#[test]
fn known_values_are_chased_in_any_case_and_short_base64() {
    let mut known = Secrets::default();
    let (parts, _) = redact_parts(
        &[
            "DB_PASSWORD = \"Пароль2024Секрет\"\npassword = \"Kq7vR2\"\n",
            "login fails: пароль2024секрет",
            "hdr cm9vdDpLcTd2UjI=",
        ],
        &mut known,
    );
    assert!(!parts[1].to_lowercase().contains("пароль2024секрет"), "{}", parts[1]);
}

#[test]
fn what_looked_like_a_secret_in_real_code_stays() {
    for text in [
        // Locale files, UI labels.
        "{\"password\": \"Mot de passe\", \"token\": \"Jeton d'accès\", \"apiKey\": \"Clé API\", \"secret\": \"Secret partagé\"}",
        "const messages = { password: \"Password\", token: \"Access token\", apiKey: \"API key\" };",
        "\"forgotPassword\": \"Mot de passe oublié ?\"",
        // Tokenizers, storage keys, alphabets, images, regexes, code.
        "const tokenizer = new Tokenizer({ token: \"WORD\" });",
        "const tokenKindIdent = \"IDENT\"",
        "token = \"NEWLINE\"",
        "test_token = \"test-token\"",
        "const storageKey = \"theme-preference-v2\";",
        "storage_key = \"app/settings/theme-v2\"",
        "lookup_key = \"customer_address_line2\"",
        "s3_key = \"uploads/2024/01/report.pdf\"",
        "ALPHABET = \"ModuleSymbhasOwnPr-0123456789ABCDEFGHNRVfgctiUvz_KqYTJkLxpZXIjQW\"",
        "password_pattern = \"^[A-Za-z0-9!@#]{12,64}$\"",
        "password_help = \"Your password must contain at least 8 characters\"",
        "secret_word = \"apple\"",
        "icon = \"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\"",
        "next_token = lambda: next(it)\nkey_fn = lambda: 0\n",
        "export const nextToken = function* (src) { yield* src; };",
        "token := \"float64\"\nvar x float64 = 1.5\n",
        // Numbers with digit separators, and a command line quoted in a message.
        "pub const MAX_CONTEXT_TOKENS: u64 = 100_000;",
        "let max_tokens = 3_600;",
        "Some(\"wrong bearer token: `acas mcp --print-token` prints the one this server takes\")",
        // Locales, charsets, constants and methods in real code.
        "'bg_bg': 'bg_BG.CP1251',",
        "address_equal = IPv4Address.__eq__(self, other)",
        "self.options &= ~Options.OP_NO_SSLv3",
        "pub L1PmSsControl2: PCI_EXPRESS_L1_PM_SS_CONTROL_2_REGISTER,",
        "0xEDEE43C9, 0xC1260FA4, 0xEFF2769B, 0xF7FAFBDE,",
        "github.com/acme/lib v1.14.0 h1:+KZ9iCY+rJvp/WZQNXTbPuWYwCAH4TjyZaxxImctFoX=",
        ">>> x = uuid.UUID('{00010203-0405-0607-0809-0a0b0c0d0e0f}')",
        // Test vectors and names of a 3,000-file sample of registry crates.
        "(b\"0123456789\", b\"MDEyMzQ1Njc4OQ==\"),",
        "let tests: &[&[u8]] = &[&b\"MDEyMzQ1Njc4*!@#$%^&\"[..], b\"MDEyMzQ1Njc4OQ== \"][..];",
        "\"~$Zm9vYmFy#*\",",
        "git::message::connect(Service::UploadPack, Protocol::V1, b\"hello/world\", None, &[]),",
        "// commit#ea76fa1b1b273e65e3b0b1046643715b49bec51f which is licensed under the",
        "///         b\"936da01f9abd4d9d80c702af85c822a8!!!!\" as &[_]",
        "// Safety: `s` MUST be a valid Hangul Syllable character, between U+AC00..U+D7AF",
        "check!(c\"cd\\u{1F602}ab\", true, None);",
        "pub const FLTRDMN_E_CANNOT_DECRYPT_PASSWORD: i32 = -2147212282i32;",
        "pub const MD_ERROR_NO_SESSION_KEY: i32 = -2146645987i32;",
        "// Parse offset datetime `key = 1979-05-27T07:32:00Z` and local datetime `key = 1979-05-27T07:32:00`.",
        "#[cfg(feature = \"Win32_NetworkManagement_P2P\")]",
        "pub customIkev2Config: ROUTER_IKEv2_IF_CUSTOM_CONFIG0,",
        "pub Out: IO_STOP_ON_SYMLINK_FILTER_ECP_v0_0,",
        "//! let loc: Locale = \"en-US-u-ca-buddhist-t-en-us-h0-hybrid-x-foo\"",
        "///     \"UnD-t-m0-TrUe\",",
        "let cjk_filename_encoded = \"%E4%BD%A0%E5%A5%BD%E4%B8%96%E7%95%8C.txt\";",
        "/// [square-bracket indexing operator]: Value#impl-Index%3CI%3E-for-Value",
        "r#\"Bearer resource_metadata=\"/.well-known/oauth-protected-resource\"\"#,",
    ] {
        kept(text);
    }
    // The shapes let through above still go when they hold a secret.
    for (text, secret) in [
        ("password = \"aHVudGVyMnB3ZA==\"", "aHVudGVyMnB3ZA"),
        ("ssh.connect(\"host\", 22, \"root\", \"hunter2pw\")", "hunter2pw"),
        ("x = \"Tq-Mw-8xZ2pLr9\"", "8xZ2pLr9"),
        ("token = \"Zq8rT2mLw9vBn4Ks%2B%2F%3D\"", "Zq8rT2mLw9vBn4Ks"),
        ("API_TOKEN = \"Xk9_mP2qL_vR7wZq8rT2_Lw9vBn4Ks\"", "mP2qL"),
    ] {
        gone(text, secret);
    }
    // Copies of code given to a secret-like name are not chased through the request.
    let mut known = Secrets::default();
    let (parts, _) = redact_parts(&["token := \"float64\"\n", "var x float64 = 1.5"], &mut known);
    assert_eq!(parts[1], "var x float64 = 1.5");
}

#[test]
fn a_name_glued_to_the_word_before_it_is_still_read() {
    gone("AAPI_KEYS = {\"ci\": \"correct horse battery staple\"}", "correct horse");
}

#[test]
fn a_secret_name_given_as_a_string_takes_a_short_word_beside_it() {
    for (text, secret) in [
        ("cfg.set(\"password\", \"hunter2\")", "hunter2"),
        ("os.environ[\"DB_PASSWORD\"] = \"tiger\"", "tiger"),
        ("params = [{\"name\": \"password\", \"value\": \"letmein\"}]", "letmein"),
        ("headers[\"Authorization\"] = \"Bearer abc\"", "abc"),
        ("headers['Authorization'] = 'Token qwerty'", "qwerty"),
        ("xhr.setRequestHeader(\"Authorization\", \"Bearer s3cr\");", "s3cr"),
        ("curl -H \"Authorization: Bearer abc\" https://api.example.com", "abc"),
        ("h = {\"Proxy-Authorization\": \"Basic Zm9v\"}", "Zm9v"),
    ] {
        gone(text, secret);
    }
    // A name for the credential, or code building it, stays.
    for text in [
        "curl -H \"Authorization: Bearer TOKEN\" https://api.example.com",
        "curl -H \"Authorization: Bearer $TOKEN\" https://api.example.com",
        "headers[\"Authorization\"] = \"Bearer \" + token",
        "headers = {\"Authorization\": f\"Bearer {token}\"}",
        "headers[\"Authorization\"] = \"Bearer <token>\"",
        "# Authorization: Bearer YOUR_ACCESS_TOKEN",
        "const header = `Authorization: Bearer ${token}`;",
    ] {
        kept(text);
    }
}

#[test]
fn a_dollar_inside_a_value_is_not_a_template() {
    for (text, secret) in [
        ("passwd='geheim$parole'", "geheim"),
        ("password = \"pa$$word\"", "pa$$word"),
        ("DB_PASSWORD = \"tiger$lily\"", "tiger"),
    ] {
        gone(text, secret);
    }
    for text in ["password = \"$DB_PASS\"", "password = \"${DB_PASS}\"", "PASSWORD=\"$1\"\n"] {
        kept(text);
    }
}

/// Every `(text, secret)` whose secret survives, for an assertion that lists them all.
fn survivors<'a>(cases: &[(&'a str, &'a str)]) -> Vec<String> {
    cases
        .iter()
        .filter_map(|(text, secret)| {
            let (redacted, _) = redact_text(text, false);
            redacted.contains(secret).then(|| format!("`{secret}` survived in `{redacted}`"))
        })
        .collect()
}

#[test]
fn random_tokens_standing_alone_go_even_with_five_letters_in_one_case() {
    // Tokens the corpus generator made that hold a run of five letters in one case, which no
    // word has the letter pairs of.
    let cases = [
        ("# staging login: Gmzhk6meyLnhr1\nconnect()\n", "Gmzhk6meyLnhr1"),
        ("// temporary, rotate after the demo: 4qxvbtZ9mKw2Rp\n", "4qxvbtZ9mKw2Rp"),
        ("RUN redis-cli -h cache -a P7zkwpfQ2nLr8d ping\n", "P7zkwpfQ2nLr8d"),
        (
            "- 1a2b3c4d Ada Lovelace 2026-02-11 \"Rotate the staging secret to HJKRTq8m2Vn4Lz\"\n",
            "HJKRTq8m2Vn4Lz",
        ),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    // Names whose long pieces are words stay.
    for text in [
        "use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd};\n",
        "setsockopt(&fd, sockopt::Ipv4RecvTtl, &true)\n",
        "setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true).expect(\"set\");\n",
        "pub const Dhcpv6IpRanges: DHCP_SUBNET_ELEMENT_TYPE_V6 = 0i32;\n",
        "link!(\"dhcpsapi.dll\" \"system\" fn DhcpHlprFreeV4PolicyEx(policyex : *mut DHCP_POLICY_EX));\n",
        "    pub pwszU2fAppId: PCWSTR,\n",
        "fn VarR4CmpR8(fltleft : f32, dblright : f64) -> VARCMP;\n",
        "assert_eq!(masksel(129u64, 0xFFEEDDCCBBAA9988u64, 0u64), 129u64);\n",
        "let span: Span = \"P2m10dT2h30m\".parse()?;\n",
        "// see L1PmSsControl2 and Utf8JsonWriter2\n",
        "RUN make -C build HttpHandler2xRequest\n",
        "# getI18nKey(v8Buffer3)\n",
    ] {
        kept(text);
    }
}

#[test]
fn compact_escaped_json_gives_up_the_values_of_its_secret_keys() {
    let cases = [
        ("const body = \"{\\\"password\\\":\\\"hunter2pw\\\"}\";\n", "hunter2pw"),
        ("body := \"{\\\"passwd\\\": \\\"opensesame\\\", \\\"ttl\\\": 60}\"\n", "opensesame"),
        ("s = \"{\\\\\\\"apiKey\\\\\\\":\\\\\\\"Tr0ub4dor&3\\\\\\\"}\"\n", "Tr0ub4dor&3"),
        (
            "<div data-config=\"{&quot;client_secret&quot;:&quot;correct horse&quot;}\"></div>\n",
            "correct horse",
        ),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    kept("const body = \"{\\\"user\\\":\\\"app\\\",\\\"ttl\\\":60,\\\"password_hint\\\":\\\"pet\\\"}\";\n");
}

#[test]
fn a_short_number_given_to_a_secret_name_is_a_secret() {
    let cases = [
        ("pin = \"4821\"\n", "4821"),
        ("PIN: 4821\n", "4821"),
        ("passcode = \"839201\"\n", "839201"),
        ("db:\n  password: 20240917\n", "20240917"),
        ("PIN_CODE=90210\n", "90210"),
        ("# PIN 4821 for the safe\n", "4821"),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    for text in [
        "port = 5432\n",
        "max_connections: 1024\n",
        "version = \"1.2.3\"\n",
        "retries = 3\n",
        "led_pin = 13\n",
        "pub const PTP_PIN_GETFUNC: u32 = 3227532550;\n",
        "pub const IOC_OPAL_SET_PW: u32 = 2183164128;\n",
    ] {
        kept(text);
    }
}

#[test]
fn a_secret_written_as_character_codes_goes() {
    let cases = [
        ("const password = String.fromCharCode(104,117,110,116,101,114,50);\n", "104,117,110,116,101,114,50"),
        ("API_SECRET = bytes([104, 117, 110, 116, 101, 114]).decode()\n", "104, 117, 110, 116"),
        ("password = \"\\x68\\x75\\x6e\\x74\\x65\\x72\\x32\"\n", "\\x68\\x75\\x6e\\x74"),
        ("const apiKey = \"\\u0068\\u0075\\u006e\\u0074\\u0065\\u0072\";\n", "\\u0068\\u0075\\u006e"),
        ("db_password = \"\".join(map(chr, [104, 117, 110, 116, 101, 114]))\n", "104, 117, 110, 116"),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    for text in
        ["key = [13, 27, 32, 127]\n", "tokens = [101, 102, 103, 104]\n", "sizes = [104, 117, 110, 116]\n"]
    {
        kept(text);
    }
}

#[test]
fn vendor_tokens_without_a_prefix_go_by_their_name_and_by_the_call_they_are_passed_to() {
    let cases = [
        ("TWILIO_AUTH_TOKEN = \"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\"\n", "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"),
        (
            "client = Client(\"AC3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\", \"9e8f7a6b5c3f9a8b7c6d5e4f3a2b1c0d\")\n",
            "9e8f7a6b5c3f9a8b7c6d5e4f3a2b1c0d",
        ),
        (
            "client = Client(account_sid, \"9e8f7a6b5c3f9a8b7c6d5e4f3a2b1c0d\")\n",
            "9e8f7a6b5c3f9a8b7c6d5e4f3a2b1c0d",
        ),
        (
            "MAILGUN_API_KEY = \"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c-1a2b3c4d-5e6f7a8b\"\n",
            "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
        ),
        ("DD_API_KEY=3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\n", "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"),
        (
            "DD_APP_KEY = \"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d\"\n",
            "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d",
        ),
        (
            "dd.initialize(api_key=\"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\", app_key=\"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d\")\n",
            "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d",
        ),
        (
            "options = {\"api_key\": \"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\"}\ninitialize(**options)\n",
            "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
        ),
        (
            "HEROKU_API_KEY = \"01234567-89ab-4cde-8f01-23456789abcd\"\n",
            "01234567-89ab-4cde-8f01-23456789abcd",
        ),
        ("heroku_key: 01234567-89ab-4cde-8f01-23456789abcd\n", "01234567-89ab-4cde-8f01-23456789abcd"),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    for text in [
        "request_id = \"01234567-89ab-4cde-8f01-23456789abcd\"\n",
        "commit = \"3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d\"\n",
    ] {
        kept(text);
    }
}

#[test]
fn a_placeholder_is_the_whole_value_or_nothing() {
    let cases = [
        ("password = \"{{changeme}}x9!Qz\"\n", "x9!Qz"),
        ("password = \"<secret>Zq8rT2\"\n", "Zq8rT2"),
        ("password = \"x-X_x.X-x\"\n", "x-X_x.X-x"),
        ("password = \"xXx-*.*-XxX\"\n", "xXx-*.*-XxX"),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    for text in [
        "password = \"{{ changeme }}\"\n",
        "password = \"<secret>\"\n",
        "password = \"xxxx-xxxx\"\n",
        "password = \"********\"\n",
    ] {
        kept(text);
    }
}

#[test]
fn a_hex_key_passed_to_a_crypto_call_goes() {
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let cases = [
        format!("mac = hmac.new(b\"{hex}\", msg, hashlib.sha256)\n"),
        format!("cipher = AES.new(bytes.fromhex(\"{hex}\"), AES.MODE_GCM)\n"),
        format!("const sig = crypto.createHmac('sha256', '{hex}').update(body).digest('hex');\n"),
        format!("let mac = HmacSha256::new_from_slice(&hex::decode(\"{hex}\")?)?;\n"),
    ];
    let cases: Vec<(&str, &str)> = cases.iter().map(|t| (t.as_str(), hex)).collect();
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    // A digest compared or printed is not a key.
    kept(&format!("assert hashlib.sha256(b\"abc\").hexdigest() == \"{hex}\"\n"));
    kept(&format!("digest = \"{hex}\"\n"));
}

#[test]
fn version_shaped_and_dotted_passwords_given_to_a_secret_name_go() {
    let cases = [
        ("password = \"1.2.3.4\"\n", "1.2.3.4"),
        ("password = \"v2.0.1\"\n", "v2.0.1"),
        ("DB_PASSWORD = \"correct.horse.battery\"\n", "correct.horse.battery"),
        ("password: 2024.01.15\n", "2024.01.15"),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    for text in [
        "version = \"1.2.3.4\"\n",
        "PASSWORD_HASHERS = [\"django.contrib.auth.hashers.PBKDF2PasswordHasher\"]\n",
        "password_hasher = \"django.contrib.auth.hashers.PBKDF2PasswordHasher\"\n",
    ] {
        kept(text);
    }
}

#[test]
fn a_hex_token_beside_a_secret_word_in_prose_goes() {
    let cases = [
        ("deploy token 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\n", "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"),
        (
            "# rotated key: 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d\n",
            "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d",
        ),
        (
            "- abc12345 Ada 2026-02-11 \"Use secret 9e8f7a6b5c3f9a8b7c6d5e4f3a2b1c0d for now\"\n",
            "9e8f7a6b5c3f9a8b7c6d5e4f3a2b1c0d",
        ),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    for text in [
        "// taken from commit#3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d which is MIT licensed\n",
        "# Merge 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c1a2b3c4d into main\n",
    ] {
        kept(text);
    }
}

#[test]
fn credentials_in_tool_configuration_files_and_encoded_urls_go() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let cases = [
        ("postgres://app:p%40ss%2Fw0rd%21@db.internal:5432/app\n", "p%40ss%2Fw0rd%21"),
        ("url = \"https://deploy%40corp:Zq8r%24T2mLw9@git.example.com/repo.git\"\n", "Zq8r%24T2mLw9"),
        (
            "//registry.npmjs.org/:_authToken=npm_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e\n",
            "npm_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e",
        ),
        (
            "_auth = YWRtaW46WnE4clQybUx3OXZCbjRLcw==\nalways-auth = true\n",
            "YWRtaW46WnE4clQybUx3OXZCbjRLcw==",
        ),
        (
            "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdoLWlqa2wtbW5vcC1xcnN0\n",
            "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZmdo",
        ),
        (
            "machine api.heroku.com\n  login me@example.com\n  password 01234567-89ab-4cde-8f01-23456789abcd\n",
            "01234567-89ab-4cde-8f01-23456789abcd",
        ),
        (
            "https://ada:ghp_BYOvfZ8UzDzV8fUkkibjL5DZPjN0MEQ7wjJJ@github.com\n",
            "ghp_BYOvfZ8UzDzV8fUkkibjL5DZPjN0MEQ7wjJJ",
        ),
        ("https://ada:opensesame42@gitlab.example.com\n", "opensesame42"),
        ("DB = \"postgres://admin:Xk9{mP2#qL}vR7w@db.example.com/app\"\n", "mP2#qL"),
        (
            "{\"auths\": {\"registry.example.com\": {\"auth\": \"YWRtaW46b3BlbnNlc2FtZTQy\"}}}\n",
            "YWRtaW46b3BlbnNlc2FtZTQy",
        ),
        (
            "users:\n- name: admin\n  user:\n    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB\n",
            "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB",
        ),
        (
            "    token: eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlX29mX3RoZV90b2tlbg\n",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9",
        ),
    ];
    let left = survivors(&cases);
    assert!(left.is_empty(), "{}", left.join("\n"));
    let cookie = format!("Cookie: theme=dark; access_token={jwt}\n");
    gone(&cookie, jwt);
    gone(&format!("document.cookie = \"jwt={jwt}; path=/\";\n"), jwt);
}

#[test]
fn every_own_rule_compiles_and_names_its_needles_in_lower_case() {
    let rules = super::rules();
    assert!(rules.own.len() > 40, "the own rules are all there");
    for rule in &rules.own {
        regex::Regex::new(rule.source).unwrap_or_else(|e| panic!("{}: {e}", rule.kind));
        for needle in rule.needles {
            assert_eq!(
                *needle,
                needle.to_ascii_lowercase(),
                "{}: needles are matched in lower case",
                rule.kind
            );
        }
    }
}

#[test]
fn patterns_skipped_on_texts_without_their_names_still_find_them_where_they_are() {
    // Built at run time: the server's own source holds no secret.
    let hex: String = (0..40).map(|i| char::from(b"0123456789abcdef"[i * 7 % 16])).collect();
    assert!(
        has_hex_run(&hex, 32) && !has_hex_run(&hex[..31], 32) && !has_hex_run("g".repeat(40).as_str(), 32)
    );
    check(&format!("# rotated token: {hex}\n"), &hex, "token");
    // A non-ASCII text is always searched: case-insensitive matching folds some letters.
    check(&format!("# café token: {hex}\n"), &hex, "token");
    check("# PIN 4821 for the safe\n", "4821", "password");
    check("# Passcode: 73914\n", "73914", "password");
    check(&format!("let mac = Hmac::<Sha256>::new_from_slice(b\"{hex}\");\n"), &hex, "key");
    let token = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1w";
    check(&format!("client = TwilioClient(\"AC{hex}\", \"{token}\")\n"), token, "token");
}
