//! The generated corpus: secrets of many kinds in realistic code of several languages, and as
//! many realistic values that are not secrets. Everything is generated from a fixed seed, so a
//! run is repeatable; `cargo nextest run -p acas redaction_corpus --no-capture` prints the
//! figures kept in BENCHMARKS.md.

use super::*;

/// A small deterministic generator (SplitMix64), so the corpus needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn from(&mut self, alphabet: &str, len: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len).map(|_| chars[self.below(chars.len())]).collect()
    }

    fn alnum(&mut self, len: usize) -> String {
        self.from(ALNUM, len)
    }

    fn hex(&mut self, len: usize) -> String {
        self.from("0123456789abcdef", len)
    }

    fn b64(&mut self, len: usize) -> String {
        self.from(B64, len)
    }

    fn uuid(&mut self) -> String {
        format!("{}-{}-4{}-a{}-{}", self.hex(8), self.hex(4), self.hex(3), self.hex(3), self.hex(12))
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const WORDS: &[&str] = &[
    "correct", "horse", "battery", "staple", "orange", "river", "mountain", "silent", "copper", "violet",
    "window", "garden", "falcon", "marble", "thunder", "pepper", "lantern", "meadow",
];

/// Code that embeds a value in some language, by where a named value of that kind lives.
fn named(rng: &mut Rng, name: &str, value: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let camel: String = name
        .split('_')
        .enumerate()
        .map(|(i, w)| if i == 0 { w.to_owned() } else { w[..1].to_ascii_uppercase() + &w[1..] })
        .collect();
    match rng.below(10) {
        0 => format!("import os\n\n{name} = \"{value}\"\nclient = Client({name}={name})\n"),
        1 => format!("const {camel} = '{value}';\nexport default {{ {camel} }};\n"),
        2 => {
            format!("fn connect() -> Client {{\n    let {name} = \"{value}\";\n    Client::new({name})\n}}\n")
        }
        3 => format!("func main() {{\n\t{camel} := \"{value}\"\n\tclient.Use({camel})\n}}\n"),
        4 => format!("service:\n  {name}: {value}\n  retries: 3\n"),
        5 => format!("{upper}={value}\nLOG_LEVEL=info\n"),
        6 => format!("{{\n  \"{camel}\": \"{value}\",\n  \"region\": \"eu-west-1\"\n}}\n"),
        7 => format!("private static final String {upper} = \"{value}\";\n"),
        8 => format!("export {upper}=\"{value}\"\n./deploy.sh --env prod\n"),
        _ => format!("settings = Settings(host=\"db.internal\", {name}=\"{value}\", port=5432)\n"),
    }
}

/// A secret embedded in code, the value that must not survive, and its kind.
fn secret(rng: &mut Rng, kind: usize) -> (String, String, &'static str) {
    let token = |rng: &mut Rng, value: String, names: &[&str]| {
        let name = rng.pick(names);
        (named(rng, name, &value), value)
    };
    macro_rules! tok {
        ($value:expr, $names:expr $(,)?) => {{
            let value = $value;
            token(rng, value, $names)
        }};
    }
    let (text, value) = match kind {
        0 => {
            let v = format!("sk-ant-api03-{}AA", rng.from(URLSAFE, 93));
            tok!(v, &["anthropic_api_key", "api_key", "claude_key"])
        }
        1 => {
            let v = format!("sk-proj-{}T3BlbkFJ{}", rng.from(URLSAFE, 64), rng.from(URLSAFE, 64));
            tok!(v, &["openai_api_key", "api_key", "llm_key"])
        }
        2 => {
            let v = format!("sk-{}T3BlbkFJ{}", rng.alnum(20), rng.alnum(20));
            tok!(v, &["openai_key", "key"])
        }
        3 => tok!(format!("AIza{}", rng.from(URLSAFE, 35)), &["google_api_key", "maps_key"]),
        4 => tok!(format!("ghp_{}", rng.alnum(36)), &["github_token", "gh_token"]),
        5 => {
            let v = format!("github_pat_{}_{}", rng.alnum(22), rng.alnum(59));
            tok!(v, &["github_token", "pat"])
        }
        6 => tok!(format!("gho_{}", rng.alnum(36)), &["oauth_token", "github_oauth"]),
        7 => tok!(format!("glpat-{}", rng.from(URLSAFE, 20)), &["gitlab_token", "ci_token"]),
        8 => {
            let v = format!("AKIA{}", rng.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16));
            tok!(v, &["aws_access_key_id", "access_key"])
        }
        9 => tok!(rng.b64(40), &["aws_secret_access_key", "secret_access_key"]),
        10 => {
            let v = format!(
                "xoxb-{}-{}-{}",
                rng.from("0123456789", 12),
                rng.from("0123456789", 13),
                rng.alnum(24)
            );
            tok!(v, &["slack_bot_token", "slack_token"])
        }
        11 => {
            let v = format!(
                "https://hooks.slack.com/services/T{}/B{}/{}",
                rng.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                rng.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10),
                rng.alnum(24)
            );
            let text = format!("requests.post(\"{v}\", json={{\"text\": \"deployed\"}})\n");
            (text, v)
        }
        12 => {
            let v = format!("{}_live_{}", rng.pick(&["sk", "rk"]), rng.alnum(24));
            tok!(v, &["stripe_key", "stripe_secret"])
        }
        13 => tok!(format!("SK{}", rng.hex(32)), &["twilio_api_key", "twilio_key"]),
        14 => {
            let v = format!("SG.{}.{}", rng.from(URLSAFE, 22), rng.from(URLSAFE, 43));
            tok!(v, &["sendgrid_api_key", "mail_key"])
        }
        15 => tok!(format!("npm_{}", rng.alnum(36)), &["npm_token", "publish_token"]),
        16 => {
            let v = rng.uuid();
            (format!("registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={v}\n"), v)
        }
        17 => {
            let body: Vec<String> = (0..8).map(|_| rng.b64(64)).collect();
            let v = body[3].clone();
            let text = format!(
                "KEY = \"\"\"\n-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n\"\"\"\n",
                body.join("\n")
            );
            (text, v)
        }
        18 => {
            let v = format!(
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
                rng.from(URLSAFE, 40),
                rng.from(URLSAFE, 43)
            );
            (format!("fetch(url, {{ headers: {{ Authorization: `Bearer {v}` }} }});\n"), v)
        }
        19 => {
            let v = format!("{}{}{}!", rng.alnum(6).to_uppercase(), rng.alnum(6), rng.from("0123456789", 3));
            tok!(v, &["password", "db_password", "admin_pass", "smtp_password"])
        }
        20 => {
            let v: Vec<&str> = (0..4).map(|_| rng.pick(WORDS)).collect();
            let v = v.join(" ");
            let text = match rng.below(3) {
                0 => format!("passphrase = \"{v}\"\n"),
                1 => format!("WALLET_PASSPHRASE={v}\n"),
                _ => format!("gpg:\n  passphrase: {v}\n"),
            };
            (text, v)
        }
        21 => {
            let v = format!("{}{}", rng.pick(WORDS), rng.from("0123456789", 4));
            (format!("DB_HOST=db\nDB_PASSWORD={v}\nDB_PORT=5432\n"), v)
        }
        22 => {
            let v = rng.from(&format!("{ALNUM}!@#%^*"), 14);
            (format!("conn = psycopg2.connect(host=\"db\", user=\"app\", password=\"{v}\")\n"), v)
        }
        23 => {
            let v = rng.from(&format!("{ALNUM}!#%*"), 16);
            (format!("{{\"user\": \"admin\", \"password\": \"{v}\", \"remember\": true}}\n"), v)
        }
        24 => {
            let v = rng.alnum(18);
            (format!("database:\n  user: app\n  password: {v}\n  pool: 5\n"), v)
        }
        25..=30 => {
            let scheme = ["postgres", "mysql", "redis", "amqp", "mongodb+srv", "https"][kind - 25];
            let v = rng.alnum(16);
            let url = format!("{scheme}://app_user:{v}@host-{}.internal:5432/main", rng.below(100));
            (format!("DATABASE_URL = \"{url}\"\nengine = create_engine(DATABASE_URL)\n"), v)
        }
        31 => {
            let v = rng.from(URLSAFE, 40);
            (format!("curl -s -H \"Authorization: Bearer {v}\" https://api.example.com/v1/items\n"), v)
        }
        32 => {
            let v = format!("{}=", rng.b64(31));
            (format!("req.setRequestHeader(\"Authorization\", \"Basic {v}\");\n"), v)
        }
        33 => {
            let v = format!("{}==", rng.b64(86));
            let text = format!(
                "var conn = \"DefaultEndpointsProtocol=https;AccountName=store{};AccountKey={v};EndpointSuffix=core.windows.net\";\n",
                rng.below(100)
            );
            (text, v)
        }
        34 => tok!(rng.hex(64), &["token", "sig", "api_secret", "webhook_secret", "hmac_key"]),
        35 => tok!(format!("{}=", rng.b64(43)), &["signing_key", "secret_key", "encryption_key"]),
        36 => {
            let v = rng.alnum(32);
            (format!("let session_cookie = \"{v}\";\nres.cookie(\"sid\", session_cookie);\n"), v)
        }
        37 => tok!(format!("shpat_{}", rng.hex(32)), &["shopify_token", "shop_token"]),
        38 => tok!(
            format!("hf_{}", rng.from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34)),
            &["hf_token", "hub_token"]
        ),
        39 => tok!(format!("dop_v1_{}", rng.hex(64)), &["do_token", "digitalocean_token"]),
        40 => tok!(format!("dapi{}", rng.hex(32)), &["databricks_token", "dbx_token"]),
        41 => tok!(
            format!("AGE-SECRET-KEY-1{}", rng.from("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)),
            &["age_key", "identity"],
        ),
        _ => unreachable!("kinds are 0..KINDS"),
    };
    let kind: &'static str = match kind {
        0 => "anthropic",
        1 | 2 => "openai",
        3 => "google",
        4..=6 => "github",
        7 => "gitlab",
        8 | 9 => "aws",
        10 | 11 => "slack",
        12 => "stripe",
        13 => "twilio",
        14 => "sendgrid",
        15 | 16 => "npm",
        17 => "private-key",
        18 => "jwt",
        19..=24 => "password",
        25..=30 => "url-credentials",
        31 | 32 => "http-auth",
        33 => "azure",
        34 | 35 => "key",
        36 => "high-entropy",
        37 => "shopify",
        38 => "huggingface",
        39 => "digitalocean",
        40 => "databricks",
        _ => "age",
    };
    (text, value, kind)
}

