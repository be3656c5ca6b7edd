//! Keeping secrets on this machine.
//!
//! Everything sent to a provider passes through [`Redactor::redact`] first: API keys and tokens
//! of the common providers, private-key blocks, JWTs, passwords and secrets in assignments, and,
//! in `.env`-like files, any high-entropy value. Each is replaced by `[REDACTED:<kind>]`, and the
//! kinds found are reported so the request inspector can show them. Files matching the
//! `no_egress` globs are never sent at all ([`Redactor::may_send`]).

use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;

/// `no_egress` globs used when the configuration sets none.
pub const DEFAULT_NO_EGRESS: &[&str] = &[".env*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*"];

/// Entropy (bits per character) above which a `.env` value counts as a secret.
const ENV_ENTROPY: f64 = 3.5;
const ENV_MIN_LEN: usize = 16;

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
}

pub struct Redactor {
    patterns: Vec<(&'static str, Regex)>,
    assignment: Regex,
    env_line: Regex,
    no_egress: GlobSet,
}

impl Redactor {
    /// A redactor refusing files that match `no_egress` (file name or workspace-relative path).
    pub fn new(no_egress: &[String]) -> Result<Redactor, globset::Error> {
        let mut globs = GlobSetBuilder::new();
        for pattern in no_egress {
            globs.add(Glob::new(pattern)?);
        }
        let pattern = |kind, re: &str| (kind, Regex::new(re).expect("secret patterns are valid"));
        Ok(Redactor {
            patterns: vec![
                pattern(
                    "private-key",
                    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----",
                ),
                pattern("anthropic", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
                pattern("openai", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"),
                pattern("google", r"\bAIza[0-9A-Za-z_-]{35}"),
                pattern("github", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})"),
                pattern("aws", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
                pattern("slack", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
                pattern("stripe", r"\b[rs]k_live_[0-9A-Za-z]{20,}"),
                pattern("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
            ],
            assignment: Regex::new(
                r#"(?i)\b([a-z0-9_]*(?:password|passwd|pwd|secret|token|api_?key|access_?key|private_?key|credentials?)[a-z0-9_]*)(["']?\s*[:=]\s*["']?)([^\s"',;]{6,})"#,
            )
            .expect("the assignment pattern is valid"),
            env_line: Regex::new(r"(?m)^(\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=\s*[\x22']?)([^\s\x22'#]+)")
                .expect("the env pattern is valid"),
            no_egress: globs.build()?,
        })
    }

    /// Whether a file may be sent at all.
    pub fn may_send(&self, relative_path: &str) -> bool {
        let name = Path::new(relative_path).file_name().and_then(|n| n.to_str()).unwrap_or(relative_path);
        !(self.no_egress.is_match(relative_path) || self.no_egress.is_match(name))
    }

    /// The text with every secret replaced. `env_like` turns on the entropy rule, for `.env`
    /// files and the like.
    pub fn redact(&self, text: &str, env_like: bool) -> (String, Redactions) {
        let mut found = Redactions::default();
        let mut out = text.to_owned();
        for (kind, re) in &self.patterns {
            if re.is_match(&out) {
                let replaced = re.replace_all(&out, |_: &regex::Captures<'_>| {
                    found.add(kind);
                    format!("[REDACTED:{kind}]")
                });
                out = replaced.into_owned();
            }
        }
        let replaced = self.assignment.replace_all(&out, |c: &regex::Captures<'_>| {
            let value = &c[3];
            if value.starts_with("[REDACTED") || looks_like_code(value) {
                return c[0].to_owned();
            }
            found.add("assignment");
            format!("{}{}[REDACTED:assignment]", &c[1], &c[2])
        });
        out = replaced.into_owned();
        if env_like {
            let replaced = self.env_line.replace_all(&out, |c: &regex::Captures<'_>| {
                let value = &c[2];
                if value.starts_with("[REDACTED") || value.len() < ENV_MIN_LEN || entropy(value) < ENV_ENTROPY
                {
                    return c[0].to_owned();
                }
                found.add("high-entropy");
                format!("{}[REDACTED:high-entropy]", &c[1])
            });
            out = replaced.into_owned();
        }
        (out, found)
    }
}

/// Whether a path is `.env`-like: values there are secrets more often than not.
pub fn is_env_like(relative_path: &str) -> bool {
    let name = Path::new(relative_path).file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with(".env") || name.ends_with(".env") || name == ".npmrc" || name == ".pypirc"
}

/// Right-hand sides that are code, not literals: `password = get_password()`, `token: Token`.
fn looks_like_code(value: &str) -> bool {
    value.contains('(')
        || value.contains('.')
            && !value.contains(char::is_whitespace)
            && value.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '_')
        || value.chars().next().is_some_and(|c| c.is_uppercase())
            && value.chars().all(|c| c.is_alphanumeric())
        || value.starts_with('$')
        || value.starts_with("env")
        || value.starts_with("os.")
        || value.starts_with("process.")
        || value == "None"
        || value == "null"
        || value == "undefined"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(&DEFAULT_NO_EGRESS.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/secrets").join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn every_secret_in_the_corpus_is_removed() {
        let redactor = redactor();
        for line in fixture("corpus.txt").lines().filter(|l| !l.starts_with('#')) {
            let (kind, text) = line.split_once(' ').unwrap();
            let secret = text
                .rsplit(['=', ' ', '"', '\'', ':'])
                .find(|s| s.len() >= 8)
                .unwrap()
                .trim_end_matches([';', ')', '"', '\'']);
            let (redacted, found) = redactor.redact(text, false);
            assert!(!redacted.contains(secret), "{kind}: `{secret}` survived in `{redacted}`");
            let kinds: Vec<&str> = found.kinds.iter().map(|(k, _)| *k).collect();
            let expected = if kind == "password" || kind == "aws" && text.contains("secret") {
                "assignment"
            } else {
                kind
            };
            assert!(kinds.contains(&expected), "{kind}: found {kinds:?} in `{text}`");
        }
    }

