//! Keeping secrets on this machine.
//!
//! Everything sent to a provider passes through [`Redactor::redact`]: the context renderer
//! redacts the prompt it builds, and every provider built from the configuration redacts its
//! request once more just before it leaves ([`redact_request`]), so that no source of context can
//! bypass it. Each secret is replaced by `[REDACTED:<kind>]` and the kinds found are counted so
//! that the request inspector can show them. Files matching the `no_egress` globs are never sent
//! at all ([`Redactor::may_send`]).
//!
//! Detection works on structure first, then on known formats:
//! - values assigned to secret-like names, whatever the value's case and characters (a
//!   passphrase of words goes whole): assignments, keyword arguments, dictionary, JSON and YAML
//!   keys, command-line flags, connection-string fields;
//! - credentials in URLs (`scheme://user:password@host`), `Bearer`, `Basic` and `SSWS`
//!   credentials, `.netrc` passwords;
//! - high-entropy tokens assigned to any name;
//! - private-key blocks and the key formats of the gitleaks rule set (`server/data/gitleaks.toml`,
//!   vendored unmodified under its MIT licence), plus a few looser shapes of the AI providers' own
//!   keys.
//!
//! It does not parse languages: a secret built at run time, or split across lines, is not seen.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Deserialize;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::provider::{Completion, CompletionRequest, Provider, ProviderError, StreamEvent};

/// `no_egress` globs used when the configuration sets none.
pub const DEFAULT_NO_EGRESS: &[&str] = &[".env*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*"];

/// Entropy (bits per character) above which a token assigned to any name counts as a secret.
const TOKEN_ENTROPY: f64 = 3.5;
/// Shortest token assigned to an ordinary name that can count as a secret.
const TOKEN_MIN_LEN: usize = 20;
/// Longest quoted value read as one secret; longer strings are left to the other rules.
const MAX_VALUE_LEN: usize = 4096;

/// What was removed from a text, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactions {
    pub kinds: Vec<(&'static str, usize)>,
}

impl Redactions {
    pub fn total(&self) -> usize {
        self.kinds.iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, kind: &'static str) {
        match self.kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.kinds.push((kind, 1)),
        }
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &Redactions) {
        for (kind, n) in &other.kinds {
            for _ in 0..*n {
                self.add(kind);
            }
        }
    }
}

pub struct Redactor {
    no_egress: GlobSet,
}

impl Redactor {
    /// A redactor refusing files that match `no_egress` (file name or workspace-relative path).
    pub fn new(no_egress: &[String]) -> Result<Redactor, globset::Error> {
        let mut globs = GlobSetBuilder::new();
        for pattern in no_egress {
            globs.add(Glob::new(pattern)?);
        }
        Ok(Redactor { no_egress: globs.build()? })
    }

    /// Whether a file may be sent at all.
    pub fn may_send(&self, relative_path: &str) -> bool {
        let name = Path::new(relative_path).file_name().and_then(|n| n.to_str()).unwrap_or(relative_path);
        !(self.no_egress.is_match(relative_path) || self.no_egress.is_match(name))
    }

    /// The text with every secret replaced. `env_like` (for `.env` files and the like) also
    /// takes shorter high-entropy values.
    pub fn redact(&self, text: &str, env_like: bool) -> (String, Redactions) {
        redact_text(text, env_like)
    }
}

/// The text with every secret replaced, and what was replaced.
pub fn redact_text(text: &str, env_like: bool) -> (String, Redactions) {
    let rules = rules();
    let mut hits = Vec::new();
    find_hits(rules, text, env_like, &mut hits);
    let markers: Vec<Range<usize>> = rules.marker.find_iter(text).map(|m| m.range()).collect();
    hits.retain(|h| !h.range.is_empty() && !markers.iter().any(|m| overlaps(m, &h.range)));
    // Merge overlapping hits: the earliest start wins the kind, ties to the more specific rule.
    hits.sort_by_key(|h| (h.range.start, h.priority, std::cmp::Reverse(h.range.end)));
    let mut merged: Vec<Hit> = Vec::new();
    for hit in hits {
        match merged.last_mut() {
            Some(last) if hit.range.start < last.range.end => {
                if hit.priority < last.priority && hit.range == last.range {
                    last.kind = hit.kind;
                }
                last.range.end = last.range.end.max(hit.range.end);
            }
            _ => merged.push(hit),
        }
    }
    let mut found = Redactions::default();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for hit in &merged {
        out.push_str(&text[at..hit.range.start]);
        out.push_str("[REDACTED:");
        out.push_str(hit.kind);
        out.push(']');
        found.add(hit.kind);
        at = hit.range.end;
    }
    out.push_str(&text[at..]);
    (out, found)
}