const KINDS: usize = 42;

/// Code holding a value that is not a secret, by category.
fn non_secret(rng: &mut Rng, category: usize) -> (String, &'static str) {
    match category {
        0 => {
            let name = rng.pick(&["serde", "tokio", "regex", "anyhow", "libc", "memchr"]);
            let text = format!(
                "[[package]]\nname = \"{name}\"\nversion = \"1.{}.{}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n",
                rng.below(50),
                rng.below(20),
                rng.hex(64)
            );
            (text, "Cargo.lock checksum")
        }
        1 => {
            let name = rng.pick(&["react", "lodash", "express", "typescript", "vite"]);
            let text = format!(
                "    \"node_modules/{name}\": {{\n      \"version\": \"{}.{}.{}\",\n      \"resolved\": \"https://registry.npmjs.org/{name}/-/{name}-4.1.{}.tgz\",\n      \"integrity\": \"sha512-{}==\"\n    }},\n",
                rng.below(20),
                rng.below(20),
                rng.below(20),
                rng.below(9),
                rng.b64(86)
            );
            (text, "package-lock integrity")
        }
        2 => {
            let sha = rng.hex(40);
            let text = match rng.below(4) {
                0 => format!(
                    "line {}: {} Ada Lovelace 2025-10-09 \"Sum the cart\"\n",
                    rng.below(300),
                    &sha[..12]
                ),
                1 => format!("- {sha} Grace Hopper 2025-11-02 \"Parse prices in cents\"\n"),
                2 => format!("  - repo: https://github.com/pre-commit/pre-commit-hooks\n    rev: {sha}\n"),
                _ => format!("let commit = \"{sha}\";\n"),
            };
            (text, "git SHA")
        }
        3 => {
            let id = rng.uuid();
            let text = match rng.below(3) {
                0 => format!("request_id = \"{id}\"\n"),
                1 => format!("{{\"id\": \"{id}\", \"status\": \"ok\"}}\n"),
                _ => format!("const tenantId = '{id}';\n"),
            };
            (text, "UUID")
        }
        4 => {
            let data = format!("iVBORw0KGgoAAAANSUhEUgAAA{}", rng.b64(120));
            let text = match rng.below(2) {
                0 => format!("<img src=\"data:image/png;base64,{data}=\" alt=\"logo\">\n"),
                _ => format!(".icon {{ background: url(\"data:image/png;base64,{data}\"); }}\n"),
            };
            (text, "data URI image")
        }
        5 => {
            let text = match rng.below(4) {
                0 => format!(
                    "assert_eq!(parse_cents(\"{}.{:02}\"), Some({}));\n",
                    rng.below(100),
                    rng.below(100),
                    rng.below(10000)
                ),
                1 => format!(
                    "expect(slugify(\"Hello World {}\")).toBe(\"hello-world-{}\");\n",
                    rng.below(9),
                    rng.below(9)
                ),
                2 => "self.assertEqual(validate_password(\"short\"), [\"too short\"])\n".to_owned(),
                _ => format!(
                    "assert login(user, password) is None, \"login must fail for user {}\"\n",
                    rng.below(99)
                ),
            };
            (text, "test fixture")
        }
        6 => (format!("  color: #{};\n  border: 1px solid #{};\n", rng.hex(6), rng.hex(3)), "CSS colour"),
        7 => {
            let text = match rng.below(3) {
                0 => format!("version = \"{}.{}.{}\"\n", rng.below(9), rng.below(30), rng.below(30)),
                1 => format!("    \"typescript\": \"^5.{}.{}\",\n", rng.below(9), rng.below(9)),
                _ => format!("requires-python = \">=3.{}\"\n", 8 + rng.below(5)),
            };
            (text, "version string")
        }
        8 => {
            let text = match rng.below(4) {
                0 => format!("import {{ createClient }} from \"@acme/sdk-{}/auth/token\";\n", rng.below(9)),
                1 => "use crate::escalate::redact::Redactor;\n".to_owned(),
                2 => format!("from app.services.auth{} import login, logout\n", rng.below(9)),
                _ => format!("import \"github.com/acme/platform/v{}/pkg/auth\"\n", 2 + rng.below(5)),
            };
            (text, "import path")
        }
        9 => {
            let text = match rng.below(5) {
                0 => "if (!password) { throw new Error(\"password is required\"); }\n".to_owned(),
                1 => "password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())\n".to_owned(),
                2 => "<input type=\"password\" name=\"password\" autocomplete=\"current-password\">\n"
                    .to_owned(),
                3 => "let token = lexer.next_token()?;\n".to_owned(),
                _ => format!("api_key_env = \"{}_API_KEY\"\n", rng.pick(&["OPENAI", "ANTHROPIC", "GEMINI"])),
            };
            (text, "secret-related code")
        }
        10 => {
            let text = format!("github.com/acme/lib v1.{}.0 h1:{}=\n", rng.below(20), rng.b64(43));
            (text, "go.sum hash")
        }
        12 => {
            // Encoded test data looks like a token to every entropy rule: some of it is taken.
            let len = 24 + 4 * rng.below(6);
            let data = rng.b64(len);
            let text = format!(
                "#[test]\nfn decodes() {{\n    let encoded = \"{data}\";\n    assert!(decode(encoded).is_ok());\n}}\n"
            );
            (text, "base64 test data")
        }
        13 => {
            let text = match rng.below(4) {
                0 => format!("t(\"auth.password.{}\")\n", rng.pick(&["required", "too_short", "mismatch"])),
                1 => format!("cache_key = f\"user:{{user_id}}:profile:v{}\"\n", rng.below(9)),
                2 => format!("sort_key: \"created_at_{}\"\n", rng.below(9)),
                _ => format!("message = \"Your token expires in {} minutes\"\n", rng.below(60)),
            };
            (text, "keys and messages")
        }
        14 => {
            // Code: the right-hand side is a call, an index, a path or a name made of words.
            const WORDS: &[&str] = &[
                "compute",
                "financial",
                "summary",
                "request",
                "handler",
                "factory",
                "account",
                "holder",
                "quarter",
                "session",
                "secret",
                "password",
                "token",
                "config",
                "impl",
                "builder",
            ];
            let ident = |rng: &mut Rng, upper: bool| {
                let n = 2 + rng.below(3);
                let mut out = String::new();
                for i in 0..n {
                    let w = rng.pick(WORDS);
                    if i > 0 || upper {
                        out.push_str(&w[..1].to_ascii_uppercase());
                        out.push_str(&w[1..]);
                    } else {
                        out.push_str(w);
                    }
                }
                if rng.below(2) == 0 {
                    out.push_str(&rng.below(100).to_string());
                }
                out
            };
            let (a, b, c) = (ident(rng, false), ident(rng, false), ident(rng, true));
            let name = rng.pick(&["result", "secret", "password", "token", "handler", "pw", "api_key"]);
            let text = match rng.below(6) {
                0 => format!("{name} = {a}({b})\n"),
                1 => format!("const {name} = {a}({b}, ctx);\n"),
                2 => format!("{name} = {a}[\"{name}\"]\n"),
                3 => format!("{name} = {a}.{}\n", c.to_ascii_uppercase()),
                4 => format!("factory = \"{c}\"\n"),
                _ => format!(
                    "{name}_arn = \"arn:aws:secretsmanager:us-east-1:{}:secret:prod/{a}-{}\"\n",
                    rng.from("0123456789", 12),
                    rng.alnum(6)
                ),
            };
            (text, "code on the right-hand side")
        }
        _ => {
            let text = format!("image: ghcr.io/acme/api@sha256:{}\n", rng.hex(64));
            (text, "image digest")
        }
    }
}