    #[test]
    fn private_keys_and_env_values_are_removed() {
        let redactor = redactor();
        let (redacted, found) = redactor.redact(&fixture("id_ed25519.txt"), false);
        assert_eq!(redacted, "some text before\n[REDACTED:private-key]\nsome text after\n");
        assert_eq!(found.kinds, vec![("private-key", 1)]);

        let dotenv = fixture("dotenv.txt");
        let (redacted, found) = redactor.redact(&dotenv, true);
        assert!(redacted.contains("SESSION_KEY=[REDACTED"), "{redacted}");
        assert!(redacted.contains("DEBUG=true") && redacted.contains("APP_NAME=acas-demo"), "{redacted}");
        assert_eq!(found.total(), 1);
        assert!(is_env_like(".env.local") && is_env_like("config/prod.env") && !is_env_like("src/env.rs"));
    }

    #[test]
    fn ordinary_code_is_left_alone() {
        let redactor = redactor();
        let code = r#"
fn login(password: &str) -> bool { check(password) }
let token = tokens.next();
password = get_password()
const apiKey = process.env.API_KEY;
let commit = "3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39";
let id = "123e4567-e89b-12d3-a456-426614174000";
"#;
        let (redacted, found) = redactor.redact(code, false);
        assert_eq!(redacted, code, "{found:?}");
    }

    #[test]
    fn no_egress_files_are_never_sent() {
        let redactor = redactor();
        for path in
            [".env", "config/.env.production", "certs/server.pem", "keys/deploy.key", "home/id_rsa.pub"]
        {
            assert!(!redactor.may_send(path), "{path}");
        }
        for path in ["src/main.rs", "env.ts", "docs/keys.md"] {
            assert!(redactor.may_send(path), "{path}");
        }
    }
}