/// The request with secrets removed from its system prompt and prompt.
pub fn redact_request(request: &CompletionRequest) -> (Cow<'_, CompletionRequest>, Redactions) {
    let (system, mut found) = redact_text(&request.system, false);
    let (prompt, more) = redact_text(&request.prompt, false);
    found.merge(&more);
    if found.total() == 0 {
        return (Cow::Borrowed(request), found);
    }
    (Cow::Owned(CompletionRequest { system, prompt, ..request.clone() }), found)
}

/// A provider that redacts every request just before it leaves: the one point that every
/// outgoing request passes, so that no source of context, present or future, can bypass
/// redaction. What it finds there had escaped the redaction of its source, and is logged.
pub struct Redacting(pub Box<dyn Provider>);

impl Provider for Redacting {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn model(&self) -> &str {
        self.0.model()
    }

    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
        events: &'a mut (dyn FnMut(StreamEvent) + Send),
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        let (request, found) = redact_request(request);
        if found.total() > 0 {
            tracing::warn!(provider = self.0.name(), kinds = ?found.kinds, "secrets removed from a request as it left");
        }
        Box::pin(async move { self.0.complete(&request, events, cancel).await })
    }
}

/// Whether a path is `.env`-like: values there are secrets more often than not.
pub fn is_env_like(relative_path: &str) -> bool {
    let name = Path::new(relative_path).file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with(".env") || name.ends_with(".env") || name == ".npmrc" || name == ".pypirc"
}