const CATEGORIES: usize = 15;

/// A secret in one of the shapes read through structure beyond `name = "…"`: conversions,
/// functions returning it, nested tuples, byte arrays, cookies and session ids, registry
/// tokens, pairs in comments and commit subjects, slashed logins, full-width names, and changed
/// copies of a removed value quoted elsewhere in the request. The text, the value that must not
/// survive, and the shape.
fn shaped_secret(rng: &mut Rng, shape: usize) -> (String, String, &'static str) {
    let password = |rng: &mut Rng| {
        format!("{}{}{}", rng.alnum(5).to_uppercase(), rng.alnum(6), rng.from("0123456789", 3))
    };
    match shape {
        0 => {
            let v = password(rng);
            let text = match rng.below(7) {
                0 => format!("func main() {{\n\tpassword := []byte(\"{v}\")\n\tuse(password)\n}}\n"),
                1 => format!("let cfg = Config {{ password: String::from(\"{v}\"), user }};\n"),
                2 => format!("const secret = Buffer.from(\"{v}\", \"utf8\");\n"),
                3 => format!("let api_key = Secret::new(\"{v}\");\n"),
                4 => format!("String password = new String(\"{v}\");\n"),
                5 => format!("Config {{\n    db_password: \"{v}\".to_string(),\n}}\n"),
                _ => format!("let token = SecretString::from(\"{v}\");\n"),
            };
            (text, v, "conversion")
        }
        1 => {
            let v = rng.hex(40);
            (format!("SECRET_KEY = bytes.fromhex(\"{v}\")\n"), v, "conversion")
        }
        2 => {
            let v = password(rng);
            let text = match rng.below(5) {
                0 => format!("def get_password():\n    return \"{v}\"\n"),
                1 => format!("fn api_key() -> &'static str {{\n    \"{v}\"\n}}\n"),
                2 => format!("func Token() string {{ return \"{v}\" }}\n"),
                3 => format!("class Settings {{\n  get password() {{ return \"{v}\"; }}\n}}\n"),
                _ => format!("public String getPassword() {{\n    return \"{v}\";\n}}\n"),
            };
            (text, v, "returned")
        }
        3 => {
            let v = password(rng);
            (format!("user, (password, host) = \"app\", (\"{v}\", \"db.internal\")\n"), v, "nested tuple")
        }
        4 => {
            let n = [16, 24, 32][rng.below(3)];
            let hex = rng.below(2) == 0;
            let items: Vec<String> = (0..n)
                .map(|_| {
                    let b = rng.below(256);
                    if hex { format!("0x{b:02x}") } else { b.to_string() }
                })
                .collect();
            let v = items.join(", ");
            let text = match rng.below(4) {
                0 => format!("const KEY: [u8; {n}] = [{v}];\n"),
                1 => format!("secret_key = bytes([{v}])\n"),
                2 => format!("static const uint8_t key[{n}] = {{{v}}};\n"),
                _ => format!("var signingKey = []byte{{{v}}}\n"),
            };
            (text, v, "byte array")
        }
        5 => {
            let v = rng.alnum(24);
            let text = match rng.below(4) {
                0 => format!("headers = {{\"Cookie\": \"sid={v}; csrftoken={}\"}}\n", rng.alnum(32)),
                1 => format!("Set-Cookie: sessionid={v}; Path=/; HttpOnly\n"),
                2 => format!("curl -H 'Cookie: session={v}' https://app.example.com/api\n"),
                _ => format!("document.cookie = \"token={v}; path=/\";\n"),
            };
            (text, v, "cookie")
        }
        6 => {
            let v = rng.hex(32);
            let text = match rng.below(2) {
                0 => format!("session_id = \"{v}\"\n"),
                _ => format!("cookies = {{\"sessionid\": \"{v}\"}}\n"),
            };
            (text, v, "session id")
        }
        7 => {
            let v = if rng.below(2) == 0 { rng.alnum(32) } else { rng.uuid() };
            let text = match rng.below(2) {
                0 => format!("@acme:registry=https://npm.acme.dev/\n//npm.acme.dev/:_authToken={v}\n"),
                _ => format!("npmRegistries:\n  \"https://npm.acme.dev\":\n    npmAuthToken: {v}\n"),
            };
            (text, v, "registry token")
        }
        8 => {
            let v = format!("{}{}", rng.pick(WORDS), rng.from("0123456789", 4));
            let text = match rng.below(3) {
                0 => format!("# password={v}\nconnect()\n"),
                1 => format!(
                    "line 12: {} Ada Lovelace 2025-10-09 \"Use token={v} for staging\"\n",
                    rng.hex(12)
                ),
                _ => format!("// api_key: {v} (rotate monthly)\n"),
            };
            (text, v, "pair in prose")
        }
        9 => {
            let v = password(rng);
            (format!("# login admin/{v} on staging\n"), v, "slashed login")
        }
        10 => {
            let v = password(rng);
            let text = match rng.below(2) {
                0 => format!("ｐａｓｓｗｏｒｄ = \"{v}\"\n"),
                _ => format!("ＤＢ＿ＰＡＳＳＷＯＲＤ={v}\n"),
            };
            (text, v, "full-width name")
        }
        _ => {
            let v = format!("{}{}", rng.alnum(14), rng.from("0123456789", 4));
            let copy = match rng.below(4) {
                0 => v.to_uppercase(),
                1 => format!("{}...", &v[..12]),
                2 => v.bytes().map(|b| format!("{b:02x}")).collect(),
                _ => {
                    let hex: String = v.bytes().map(|b| format!("{b:02X}")).collect();
                    hex
                }
            };
            let text = format!("db_password = \"{v}\"\nerror: login failed for {copy}\n");
            (text, copy.trim_end_matches('.').to_owned(), "changed copy")
        }
    }
}

const SHAPES: usize = 12;

/// Values in the same shapes that are not secrets.
fn shaped_non_secret(rng: &mut Rng, shape: usize) -> (String, &'static str) {
    let bytes = |rng: &mut Rng, n: usize| {
        (0..n).map(|_| format!("0x{:02x}", rng.below(256))).collect::<Vec<_>>().join(", ")
    };
    match shape {
        0 => {
            let text = match rng.below(3) {
                0 => "def get_password_hash(password):\n    return hashlib.sha256(password.encode()).hexdigest()\n".to_owned(),
                1 => "def get_token(self):\n    return self._token\n".to_owned(),
                _ => format!("def password_help():\n    return \"Use {} characters or more.\"\n", 8 + rng.below(8)),
            };
            (text, "functions about secrets")
        }
        1 => {
            let text = match rng.below(4) {
                0 => "SESSION_COOKIE_NAME = \"sessionid\"\n".to_owned(),
                1 => "cookie = request.cookies.get(\"sid\")\n".to_owned(),
                2 => "res.cookie(\"sid\", value, { httpOnly: true });\n".to_owned(),
                _ => format!("CSRF_COOKIE_NAME = \"csrftoken{}\"\n", rng.below(3)),
            };
            (text, "cookie names")
        }
        2 => {
            let n = 16 + rng.below(48);
            let text = match rng.below(3) {
                0 => format!("static CRC_TABLE: [u8; {n}] = [{}];\n", bytes(rng, n)),
                1 => format!("table = bytes([{}])\n", bytes(rng, n)),
                _ => format!("const SBOX = [{}];\n", bytes(rng, n)),
            };
            (text, "byte tables")
        }
        3 => {
            let text = match rng.below(3) {
                0 => "# accepts a password/passphrase from the agent\n".to_owned(),
                1 => "// login with username/password, or a token\n".to_owned(),
                _ => format!("# key=value pairs are parsed below (format {})\n", rng.below(9)),
            };
            (text, "comments about secrets")
        }
        4 => {
            let text = match rng.below(4) {
                0 => "password = input(\"Password: \")\n".to_owned(),
                1 => "let name = String::from(\"ferris\");\n".to_owned(),
                2 => format!("user, (host, port) = \"app\", (\"db{}.internal\", 5432)\n", rng.below(9)),
                _ => "ｎａｍｅ = \"ｖａｌｕｅ\"\n".to_owned(),
            };
            (text, "conversions, tuples and full-width code")
        }
        _ => {
            let text = format!(
                "line {}: {} Ada Lovelace 2025-10-09 \"Fix the password reset form\"\n",
                rng.below(99),
                rng.hex(12)
            );
            (text, "commit subjects about secrets")
        }
    }
}