struct Hit {
    range: Range<usize>,
    kind: &'static str,
    /// Lower is more specific: known formats, then structure, then entropy.
    priority: u8,
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// A rule of the vendored gitleaks set, compiled.
struct LeakRule {
    id: &'static str,
    regex: regex::bytes::Regex,
    secret_group: usize,
    entropy: Option<f64>,
    keywords: Vec<String>,
    allow: Vec<Allow>,
}

struct Allow {
    target: AllowTarget,
    regexes: Vec<regex::bytes::Regex>,
    stopwords: Vec<String>,
}

#[derive(Clone, Copy)]
enum AllowTarget {
    Secret,
    Match,
    Line,
}

struct Rules {
    marker: Regex,
    own: Vec<(&'static str, Regex)>,
    url: Regex,
    auth: Regex,
    netrc: Regex,
    name: Regex,
    flag: Regex,
    xml: Regex,
    leaks: Vec<LeakRule>,
    /// Rules of the vendored set that did not compile, with why.
    skipped: Vec<(String, String)>,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(Rules::load)
}

#[derive(Deserialize)]
struct LeakFile {
    rules: Vec<LeakRuleFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeakRuleFile {
    id: String,
    regex: Option<String>,
    #[serde(default)]
    secret_group: usize,
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    path: Option<String>,
    #[serde(default)]
    allowlists: Vec<AllowFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllowFile {
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
}

/// Compiles a rule of the vendored set with Go's semantics: `\w`, `\s` and `\b` are ASCII.
fn compile(re: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(re).unicode(false).size_limit(64 << 20).build()
}

impl Rules {
    fn load() -> Rules {
        let re = |s: &str| Regex::new(s).expect("the redactor's own patterns are valid");
        let own = vec![
            (
                "private-key",
                re(
                    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)",
                ),
            ),
            ("anthropic", re(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
            ("openai", re(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}")),
            ("google", re(r"\bAIza[0-9A-Za-z_-]{35}")),
            ("github", re(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})")),
            ("gitlab", re(r"\bgl(?:pat|dt|rt|ptt|cbt|imt|oas|ft)-[0-9A-Za-z_-]{20,}")),
            ("aws", re(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
            ("slack", re(r"\bxox[abposre]-[A-Za-z0-9-]{10,}")),
            ("stripe", re(r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{20,}")),
            ("npm", re(r"\bnpm_[A-Za-z0-9]{36}\b")),
            ("sendgrid", re(r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}")),
            ("jwt", re(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")),
        ];
        let file: LeakFile = toml::from_str(include_str!("../../data/gitleaks.toml"))
            .expect("the vendored gitleaks rules parse");
        let mut leaks = Vec::new();
        let mut skipped = Vec::new();
        for rule in file.rules {
            // Rules tied to file paths need the path, which a prompt no longer has.
            let (Some(regex), None) = (&rule.regex, &rule.path) else { continue };
            let regex = match compile(regex) {
                Ok(regex) => regex,
                Err(error) => {
                    skipped.push((rule.id, error.to_string()));
                    continue;
                }
            };
            let mut allow = Vec::new();
            for a in rule.allowlists {
                let target = match a.regex_target.as_deref() {
                    Some("match") => AllowTarget::Match,
                    Some("line") => AllowTarget::Line,
                    _ => AllowTarget::Secret,
                };
                let regexes = a.regexes.iter().filter_map(|r| compile(r).ok()).collect();
                allow.push(Allow { target, regexes, stopwords: a.stopwords });
            }
            leaks.push(LeakRule {
                id: Box::leak(rule.id.into_boxed_str()),
                regex,
                secret_group: rule.secret_group,
                entropy: rule.entropy,
                keywords: rule.keywords.iter().map(|k| k.to_lowercase()).collect(),
                allow,
            });
        }
        Rules {
            marker: re(r"\[REDACTED:[a-z0-9-]+\]"),
            own,
            url: re(
                r"(?i)[a-z][a-z0-9+.-]{1,20}://([^\s:/?#@'\x22\x60<>\[\]]*)(?::([^\s/?#@'\x22\x60<>]*))?@",
            ),
            auth: re(r"(?i)\b(?:bearer|basic|ssws)[ \t]+([A-Za-z0-9._~+/-]+=*)"),
            netrc: re(r"(?m)\bmachine[ \t]+\S+(?:[ \t]+login[ \t]+\S+)?[ \t]+password[ \t]+(\S+)"),
            name: re(
                r#"([A-Za-z0-9_$@][A-Za-z0-9_.$@-]{0,80})["'\x60\]]?[ \t]*(?::[ \t]*[^=\n;,(){}"'\x60]{1,40}?[ \t]*)?(:=|=>|===|!==|==|!=|\?=|\|\|=|=|:|\()"#,
            ),
            flag: re(r"(?:(?:^|[\s\x22'\x60])--|[ \t]-)([A-Za-z][A-Za-z0-9_-]{1,60})(?:=|[ \t]+)"),
            xml: re(r"<([A-Za-z_][\w.:-]{0,60})>([^<\n]{1,512})</[A-Za-z_][\w.:-]{0,60}>"),
            leaks,
            skipped,
        }
    }
}

fn find_hits(rules: &Rules, text: &str, env_like: bool, hits: &mut Vec<Hit>) {
    for (kind, re) in &rules.own {
        for m in re.find_iter(text) {
            hits.push(Hit { range: m.range(), kind, priority: 0 });
        }
    }
    let lower = text.to_ascii_lowercase();
    for rule in &rules.leaks {
        if !rule.keywords.is_empty() && !rule.keywords.iter().any(|k| lower.contains(k.as_str())) {
            continue;
        }
        for c in rule.regex.captures_iter(text.as_bytes()) {
            let whole = c.get(0).expect("group 0 is the match");
            let secret = if rule.secret_group > 0 {
                c.get(rule.secret_group)
            } else {
                (1..c.len()).filter_map(|i| c.get(i)).find(|g| !g.is_empty())
            }
            .unwrap_or(whole);
            let whole = char_range(text, whole.range());
            let secret = char_range(text, secret.range());
            if rule.entropy.is_some_and(|min| entropy(&text[secret.clone()]) < min) {
                continue;
            }
            let line = line_around(text, whole.clone());
            let lowered = text[secret.clone()].to_lowercase();
            let allowed = rule.allow.iter().any(|a| {
                let target = match a.target {
                    AllowTarget::Secret => &text[secret.clone()],
                    AllowTarget::Match => &text[whole.clone()],
                    AllowTarget::Line => line,
                };
                a.regexes.iter().any(|r| r.is_match(target.as_bytes()))
                    || a.stopwords.iter().any(|w| lowered.contains(w.as_str()))
            });
            if !allowed {
                // The generic rule only says "some key": the structural rules name it better.
                let priority = if rule.id.starts_with("generic") { 3 } else { 1 };
                hits.push(Hit { range: secret, kind: rule.id, priority });
            }
        }
    }
    for c in rules.url.captures_iter(text) {
        match (c.get(1), c.get(2)) {
            (_, Some(password)) if !password.is_empty() && !is_placeholder(password.as_str()) => {
                hits.push(Hit { range: password.range(), kind: "url-credentials", priority: 2 })
            }
            (Some(user), None) if looks_like_token(user.as_str(), 16) => {
                hits.push(Hit { range: user.range(), kind: "url-credentials", priority: 2 })
            }
            _ => {}
        }
    }
    for c in rules.auth.captures_iter(text) {
        let token = c.get(1).expect("the credential group always takes part");
        let value = token.as_str();
        let shaped = value.len() >= 8
            && (value.chars().any(|c| c.is_ascii_digit() || "+/=_.~-".contains(c))
                || value.chars().any(|c| c.is_ascii_uppercase())
                    && value.chars().any(|c| c.is_ascii_lowercase()));
        if shaped && !is_placeholder(value) {
            hits.push(Hit { range: token.range(), kind: "http-auth", priority: 2 });
        }
    }
    for c in rules.netrc.captures_iter(text) {
        let password = c.get(1).expect("the password group always takes part");
        if !is_placeholder(password.as_str()) {
            hits.push(Hit { range: password.range(), kind: "password", priority: 2 });
        }
    }
    for c in rules.xml.captures_iter(text) {
        let (name, value) = (c.get(1).expect("name"), c.get(2).expect("value"));
        if let Some(kind) = secret_name(name.as_str())
            && accepts(kind, value.as_str())
        {
            hits.push(Hit { range: value.range(), kind: kind.label(), priority: 2 });
        }
    }
    assignments(rules, text, env_like, hits);
    flags(rules, text, hits);
}

/// What a name says about the value given to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Password,
    Token,
    Secret,
    ApiKey,
    Credential,
    /// `key`, `sig`, `signature`, `hmac`: secret only when the value looks like one.
    Key,
}

impl Name {
    fn label(self) -> &'static str {
        match self {
            Name::Password => "password",
            Name::Token => "token",
            Name::Secret => "secret",
            Name::ApiKey => "api-key",
            Name::Credential => "credential",
            Name::Key => "key",
        }
    }
}

/// Last words of a name that say the value is about a secret, not the secret itself.
const META_WORDS: &[&str] = &[
    "type",
    "types",
    "name",
    "names",
    "id",
    "ids",
    "field",
    "fields",
    "label",
    "env",
    "var",
    "file",
    "files",
    "path",
    "url",
    "uri",
    "endpoint",
    "hash",
    "hashed",
    "digest",
    "length",
    "len",
    "size",
    "count",
    "header",
    "prefix",
    "suffix",
    "hint",
    "policy",
    "rule",
    "rules",
    "regex",
    "pattern",
    "format",
    "expiry",
    "expires",
    "expiration",
    "ttl",
    "timeout",
    "lifetime",
    "kind",
    "class",
    "mode",
    "store",
    "manager",
    "provider",
    "service",
    "error",
    "errors",
    "message",
    "msg",
    "required",
    "min",
    "max",
    "input",
    "prompt",
    "placeholder",
    "enabled",
    "index",
    "idx",
    "fn",
    "func",
    "callback",
    "handler",
    "loader",
    "reader",
    "source",
    "sources",
    "count",
    "budget",
    "limit",
    "limits",
    "usage",
    "estimate",
    "estimated",
    "cost",
    "location",
    "helper",
    "text",
    "key",
    "keys",
    "mgr",
    "validator",
    "strength",
    "policy",
    "char",
    "chars",
    "at",
    "version",
];

fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        let boundary = c.is_ascii_uppercase()
            && i > 0
            && (chars[i - 1].is_ascii_lowercase()
                || chars[i - 1].is_ascii_uppercase()
                    && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if boundary && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn word_kind(word: &str, previous: Option<&str>) -> Option<Name> {
    Some(match word {
        "password" | "passwd" | "pwd" | "pass" | "passphrase" | "passcode" | "pw" => Name::Password,
        "token" | "authtoken" | "accesstoken" | "pat" => Name::Token,
        "secret" | "secrets" => Name::Secret,
        "apikey" | "apitoken" => Name::ApiKey,
        "credential" | "credentials" | "creds" | "auth" => Name::Credential,
        "key" if matches!(previous, Some("api")) => Name::ApiKey,
        "key"
            if matches!(
                previous,
                Some("private" | "secret" | "access" | "signing" | "master" | "encryption")
            ) =>
        {
            Name::Secret
        }
        "key" | "sig" | "signature" | "hmac" | "salt" | "sas" => Name::Key,
        _ => {
            for (suffix, kind) in [
                ("password", Name::Password),
                ("passwd", Name::Password),
                ("passphrase", Name::Password),
                ("secret", Name::Secret),
                ("token", Name::Token),
                ("apikey", Name::ApiKey),
                ("credentials", Name::Credential),
            ] {
                if word.ends_with(suffix) {
                    return Some(kind);
                }
            }
            return None;
        }
    })
}

/// What kind of secret a name holds, if any: its last word names a secret, or an earlier word
/// does and the last is not about the secret (`token_type`, `password_hash`).
fn secret_name(name: &str) -> Option<Name> {
    let words = words(name);
    let last = words.last()?;
    let before = words.len().checked_sub(2).map(|i| words[i].as_str());
    if let Some(kind) = word_kind(last, before) {
        return Some(kind);
    }
    if META_WORDS.contains(&last.as_str()) || last.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    words[..words.len() - 1]
        .iter()
        .enumerate()
        .filter_map(|(i, w)| word_kind(w, i.checked_sub(1).map(|j| words[j].as_str())))
        .find(|k| *k != Name::Key)
}

/// Whether `value`, given to a name of `kind`, is to be removed.
fn accepts(kind: Name, value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() || is_placeholder(value) {
        return false;
    }
    match kind {
        Name::Key => looks_like_token(value, 16) || is_hex(value) && value.len() >= 16,
        _ => true,
    }
}

/// Values that stand for a secret without being one: `${DB_PASSWORD}`, `{{ secrets.x }}`,
/// `<your-token>`, `****`, `%(password)s`.
fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.starts_with("[REDACTED")
        || v.starts_with("${")
        || v.starts_with('$') && v[1..].chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || v.starts_with("{{")
        || v.starts_with('<') && v.ends_with('>')
        || v.starts_with("%(") && v.ends_with(")s")
        || v.starts_with('%') && v.ends_with('%') && v.len() > 2
        || v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '•' | '-' | '_' | '?'))
}

/// Token-like: no spaces, at least `min` long, mixed character classes and high entropy.
fn looks_like_token(value: &str, min: usize) -> bool {
    let len = value.chars().count();
    if !(min..=MAX_VALUE_LEN).contains(&len) || value.contains(char::is_whitespace) {
        return false;
    }
    let lower = value.chars().any(|c| c.is_ascii_lowercase());
    let upper = value.chars().any(|c| c.is_ascii_uppercase());
    let digit = value.chars().any(|c| c.is_ascii_digit());
    let classes = usize::from(lower) + usize::from(upper) + usize::from(digit);
    classes >= 2 && digit && entropy(value) >= 3.0
}

fn is_hex(value: &str) -> bool {
    !value.is_empty() && value.chars().all(|c| c.is_ascii_hexdigit())
}

/// Values that are clearly not secrets whatever name they are given: hashes of content, UUIDs,
/// data URIs, integrity strings, paths and URLs without credentials.
fn is_known_public(value: &str) -> bool {
    let v = value.trim_matches(|c| c == '"' || c == '\'');
    is_hex(v) && matches!(v.len(), 7..=12 | 32 | 40 | 64 | 128) || is_public_shape(v)
}

/// Like [`is_known_public`], but a hex string may be a key.
fn is_public_shape(v: &str) -> bool {
    is_uuid(v)
        || v.contains("://")
        || v.starts_with("data:")
        || v.starts_with("sha1-")
        || v.starts_with("sha256-")
        || v.starts_with("sha384-")
        || v.starts_with("sha512-")
        || v.starts_with("sha256:")
        || v.starts_with("sha512:")
        || v.starts_with("http://")
        || v.starts_with("https://")
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with('/') && !v.contains('+')
        || v.starts_with('#')
}

fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.char_indices()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Whether an unquoted right-hand side is code rather than a literal: a call, a member, a type,
/// a reference.
fn is_code(value: &str) -> bool {
    const TYPES: &[&str] = &[
        "str",
        "string",
        "bool",
        "boolean",
        "int",
        "number",
        "any",
        "none",
        "null",
        "nil",
        "undefined",
        "true",
        "false",
        "bytes",
        "optional",
        "option",
        "required",
        "object",
        "secret",
        "password",
        "token",
        "self",
        "this",
        "new",
        "await",
        "async",
        "function",
        "fn",
        "lambda",
        "return",
        "void",
        "char",
        "impl",
        "dyn",
        "mut",
        "const",
        "let",
        "var",
        "u8",
        "i32",
        "i64",
        "u32",
        "u64",
        "usize",
        "f64",
        "float",
        "double",
        "long",
    ];
    value.contains('(')
        || value.contains("::")
        || value.contains("->")
        || value.starts_with(['&', '*', '[', '{', '!', '@', '(', '|', '\\'])
        || value.starts_with("env")
        || value.starts_with("os.")
        || value.starts_with("process.")
        || value.starts_with("self.")
        || value.starts_with("this.")
        || TYPES.contains(&value.to_ascii_lowercase().as_str())
        || is_type_name(value.trim_end_matches(['<', '>']))
        || value.contains('.')
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            && !value.chars().any(|c| c.is_ascii_digit())
        || value.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-')
}

/// A PascalCase type name: `Token`, `SecretString`, `Option<String>` (each capital starts a
/// word of lower-case letters).
fn is_type_name(value: &str) -> bool {
    let value = value.split('<').next().unwrap_or(value);
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_uppercase()
        && bytes.iter().all(u8::is_ascii_alphabetic)
        && bytes.windows(2).all(|w| !(w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase()))
        && !bytes.last().is_some_and(u8::is_ascii_uppercase)
}

/// Values given to names: secret-like names take any literal, other names only high-entropy
/// tokens.
fn assignments(rules: &Rules, text: &str, env_like: bool, hits: &mut Vec<Hit>) {
    let bytes = text.as_bytes();
    let markers: Vec<Range<usize>> = rules.marker.find_iter(text).map(|m| m.range()).collect();
    let mut from = 0;
    while let Some(c) = rules.name.captures_at(text, from) {
        let whole = c.get(0).expect("group 0 is the match");
        let name = c.get(1).expect("the name always takes part");
        let op = c.get(2).expect("the operator always takes part").as_str();
        from = name.end().max(whole.start() + 1);
        if name.start() > 0 && is_name_byte(bytes[name.start() - 1]) {
            // The regex started inside a longer name (after a character it does not take).
            continue;
        }
        if markers.iter().any(|m| m.contains(&name.start())) {
            continue;
        }
        // `host:port`, `user:password@`, `a::b`: a colon mapping has a space or a quote after it.
        if op == ":" && !matches!(bytes.get(whole.end()), Some(b' ' | b'\t' | b'"' | b'\'' | b'`')) {
            continue;
        }
        let kind = if op == "(" {
            // A call passes a secret only to a setter or a builder: `.password("…")`,
            // `setToken("…")`, not `validate_password("…")`.
            let called = name.as_str().rsplit('.').next().unwrap_or("");
            let w = words(called);
            let setter =
                w.len() == 1 || matches!(w.first().map(String::as_str), Some("set" | "with" | "use"));
            secret_name(called).filter(|_| setter)
        } else {
            secret_name(name.as_str())
        };
        let mut at = whole.end();
        while at < bytes.len() && (bytes[at] == b' ' || bytes[at] == b'\t') {
            at += 1;
        }
        let Some((value, quoted)) = value_at(text, at, op == "(") else { continue };
        let literal = &text[value.clone()];
        let take = match kind {
            Some(kind) if quoted => accepts(kind, literal),
            Some(kind) => {
                let word = literal.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
                let env_style = !name.as_str().chars().any(|c| c.is_ascii_lowercase());
                let line_rest = text[value.end..].split('\n').next().unwrap_or("").trim();
                !is_code(literal)
                    && accepts(kind, literal)
                    && (!word || kind != Name::Key && (env_style || op == ":" && line_rest.is_empty()))
            }
            None => false,
        };
        if take && !(kind == Some(Name::Key) && is_public_shape(literal)) {
            let kind = kind.expect("taken values have a kind").label();
            hits.push(Hit { range: value.clone(), kind, priority: 2 });
            if quoted {
                from = from.max(value.end);
            }
            continue;
        }
        // Entropy is judged on one word, so that what follows on the line cannot change it.
        let (value, literal) = if quoted {
            (value.clone(), literal)
        } else {
            let word = literal.split(char::is_whitespace).next().unwrap_or("");
            (value.start..value.start + word.len(), word)
        };
        let min = if env_like { 12 } else { TOKEN_MIN_LEN };
        let mixed = literal.chars().any(|c| c.is_ascii_uppercase())
            && literal.chars().any(|c| c.is_ascii_lowercase());
        if op != "("
            && mixed
            && looks_like_token(literal, min)
            && entropy(literal) >= TOKEN_ENTROPY
            && !is_known_public(literal)
        {
            hits.push(Hit { range: value.clone(), kind: "high-entropy", priority: 3 });
            if quoted {
                from = from.max(value.end);
            }
        }
    }
}

/// Secrets given to command-line flags: `--password hunter2`, `-token=abc`.
fn flags(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    for c in rules.flag.captures_iter(text) {
        let whole = c.get(0).expect("group 0 is the match");
        let name = c.get(1).expect("the name always takes part");
        let Some(kind) = secret_name(name.as_str()) else { continue };
        let Some((value, quoted)) = value_at(text, whole.end(), false) else { continue };
        let literal = &text[value.clone()];
        let literal = if quoted { literal } else { literal.split_whitespace().next().unwrap_or("") };
        let operator = literal.starts_with(['-', '=', ':', '|', '>', '<', '&']);
        if accepts(kind, literal) && (quoted || !operator && !is_code(literal)) {
            let end = value.start + literal.len();
            hits.push(Hit { range: value.start..end, kind: kind.label(), priority: 2 });
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'@')
}

/// The value starting at byte `at`: a quoted string on one line (its contents), or an unquoted
/// run up to a delimiter (`only_quoted` refuses the latter).
fn value_at(text: &str, at: usize, only_quoted: bool) -> Option<(Range<usize>, bool)> {
    let bytes = text.as_bytes();
    let first = *bytes.get(at)?;
    if matches!(first, b'"' | b'\'' | b'`') {
        let mut i = at + 1;
        while i < bytes.len() && i - at <= MAX_VALUE_LEN {
            match bytes[i] {
                b'\\' => i += 2,
                b'\n' => return None,
                b if b == first => return Some((at + 1..i, true)),
                _ => i += 1,
            }
        }
        return None;
    }
    if only_quoted {
        return None;
    }
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let rest = &text[at..line_end];
    // A value that is the whole rest of the line (env files, YAML) may hold spaces.
    let end = rest.find(|c: char| c.is_whitespace() || ",;)]}\"'`<&".contains(c)).unwrap_or(rest.len());
    let word_end = at + end;
    let tail = rest[end..].trim_end();
    let whole_line = !rest[..end].is_empty()
        && !tail.is_empty()
        && !tail.contains(['(', ')', '{', '}', '[', ']', '=', ';', '"', '\'', '`', ','])
        && !tail.trim_start().starts_with(['#', '/', '&', '|', '+', '*', '?', ':', '<', '>', '-', '!', '.'])
        && !tail
            .split_whitespace()
            .any(|w| matches!(w, "if" | "else" | "and" | "or" | "for" | "in" | "as" | "is" | "not"));
    let end = if whole_line { line_end - (rest.len() - rest.trim_end().len()) } else { word_end };
    (end > at).then_some((at..end, false))
}

/// `range` widened to the nearest character boundaries (byte rules may cut a character).
fn char_range(text: &str, range: Range<usize>) -> Range<usize> {
    let mut start = range.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = range.end.min(text.len()).max(start);
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// The line holding `range`.
fn line_around(text: &str, range: Range<usize>) -> &str {
    let start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[range.end..].find('\n').map_or(text.len(), |i| range.end + i);
    &text[start..end]
}

/// Shannon entropy in bits per character.
fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in text.bytes() {
        counts[b as usize] += 1;
    }
    let len = text.len() as f64;
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / len;
            -p * p.log2()
        })
        .sum()
}

/// Ids of vendored rules that could not be compiled, with why (for tests and diagnostics).
pub fn skipped_rules() -> &'static [(String, String)] {
    &rules().skipped
}

/// How many vendored rules are in use.
pub fn vendored_rules() -> usize {
    rules().leaks.len()
}

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