const NON_SECRET_SHAPES: usize = 6;

#[test]
#[allow(clippy::print_stdout)] // The figures are this test's output, for BENCHMARKS.md.
fn redaction_corpus_of_structural_shapes() {
    let mut rng = Rng(0x5EED_ACA5_0004);
    let mut missed = Vec::new();
    let mut secrets = 0;
    for shape in 0..SHAPES {
        for _ in 0..10 {
            let (text, value, label) = shaped_secret(&mut rng, shape);
            secrets += 1;
            // Changed copies are chased through the whole request, as the provider wrapper does.
            let (redacted, total) = if label == "changed copy" {
                let (parts, found) = redact_parts(&[&text], &mut Secrets::default());
                (parts.concat(), found.total())
            } else {
                let (redacted, found) = redact_text(&text, false);
                (redacted, found.total())
            };
            if redacted.contains(&value) || total == 0 {
                missed.push(format!("{label}: `{value}` in\n{redacted}"));
            }
        }
    }
    let mut falsely = Vec::new();
    let mut clean = 0;
    for shape in 0..NON_SECRET_SHAPES {
        for _ in 0..20 {
            let (text, label) = shaped_non_secret(&mut rng, shape);
            clean += 1;
            let (redacted, found) = redact_text(&text, false);
            if redacted != text {
                falsely.push(format!("{label}: {found:?}\n{text}→\n{redacted}"));
            }
        }
    }
    println!(
        "structural shapes: {} of {secrets} secrets of {SHAPES} shapes removed; {} of {clean} non-secrets of \
         {NON_SECRET_SHAPES} shapes redacted by mistake",
        secrets - missed.len(),
        falsely.len()
    );
    assert!(missed.is_empty(), "{} of {secrets} secrets survived:\n{}", missed.len(), missed.join("\n---\n"));
    assert!(falsely.is_empty(), "values that are not secrets were redacted:\n{}", falsely.join("\n---\n"));
}

#[test]
#[allow(clippy::print_stdout)] // The figures are this test's output, for BENCHMARKS.md.
fn redaction_corpus() {
    let mut rng = Rng(0x5EED_ACA5_0001);
    let per_kind = 10;
    let mut missed = Vec::new();
    let mut secrets = 0;
    for kind in 0..KINDS {
        for _ in 0..per_kind {
            let (text, value, label) = secret(&mut rng, kind);
            secrets += 1;
            let (redacted, found) = redact_text(&text, false);
            if redacted.contains(&value) || found.total() == 0 {
                missed.push(format!("{label}: `{value}` in\n{redacted}"));
            }
        }
    }
    let mut falsely = Vec::new();
    let mut clean = 0;
    for category in 0..CATEGORIES {
        for _ in 0..40 {
            let (text, label) = non_secret(&mut rng, category);
            clean += 1;
            let (redacted, found) = redact_text(&text, false);
            if redacted != text {
                falsely.push(format!("{label}: {found:?}\n{text}→\n{redacted}"));
            }
        }
    }
    let recall = 100.0 * (secrets - missed.len()) as f64 / secrets as f64;
    let false_rate = 100.0 * falsely.len() as f64 / clean as f64;
    println!(
        "redaction corpus: {secrets} secrets of {KINDS} generators, recall {recall:.1}%; \
         {clean} non-secrets of {CATEGORIES} categories, {} redacted by mistake ({false_rate:.2}%)",
        falsely.len()
    );
    for category in 0..CATEGORIES {
        let label = non_secret(&mut Rng(0), category).1;
        let n = falsely.iter().filter(|f| f.starts_with(&format!("{label}:"))).count();
        println!("  {label}: {n} of 40 redacted");
    }
    for f in falsely.iter().filter(|f| !f.starts_with("base64 test data:")) {
        println!("false redaction: {f}");
    }
    assert!(missed.is_empty(), "{} of {secrets} secrets survived:\n{}", missed.len(), missed.join("\n---\n"));
    // Random base64 assigned to an ordinary name is indistinguishable from a token, and tokens
    // assigned anywhere are taken: that category alone accounts for the rate. Every other
    // category must come through untouched.
    let others = falsely.iter().filter(|f| !f.starts_with("base64 test data:")).count();
    assert_eq!(others, 0, "values that are not secrets were redacted");
    assert!(false_rate < 8.0, "false redaction rate {false_rate:.2}% is over 8%");
}

/// A secret of one of the classes the token, prose, position and header rules added last:
/// password-shaped tokens in comments, commit messages and command lines, webhook URLs, vendor
/// prefixes, key material passed by position, escaped JSON in strings, short credentials given
/// to an `Authorization` header or to a secret's name held in a string, and passwords with a
/// `$` inside. The text, the value that must not survive, and the class.
fn latest_secret(rng: &mut Rng, class: usize) -> (String, String, &'static str) {
    // As a password manager makes them: fourteen letters and digits drawn evenly, of all three
    // classes.
    let token = |rng: &mut Rng| loop {
        let v = rng.alnum(14);
        if v.bytes().any(|b| b.is_ascii_uppercase())
            && v.bytes().any(|b| b.is_ascii_lowercase())
            && v.bytes().any(|b| b.is_ascii_digit())
        {
            break v;
        }
    };
    match class {
        0 => {
            let v = token(rng);
            let text = match rng.below(4) {
                0 => format!("# staging login: {v}\nconnect()\n"),
                1 => format!("// temporary, rotate after the demo: {v}\n"),
                2 => format!("/* admin pass {v} */\nint main(void) {{ return 0; }}\n"),
                _ => format!("    \"\"\"Connects with {v} until the vault is ready.\"\"\"\n"),
            };
            (text, v, "password-shaped token in a comment")
        }
        1 => {
            let v = token(rng);
            let text = match rng.below(3) {
                0 => format!(
                    "line 4: {} Ada Lovelace 2026-01-0{} \"hardcode db pw {v} until vault works\"\n",
                    rng.hex(8),
                    1 + rng.below(9)
                ),
                1 => {
                    format!("- {} Ada Lovelace 2026-02-11 \"Rotate the staging secret to {v}\"\n", rng.hex(8))
                }
                _ => format!(
                    "line 9: {} Grace Hopper 2026-03-02 \"Revert \\\"use {v} for staging\\\"\"\n",
                    rng.hex(8)
                ),
            };
            (text, v, "password-shaped token in a commit message")
        }
        2 => {
            let v = token(rng);
            let text = match rng.below(5) {
                0 => format!("os.system(\"7z a -p{v} out.7z secret.txt\")\n"),
                1 => format!("subprocess.run([\"zip\", \"-P\", \"{v}\", \"out.zip\", \"f\"])\n"),
                2 => format!("RUN redis-cli -h cache -a {v} ping\n"),
                3 => format!("sh -c \"mysql -uroot -p{v} app < dump.sql\"\n"),
                _ => format!("exec(\"sshpass -p '{v}' ssh deploy@host\")\n"),
            };
            (text, v, "password-shaped token on a command line")
        }
        3 => {
            let text_and_value = match rng.below(4) {
                0 => {
                    let v = rng.from(URLSAFE, 68);
                    (
                        format!(
                            "HOOK = \"https://discord.com/api/webhooks/{}/{v}\"\n",
                            rng.from("0123456789", 19)
                        ),
                        v,
                    )
                }
                1 => {
                    let v = rng.from("abcdefghijklmnopqrstuvwxyz0123456789", 26);
                    (format!("url = \"https://chat.example.com/hooks/{v}\"\n"), v)
                }
                2 => {
                    let v = rng.alnum(24);
                    (
                        format!(
                            "SLACK = \"https://hooks.slack.com/services/T{}/B{}/{v}\"\n",
                            rng.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8),
                            rng.from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 10)
                        ),
                        v,
                    )
                }
                _ => {
                    let v = format!("{}_{}", rng.alnum(28), rng.alnum(3));
                    (
                        format!(
                            "TEAMS = \"https://outlook.office.com/webhook/{}/IncomingWebhook/{v}/{}\"\n",
                            rng.alnum(8),
                            rng.alnum(36)
                        ),
                        v,
                    )
                }
            };
            (text_and_value.0, text_and_value.1, "webhook URL")
        }
        4 => {
            let (text, v) = match rng.below(4) {
                0 => {
                    let v = rng.hex(48);
                    (format!("use(\"sk_{v}\")\n"), v)
                }
                1 => {
                    let v = rng.hex(40);
                    (format!("client = create_client(url, \"sbp_{v}\")\n"), v)
                }
                2 => {
                    let v = rng.hex(32);
                    (format!("trace(\"lsv2_pt_{v}_{}\")\n", rng.hex(10)), v)
                }
                _ => {
                    let v = rng.hex(32);
                    (format!("mailchimp.set_config({{\"api_key\": \"{v}-us{}\"}})\n", 1 + rng.below(20)), v)
                }
            };
            (text, v, "vendor prefix")
        }
        5 => {
            let v = rng.hex(64);
            let text = match rng.below(3) {
                0 => format!("const wallet = new ethers.Wallet(\"0x{v}\");\n"),
                1 => format!("acct = Account.from_key(\"0x{v}\")\n"),
                _ => format!("const account = privateKeyToAccount(\"0x{v}\");\n"),
            };
            (text, v, "key material by position")
        }
        6 => {
            let v = token(rng);
            let name = rng.pick(&["password", "token", "client_secret", "apiKey"]);
            let text = match rng.below(3) {
                0 => format!("const body = \"{{\\\"{name}\\\":\\\"{v}\\\"}}\";\n"),
                1 => format!("payload = '{{\"user\": \"app\", \"{name}\": \"{v}\"}}'\n"),
                _ => format!("body := \"{{\\\"{name}\\\": \\\"{v}\\\", \\\"ttl\\\": 60}}\"\n"),
            };
            (text, v, "escaped JSON in a string")
        }
        7 => {
            let v = rng.pick(WORDS).to_owned();
            let text = match rng.below(4) {
                0 => format!("headers[\"Authorization\"] = \"Bearer {v}\"\n"),
                1 => format!("xhr.setRequestHeader(\"Authorization\", \"Token {v}\");\n"),
                2 => format!("curl -H \"Authorization: Bearer {v}\" https://api.example.com\n"),
                _ => format!("h = {{\"Proxy-Authorization\": \"Basic {v}\"}}\n"),
            };
            (text, v, "short credential given to Authorization")
        }
        8 => {
            let digits = 1 + rng.below(3);
            let v = format!("{}{}", rng.pick(WORDS), rng.from("0123456789", digits));
            let text = match rng.below(3) {
                0 => format!("cfg.set(\"password\", \"{v}\")\n"),
                1 => format!("os.environ[\"DB_PASSWORD\"] = \"{v}\"\n"),
                _ => format!("params = [{{\"name\": \"password\", \"value\": \"{v}\"}}]\n"),
            };
            (text, v, "secret name given as a string")
        }
        _ => {
            let v = format!("{}${}", rng.pick(WORDS), rng.pick(WORDS));
            let text = match rng.below(3) {
                0 => format!("passwd='{v}'\n"),
                1 => format!("DB_PASSWORD=\"{v}\"\n"),
                _ => format!("const password = \"{v}\";\n"),
            };
            (text, v, "password with a $ inside")
        }
    }
}

const LATEST_CLASSES: usize = 10;

/// Real code of the shapes those rules were narrowed not to take: test vectors, references to
/// commits and digests, code points and escapes, language tags, constant names, dates,
/// percent-encoded text, challenges, templates.
fn latest_non_secret(rng: &mut Rng, shape: usize) -> (String, &'static str) {
    match shape {
        0 => {
            let digits: String = (0..8 + rng.below(6)).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
            let encoded = base64_of(digits.as_bytes());
            (format!("(b\"{digits}\", b\"{encoded}\"),\n"), "base64 test vector")
        }
        1 => {
            let text = match rng.below(3) {
                0 => format!("// taken from commit#{} which is MIT licensed\n", rng.hex(40)),
                1 => format!("///         b\"{}!!!!\" as &[_]\n", rng.hex(32)),
                _ => format!("// see upstream@{} for the original\n", rng.hex(40)),
            };
            (text, "commit and digest references")
        }
        2 => {
            let from = 0xAC00 + rng.below(0x100);
            let text = match rng.below(2) {
                0 => format!("// a valid Hangul Syllable, between U+{from:04X}..U+D7AF\n"),
                _ => format!("check!(c\"cd\\u{{1F6{:02X}}}ab\", true, None);\n", rng.below(256)),
            };
            (text, "code points and escapes")
        }
        3 => {
            let lang = rng.pick(&["en", "de", "fr", "ja", "und"]);
            let region = rng.pick(&["US", "DE", "FR", "JP"]);
            let text = format!(
                "let loc: Locale = \"{lang}-{region}-u-ca-{}-hc-h{}\".parse().unwrap();\n",
                rng.pick(&["buddhist", "gregory", "japanese"]),
                rng.pick(&["11", "12", "23", "24"])
            );
            (text, "language tags")
        }
        4 => {
            let words =
                ["ROUTER", "FILTER", "CUSTOM", "CONFIG", "STOP", "SYMLINK", "NETWORK", "IKEv2", "Win32"];
            let name: Vec<&str> = (0..3 + rng.below(3)).map(|_| rng.pick(&words)).collect();
            let text = match rng.below(2) {
                0 => format!("pub customConfig: {}{},\n", name.join("_"), rng.below(3)),
                _ => format!(
                    "pub const {}_PASSWORD_EXPIRED: i32 = -{}i32;\n",
                    name.join("_").to_ascii_uppercase(),
                    2_100_000_000 + rng.below(99_999_999)
                ),
            };
            (text, "constant names and error codes")
        }
        5 => {
            let text = format!(
                "key = {}-{:02}-{:02}T{:02}:{:02}:00Z\n",
                1970 + rng.below(60),
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60)
            );
            (text, "dates given to a key")
        }
        6 => {
            let name: String = (0..3 + rng.below(4))
                .map(|_| {
                    format!("%E{:X}%{:X}%{:X}", rng.below(16), 0x80 + rng.below(64), 0x80 + rng.below(64))
                })
                .collect();
            (format!("let encoded = \"{name}.txt\";\n"), "percent-encoded text")
        }
        7 => {
            let text = match rng.below(3) {
                0 => {
                    "r#\"Bearer resource_metadata=\"/.well-known/oauth-protected-resource\"\"#,\n".to_owned()
                }
                1 => "headers = {\"Authorization\": f\"Bearer {token}\"}\n".to_owned(),
                _ => "curl -H \"Authorization: Bearer $TOKEN\" https://api.example.com\n".to_owned(),
            };
            (text, "challenges and templated credentials")
        }
        _ => {
            let text = match rng.below(3) {
                0 => "password = \"$DB_PASSWORD\"\n".to_owned(),
                1 => "DB_URL = \"postgres://app:$DB_PASS@db.internal/app\"\n".to_owned(),
                _ => "config_dir = \"$XDG_CONFIG_HOME/acas/\"\n".to_owned(),
            };
            (text, "templates with a $")
        }
    }
}

const LATEST_NON_SECRET_SHAPES: usize = 9;

/// Standard base64 with padding, for test vectors.
fn base64_of(data: &[u8]) -> String {
    let alphabet = B64.as_bytes();
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
#[allow(clippy::print_stdout)] // The figures are this test's output, for BENCHMARKS.md.
fn redaction_corpus_of_the_latest_classes() {
    let mut rng = Rng(0x5EED_ACA5_0007);
    let mut missed = Vec::new();
    let mut secrets = 0;
    for class in 0..LATEST_CLASSES {
        for _ in 0..20 {
            let (text, value, label) = latest_secret(&mut rng, class);
            secrets += 1;
            let (redacted, found) = redact_text(&text, false);
            if redacted.contains(&value) || found.total() == 0 {
                missed.push(format!("{label}: `{value}` in\n{text}→\n{redacted}"));
            }
        }
    }
    let mut falsely = Vec::new();
    let mut clean = 0;
    for shape in 0..LATEST_NON_SECRET_SHAPES {
        for _ in 0..20 {
            let (text, label) = latest_non_secret(&mut rng, shape);
            clean += 1;
            let (redacted, found) = redact_text(&text, false);
            if redacted != text {
                falsely.push(format!("{label}: {found:?}\n{text}→\n{redacted}"));
            }
        }
    }
    println!(
        "latest classes: {} of {secrets} secrets of {LATEST_CLASSES} classes removed; {} of {clean} non-secrets of \
         {LATEST_NON_SECRET_SHAPES} shapes redacted by mistake",
        secrets - missed.len(),
        falsely.len()
    );
    for class in 0..LATEST_CLASSES {
        let label = latest_secret(&mut Rng(0), class).2;
        let n = missed.iter().filter(|m| m.starts_with(&format!("{label}:"))).count();
        println!("  {label}: {} of 20 removed", 20 - n);
    }
    // Every class is removed whole: a token standing alone is judged by how likely its letter
    // pairs are in words, and escaped JSON by its keys.
    assert!(missed.is_empty(), "{} of {secrets} secrets survived:\n{}", missed.len(), missed.join("\n---\n"));
    assert!(falsely.is_empty(), "values that are not secrets were redacted:\n{}", falsely.join("\n---\n"));
}
