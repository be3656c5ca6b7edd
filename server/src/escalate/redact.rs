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
//! - values a name receives by structure rather than by `name = "…"`: prefixed and
//!   triple-quoted strings, tuple and destructuring assignments (paired by position),
//!   collections, fallbacks (`… or "…"`, `getenv("X", "…")`, `${X:-…}`), and credentials passed
//!   by position to calls that authenticate (`HTTPBasicAuth("user", "…")`);
//! - names held elsewhere than left of an operator: name/value pairs, Dockerfile `ENV`, SQL
//!   `WITH PASSWORD` / `IDENTIFIED BY`, `mysql -p…`, `sshpass -p`, YAML block scalars;
//! - secrets in prose (comments, commit messages, other tools' messages): a secret-like word
//!   followed within a few words by a token of mixed character classes;
//! - high-entropy tokens assigned to any name, and high-entropy string literals anywhere;
//! - private-key blocks, PEM bodies without their armour (a body whose DER is a certificate or
//!   a public key is public and stays), and the key formats of the gitleaks
//!   rule set (`server/data/gitleaks.toml`, vendored unmodified under its MIT licence), plus
//!   vendor prefixes and looser shapes of the AI providers' own keys.
//!
//! Code on the right-hand side (calls, indexing, identifier paths, identifiers) and strings shaped
//! like names are never taken. Text that looks like a marker shields nothing: only a value that
//! is exactly one marker is left alone. It does not parse languages: a secret built at run time,
//! or split across lines, is not seen.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

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
/// Longest token judged by its shape and entropy.
const MAX_VALUE_LEN: usize = 4096;
/// Longest quoted value read as one secret; longer strings are left to the other rules.
const MAX_QUOTED_LEN: usize = 65_536;

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

    /// Like [`Redactor::redact`], but a secret spanning lines leaves one marker on each of its
    /// lines, so that the text keeps its lines: a whole file is redacted before windows and
    /// definitions are cut out of it by line, and a cut cannot split a secret into pieces that
    /// no longer look like one.
    pub fn redact_keeping_lines(&self, text: &str, env_like: bool) -> (String, Redactions) {
        replace(text, &secrets(text, env_like), true)
    }

    /// Like [`Redactor::redact_keeping_lines`], also removing every value of `known` and adding
    /// the values removed to it, for the other parts of the same request.
    pub fn redact_learning(&self, text: &str, env_like: bool, known: &mut Secrets) -> String {
        replace(text, &secrets_known(text, env_like, known), true).0
    }

    /// Like [`Redactor::redact`], also removing every value of `known` and every other
    /// occurrence of a value it removes.
    pub fn redact_known(&self, text: &str, env_like: bool, known: &mut Secrets) -> (String, Redactions) {
        replace(text, &secrets_known(text, env_like, known), false)
    }
}

/// [`redact_text`] keeping the text's lines: a secret spanning lines leaves a marker on each of
/// them (see [`Redactor::redact_keeping_lines`]).
pub fn redact_text_keeping_lines(text: &str, env_like: bool) -> (String, Redactions) {
    replace(text, &secrets(text, env_like), true)
}

/// The text with every secret replaced, and what was replaced.
pub fn redact_text(text: &str, env_like: bool) -> (String, Redactions) {
    replace(text, &secrets(text, env_like), false)
}

/// What the markers in a text say was removed, for kinds this redactor knows.
pub fn count_markers(text: &str) -> Redactions {
    let rules = rules();
    let mut found = Redactions::default();
    for m in rules.marker.find_iter(text) {
        let kind = &m.as_str()["[REDACTED:".len()..m.as_str().len() - 1];
        if let Some(&kind) = rules.kinds.iter().find(|k| **k == kind) {
            found.add(kind);
        }
    }
    found
}

/// Each secret's bytes replaced by its marker; `keep_lines` keeps the line breaks it spanned.
fn replace(text: &str, hits: &[Hit], keep_lines: bool) -> (String, Redactions) {
    let mut found = Redactions::default();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for hit in hits {
        out.push_str(&text[at..hit.range.start]);
        out.push_str("[REDACTED:");
        out.push_str(hit.kind);
        out.push(']');
        if keep_lines {
            // Every line the secret spanned shows that something was removed from it.
            for _ in text[hit.range.clone()].matches('\n') {
                out.push_str("\n[REDACTED:");
                out.push_str(hit.kind);
                out.push(']');
            }
        }
        found.add(hit.kind);
        at = hit.range.end;
    }
    out.push_str(&text[at..]);
    (out, found)
}

/// Longest text redacted: a longer one (a part of a request, a file the context draws on) is
/// withheld whole, replaced by one `[REDACTED:withheld]` marker, never sent unread.
pub const MAX_REDACTED_LEN: usize = 4 * 1024 * 1024;

/// The whole of a text too long to redact ([`MAX_REDACTED_LEN`]), as one hit.
fn withheld(text: &str) -> Option<Vec<Hit>> {
    (text.len() > MAX_REDACTED_LEN).then(|| vec![Hit { range: 0..text.len(), kind: "withheld", priority: 0 }])
}

// Work done reading lines around candidates, in bytes, counted in tests to check that the
// redactor's work grows linearly with its input.
#[cfg(test)]
thread_local! {
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
fn step(bytes: usize) {
    STEPS.with(|s| s.set(s.get() + bytes as u64));
}

#[cfg(not(test))]
fn step(_: usize) {}

/// The steps counted since the thread started.
#[cfg(test)]
fn steps() -> u64 {
    STEPS.with(std::cell::Cell::get)
}

/// The secrets of a text, in order and not overlapping.
fn secrets(text: &str, env_like: bool) -> Vec<Hit> {
    if let Some(all) = withheld(text) {
        return all;
    }
    let mut hits = Vec::new();
    find_all(text, env_like, &mut hits);
    settle(text, hits)
}

/// Every rule's hits on `text`, read with compatibility forms of ASCII folded
/// ([`fold_compatible`]: `ｐａｓｓｗｏｒｄ`, `𝐩𝐚𝐬𝐬𝐰𝐨𝐫𝐝`), so that a name or a value written in them is
/// read as the one it stands for; the hits are on `text`'s own bytes.
fn find_all(text: &str, env_like: bool, hits: &mut Vec<Hit>) {
    if text.len() < FOUND_CACHE_MIN_LEN {
        return find_all_uncached(text, env_like, hits);
    }
    let key = found_key(text, env_like);
    let cache = FOUND.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        hits.extend(found.iter().cloned());
        return;
    }
    let mut found = Vec::new();
    find_all_uncached(text, env_like, &mut found);
    hits.extend(found.iter().cloned());
    cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, found);
}

/// Texts shorter than this are searched every time: messages and snippets are cheap to read
/// and too many to keep.
const FOUND_CACHE_MIN_LEN: usize = 512;

/// How many texts' hits a process keeps ([`FoundCache`]).
const FOUND_CACHE_ENTRIES: usize = 2048;

/// The hits of the texts searched lately, by the SHA-256 of the text and whether it was read as
/// an environment file: a long-lived process (the editor's server, the MCP server) redacts the
/// same files for context after context, and the rules cannot change while it runs. Only where
/// secrets are is kept, never their text.
static FOUND: OnceLock<Mutex<FoundCache>> = OnceLock::new();

#[derive(Default)]
struct FoundCache {
    hits: HashMap<[u8; 32], Vec<Hit>>,
    /// Keys in the order they came, the oldest first.
    order: VecDeque<[u8; 32]>,
}

impl FoundCache {
    fn get(&self, key: &[u8; 32]) -> Option<&Vec<Hit>> {
        self.hits.get(key)
    }

    fn insert(&mut self, key: [u8; 32], found: Vec<Hit>) {
        if self.hits.insert(key, found).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > FOUND_CACHE_ENTRIES {
            if let Some(oldest) = self.order.pop_front() {
                self.hits.remove(&oldest);
            }
        }
    }
}

fn found_key(text: &str, env_like: bool) -> [u8; 32] {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update([u8::from(env_like)]);
    hasher.update(text.as_bytes());
    hasher.finalize().into()
}

fn find_all_uncached(text: &str, env_like: bool, hits: &mut Vec<Hit>) {
    let Some((folded, origin)) = fold_compatible(text) else {
        find_hits(rules(), text, env_like, hits);
        return;
    };
    let mut found = Vec::new();
    find_hits(rules(), &folded, env_like, &mut found);
    hits.extend(found.into_iter().map(|h| Hit { range: origin[h.range.start]..origin[h.range.end], ..h }));
}

/// `text` with the full-width forms of ASCII (U+FF01 to U+FF5E, and the ideographic space),
/// the mathematical alphanumeric letters and digits (U+1D400 to U+1D7FF) and the circled letters
/// replaced by the ASCII they stand for, as NFKC does, with the byte of `text` each of its
/// bytes comes from (one more for the end); `None` when there is nothing to fold.
fn fold_compatible(text: &str) -> Option<(String, Vec<usize>)> {
    fn fold(c: char) -> Option<char> {
        let n = u32::from(c);
        let letter = |i: u32| char::from(if i < 26 { b'A' + i as u8 } else { b'a' + (i - 26) as u8 });
        match n {
            0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0),
            0x3000 => Some(' '),
            0x1D400..=0x1D6A3 => Some(letter((n - 0x1D400) % 52)),
            0x1D7CE..=0x1D7FF => Some(char::from(b'0' + ((n - 0x1D7CE) % 10) as u8)),
            0x24B6..=0x24CF => Some(letter(n - 0x24B6)),
            0x24D0..=0x24E9 => Some(letter(n - 0x24D0 + 26)),
            _ => None,
        }
    }
    if !text.chars().any(|c| fold(c).is_some()) {
        return None;
    }
    let mut folded = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len() + 1);
    for (at, c) in text.char_indices() {
        let out = fold(c).unwrap_or(c);
        folded.push(out);
        origin.extend(std::iter::repeat_n(at, out.len_utf8()));
    }
    origin.push(text.len());
    Some((folded, origin))
}

/// Shortest removed value that is also removed wherever else it appears: shorter ones are too
/// likely to be part of ordinary words.
const MIN_KNOWN_LEN: usize = 6;

/// Values known to be secret because a rule removed them somewhere in a request: each is
/// removed wherever else in the same request it appears (another tool's message quoting it, a
/// commit message, a past fix), with the kind it was first removed as. Its `Debug` shows only
/// how many it holds.
#[derive(Clone, Default)]
pub struct Secrets(Vec<(String, &'static str)>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

impl Secrets {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the values of `hits` (removed from `text`) long enough to look for elsewhere;
    /// whether any was new.
    fn learn(&mut self, text: &str, hits: &[Hit]) -> bool {
        let before = self.0.len();
        for hit in hits {
            let value = text[hit.range.clone()].trim();
            if value.chars().count() >= MIN_KNOWN_LEN
                && !value.contains("[REDACTED:")
                && !is_word_like(value)
                && !self.0.iter().any(|(known, _)| known == value)
            {
                self.0.push((value.to_owned(), hit.kind));
            }
        }
        self.0.len() > before
    }
}

/// A value made of letters and underscores only (`postgres`, `default`, `access_token`): removed
/// where a rule found it, but not chased through the rest of the request, where the same word is
/// most often code or prose.
fn is_word_like(value: &str) -> bool {
    value.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The secrets of a text, those its rules find and every occurrence of a value in `known`,
/// changed or not (see [`copies`]); the values found are added to `known`.
fn secrets_known(text: &str, env_like: bool, known: &mut Secrets) -> Vec<Hit> {
    if let Some(all) = withheld(text) {
        return all;
    }
    let mut found = Vec::new();
    find_all(text, env_like, &mut found);
    let settled = settle(text, found.iter().map(Hit::clone).collect());
    known.learn(text, &settled);
    let lower = text.to_ascii_lowercase();
    for (value, kind) in &known.0 {
        copies(text, &lower, value, kind, &mut found);
    }
    settle(text, found)
}

/// Shortest start of a removed value that is removed wherever it appears cut short
/// (`Zq8rT2mLw9vB…` in another tool's message).
const MIN_KNOWN_PREFIX: usize = 12;

/// Every copy of a removed `value` in `text` (`lower` is `text` in ASCII lower case): the
/// value itself in any case, its start of 12 characters or more (a copy cut short), and its
/// hexadecimal and base64 encodings (standard or URL-safe, at any alignment within a longer
/// encoded run, which goes whole).
fn copies(text: &str, lower: &str, value: &str, kind: &'static str, hits: &mut Vec<Hit>) {
    let bytes = text.as_bytes();
    let free = |at: usize| at == 0 || !text[..at].chars().next_back().is_some_and(is_name_char);
    let free_after = |at: usize| !text[at..].chars().next().is_some_and(is_name_char);
    let value_lower = value.to_ascii_lowercase();
    // A token (not a phrase or a name made of words) is chased when cut short too.
    let token = !value.contains(char::is_whitespace) && !is_identifier_shaped(value);
    let prefix_len = value.char_indices().nth(MIN_KNOWN_PREFIX).map(|(i, _)| i).filter(|_| token);
    let needle = prefix_len.map_or(value_lower.as_str(), |n| &value_lower[..n]);
    for (at, _) in lower.match_indices(needle) {
        if !free(at) {
            continue;
        }
        // As much of the value as the copy holds.
        let same = lower[at..].bytes().zip(value_lower.bytes()).take_while(|(a, b)| a == b).count();
        let end = at + same;
        if !text.is_char_boundary(end) || same < value.len() && prefix_len.is_none() {
            continue;
        }
        if same == value.len() && !free_after(end) && prefix_len.is_none() {
            continue;
        }
        hits.push(Hit { range: at..end, kind, priority: 0 });
    }
    // Letters beyond ASCII in another case (`ПАРОЛЬ2024СЕКРЕТ`), where folding keeps the text's
    // length so that places in the folded text are places in the text.
    if !value.is_ascii() {
        let folded = text.to_lowercase();
        let value_folded = value.to_lowercase();
        if folded.len() == text.len() && value_folded.len() == value.len() {
            for (at, _) in folded.match_indices(value_folded.as_str()) {
                let end = at + value.len();
                if text.is_char_boundary(at) && text.is_char_boundary(end) && free(at) && free_after(end) {
                    hits.push(Hit { range: at..end, kind, priority: 0 });
                }
            }
        }
    }
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    for (at, _) in lower.match_indices(hex.as_str()) {
        if free(at) && free_after(at + hex.len()) {
            hits.push(Hit { range: at..at + hex.len(), kind, priority: 0 });
        }
    }
    let is_base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=');
    for core in base64_cores(value.as_bytes()) {
        for (at, _) in text.match_indices(core.as_str()) {
            let start = bytes[..at].iter().rposition(|b| !is_base64(*b)).map_or(0, |i| i + 1);
            let end = at + bytes[at..].iter().position(|b| !is_base64(*b)).unwrap_or(bytes.len() - at);
            hits.push(Hit { range: start..end, kind, priority: 0 });
        }
    }
}

/// The parts of the base64 encodings of `value` (standard and URL-safe) that do not depend on
/// the bytes around it, at each of the three alignments it can have within longer data; only
/// parts of eight characters or more.
fn base64_cores(value: &[u8]) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut cores = Vec::new();
    for skip in 0..3 {
        let mut data = vec![0u8; skip];
        data.extend_from_slice(value);
        let mut encoded = Vec::with_capacity(data.len() * 4 / 3 + 4);
        for chunk in data.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                encoded.push(STD[(n >> (18 - 6 * i) & 63) as usize]);
            }
        }
        // The characters that mix in the bytes before or after the value.
        let start = [0, 2, 3][skip];
        let end = encoded.len() - usize::from(data.len() % 3 != 0);
        if end < start + 8 {
            continue;
        }
        let core = String::from_utf8(encoded[start..end].to_vec()).expect("base64 is ASCII");
        let url_safe = core.replace('+', "-").replace('/', "_");
        if url_safe != core {
            cores.push(url_safe);
        }
        cores.push(core);
    }
    cores
}

/// Hits in order and not overlapping, none inside a marker.
fn settle(text: &str, mut hits: Vec<Hit>) -> Vec<Hit> {
    let rules = rules();
    // A marker left by an earlier pass stays as it is; a hit reaching beyond it is a secret next
    // to text that merely looks like a marker, and goes with it.
    let markers: Vec<Range<usize>> = rules.markers(text);
    // Markers are in order and apart: only the last one starting at or before a hit can hold it.
    let inside_marker = |r: &Range<usize>| {
        let i = markers.partition_point(|m| m.start <= r.start);
        i > 0 && contains(&markers[i - 1], r)
    };
    hits.retain(|h| !h.range.is_empty() && !inside_marker(&h.range));
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
    merged
}

/// Parts of one request with secrets removed: a value removed from any part is removed from
/// every part wherever it appears, and so is every value of `known`.
pub fn redact_parts(parts: &[&str], known: &mut Secrets) -> (Vec<String>, Redactions) {
    // The first pass learns every part's values, so that a value found late (in the prompt)
    // also goes from a part seen early (the system prompt).
    for part in parts {
        secrets_known(part, false, known);
    }
    let mut found = Redactions::default();
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let (clean, more) = replace(part, &secrets_known(part, false, known), false);
        found.merge(&more);
        out.push(clean);
    }
    (out, found)
}

/// The request with secrets removed from its system prompt and prompt; a value removed from
/// one is removed from both wherever it appears.
pub fn redact_request(request: &CompletionRequest) -> (Cow<'_, CompletionRequest>, Redactions) {
    let (parts, found) = redact_parts(&[&request.system, &request.prompt], &mut Secrets::default());
    if found.total() == 0 {
        return (Cow::Borrowed(request), found);
    }
    let [system, prompt]: [String; 2] = parts.try_into().expect("two parts in, two out");
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

#[derive(Clone)]
struct Hit {
    range: Range<usize>,
    kind: &'static str,
    /// Lower is more specific: known formats, then structure, then entropy.
    priority: u8,
}

/// Whether `inner` lies within `outer`.
fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// A rule of the vendored gitleaks set. Its patterns are compiled the first time a text holds
/// one of its keywords (most texts hold none of most rules' keywords, and compiling all of them
/// costs a short-lived process such as `acas explain` tens of milliseconds).
struct LeakRule {
    id: &'static str,
    source: String,
    allow_sources: Vec<AllowFile>,
    compiled: OnceLock<Result<Compiled, String>>,
    secret_group: usize,
    entropy: Option<f64>,
    keywords: Vec<String>,
}

/// A rule's patterns, compiled.
struct Compiled {
    regex: regex::bytes::Regex,
    allow: Vec<Allow>,
}

impl LeakRule {
    /// The rule's patterns, compiled on first use; the error when its own pattern does not
    /// compile (an allowlist pattern that does not compile is left out).
    fn compiled(&self) -> Result<&Compiled, &str> {
        self.compiled
            .get_or_init(|| {
                let regex = compile(&self.source).map_err(|e| e.to_string())?;
                let allow = self
                    .allow_sources
                    .iter()
                    .map(|a| Allow {
                        target: match a.regex_target.as_deref() {
                            Some("match") => AllowTarget::Match,
                            Some("line") => AllowTarget::Line,
                            _ => AllowTarget::Secret,
                        },
                        regexes: a.regexes.iter().filter_map(|r| compile(r).ok()).collect(),
                        stopwords: a.stopwords.clone(),
                    })
                    .collect();
                Ok(Compiled { regex, allow })
            })
            .as_ref()
            .map_err(String::as_str)
    }
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

/// One of ACAS's own rules for a known format. Compiled the first time a text holds one of its
/// needles (in ASCII lower case; a rule with none is always run): a match cannot lack them, and
/// a short-lived process then compiles only the few rules its texts can match.
struct OwnRule {
    kind: &'static str,
    needles: &'static [&'static str],
    source: &'static str,
    compiled: OnceLock<Regex>,
}

fn own(kind: &'static str, needles: &'static [&'static str], source: &'static str) -> OwnRule {
    OwnRule { kind, needles, source, compiled: OnceLock::new() }
}

impl OwnRule {
    /// The compiled pattern when `lower` (a text in ASCII lower case) may hold a match.
    fn for_text(&self, lower: &str) -> Option<&Regex> {
        if !self.needles.is_empty() && !self.needles.iter().any(|n| lower.contains(n)) {
            return None;
        }
        Some(
            self.compiled
                .get_or_init(|| Regex::new(self.source).expect("the redactor's own patterns are valid")),
        )
    }
}

struct Rules {
    marker: Regex,
    own: Vec<OwnRule>,
    url: Regex,
    auth: Regex,
    header_auth: Regex,
    netrc: Regex,
    name: Regex,
    flag: Regex,
    xml: Regex,
    prose: Regex,
    literal: Regex,
    pair: Regex,
    docker_env: Regex,
    command_password: Regex,
    block_scalar: Regex,
    tuple: Regex,
    call: Regex,
    fallback: Regex,
    shell_default: Regex,
    quoted_pair: Regex,
    query: Regex,
    connection_field: Regex,
    go_dsn: Regex,
    pass_argument: Regex,
    leaks: Vec<LeakRule>,
    /// Every kind a marker can name.
    kinds: Vec<&'static str>,
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
            // The body holds only what a key's body holds (base64, headers such as
            // `Proc-Type: 4,ENCRYPTED`, and the quotes and escapes of a string literal
            // it sits in): a line that merely names the marker is not a key.
            own(
                "private-key",
                &["private key"],
                r#"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[A-Za-z0-9+/=\s:,.\\"'_-]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)"#,
            ),
            own("anthropic", &["sk-ant-"], r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
            own("openai", &["sk-"], r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"),
            own("google", &["aiza"], r"\bAIza[0-9A-Za-z_-]{35}"),
            own(
                "github",
                &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
                r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})",
            ),
            own(
                "gitlab",
                &["glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glimt-", "gloas-", "glft-"],
                r"\bgl(?:pat|dt|rt|ptt|cbt|imt|oas|ft)-[0-9A-Za-z_-]{20,}",
            ),
            own("aws", &["akia", "asia", "abia", "acca"], r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
            own("slack", &["xox"], r"\bxox[abposre]-[A-Za-z0-9-]{10,}"),
            own("stripe", &["_live_", "_test_"], r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{20,}"),
            own("npm", &["npm_"], r"\bnpm_[A-Za-z0-9]{36}\b"),
            own("sendgrid", &["sg."], r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"),
            own("jwt", &["eyj"], r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
            // Vendor prefixes that identify a token with no name around it.
            own("docker", &["dckr_pat_"], r"\bdckr_pat_[A-Za-z0-9_-]{20,}"),
            own(
                "google-oauth",
                &["gocspx-", "ya29."],
                r"\b(?:GOCSPX-[A-Za-z0-9_-]{20,}|ya29\.[A-Za-z0-9_-]{30,})",
            ),
            own("doppler", &["dp."], r"\bdp\.(?:st|ct|pt|sa|scim|audit)\.[A-Za-z0-9_.-]{20,}"),
            own("onepassword", &["ops_"], r"\bops_[A-Za-z0-9]{40,}"),
            own("atlassian", &["atatt3x"], r"\bATATT3x[A-Za-z0-9_=-]{20,}"),
            own("stripe", &["whsec_"], r"\bwhsec_[A-Za-z0-9]{20,}"),
            own("notion", &["ntn_"], r"\bntn_[A-Za-z0-9]{40,}"),
            own("newrelic", &["nrak-"], r"\bNRAK-[A-Z0-9]{20,}"),
            own("groq", &["gsk_"], r"\bgsk_[A-Za-z0-9]{40,}"),
            own("replicate", &["r8_"], r"\br8_[A-Za-z0-9]{30,}"),
            own("xai", &["xai-"], r"\bxai-[A-Za-z0-9]{40,}"),
            own("mailgun", &["key-"], r"\bkey-[0-9a-f]{32}\b"),
            own("dependency-track", &["odt_"], r"\bodt_[A-Za-z0-9]{32,}"),
            own("sourcegraph", &["sgp_"], r"\bsgp_(?:[0-9a-f]{16}_)?[0-9a-f]{40}\b"),
            own("square", &["sq0"], r"\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,}"),
            own("tavily", &["tvly-"], r"\btvly-[A-Za-z0-9]{30,}"),
            own("nuget", &["oy2"], r"\boy2[a-z0-9]{43}\b"),
            own(
                "vault",
                &["hvs.", "hvb.", "hvr.", ".caes"],
                r"\b(?:hv[sbr]\.[A-Za-z0-9_-]{24,}|[sb]\.CAES[A-Za-z0-9_-]{20,})",
            ),
            own("azure-devops", &["azdo"], r"\b[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}\b"),
            // A password hash can be cracked offline: it goes as the password would.
            own("password-hash", &["$2"], r"\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}"),
            own("discord", &[], r"\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,40}"),
            own("telegram", &[":aa"], r"\b[0-9]{8,10}:AA[A-Za-z0-9_-]{33}"),
            own("sentry", &["sentry"], r"(?i)\bhttps?://([0-9a-f]{32})(?::[0-9a-f]{32})?@[a-z0-9.-]*sentry"),
            own(
                "http-auth",
                &["authorization"],
                r#"(?i)\bauthorization(?:[ \t]+header)?["']?[ \t]*[:=,][ \t]*["']?token[ \t]+([0-9a-f]{32,}|[A-Za-z0-9_]{36,})"#,
            ),
            own(
                "url-key",
                &["key=", "token=", "auth=", "sig="],
                r"(?i)[?&](?:key|api_?key|access_token|token|auth|sig)=([^&\s\x22'#<>]{16,})",
            ),
            own("totp-seed", &["otpauth://"], r"(?i)otpauth://[^\s\x22'<>]*?[?&]secret=([A-Z2-7=]{16,})"),
            // Incoming webhooks: whoever holds the URL can post (Discord, Mattermost, Teams).
            own(
                "webhook",
                &["discord", "/hooks/", "webhook"],
                r"(?i)\bhttps://(?:[a-z0-9-]+\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/([A-Za-z0-9_-]{20,})|\bhttps?://[^\s/'\x22\x60<>]+/hooks/([a-z0-9]{26})\b|\bhttps://[a-z0-9.-]*(?:outlook\.office|webhook\.office|office)\.com/webhook(?:b2)?/([^\s'\x22\x60<>]{16,})",
            ),
            own("elevenlabs", &["sk_"], r"\bsk_[0-9a-f]{48}\b"),
            own("flyio", &["fm1", "fm2"], r"\b(?:FlyV1[ \t]+)?(fm[12][ar]?_[A-Za-z0-9+/]{40,}={0,3})"),
            own("langsmith", &["lsv2_"], r"\blsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}\b"),
            own("mailchimp", &["-us"], r"\b[0-9a-f]{32}-us[0-9]{1,2}\b"),
            own("supabase", &["sbp_"], r"\bsbp_[0-9a-f]{40}\b"),
            // A private key of 32 bytes in hex passed to a call that takes one (a wallet, a
            // signer, an account): `new ethers.Wallet("0x…")`, `Account.from_key("0x…")`.
            own(
                "private-key",
                &["wallet", "key", "account", "signer"],
                r#"(?i)(?:wallet|key|account|signer)[\w$]*[ \t]*\([ \t]*["'\x60](?:0x)?([0-9a-f]{64})["'\x60]"#,
            ),
        ];
        let file: LeakFile = toml::from_str(include_str!("../../data/gitleaks.toml"))
            .expect("the vendored gitleaks rules parse");
        let mut leaks = Vec::new();
        for rule in file.rules {
            // Rules tied to file paths need the path, which a prompt no longer has.
            let (Some(regex), None) = (rule.regex, &rule.path) else { continue };
            leaks.push(LeakRule {
                id: Box::leak(rule.id.into_boxed_str()),
                source: regex,
                allow_sources: rule.allowlists,
                compiled: OnceLock::new(),
                secret_group: rule.secret_group,
                entropy: rule.entropy,
                keywords: rule.keywords.iter().map(|k| k.to_lowercase()).collect(),
            });
        }
        let mut kinds: Vec<&'static str> = own.iter().map(|r| r.kind).collect();
        kinds.push("withheld");
        kinds.extend(leaks.iter().map(|l| l.id));
        kinds.extend([
            "cookie",
            "session",
            "url-credentials",
            "http-auth",
            "high-entropy",
            "password",
            "token",
            "secret",
            "api-key",
            "credential",
            "key",
        ]);
        Rules {
            kinds,
            marker: re(r"\[REDACTED:[a-z0-9-]+\]"),
            own,
            url: re(r"(?i)[a-z][a-z0-9+.-]{1,20}://([^\s:/?#@'\x22\x60<>\[\]]*)(?::([^\s/?'\x22\x60<>]*))?@"),
            auth: re(r"(?i)\b(?:bearer|basic|ssws)[ \t]+([A-Za-z0-9._~+/-]+=*)"),
            header_auth: re(
                r#"(?i)\b(?:proxy-)?authorization["'\x60]?[ \t]*\]?[ \t]*(?::|=>|=|,)[ \t]*["'\x60]?(?:bearer|basic|token|ssws|apikey)[ \t]+([^\s"'\x60,;]+)"#,
            ),
            netrc: re(
                r"(?m)(?:\bmachine[ \t]+\S+|^[ \t]*default)(?:\s+(?:login|account|port)[ \t]+\S+)*\s+password[ \t]+(\S+)",
            ),
            name: re(
                r#"([A-Za-z0-9_$@][A-Za-z0-9_.$@-]{0,80})["'\x60\]]{0,2}[ \t]*(?::[ \t]*[^=\n;,(){}"'\x60]{1,40}?[ \t]*)?(:=|=>|===|!==|==|!=|\?=|\|\|=|=|:|\()"#,
            ),
            flag: re(r"(?:(?:^|[\s\x22'\x60])--|[ \t]-)([A-Za-z][A-Za-z0-9_-]{1,60})(?:=|[ \t]+)"),
            // Unbounded here and bounded where its matches are read (`find_hits`): the bounded
            // repetitions of Unicode classes compiled to an automaton that took half of a
            // short-lived process's time to build.
            xml: re(r"<([A-Za-z_][\w.:-]*)>([^<\n]+)</([A-Za-z_][\w.:-]*)>"),
            prose: re(
                r"(?i)\b(passwords?|passwd|passphrase|pwd|secrets?|tokens?|api[ _-]?keys?|credentials?|creds|log(?:in|on|[ \t]+in)|(?:private|access|secret|signing) keys?)\b",
            ),
            literal: re(r#""([A-Za-z0-9+/=_.~-]{20,})"|'([A-Za-z0-9+/=_.~-]{20,})'"#),
            pair: re(
                r#"(?i)["']?\b(?:name|key|id)["']?[ \t]*[:=][ \t]*["']?([A-Za-z0-9_.-]{1,80})["']?[ \t]*,?[ \t]*(?:\r?\n[ \t]*-?[ \t]*)?["']?\bvalue["']?[ \t]*[:=][ \t]*"#,
            ),
            docker_env: re(r"(?m)^[ \t]*(?:ENV|ARG)[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]+"),
            command_password: re(
                r#"(?i)\bwith[ \t]+(?:encrypted[ \t]+)?password[ \t]+'([^'\n]+)'|\bidentified[ \t]+by[ \t]+'([^'\n]+)'|\bmysql(?:dump|admin)?\b[^\n]*?[ \t"',](?-i:-p)([^\s'",\]]+)|\bsshpass[ \t]+(?-i:-p)[ \t]*(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"]+))"#,
            ),
            block_scalar: re(r"(?m)^([ \t]*)([A-Za-z0-9_.-]{1,80})[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*\r?\n"),
            tuple: re(
                r"(?m)(?:^|[^\w$.,\s\[(])[ \t]*(?:(?:const|let|var|val|final|my|local)[ \t]+)?[\[(]?[ \t]*((?:(?:[\[(][ \t]*)*[A-Za-z_$][\w$.]*(?:[ \t]*[\])])*[ \t]*,[ \t]*)+(?:[\[(][ \t]*)*[A-Za-z_$][\w$.]*(?:[ \t]*[\])])*)[ \t]*,?[ \t]*[\])]?[ \t]*:?=[ \t]*",
            ),
            call: re(r"([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)[ \t]*\("),
            fallback: re(r"(?:\bor\b|\|\||\?\?|\bunwrap_or\(|\.or\()[ \t]*"),
            shell_default: re(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?[-=]([^}\n]*)\}"),
            quoted_pair: re(
                r#"(["'])(-{1,2}[A-Za-z][A-Za-z0-9_-]{0,60}|[A-Za-z_][A-Za-z0-9_.-]{0,80})["'][ \t]*,[ \t]*"#,
            ),
            query: re(r#"[?&;]([A-Za-z_][A-Za-z0-9_.-]{0,60})=([^&\s"'\x60#<>;]+)"#),
            connection_field: re(r#"(?i)(^|[;"'\s])((?:user[ _]?)?password|pwd|passwd)=([^;"'\x60\n]+)(;?)"#),
            go_dsn: re(r#"(?:^|["'\x60\s])[A-Za-z0-9_.-]+:([^\s@"'\x60/:]+)@(?:tcp|udp|unix)\("#),
            pass_argument: re(r#"(?:^|[\s"'\x60=])pass:([^\s"'\x60]+)"#),
            leaks,
        }
    }
}

impl Rules {
    /// The markers an earlier pass wrote in `text`: `[REDACTED:<kind>]` with a kind this
    /// redactor writes (`[REDACTED:k7x9-q2m4]` is a value that merely looks like one).
    fn markers(&self, text: &str) -> Vec<Range<usize>> {
        self.marker.find_iter(text).filter(|m| self.is_kind(m.as_str())).map(|m| m.range()).collect()
    }

    fn is_kind(&self, marker: &str) -> bool {
        let kind = marker.trim_start_matches("[REDACTED:").trim_end_matches(']');
        self.kinds.contains(&kind)
    }
}

fn find_hits(rules: &Rules, text: &str, env_like: bool, hits: &mut Vec<Hit>) {
    let lower = text.to_ascii_lowercase();
    for rule in &rules.own {
        let Some(re) = rule.for_text(&lower) else { continue };
        for c in re.captures_iter(text) {
            let m = (1..c.len())
                .find_map(|i| c.get(i))
                .unwrap_or_else(|| c.get(0).expect("group 0 is the match"));
            hits.push(Hit { range: m.range(), kind: rule.kind, priority: 0 });
        }
    }
    for rule in &rules.leaks {
        if !rule.keywords.is_empty() && !rule.keywords.iter().any(|k| lower.contains(k.as_str())) {
            continue;
        }
        // A rule whose pattern does not compile is reported by `skipped_rules`.
        let Ok(compiled) = rule.compiled() else { continue };
        for c in compiled.regex.captures_iter(text.as_bytes()) {
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
            let allowed = compiled.allow.iter().any(|a| {
                let target = match a.target {
                    AllowTarget::Secret => &text[secret.clone()],
                    AllowTarget::Match => &text[whole.clone()],
                    AllowTarget::Line => line,
                };
                a.regexes.iter().any(|r| r.is_match(target.as_bytes()))
                    || a.stopwords.iter().any(|w| lowered.contains(w.as_str()))
            });
            // An identifier path (`win32api.RegEnumKey`) is code, whatever a generic rule says.
            let generic = rule.id.starts_with("generic");
            let path = &text[secret.clone()];
            let code = is_identifier_path(path) && path.split('.').all(is_identifier_shaped);
            if !(allowed || generic && code) {
                // The generic rule only says "some key": the structural rules name it better.
                let priority = if rule.id.starts_with("generic") { 3 } else { 1 };
                hits.push(Hit { range: secret, kind: rule.id, priority });
            }
        }
    }
    for c in rules.url.captures_iter(text) {
        match (c.get(1), c.get(2)) {
            // `user:password@`, `a:b@`: a placeholder or a one- or two-character example.
            (_, Some(password))
                if password.as_str().chars().count() >= 3
                    && !is_placeholder(password.as_str())
                    && !is_secret_word(password.as_str()) =>
            {
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
        let start = c.get(0).expect("group 0 is the match").start();
        let scheme = text.as_bytes()[start..].get(..5).map(<[u8]>::to_ascii_lowercase).unwrap_or_default();
        // `Bearer resource_metadata="…"`: a parameter of a challenge, not a credential.
        if token.as_str().ends_with('=') && text[token.end()..].starts_with('"') {
            continue;
        }
        // Trailing sentence punctuation is not part of a credential (`Basic customization.`).
        let value = token.as_str().trim_end_matches(['.', '-']);
        let token = token.start()..token.start() + value.len();
        // Basic credentials are base64 (of `user:password`): `basic DTD-related` is prose.
        if scheme == b"basic"
            && !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            continue;
        }
        let basic_shaped = scheme != b"basic"
            || value.bytes().any(|b| b.is_ascii_digit() || matches!(b, b'+' | b'='))
            || decode_base64(value).is_some_and(|d| d.contains(&b':'));
        let shaped = basic_shaped
            && value.len() >= 8
            && (value.chars().any(|c| c.is_ascii_digit() || "+/=_.~-".contains(c))
                || value.chars().any(|c| c.is_ascii_uppercase())
                    && value.chars().any(|c| c.is_ascii_lowercase()));
        // `Bearer YOUR_ACCESS_TOKEN` names the credential it stands for.
        let named = value.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
        if shaped && !named && !is_placeholder(value) {
            hits.push(Hit { range: token, kind: "http-auth", priority: 2 });
        }
    }
    // A credential given to an `Authorization` header, however short (`"Bearer abc"`): the
    // header's name says what it is. A name for it (`Bearer TOKEN`, `Bearer <token>`) stays.
    for c in rules.header_auth.captures_iter(text) {
        let token = c.get(1).expect("the credential group always takes part");
        let value = token.as_str();
        // One or two characters are examples in tests (`Bearer t`).
        let named = value.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            || is_secret_word(value)
            || value.chars().count() < 3;
        if !named && !is_placeholder(value) {
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
        let (name, value, close) =
            (c.get(1).expect("name"), c.get(2).expect("value"), c.get(3).expect("close"));
        // An element name of at most 61 characters, a value of at most 512. Neither holds a `<`,
        // so leaving out a longer match hides no other.
        let fits = |m: regex::Match<'_>, most: usize| m.as_str().chars().nth(most).is_none();
        if !(fits(name, 61) && fits(close, 61) && fits(value, 512)) {
            continue;
        }
        if let Some(kind) = secret_name(name.as_str())
            && accepts(kind, value.as_str())
        {
            hits.push(Hit { range: value.range(), kind: kind.label(), priority: 2 });
        }
    }
    let tuples = tuple_assignments(rules, text, hits);
    assignments(rules, text, env_like, &tuples, hits);
    calls(rules, text, hits);
    name_value_pairs(rules, text, hits);
    shell_defaults(rules, text, hits);
    flags(rules, text, hits);
    prose(rules, text, hits);
    pem_bodies(text, hits);
    named_elsewhere(rules, text, hits);
    literals(rules, text, hits);
    byte_arrays(text, hits);
    returned_secrets(rules, text, hits);
    cookies(text, hits);
    registry_tokens(text, hits);
    password_tokens(text, hits);
    encoded::escaped_keys(text, hits);
    encoded::character_codes(text, hits);
    positional::key_arguments(text, hits);
    prose_hex(text, hits);
}

/// Fewest numbers of a byte array that can be a key (a 128-bit key has 16).
const MIN_KEY_BYTES: usize = 16;

/// Keys given as arrays of bytes to a secret-like name: `let key: [u8; 32] = [0x4f, …]`,
/// `key = bytes([79, …])`, `static const uint8_t key[16] = {…}`, `secretKey := []byte{…}`, with
/// 16 numbers of 0 to 255 or more. Tables given to other names (`CRC_TABLE`) stay.
fn byte_arrays(text: &str, hits: &mut Vec<Hit>) {
    static RUN: OnceLock<Regex> = OnceLock::new();
    static NAME: OnceLock<Regex> = OnceLock::new();
    static WRAPPER: OnceLock<Regex> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        Regex::new(
            r"(?:(?:\b0[xX][0-9a-fA-F]{1,2}|\b[0-9]{1,3})(?:_?u8)?[ \t]*,[ \t\r\n]*){15,}(?:\b0[xX][0-9a-fA-F]{1,2}|\b[0-9]{1,3})(?:_?u8)?\b",
        )
        .expect("a valid pattern")
    });
    // Compiled the first time a run of numbers is found: most texts have none.
    let name = || {
        NAME.get_or_init(|| {
            Regex::new(r#"([A-Za-z_$][\w$]*)["'`]?[ \t]*(?:\[[^\]\n]*\])?[ \t]*(?::[^=\n]*)?$"#)
                .expect("a valid pattern")
        })
    };
    static KEY_CALL: OnceLock<Regex> = OnceLock::new();
    let key_call = || {
        KEY_CALL.get_or_init(|| {
            Regex::new(r"(?i)(?:secret|private|seed|keypair|signer|wallet)\w*[ \t]*\(")
                .expect("a valid pattern")
        })
    };
    let wrapper = || {
        WRAPPER.get_or_init(|| {
            Regex::new(r"^[ \t]*(?:new[ \t]+)?[\w.:<>\[\]; &!*(]*$").expect("a valid pattern")
        })
    };
    for m in run.find_iter(text) {
        let numbers = m.as_str().split(',').map(|n| n.trim().trim_end_matches("u8").trim_end_matches('_'));
        let bytes = numbers.clone().all(|n| match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
            Some(hex) => u8::from_str_radix(hex, 16).is_ok(),
            None => n.parse::<u8>().is_ok(),
        });
        let count = numbers.count();
        if !bytes || count < MIN_KEY_BYTES {
            continue;
        }
        // The bracket that opens the array, and the name the array is given to.
        let open = text[..m.start()].trim_end();
        if !open.ends_with(['[', '{', '(']) {
            continue;
        }
        let line_start = line_start(text, open.len());
        let before = &open[line_start..open.len() - 1];
        // A key passed by position to a call that takes one: `Keypair.fromSecretKey(
        // Uint8Array.from([…]))`, `Wallet.fromSeed(new Uint8Array([…]))`.
        if count >= 32 && key_call().is_match(before) {
            hits.push(Hit { range: m.range(), kind: "private-key", priority: 2 });
            continue;
        }
        let Some(op) = before.rfind(['=', ':']) else { continue };
        let (left, right) = (&before[..op], &before[op + 1..]);
        if right.starts_with('=') || left.ends_with(['=', '!', '<', '>']) || !wrapper().is_match(right) {
            continue;
        }
        let Some(owner) = name().captures(left.trim_end_matches(':')).and_then(|c| c.get(1)) else {
            continue;
        };
        if let Some(kind) = secret_name(owner.as_str()) {
            hits.push(Hit { range: m.range(), kind: kind.label(), priority: 2 });
        }
    }
}

/// Largest body of a function read for the secret it returns.
const MAX_BODY_LEN: usize = 4096;

/// Secrets returned by a function or method whose name is a secret's: `def get_password():
/// return "…"`, `fn api_key() -> &'static str { "…" }`, `func Token() string { return "…" }`,
/// `get password() { return "…" }`, `fun apiToken() = "…"`, `const getSecret = () => "…"`.
/// A definition is a name and its parameters, then a body (`{`, `:` ending the line, `=` or
/// `=>`), with only modifiers and types before the name; a call is not.
fn returned_secrets(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    static ARROW: OnceLock<Regex> = OnceLock::new();
    let arrow = ARROW.get_or_init(|| {
        Regex::new(r"([A-Za-z_$][\w$]*)[ \t]*[:=][ \t]*(?:async[ \t]+)?\([^()\n]*\)[ \t]*(?::[ \t]*[\w<>\[\]|. ]+)?=>[ \t]*")
            .expect("a valid pattern")
    });
    for c in arrow.captures_iter(text) {
        let Some(kind) = secret_name(c.get(1).expect("the name always takes part").as_str()) else {
            continue;
        };
        let body = c.get(0).expect("group 0 is the match").end();
        returned_from(text, body, body_end(text, body), kind, true, hits);
    }
    for c in rules.call.captures_iter(text) {
        let callee = c.get(1).expect("the callee always takes part");
        let name = callee.as_str();
        if name.contains('.') {
            continue;
        }
        let Some(kind) = secret_name(name) else { continue };
        let line_start = line_start(text, callee.start());
        if !is_definition_prefix(&text[line_start..callee.start()]) {
            continue;
        }
        let open = c.get(0).expect("group 0 is the match").end() - 1;
        let Some((_, close)) = list_items(text, open) else { continue };
        let line_end = line_end(text, close);
        let after = &text[close..line_end];
        // A return type (`-> &'static str`, `: string`, Go's `string`) before the body.
        let typed = |t: &str| {
            let t = t.trim();
            let t = t.strip_prefix("->").or_else(|| t.strip_prefix(':')).unwrap_or(t);
            t.bytes().all(|b| b.is_ascii_alphanumeric() || b" \t_<>[]&'*.,?|:".contains(&b))
        };
        let colon = after.find(':').filter(|p| typed(&after[..*p]) && !after[..*p].contains("::"));
        if let Some(brace) = after.find('{').filter(|b| typed(&after[..*b])) {
            returned_from(text, close + brace + 1, block_end(text, close + brace + 1), kind, true, hits);
        } else if let Some(p) = colon
            && matches!(after[p + 1..].trim_start().bytes().next(), None | Some(b'#'))
        {
            // Python: `def f() -> str:` then an indented block.
            let indent = text[line_start..].len() - text[line_start..].trim_start().len();
            let mut end = (line_end + 1).min(text.len());
            for line in text[line_end..].split_inclusive('\n').skip(1) {
                let content = line.trim_start();
                if !content.trim().is_empty() && line.len() - content.len() <= indent
                    || end - line_end > MAX_BODY_LEN
                {
                    break;
                }
                end += line.len();
            }
            returned_from(text, line_end, end, kind, false, hits);
        } else if let Some(p) = colon
            && after[p + 1..].trim_start().starts_with("return")
        {
            returned_from(text, close + p + 1, line_end, kind, false, hits);
        } else if let Some(p) = after.find('=').filter(|p| typed(&after[..*p]))
            && !after[p + 1..].starts_with('=')
        {
            // `fun apiToken() = "…"`, `def token() => "…"`.
            let rest = after[p + 1..].trim_start_matches('>');
            let at = line_end - rest.trim_start().len();
            returned_from(text, at, line_end, kind, true, hits);
        }
    }
}

/// Whether the text before a name on its line is what a definition has there: a keyword
/// (`def`, `fn`, `func (c *Config)`, `get`), modifiers and types (`public String`), or nothing.
fn is_definition_prefix(prefix: &str) -> bool {
    const CONTROL: &[&str] = &[
        "if", "elif", "else", "while", "for", "switch", "match", "return", "await", "new", "throw", "case",
        "not", "and", "or", "in", "yield", "echo", "print", "assert", "let", "var", "const", "val",
    ];
    let p = prefix.trim();
    if p.ends_with('.') {
        return false;
    }
    if p.starts_with("func ") || p.starts_with("func(") {
        return true;
    }
    p.split_whitespace().all(|w| {
        w.bytes().all(|b| b.is_ascii_alphanumeric() || b"_<>[]?,.&*:'@".contains(&b)) && !CONTROL.contains(&w)
    })
}

/// The end of the body of an arrow function starting at `at`: its block, or its line.
fn body_end(text: &str, at: usize) -> usize {
    if text[at..].starts_with('{') {
        return block_end(text, at + 1);
    }
    line_end(text, at)
}

/// Where the block whose contents start at `from` (just past its `{`) ends, strings skipped;
/// at most [`MAX_BODY_LEN`] bytes on.
fn block_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let limit = (from + MAX_BODY_LEN).min(bytes.len());
    let (mut i, mut depth) = (from, 0usize);
    while i < limit {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                if let Some((content, _)) = value_at(text, i, true) {
                    i = content.end + if content.start - i == 3 { 3 } else { 1 };
                    continue;
                }
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return i,
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    limit
}

/// The literals a body (`from..to`) returns: after `return`, or as its only or last expression
/// (`{ "…" }`, `{ "…".to_string() }`, `= "…"`). A password or a secret may be any literal but a
/// sentence; other kinds must be shaped like a secret (`def token(): return "if"` is a lexer's).
fn returned_from(text: &str, from: usize, to: usize, kind: Name, tail: bool, hits: &mut Vec<Hit>) {
    if to <= from || to - from > MAX_BODY_LEN {
        return;
    }
    let body = &text[from..to];
    let mut starts = Vec::new();
    for (i, _) in body.match_indices("return") {
        let before = body[..i].chars().next_back();
        let after = &body[i + "return".len()..];
        if before.is_some_and(is_name_char) || !after.starts_with([' ', '\t']) {
            continue;
        }
        starts.push(from + i + "return".len() + (after.len() - after.trim_start().len()));
    }
    // The whole body, or its last statement (not in Python, where a body may open with its
    // docstring).
    if tail {
        let trimmed = body.trim_start();
        starts.push(from + body.len() - trimmed.len());
        let last = body.trim_end().trim_end_matches(';');
        if let Some(i) = last.rfind([';', '\n']) {
            let statement = &last[i + 1..];
            starts.push(from + i + 1 + (statement.len() - statement.trim_start().len()));
        }
    }
    for at in starts {
        let Some((value, true)) = value_at(text, at, true) else { continue };
        let literal = &text[value.clone()];
        let taken = accepts(kind, literal)
            && !is_sentence(literal)
            && !is_secret_word(literal)
            && (matches!(kind, Name::Password | Name::Secret)
                || is_secret_shaped(literal)
                || looks_like_token(literal, 12));
        if taken && !hits.iter().any(|h| h.range == value) {
            hits.push(Hit { range: value, kind: kind.label(), priority: 2 });
        }
    }
}

/// Attributes of a cookie, which name no value of their own.
const COOKIE_ATTRIBUTES: &[&str] = &[
    "path", "domain", "expires", "max-age", "samesite", "secure", "httponly", "version", "comment",
    "priority",
];

/// Cookie values: `{"Cookie": "sid=…; csrftoken=…"}`, `Cookie: sessionid=…`, `Set-Cookie:
/// sid=…; Path=/`, `document.cookie = "token=…"`. Each value goes, its name and the cookie's
/// attributes stay.
fn cookies(text: &str, hits: &mut Vec<Hit>) {
    static COOKIE: OnceLock<Regex> = OnceLock::new();
    static PAIR: OnceLock<Regex> = OnceLock::new();
    let cookie = COOKIE.get_or_init(|| {
        Regex::new(r#"(?i)\b(?:set-)?cookie(?:["'\]]{1,2}[ \t]*[:=,]|[ \t]*[:=])[ \t]*["'`]?"#)
            .expect("a valid pattern")
    });
    let pair = PAIR.get_or_init(|| {
        Regex::new(r#"^[ \t]*([A-Za-z0-9_.!#$%&*+^|~-]{1,80})=([^;\s"'`]*)[ \t]*;?"#)
            .expect("a valid pattern")
    });
    for m in cookie.find_iter(text) {
        let mut at = m.end();
        while let Some(c) = pair.captures(&text[at..]) {
            let name = c.get(1).expect("the name always takes part").as_str();
            let value = c.get(2).expect("the value always takes part");
            let range = at + value.start()..at + value.end();
            at += c.get(0).expect("group 0 is the match").end();
            if is_cookie_value(value.as_str())
                && !COOKIE_ATTRIBUTES.contains(&name.to_ascii_lowercase().as_str())
            {
                hits.push(Hit { range, kind: "cookie", priority: 2 });
            }
        }
    }
}

/// Whether the value of a cookie can be a session's: eight characters or more with a digit or
/// letters of both cases, not a placeholder (`rocky=road`, `number=7` in documentation stay).
fn is_cookie_value(value: &str) -> bool {
    let mixed =
        value.bytes().any(|b| b.is_ascii_uppercase()) && value.bytes().any(|b| b.is_ascii_lowercase());
    value.chars().count() >= 8
        && (mixed || value.bytes().any(|b| b.is_ascii_digit()))
        && !value.contains('\\')
        && !is_placeholder(value)
}

/// Auth tokens of a package registry given in its configuration, whatever their shape:
/// `//registry.example.com/:_authToken=…` (`.npmrc`, also echoed into one from a script or a
/// CI file) and `_auth`/`_password` of the same form.
fn registry_tokens(text: &str, hits: &mut Vec<Hit>) {
    static REGISTRY: OnceLock<Regex> = OnceLock::new();
    let registry = REGISTRY.get_or_init(|| {
        Regex::new(r#"//[^\s:'"]+/:_(?:authToken|auth|password)[ \t]*=[ \t]*["']?([^\s"'$]{3,})"#)
            .expect("a valid pattern")
    });
    for c in registry.captures_iter(text) {
        let value = c.get(1).expect("the token always takes part");
        if !is_placeholder(value.as_str()) {
            hits.push(Hit { range: value.range(), kind: "token", priority: 2 });
        }
    }
}

/// Entropy (bits per character) above which a string literal given to no name at all counts as
/// a secret: stricter than for an assigned token.
const LITERAL_ENTROPY: f64 = 4.0;

/// High-entropy string literals wherever they are, such as a key passed positionally
/// (`Client("2hpChYgCfrL1…")`): one token of 20+ characters, upper and lower case and digits,
/// no name or word shape, not a digest, path or URL.
fn literals(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    for c in rules.literal.captures_iter(text) {
        let Some(value) = c.get(1).or_else(|| c.get(2)) else { continue };
        let v = value.as_str();
        let mixed = v.chars().any(|c| c.is_ascii_uppercase()) && v.chars().any(|c| c.is_ascii_lowercase());
        if mixed
            && looks_like_token(v, TOKEN_MIN_LEN)
            && entropy(v) >= LITERAL_ENTROPY
            && !is_identifier_shaped(v)
            && !is_constant_name(v)
            && !is_language_tag(v)
            && !is_percent_encoded_text(v)
            && !is_dotted_name(v, 2)
            && !is_known_public(v)
        {
            hits.push(Hit { range: value.range(), kind: "high-entropy", priority: 3 });
        }
    }
}

/// Shortest token that counts as a password wherever it stands.
const PASSWORD_MIN_LEN: usize = 10;

/// Password-shaped tokens wherever they stand: in a string literal of any form (an argument by
/// position, a header value, a default, a command line, escaped JSON, an f-string's text), a
/// comment, a commit message or another tool's message. A token runs between spaces, quotes,
/// escapes, brackets and the separators `,;:=/|`, so `admin:…`, `-p…` and `{\"token\":\"…\"}`
/// give up their passwords; it is one when it has ten characters or more of three classes
/// (lower case, upper case, digits, symbols), breaks into short pieces where a name breaks into
/// words (see [`is_random_shaped`]), and is no hash, UUID, path, address or part of a longer
/// base64 run. Placeholders inside it (`{user}`, `%s`, `${X}`) are not part of the password.
fn password_tokens(text: &str, hits: &mut Vec<Hit>) {
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&*+?@^_{}~.-".contains(c);
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if !token_char(char::from(bytes[at])) || !bytes[at].is_ascii() {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii() && token_char(char::from(bytes[at])) {
            at += 1;
        }
        // Not a piece of a longer run of base64 (a key body, an image): other rules judge that.
        let base64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
        let run_start = bytes[..start].iter().rposition(|b| !base64(*b)).map_or(0, |i| i + 1);
        let run_end = at + bytes[at..].iter().position(|b| !base64(*b)).unwrap_or(bytes.len() - at);
        let in_base64 = || {
            run_end - run_start >= 60
                || is_base64_digest(&text[run_start..run_end])
                || in_base64_block(text, run_start)
        };
        for piece in outside_placeholders(&text[start..at], true) {
            let trimmed = piece.clone();
            let token = &text[start + trimmed.start..start + trimmed.end];
            let lead = token.len() - token.trim_start_matches(['-', '.', '_']).len();
            let token = token.trim_start_matches(['-', '.', '_']).trim_end_matches(['.', '-', '_']);
            if is_password_token(token)
                && !in_base64()
                && !in_url_path(text, start)
                && !is_code_identifier(text, start..at, token)
            {
                let from = start + trimmed.start + lead;
                hits.push(Hit { range: from..from + token.len(), kind: "password", priority: 3 });
            }
        }
    }
}

/// Whether `token`, standing at `range` of `text`, is an identifier where code names one: a
/// function called or declared (`DhcpHlprFreeV4PolicyEx(`), a path's member
/// (`sockopt::Ipv6RecvHopLimit`, `.VarR4CmpR8`), or a name after a declaring keyword (`pub
/// pwszU2fAppId:`, `const Dhcpv6IpRanges`). A secret is never written there.
fn is_code_identifier(text: &str, range: Range<usize>, token: &str) -> bool {
    if token.len() != range.end - range.start
        || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || !token.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
    {
        return false;
    }
    let from = floor_char(text, range.start.saturating_sub(64)).max(line_start(text, range.start));
    let before = &text[from..range.start];
    let after = &text[range.end..];
    const DECLARING: &[&str] = &[
        "fn",
        "pub",
        "const",
        "static",
        "let",
        "mut",
        "struct",
        "enum",
        "type",
        "trait",
        "impl",
        "def",
        "class",
        "func",
        "var",
        "val",
        "interface",
        "union",
        "typedef",
        "#define",
    ];
    after.starts_with('(')
        || after.starts_with("::")
        || before.ends_with("::")
        || before.ends_with('.')
        || before.ends_with(' ')
            && before.split_whitespace().next_back().is_some_and(|w| DECLARING.contains(&w))
}

/// Whether the token at `start` is a piece of the path or fragment of a URL without credentials
/// or a query (`…/wasi/os.rs#L57-L67`); a URL's secrets are in its user info and query, and the
/// webhooks that hold one in their path have rules of their own.
fn in_url_path(text: &str, start: usize) -> bool {
    let from = floor_char(text, start.saturating_sub(LINE_REACH));
    step(start - from);
    let before = &text[from..start];
    let word =
        &before[before.rfind(|c: char| c.is_whitespace() || "\"'`(<".contains(c)).map_or(0, |i| i + 1)..];
    word.contains("://") && !word.contains(['@', '?', '=', '&'])
}

/// A digest written in base64 with its padding, as lockfiles and checksums write them: the
/// lengths of MD5, SHA-1, SHA-256 and SHA-512 (`h1:+KZ9iCY…=` in `go.sum`).
fn is_base64_digest(run: &str) -> bool {
    matches!((run.len(), run.ends_with("==")), (24, true) | (88, true))
        || matches!(run.len(), 28 | 44) && run.ends_with('=')
}

/// Whether the base64 run starting at `start` continues a block of long base64 lines (the last
/// line of a key or a certificate body).
fn in_base64_block(text: &str, start: usize) -> bool {
    let from = line_start(text, start);
    if from == 0 || !text[from..start].trim_start_matches([' ', '\t', '"', '\'']).is_empty() {
        return false;
    }
    let previous = &text[line_start(text, from - 1)..from - 1];
    let previous = previous.trim().trim_matches(['"', '\'', ',', '\\', '+']).trim_end_matches("\\n");
    previous.len() >= 60
        && previous.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// The parts of `token` (as ranges of it) outside placeholders filled in at run time: `{name}`,
/// `{}`, `{0}`, `${…}`, `%s`, `%(name)s`, `$NAME` at the start or after a separator, and
/// `$NAME` glued to a word before it (`pa$word`) only when `glued_dollar`.
fn outside_placeholders(token: &str, glued_dollar: bool) -> Vec<Range<usize>> {
    let b = token.as_bytes();
    let mut parts = Vec::new();
    let (mut from, mut i) = (0, 0);
    while i < b.len() {
        let end = match b[i] {
            b'{' => b[i..].iter().position(|&c| c == b'}').map(|n| i + n + 1).filter(|&e| {
                let inner = token[i + 1..e - 1].trim_start_matches('{').trim_end_matches('}').trim();
                is_placeholder_name(inner.split([':', '!', '[']).next().unwrap_or(""))
            }),
            b'$' if b.get(i + 1) == Some(&b'{') => b[i..].iter().position(|&c| c == b'}').map(|n| i + n + 1),
            b'$' if glued_dollar || i == 0 || b" \t/:@=(,;\"'".contains(&b[i - 1]) => {
                let n = b[i + 1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
                let name = &token[i + 1..i + 1 + n];
                (n > 0 && is_placeholder_name(name)).then_some(i + 1 + n)
            }
            b'%' if b.get(i + 1).is_some_and(|c| b"sdrxifgqv".contains(c)) => Some(i + 2),
            b'%' if b.get(i + 1) == Some(&b'(') => {
                b[i..].iter().position(|&c| c == b')').map(|n| (i + n + 2).min(b.len()))
            }
            _ => None,
        };
        match end {
            Some(end) => {
                if i > from {
                    parts.push(from..i);
                }
                from = end;
                i = end;
            }
            None => i += 1,
        }
    }
    if from < b.len() {
        parts.push(from..b.len());
    }
    parts
}

/// A name a template fills in: empty, a number, or an identifier as people write them
/// (`user`, `user.id`, `DB_PASSWORD`, `orderId`), not a random piece (`mP2qL`).
fn is_placeholder_name(name: &str) -> bool {
    name.is_empty()
        || name.bytes().all(|b| b.is_ascii_digit())
        || name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.'))
            && (is_identifier_shaped(name)
                || !name.bytes().any(|b| b.is_ascii_uppercase())
                || !name.bytes().any(|b| b.is_ascii_lowercase()))
}

/// A token that can only be a password: see [`password_tokens`].
fn is_password_token(token: &str) -> bool {
    let len = token.len();
    if !(PASSWORD_MIN_LEN..=MAX_VALUE_LEN).contains(&len) {
        return false;
    }
    let lower = token.bytes().any(|b| b.is_ascii_lowercase());
    let upper = token.bytes().any(|b| b.is_ascii_uppercase());
    let digit = token.bytes().any(|b| b.is_ascii_digit());
    let symbol = token.bytes().any(|b| b"!#$%&*+?@^{}~".contains(&b));
    let classes = usize::from(lower) + usize::from(upper) + usize::from(digit) + usize::from(symbol);
    // An address: `ops2@Example.com`.
    let email = token.split_once('@').is_some_and(|(_, host)| {
        host.contains('.') && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
    });
    classes >= 3
        && (lower || upper)
        && (digit || symbol)
        && !email
        // Hashes, hex numbers and code points (`0xEDEE43C9`, `U+AC00..U+D7AF`).
        && !token
            .trim_matches(['{', '}'])
            .split(['-', '.', '_', '#'])
            .map(|p| {
                p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")).or_else(|| p.strip_prefix("U+")).unwrap_or(p)
            })
            .all(|p| p.is_empty() || is_hex(p))
        && !is_digest_reference(token)
        // A `\u{1F602}` escape.
        && !token.contains("u{")
        // `0xFFEEDDCCBBAA9988u64`, an ISO 8601 duration (`P1y2m3w4dT5h6m7s`).
        && !is_suffixed_number(token)
        && !is_duration(token)
        // A MIME encoded word: `=?iso-8859-1?b?bmloISBuaWgh?=`.
        && !["?b?", "?q?"].iter().any(|m| token.to_ascii_lowercase().contains(m))
        && !is_language_tag(token)
        && !is_percent_encoded_text(token)
        && !encodes_plain_text(token)
        // A character class of a regular expression: `[a-zA-Z0-9._~-]`.
        && !["a-z", "A-Z", "0-9"].iter().any(|range| token.contains(range))
        && !is_code_name(token)
        && !is_known_public(token)
        && !is_sequence(token)
        && !has_alphabet_run(token)
        && entropy(token) >= 3.0
        && is_random_shaped(token)
}

/// An ISO 8601 duration: `P` then numbers with `Y`, `M`, `W`, `D`, and after `T` with `H`, `M`,
/// `S`, in any case (`P2m10dT2h30m`).
fn is_duration(value: &str) -> bool {
    let Some(rest) = value.strip_prefix(['P', 'p']) else { return false };
    let (date, time) = rest.split_once(['T', 't']).unwrap_or((rest, ""));
    let units = |part: &str, allowed: &[u8]| {
        let b = part.as_bytes();
        let mut digits = 0;
        for &c in b {
            if c.is_ascii_digit() || c == b'.' {
                digits += 1;
            } else if digits > 0 && allowed.contains(&c.to_ascii_uppercase()) {
                digits = 0;
            } else {
                return false;
            }
        }
        digits == 0
    };
    !rest.is_empty() && units(date, b"YMWD") && units(time, b"HMS")
}

/// A date or a date and time as ISO 8601 and TOML write them: `1979-05-27`,
/// `1979-05-27T07:32:00Z`, `1979-05-27T00:32:00.999999-07:00`.
fn is_datetime(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |r: Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    if !date {
        return false;
    }
    let time = &value[10..];
    time.is_empty()
        || time.starts_with(['T', 't', ' '])
            && time[1..]
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b'Z' | b'z' | b'+' | b'-'))
}

/// A reference to a commit or a digest: a hex run of 16 or more with punctuation around it
/// (`936da01f9abd4d9d80c702af85c822a8!!!!`), or with lower-case words
/// (`commit#ea76fa1b1b273e65e3b0b1046643715b49bec51f`).
fn is_digest_reference(token: &str) -> bool {
    let core = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if core.len() >= 16 && is_hex(core) {
        return true;
    }
    let digest = |p: &str| p.len() >= 16 && is_hex(p);
    let parts: Vec<&str> = core.split(['#', '@', ':', '-', '_']).filter(|p| !p.is_empty()).collect();
    parts.iter().any(|p| digest(p))
        && parts.iter().all(|p| digest(p) || p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// A BCP 47 language tag with an extension: parts of one to eight letters or digits joined by
/// `-`, the first of two or three letters, the second of letters (a script, a region or the
/// extension's singleton), and a singleton among them (`en-US-u-ca-buddhist`, `UnD-t-m0-TrUe`,
/// `eN-latn-Us-Valencia-u-hC-H12`).
fn is_language_tag(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let letters = |p: &str| p.bytes().all(|b| b.is_ascii_alphabetic());
    parts.len() >= 3
        && parts.iter().all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && (2..=3).contains(&parts[0].len())
        && letters(parts[0])
        && letters(parts[1])
        && matches!(parts[1].len(), 1 | 2 | 4)
        && parts[1..].iter().any(|p| p.len() == 1 && letters(p))
}

/// A name joined by underscores from words of code: three parts or more, two in three of them a
/// word in capitals or an identifier (`ROUTER_IKEv2_IF_CUSTOM_CONFIG0`,
/// `Win32_NetworkManagement_P2P`, `IO_STOP_ON_SYMLINK_FILTER_ECP_v0_0`).
fn is_constant_name(value: &str) -> bool {
    let parts: Vec<&str> = value.split('_').filter(|p| !p.is_empty()).collect();
    if parts.len() < 3
        || !value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return false;
    }
    let wordy = parts
        .iter()
        .filter(|p| {
            let letters = p.trim_end_matches(|c: char| c.is_ascii_digit());
            letters.len() >= 2 && (letters.bytes().all(|b| b.is_ascii_uppercase()) || is_identifier_shaped(p))
        })
        .count();
    wordy * 3 >= parts.len() * 2
}

/// Text written with two or more percent escapes, each of a byte beyond ASCII or of
/// punctuation (`%E4%BD%A0%E5%A5%BD.txt`, `Index%3CI%3E`): encoded text, not a token, whose
/// escapes of `+`, `/` and `=` (`%2B`, `%2F`, `%3D`) do not count.
fn is_percent_encoded_text(value: &str) -> bool {
    let mut escapes = 0;
    for (i, _) in value.match_indices('%') {
        let Some(hex) = value.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) else {
            return false;
        };
        let byte = u8::from_str_radix(hex, 16).expect("two hex digits");
        if byte.is_ascii_alphanumeric() || byte.is_ascii_control() || matches!(byte, b'+' | b'/' | b'=') {
            return false;
        }
        escapes += 1;
    }
    escapes >= 2
}

/// Base64 of plain text, as test vectors are: the letters and digits of `token` decode to
/// digits only, letters of one case only, or a run (`MDEyMzQ1Njc4` is `012345678`, `Zm9vYmFy`
/// is `foobar`).
fn encodes_plain_text(token: &str) -> bool {
    let core = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if core.len() < 8 || core.len() % 4 == 1 || !core.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let Some(decoded) = decode_base64(core) else { return false };
    let Ok(text) = std::str::from_utf8(&decoded) else { return false };
    !text.is_empty()
        && (text.bytes().all(|b| b.is_ascii_digit())
            || text.bytes().all(|b| b.is_ascii_lowercase())
            || text.bytes().all(|b| b.is_ascii_uppercase())
            || text.bytes().all(|b| b.is_ascii_alphanumeric()) && is_sequence(text))
}

/// A name made of codes joined by `.`, `_`, `-` or `@`, at most one of them in mixed case: a
/// locale (`bg_BG.CP1251`, `sr_yu.cp1251@cyrillic`), a charset (`ISO8859-5`), a constant
/// (`PROTOCOL_SSLv2`), a method (`IPv4Address.__eq__`).
fn is_code_name(token: &str) -> bool {
    let token = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let parts: Vec<&str> = token.split(['.', '_', '-', '@']).filter(|p| !p.is_empty()).collect();
    let mixed =
        |p: &str| p.bytes().any(|b| b.is_ascii_lowercase()) && p.bytes().any(|b| b.is_ascii_uppercase());
    parts.len() >= 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts.iter().filter(|p| mixed(p) && !is_identifier_shaped(p)).count() <= 1
}

/// Whether a token breaks into pieces as a random one does, not into words as a name does. It is
/// split at symbols, digits and changes of case, and each piece of three letters or more is
/// judged a word or not by how likely its letter pairs are in words ([`wordlike::is_wordlike`]).
/// A random token has three pieces or more and less than half of its letters in pieces that
/// read as words, and either breaks mostly into pieces of one or two letters
/// (`Zq8rT2mLw9vBn4Ks`, `hG7%fKq2!mZw9Lp`, `TFG6N3FDgR7PCR`), or holds a piece that reads as no
/// word at all (five letters or more that read as no word, `Gmzhk6meyLnhr1`, or four that are
/// far from any, `Jfqc1jEfNdvenN`), or four pieces or more, two of them of three letters or
/// more that read as no word, and two thirds of its letters outside words (`EkDdzBznT4Oh90`,
/// `15ucgsLhMJPJly`; not `VarR4CmpR8`, `IntoRawFd`, `Ipv4RecvTtl`). A name's pieces are words (`getI18nKey`, `Utf8JsonWriter2`,
/// `L1PmSsControl2`).
fn is_random_shaped(token: &str) -> bool {
    let b = token.as_bytes();
    let (mut pieces, mut short, mut letters) = (0, 0, 0);
    // Letters in all, in pieces that read as words, and pieces of three letters or more (and of
    // five or more) that do not.
    let (mut all, mut in_words, mut gibberish, mut strong, mut unworded) = (0, 0, 0, 0, 0);
    for i in 0..=b.len() {
        let boundary = i == b.len()
            || !b[i].is_ascii_alphabetic()
            || i > 0
                && (b[i].is_ascii_uppercase() && b[i - 1].is_ascii_lowercase()
                    || b[i].is_ascii_uppercase()
                        && b[i - 1].is_ascii_uppercase()
                        && b.get(i + 1).is_some_and(u8::is_ascii_lowercase));
        if boundary && letters > 0 {
            pieces += 1;
            short += usize::from(letters < 3);
            all += letters;
            let piece = &token[i - letters..i];
            if letters < 3 {
                unworded += letters;
            } else if wordlike::is_wordlike(piece) {
                in_words += letters;
            } else {
                gibberish += 1;
                unworded += letters;
                strong += usize::from(letters >= 5 || wordlike::is_gibberish(piece));
            }
            letters = 0;
        }
        if i < b.len() && b[i].is_ascii_alphabetic() {
            letters += 1;
        }
    }
    pieces >= 3
        && in_words * 2 < all
        && (short >= 3 && short * 3 >= pieces * 2
            || strong >= 1
            || gibberish >= 2 && pieces >= 4 && unworded * 3 >= all * 2)
}

/// Whether a value holds eight or more characters in a row that follow each other in the
/// character set: an alphabet (`…0123456789ABCDEFGH…`), not a random token.
fn has_alphabet_run(value: &str) -> bool {
    let b = value.as_bytes();
    let mut run = 1;
    for w in b.windows(2) {
        run = if w[1] == w[0].wrapping_add(1) { run + 1 } else { 1 };
        if run >= 8 {
            return true;
        }
    }
    false
}

/// Secrets whose name is not on the left of an operator: name/value pairs (`- name:
/// DB_PASSWORD` then `value: …`, `{"Name":"DB_PASSWORD","Value":"…"}`, `<add key="ApiKey"
/// value="…"/>`), Dockerfile `ENV NAME value`, SQL `WITH PASSWORD '…'` and `IDENTIFIED BY '…'`,
/// `mysql -p…`, `sshpass -p …`, and YAML block scalars (`password: |` then indented lines).
fn named_elsewhere(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    for c in rules.pair.captures_iter(text).chain(rules.docker_env.captures_iter(text)) {
        let name = c.get(1).expect("the name always takes part").as_str();
        let end = c.get(0).expect("group 0 is the match").end();
        let Some(kind) = secret_name(name) else { continue };
        let Some((value, quoted)) = value_at(text, end, false) else { continue };
        let literal = &text[value.clone()];
        if accepts(kind, literal) && (quoted || !is_code(literal)) {
            hits.push(Hit { range: value, kind: kind.label(), priority: 2 });
        }
    }
    for c in rules.command_password.captures_iter(text) {
        let Some(value) = (1..c.len()).filter_map(|i| c.get(i)).next() else { continue };
        if !is_placeholder(value.as_str()) {
            hits.push(Hit { range: value.range(), kind: "password", priority: 2 });
        }
    }
    for c in rules.block_scalar.captures_iter(text) {
        let indent = c.get(1).expect("the indent always takes part").as_str().len();
        let Some(kind) = secret_name(c.get(2).expect("the key always takes part").as_str()) else { continue };
        let start = c.get(0).expect("group 0 is the match").end();
        let mut end = start;
        for line in text[start..].split_inclusive('\n') {
            let content = line.trim_start_matches([' ', '\t']);
            if !content.trim().is_empty() && line.len() - content.len() <= indent {
                break;
            }
            end += line.len();
        }
        let value = text[start..end].trim();
        if !value.is_empty() && !is_placeholder(value) {
            let from = start + text[start..end].find(value).unwrap_or(0);
            hits.push(Hit { range: from..from + value.len(), kind: kind.label(), priority: 2 });
        }
    }
}

/// Words of prose after a secret-like word that may stand before the secret itself:
/// `password is X`, `rotate db password to X`, `matched AWS secret X`.
const PROSE_REACH: usize = 4;

/// Secrets written in prose, comments, commit messages and other tools' messages: a secret-like
/// word, then within a few words on the same line a token no word looks like (mixed character
/// classes, a digit or a symbol, eight characters or more).
fn prose(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    // Where the first word judged after the last secret-like word ends: a secret-like word
    // inside it (`password=password=…`) would have the words judged again, each time, which
    // makes a long line of them quadratic; its words were judged already.
    let mut judged_to = 0;
    for m in rules.prose.captures_iter(text) {
        let found = m.get(1).expect("the word always takes part");
        if found.start() < judged_to {
            continue;
        }
        // Part of a path or an identifier (`…:secret:prod/db`, `api.token`), not prose.
        let before = text[..found.start()].bytes().next_back();
        let after = text.as_bytes().get(found.end()..found.end() + 2).unwrap_or(&[]);
        if matches!(before, Some(b':' | b'/' | b'.' | b'-'))
            || matches!(after, [b':' | b'/' | b'.' | b'-', next] if !next.is_ascii_whitespace())
        {
            continue;
        }
        let word = found.as_str().to_ascii_lowercase();
        let kind = match word.as_str() {
            w if w.starts_with("pass") || w == "pwd" || w.starts_with("log") => Name::Password,
            w if w.starts_with("secret") => Name::Secret,
            w if w.starts_with("token") => Name::Token,
            w if w.starts_with("cred") => Name::Credential,
            w if w.starts_with("api") => Name::ApiKey,
            _ => Name::Key,
        };
        let end = m.get(0).expect("group 0 is the match").end();
        let line_end = line_end(text, end);
        let mut at = end;
        for word in text[end..line_end].split_inclusive(char::is_whitespace).take(PROSE_REACH + 1) {
            let start = at;
            at += word.len();
            step(word.len());
            // `&ConnectionSecrets`, `*Token`: a reference to a type, not a token.
            let trimmed = word.trim_end().trim_matches(|c: char| "\"'`.,;:()[]{}<>&*".contains(c));
            if start == end {
                judged_to = start + word.len();
            }
            let Some(offset) = word.find(trimmed).filter(|_| !trimmed.is_empty()) else { continue };
            // `login admin/Zq8rT2mLw9`: a user and a password separated by a slash; the user stays.
            if let Some((user, password)) = trimmed.split_once('/')
                && is_slashed_login(user, password)
            {
                let from = start + offset + user.len() + 1;
                hits.push(Hit { range: from..from + password.len(), kind: "password", priority: 3 });
                break;
            }
            if is_prose_secret(trimmed) {
                hits.push(Hit {
                    range: start + offset..start + offset + trimmed.len(),
                    kind: kind.label(),
                    priority: 3,
                });
                break;
            }
        }
    }
}

/// A token in hex of 32 digits or more right after a secret-like word in prose (a comment, a
/// commit message, another tool's message): `token 3f9a…`, `rotated key: 3f9a…`, `secret is
/// 3f9a…`. A digest further from the word (`sha256 of the token file: …`) stays. And a PIN of
/// four to eight digits after `PIN` or `passcode` (`# PIN 4821 for the safe`).
fn prose_hex(text: &str, hits: &mut Vec<Hit>) {
    // Each pattern is compiled and run only on a text that can hold its match: 32 hex digits in
    // a row; `pin` or `passcode`. A text with other characters than ASCII is always searched:
    // case-insensitive matching folds some of them onto ASCII letters.
    if !text.is_ascii() || has_hex_run(text, 32) {
        prose_hex_tokens(text, hits);
    }
    if !text.is_ascii() || {
        let lower = text.to_ascii_lowercase();
        lower.contains("pin") || lower.contains("passcode")
    } {
        prose_pins(text, hits);
    }
}

/// Whether `text` holds `len` ASCII hex digits in a row.
fn has_hex_run(text: &str, len: usize) -> bool {
    let mut run = 0;
    text.bytes().any(|b| {
        run = if b.is_ascii_hexdigit() { run + 1 } else { 0 };
        run >= len
    })
}

fn prose_hex_tokens(text: &str, hits: &mut Vec<Hit>) {
    static HEX: OnceLock<Regex> = OnceLock::new();
    let hex = HEX.get_or_init(|| {
        Regex::new(
            r"(?i)(^|[^\w./:-])(?:tokens?|keys?|secrets?|passwords?|passwd|pwd|credentials?|api[ _-]?keys?|signature|sig)[ \t]*(?:[:=]|\bis\b|\bto\b)?[ \t]*[\x22'`]?([0-9a-f]{32,})\b",
        )
        .expect("a valid pattern")
    });
    for c in hex.captures_iter(text) {
        let value = c.get(2).expect("the hex group always takes part");
        hits.push(Hit { range: value.range(), kind: "token", priority: 3 });
    }
}

/// `# PIN 4821 for the safe`, `pin: 4821`.
fn prose_pins(text: &str, hits: &mut Vec<Hit>) {
    static PIN: OnceLock<Regex> = OnceLock::new();
    let pin = PIN.get_or_init(|| {
        Regex::new(r"(?i)(?:^|[^\w./:-])(?:pin|pin code|passcode)[ \t]*(?:[:=]|\bis\b)?[ \t]*([0-9]{4,8})\b")
            .expect("a valid pattern")
    });
    for c in pin.captures_iter(text) {
        let value = c.get(1).expect("the number always takes part");
        hits.push(Hit { range: value.range(), kind: "password", priority: 3 });
    }
}

/// Whether `user/password` in prose is a login: a user name (letters, digits, `.`, `_`, `-`,
/// `@`) and a password of six characters or more with a letter and a digit or a symbol that is
/// not a path, a word or the name of a secret (`username/password`, `src/auth2`).
fn is_slashed_login(user: &str, password: &str) -> bool {
    // A token holding a slash (an AWS secret key) is not a user and a password.
    let user_like = (1..=64).contains(&user.len())
        && !looks_like_token(user, 12)
        && user.bytes().any(|b| b.is_ascii_alphabetic())
        && user.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    let symbol = password.chars().any(|c| "!#$%^&*+=~?@".contains(c));
    user_like
        && (6..=MAX_VALUE_LEN).contains(&password.chars().count())
        && !password.contains('/')
        && !password.contains(char::is_whitespace)
        && password.bytes().any(|b| b.is_ascii_alphabetic())
        && (password.bytes().any(|b| b.is_ascii_digit()) || symbol)
        && (!password.contains('.') || is_prose_secret(password))
        && !is_secret_word(password)
        && !is_placeholder(password)
}

/// A word of prose that can only be a secret: no word, name, path or number looks like it.
fn is_prose_secret(word: &str) -> bool {
    let len = word.chars().count();
    let charset = word.chars().all(|c| c.is_ascii_alphanumeric() || "!@#$%^&*+/=_-~".contains(c));
    let lower = word.chars().any(|c| c.is_ascii_lowercase());
    let upper = word.chars().any(|c| c.is_ascii_uppercase());
    let digit = word.chars().any(|c| c.is_ascii_digit());
    let symbol = word.chars().any(|c| "!@#$%^&*+/=~".contains(c));
    let classes = usize::from(lower) + usize::from(upper) + usize::from(digit) + usize::from(symbol);
    // `name=value` in a signature or a call (`initial_response_ok=True`) is code; base64 padding
    // is the only `=` a token ends with.
    let keyword_argument = word.trim_end_matches('=').contains('=');
    (8..=MAX_VALUE_LEN).contains(&len)
        && !keyword_argument
        && charset
        && (lower || upper)
        && (digit || symbol)
        && classes >= 3
        && !is_identifier_shaped(word)
        && !is_known_public(word)
        && !is_placeholder(word)
}

/// Width of the base64 lines of a PEM body.
const PEM_LINE: usize = 64;

/// The body of a PEM block seen without its `BEGIN` line (a window cut into it, a key pasted
/// into a string): two or more lines in a row ending in exactly 64 base64 characters of mixed
/// classes, and the shorter line that closes them. A body that decodes to a certificate or a
/// public key ([`is_public_der`]) is public and stays, armoured or not.
fn pem_bodies(text: &str, hits: &mut Vec<Hit>) {
    let mut run: Vec<Range<usize>> = Vec::new();
    let mut full_lines = 0;
    let mut width = 0;
    let mut start = 0;
    let close = |run: &mut Vec<Range<usize>>, full_lines: usize, width: usize, hits: &mut Vec<Hit>| {
        if let (Some(first), Some(last)) = (run.first(), run.last())
            && full_lines >= 1
        {
            let base64: String = run.iter().map(|r| &text[r.clone()]).collect();
            let decoded = decode_base64(&base64);
            // A body of another width, or of one line, goes when it reads as a private key.
            let private = decoded.as_deref().is_some_and(is_private_key_data);
            let pem = width == PEM_LINE && full_lines >= 2 && !decoded.is_some_and(|der| is_public_der(&der));
            if private || pem {
                hits.push(Hit { range: first.start..last.end, kind: "private-key", priority: 0 });
            }
        }
        run.clear();
    };
    for line in text.split_inclusive('\n') {
        // The line that closes a body may be short and of one case (`XQIDAQAB`).
        let body = base64_tail(start, line, full_lines < 2);
        start += line.len();
        match body {
            Some(body)
                if BODY_WIDTHS.contains(&body.len())
                    && (full_lines == 0 || body.len() == width)
                    && !text[body.clone()].contains('=') =>
            {
                width = body.len();
                run.push(body);
                full_lines += 1;
                continue;
            }
            Some(ref body) if full_lines >= 1 && body.len() < width => run.push(body.clone()),
            _ => {}
        }
        close(&mut run, full_lines, width, hits);
        full_lines = 0;
        let Some(body) = body else { continue };
        // A body of one line that starts a new run.
        if BODY_WIDTHS.contains(&body.len()) && !text[body.clone()].contains('=') {
            width = body.len();
            run.push(body);
            full_lines = 1;
        }
    }
    close(&mut run, full_lines, width, hits);
    // A key on one line: `MC4CAQAwBQYDK2VwBCIE…` (an Ed25519 key in PKCS #8).
    static ONE_LINE: OnceLock<Regex> = OnceLock::new();
    let one_line = ONE_LINE.get_or_init(|| Regex::new(r"[A-Za-z0-9+/]{40,}={0,2}").expect("a valid pattern"));
    for m in one_line.find_iter(text) {
        if m.as_str().starts_with(['M', 'b'])
            && decode_base64(m.as_str()).as_deref().is_some_and(is_private_key_data)
        {
            hits.push(Hit { range: m.range(), kind: "private-key", priority: 0 });
        }
    }
}

/// Widths at which key bodies are wrapped: PEM's 64, and the 70 and 76 of other tools.
const BODY_WIDTHS: [usize; 3] = [PEM_LINE, 70, 76];

/// Whether decoded base64 is a private key: an OpenSSH private key, or DER that parses whole as
/// a PKCS #8, PKCS #1 or SEC 1 key (a small version `INTEGER` first) or an encrypted PKCS #8
/// key (`SEQUENCE { SEQUENCE, OCTET STRING }`).
fn is_private_key_data(data: &[u8]) -> bool {
    if data.starts_with(b"openssh-key-v1\0") {
        return true;
    }
    let Some(children) = der_sequence(data) else { return false };
    let tags: Vec<u8> = children.iter().map(|(tag, _)| *tag).collect();
    let small_version =
        children.first().is_some_and(|(tag, body)| *tag == 0x02 && body.len() == 1 && body[0] <= 3);
    match tags.as_slice() {
        // PKCS #8: version, algorithm, key (and optional attributes and public key).
        [0x02, 0x30, 0x04, ..] => small_version,
        // PKCS #1 RSA: version and eight integers.
        [0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, ..] => small_version,
        // SEC 1 EC: version, key, and tagged parameters or public key.
        [0x02, 0x04, 0xa0 | 0xa1, ..] => small_version,
        [0x30, 0x04] => children[1].1.len() >= 32,
        _ => false,
    }
}

/// Standard base64 (padding optional) decoded, or `None` if `text` is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for b in text.trim_end_matches('=').bytes() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = buffer << 6 | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The top-level elements of a DER `SEQUENCE` that is the whole of `der`, as (tag, contents),
/// or `None` if it is not one (or is cut short).
fn der_sequence(der: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b)), &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, mut contents, []) = element(der)? else { return None };
    let mut children = Vec::new();
    while !contents.is_empty() {
        let (tag, body, rest) = element(contents)?;
        children.push((tag, body));
        contents = rest;
    }
    Some(children)
}

/// Whether DER data is public: an X.509 certificate, CRL or certification request (`SEQUENCE
/// { SEQUENCE, SEQUENCE, BIT STRING }`), a `SubjectPublicKeyInfo` (`SEQUENCE { SEQUENCE, BIT
/// STRING }`) or a PKCS #1 public key (`SEQUENCE { INTEGER n, INTEGER e }`, `n` long). Private
/// keys start with a small version `INTEGER` (PKCS #8, PKCS #1, SEC 1) or are an encrypted
/// `SEQUENCE { SEQUENCE, OCTET STRING }`; anything that does not parse whole counts as private.
fn is_public_der(der: &[u8]) -> bool {
    let Some(children) = der_sequence(der) else { return false };
    let tags: Vec<u8> = children.iter().map(|(tag, _)| *tag).collect();
    match tags.as_slice() {
        [0x30, 0x30, 0x03] | [0x30, 0x03] => true,
        [0x02, 0x02] => children[0].1.len() > 16,
        _ => false,
    }
}

/// Whether a value reads as a name rather than a secret: letters with `-`, `_` or `.` and no
/// digit, in one case or with separators (`www-authenticate`, `scheme`, `x_auth_token`).
fn is_name_like(value: &str) -> bool {
    value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '_' | '.'))
        && (value.contains(['-', '_', '.']) || !value.chars().any(|c| c.is_ascii_uppercase()))
}

/// Whether a value is a dotted name of at least `segments` parts, one of them a lower-case
/// module name: `ipaddress.IPv6Network`, `django.contrib.auth.hashers.PBKDF2PasswordHasher`.
fn is_dotted_name(value: &str, segments: usize) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() >= segments
        && is_identifier_path(value)
        && parts.iter().all(|p| p.len() <= 40)
        && parts.iter().any(|p| {
            p.len() >= 2
                && p.starts_with(|c: char| c.is_ascii_lowercase())
                && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// Whether the string at `value` is a message in a dictionary of messages (`{"password":
/// "Enter a valid password."}`): a sentence ending in punctuation, or a single word on a line
/// that holds such a sentence.
fn is_message(text: &str, value: Range<usize>) -> bool {
    let is_sentence_value =
        |v: &str| v.contains(' ') && v.trim_end().ends_with(['.', '!', '?', ':']) && is_sentence(v);
    let literal = &text[value.clone()];
    if is_sentence_value(literal) {
        return true;
    }
    if !literal.chars().all(char::is_alphabetic) || literal.is_empty() {
        return false;
    }
    let line = line_around(text, value);
    line.split(['"', '\'']).skip(1).step_by(2).any(is_sentence_value)
}

/// Whether a base64 token is public key material: a DER certificate or public key, or an SSH
/// public key blob (`AAAAB3NzaC1yc2E…`, a length-prefixed `ssh-…` or `ecdsa-…` name).
fn is_public_key_base64(value: &str) -> bool {
    // DER starts with a SEQUENCE, which base64 writes as `M`: `MII…`, `MCow…`, `MFkw…`.
    if value.len() < 56 || !(value.starts_with('M') || value.starts_with("AAAA")) {
        return false;
    }
    let Some(bytes) = decode_base64(value) else { return false };
    if let [0, 0, 0, len, name @ ..] = bytes.as_slice()
        && let Some(name) = name.get(..usize::from(*len))
    {
        return [b"ssh-".as_slice(), b"ecdsa-", b"sk-"].iter().any(|p| name.starts_with(p))
            && !name.windows(7).any(|w| w == b"private");
    }
    is_public_der(&bytes)
}

/// The base64 run that ends `line` (which starts at byte `start` of the text), ignoring trailing
/// spaces, quotes and commas, if it has upper- and lower-case letters and digits (or, when not
/// `mixed`, any base64 character).
fn base64_tail(start: usize, line: &str, mixed: bool) -> Option<Range<usize>> {
    let trimmed = line.trim_end_matches([' ', '\t', '\r', '\n', '"', '\'', ',', '\\']);
    let from = trimmed
        .bytes()
        .rposition(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
        .map_or(0, |i| i + 1);
    let run = &trimmed[from..];
    let mixed = !mixed
        || run.chars().any(|c| c.is_ascii_uppercase())
            && run.chars().any(|c| c.is_ascii_lowercase())
            && run.chars().any(|c| c.is_ascii_digit());
    (run.len() >= 4 && mixed).then(|| start + from..start + trimmed.len())
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
    /// `session_id`, `sessionid`, `cookie`: a session's value, secret when it is not a word.
    Session,
    /// `pin`: a personal identification number, secret when it is four digits or more (a pin
    /// of a board, `led_pin = 13`, is not one).
    Pin,
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
            Name::Session => "session",
            Name::Pin => "password",
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
    "help",
    "word",
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
        let boundary = i > 0
            && (c.is_ascii_uppercase()
                && (chars[i - 1].is_ascii_lowercase()
                    || chars[i - 1].is_ascii_uppercase()
                        && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()))
                // Digits before letters are a word of their own (`0API_KEYS`); after letters they
                // stay with them (`password2`, `sha256`).
                || c.is_ascii_alphabetic() && chars[i - 1].is_ascii_digit());
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

/// Services whose keys and tokens have no prefix that says whose they are (a UUID, 32 or 40 hex
/// digits), so that only the name given to them does: `heroku_key`, `DATADOG_KEY`.
const VENDORS: &[&str] = &[
    "heroku",
    "twilio",
    "mailgun",
    "datadog",
    "dd",
    "sendgrid",
    "mailchimp",
    "pagerduty",
    "newrelic",
    "algolia",
    "pusher",
    "cloudflare",
    "linode",
    "netlify",
    "vercel",
    "sentry",
    "segment",
    "mixpanel",
    "amplitude",
    "intercom",
    "zendesk",
    "bugsnag",
    "rollbar",
    "honeycomb",
    "postmark",
    "sparkpost",
    "nexmo",
    "vonage",
    "plaid",
    "braintree",
    "contentful",
    "airtable",
    "okta",
    "auth0",
];

fn word_kind(word: &str, previous: Option<&str>) -> Option<Name> {
    Some(match word {
        "password" | "passwords" | "passwd" | "pwd" | "pass" | "passphrase" | "passphrases" | "passcode"
        | "pw" | "psw" | "pswd" | "pword" | "kennwort" | "passwort" | "contrasena" | "motdepasse" => {
            Name::Password
        }
        "pin" | "pincode" => Name::Pin,
        "seed" if matches!(previous, Some("otp" | "totp" | "mfa" | "hotp")) => Name::Secret,
        "code" | "codes" if matches!(previous, Some("recovery" | "backup" | "pin")) => Name::Password,
        "tok" if matches!(previous, Some("refresh" | "access" | "auth" | "id")) => Name::Token,
        "phrase" if previous == Some("pass") => Name::Password,
        "bearer" => Name::Token,
        "token" | "tokens" | "authtoken" | "accesstoken" => Name::Token,
        // `pat` is a pattern as often as a personal access token.
        "pat"
            if matches!(
                previous,
                Some("gh" | "github" | "gitlab" | "personal" | "access" | "ado" | "devops")
            ) =>
        {
            Name::Token
        }
        "secret" | "secrets" => Name::Secret,
        "sessionid" | "sessid" | "phpsessid" | "jsessionid" | "cookie" | "cookies" => Name::Session,
        "id" | "key" if previous == Some("session") => Name::Session,
        "apikey" | "apikeys" | "apitoken" => Name::ApiKey,
        "credential" | "credentials" | "creds" | "cred" | "auth" => Name::Credential,
        // `AAPI_KEYS`, `XAPI_KEY`: a name glued to the word before it still ends in `api`.
        "key" | "keys" if previous.is_some_and(|p| p.ends_with("api")) => Name::ApiKey,
        // A vendor's key whose tokens have no prefix of their own: `HEROKU_KEY`, `mailgun_key`.
        "key" | "keys" if previous.is_some_and(|p| VENDORS.contains(&p)) => Name::ApiKey,
        "key" | "keys"
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

/// Words that are a secret's name by themselves, for one-word setters (`password("…")`).
const SECRET_WORDS: &[&str] =
    &["password", "passwd", "passphrase", "token", "secret", "apikey", "credential", "credentials"];

/// A comparison value that can only be a secret: 6+ characters, a digit or a symbol, not a
/// name or a word (`token == "lambda"`, `sig != "PK\x05\x06"` are code).
fn is_secret_shaped(value: &str) -> bool {
    value.chars().count() >= 6
        && value.chars().any(|c| c.is_ascii_alphabetic())
        && value.chars().any(|c| !c.is_ascii_alphabetic())
        && !value.contains('\\')
        && !is_identifier_shaped(value)
        && !value.contains(char::is_whitespace)
}

/// An unquoted value that is a sentence, not a passphrase: three or more words, one of them a
/// function word of English (`password to use with username`, `determine the length of …`).
fn is_sentence(value: &str) -> bool {
    const FUNCTION_WORDS: &[&str] = &[
        "the", "a", "an", "to", "of", "with", "for", "on", "in", "is", "are", "was", "we", "you", "it",
        "this", "that", "when", "if", "and", "or", "not", "be", "by", "from", "as", "use",
    ];
    let words: Vec<String> = value
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_ascii_lowercase())
        .collect();
    words.len() >= 3 && words.iter().any(|w| FUNCTION_WORDS.contains(&w.as_str()))
}

/// What kind of secret a name holds, if any: its last word names a secret, or an earlier word
/// does and the last is not about the secret (`token_type`, `password_hash`).
fn secret_name(name: &str) -> Option<Name> {
    let mut words = words(name);
    // `pass_word`, `PASS_WORD`: one word written as two.
    if let Some(i) = words.windows(2).position(|w| w[0] == "pass" && w[1] == "word") {
        words[i] = "password".to_owned();
        words.remove(i + 1);
    }
    // A number at the end names one of several: `DB_PASSWORD_1`, `password2`, `apiKey2`.
    while words.len() > 1 && words.last().is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit())) {
        words.pop();
    }
    if let Some(last) = words.last_mut() {
        let trimmed = last.trim_end_matches(|c: char| c.is_ascii_digit());
        if !trimmed.is_empty() && trimmed.len() < last.len() {
            *last = trimmed.to_owned();
        }
    }
    let last = words.last()?;
    let before = words.len().checked_sub(2).map(|i| words[i].as_str());
    if let Some(kind) = word_kind(last, before) {
        return Some(kind);
    }
    if META_WORDS.contains(&last.as_str()) || last.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // An earlier word counts only if it cannot mean something else: `pass_stmt`, `pwd_state`,
    // `proxy_auth_hdr` are not secrets.
    words[..words.len() - 1]
        .iter()
        .enumerate()
        .filter(|(_, w)| !matches!(w.as_str(), "pass" | "pw" | "pwd" | "pat" | "auth" | "pin"))
        .filter_map(|(i, w)| word_kind(w, i.checked_sub(1).map(|j| words[j].as_str())))
        .find(|k| !matches!(k, Name::Key | Name::Session))
}

/// A tokenizer's kind of token, not a credential: a word in one case, perhaps with `_` or `-`
/// and a width (`NEWLINE`, `IDENT`, `float64`, `test-token`).
fn is_token_kind(value: &str) -> bool {
    let word = value.trim_end_matches(|c: char| c.is_ascii_digit());
    value.len() - word.len() <= 3
        && !word.is_empty()
        && word.bytes().all(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'-'))
        && if word.bytes().any(|b| b.is_ascii_lowercase()) {
            // Lower case: a short word, not a run of letters (`abcdefghijklmnop`).
            word.len() <= 12 && !word.bytes().any(|b| b.is_ascii_uppercase()) && !has_alphabet_run(word)
        } else {
            word.len() <= 24
        }
}

/// A label of a user interface, in any language: a capitalised phrase of a few words with no
/// digit that names the secret itself (`Password`, `Mot de passe oublié ?`, `Jeton d'accès`,
/// `Clé API`, `API key`).
fn is_label(value: &str) -> bool {
    const NAMES: &[&str] = &[
        "pass",
        "secret",
        "token",
        "key",
        "api",
        "jeton",
        "clé",
        "kennwort",
        "contraseña",
        "senha",
        "пароль",
        "ключ",
        "密码",
        "パスワード",
        "credential",
        "login",
        "pin",
        "code",
    ];
    let lower = value.to_lowercase();
    value.starts_with(|c: char| c.is_uppercase())
        && !value.chars().any(|c| c.is_ascii_digit())
        && value.split_whitespace().count() <= 5
        && value.chars().all(|c| c.is_alphabetic() || c.is_whitespace() || "'’?.:!-".contains(c))
        && NAMES.iter().any(|n| lower.contains(n))
}

/// Whether `value`, given to a name of `kind`, is to be removed.
fn accepts(kind: Name, value: &str) -> bool {
    let value = value.trim();
    if value.is_empty() || is_placeholder(value) || is_arn(value) || is_auth_scheme(value) || is_label(value)
    {
        return false;
    }
    // Version numbers, OIDs and addresses: `'1.3.6.1.5.5.7.3.1'`; a password may have their
    // shape (`password = "1.2.3.4"`): the name wins.
    let dotted_number = value.contains('.')
        && value.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if dotted_number && kind != Name::Password || is_datetime(value) {
        return false;
    }
    match kind {
        Name::Pin => is_numeric_secret(value),
        // Cache and storage keys are names and paths: `app/settings/theme-v2`, `customer_line2`.
        Name::Key => {
            (looks_like_token(value, 16) || is_hex(value) && value.len() >= 16)
                && !value.split('/').all(|p| {
                    p.is_empty()
                        || is_identifier_shaped(p)
                        || is_code_name(p)
                        || p.bytes().all(|b| b.is_ascii_digit())
                })
        }
        // A cookie string (`sid=…`) or a session id: eight characters or more with a digit, no
        // name or sentence (`cookie = "sid"`, `SESSION_COOKIE_NAME = "sessionid"` stay).
        Name::Session => match value.split_once('=') {
            Some((name, rest)) => {
                !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                    && is_cookie_value(rest.split(';').next().unwrap_or(""))
            }
            None => {
                value.chars().count() >= 8
                    && value.bytes().any(|b| b.is_ascii_digit())
                    && !value.contains(char::is_whitespace)
                    && !value.contains('\\')
            }
        },
        // A token has letters or digits: `token = "'"` is a tokenizer's; so are a word in one
        // case and a type name (`token = "NEWLINE"`, `token := "float64"`, `"test-token"`).
        Name::Token => value.bytes().any(|b| b.is_ascii_alphanumeric()) && !is_token_kind(value),
        Name::ApiKey => value.bytes().any(|b| b.is_ascii_alphanumeric()),
        _ => true,
    }
}

/// Whether a name takes a number as its secret: its last word is `pin`, `pincode`, `passcode`,
/// `password` or `passwd` (`PIN`, `db_password`); abbreviations (`IOC_OPAL_SET_PW`) and typed
/// declarations of constants are ioctl numbers and flags.
fn numeric_secret_name(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let w = words(last);
    match w.as_slice() {
        [.., pin, code] if pin == "pin" && code == "code" => true,
        [.., last] => {
            matches!(last.as_str(), "pin" | "pincode" | "passcode" | "password" | "passwd" | "passphrase")
        }
        [] => false,
    }
}

/// A secret of digits (a PIN, a numeric password): four digits or more, perhaps grouped by `.`
/// or `-` (`4821`, `20240917`, `2024.01.15`), at most 64 characters.
fn is_numeric_secret(value: &str) -> bool {
    value.len() <= 64
        && value.bytes().filter(u8::is_ascii_digit).count() >= 4
        && value.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && value.starts_with(|c: char| c.is_ascii_digit())
        && !is_datetime(value)
}

/// Values that stand for a secret without being one: `${DB_PASSWORD}`, `{{ secrets.x }}`,
/// `<your-token>`, `****`, `%(password)s`, `user:{user_id}:profile`. Only a value that is wholly
/// a placeholder stays: one that merely holds a placeholder shape (`Xk9{mP2qL}vR7w`, a leading
/// `$`, a printf verb, `%…%`) keeps whatever else it holds secret.
fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if is_marker(v)
        || v.starts_with('<') && v.ends_with('>')
        // A mask, one character repeated perhaps with separators (`****`, `xxxx-xxxx`,
        // `XXXXXXXX`): `x-X_x.X-x` mixes two, so it is a value.
        || v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '•' | '-' | '_' | '?'))
            && v.chars().filter(|c| !matches!(c, '.' | '-' | '_')).collect::<std::collections::BTreeSet<char>>().len() <= 1
        // A path in code: `$serde_json::private::Number`.
        || v.contains("::")
            && v.split("::").all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$'))
    {
        return true;
    }
    // `%APPDATA%`, a Windows variable.
    if let Some(name) = v.strip_prefix('%').and_then(|n| n.strip_suffix('%'))
        && !name.is_empty()
        && is_placeholder_name(name)
    {
        return true;
    }
    // `$NAME` glued to what comes before it is not a template: `geheim$parole`, `pa$$word` are
    // passwords with a `$` in them; `$HOME/.config`, `user:$PASS@host` and `${NAME}` anywhere
    // are templates.
    let pieces = outside_placeholders(v, false);
    if pieces.len() == 1 && pieces[0] == (0..v.len()) {
        return false;
    }
    // What the template holds besides its placeholders: separators and words, or a secret.
    !pieces.iter().any(|piece| {
        v[piece.clone()]
            .split(|c: char| c.is_whitespace() || ":=/,;@|&?#()[]'\"".contains(c))
            .map(|chunk| chunk.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
            .any(|chunk| {
                let mixed = chunk.bytes().any(|b| b.is_ascii_digit())
                    || chunk.bytes().any(|b| !b.is_ascii_alphanumeric())
                    || chunk.bytes().any(|b| b.is_ascii_uppercase())
                        && chunk.bytes().any(|b| b.is_ascii_lowercase());
                chunk.len() >= 3 && mixed && !is_identifier_shaped(chunk) && !is_code_name(chunk)
            })
    })
}

/// Whether a value is the name of the secret standing for it, as documentation writes it:
/// `user:password@host`, `` `secret` ``.
fn is_secret_word(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "password"
            | "passwd"
            | "pass"
            | "secret"
            | "token"
            | "apikey"
            | "api_key"
            | "api-key"
            | "credentials"
    )
}

/// Whether `value` is one marker this redactor writes, whole or cut before its closing bracket
/// (an unquoted value ends at `]`), and nothing else.
fn is_marker(value: &str) -> bool {
    let Some(kind) = value.strip_prefix("[REDACTED:") else { return false };
    let kind = kind.strip_suffix(']').unwrap_or(kind);
    rules().kinds.contains(&kind)
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
    classes >= 2 && digit && entropy(value) >= 3.0 && !is_sequence(value) && !has_alphabet_run(value)
}

/// Whether most neighbouring characters follow each other in the character set: an alphabet
/// (`ABC…XYZabc…789+/`), not a random token.
fn is_sequence(value: &str) -> bool {
    let b = value.as_bytes();
    let steps = b.windows(2).filter(|w| w[1] == w[0].wrapping_add(1)).count();
    steps * 2 > b.len()
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
        // A Windows or registry path: `SOFTWARE\Microsoft\VisualStudio\SxS\VC7`.
        || v.contains('\\') && is_identifier_shaped(v)
        || is_public_key_base64(v)
        || is_arn(v)
        || v.contains("://")
        || v.starts_with("data:")
        // Images in base64: PNG, GIF, JPEG.
        || v.starts_with("iVBORw0KGgo")
        || v.starts_with("R0lGOD")
        || v.starts_with("/9j/")
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
    // `lambda: next(it)`, `function* (src)`, `yield call(…)`: a keyword starts code.
    let first = value.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next().unwrap_or("");
    const KEYWORDS: &[&str] = &[
        "lambda", "function", "yield", "await", "typeof", "void", "new", "async", "def", "fn", "delete",
        "not",
    ];
    if KEYWORDS.contains(&first) {
        return true;
    }
    value.contains('(')
        || value.contains('[')
        || value.contains("::")
        || value.contains("->")
        || value.starts_with(['&', '*', '[', '{', '!', '@', '(', '|', '\\', '?'])
        || (value.starts_with("0x") || value.starts_with("0o") || value.starts_with("0b"))
            && value.len() > 2
            && value[2..].bytes().all(|b| b.is_ascii_hexdigit() || b == b'_')
        || value.starts_with("env")
        || value.starts_with("os.")
        || value.starts_with("process.")
        || value.starts_with("self.")
        || value.starts_with("this.")
        || TYPES.contains(&value.to_ascii_lowercase().as_str())
        // `Stream<Token = u8>`: a type in a generic's binding.
        || TYPES.contains(&value.trim_end_matches(['>', ',']).to_ascii_lowercase().as_str())
        || is_suffixed_number(value)
        || is_type_name(value.trim_end_matches(['<', '>']))
        || value.contains('.') && is_identifier_path(value)
        || value.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        // `100_000`: a number with digit separators.
        || value.starts_with(|c: char| c.is_ascii_digit())
            && value.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '_'))
}

/// A command line as prose quotes it: a program's name, then words, one of them an option
/// (`acas mcp --print-token`, `npm install -g tool`).
fn is_command_line(value: &str) -> bool {
    let mut words = value.split_whitespace();
    let program = words.next().unwrap_or("");
    let program_like = !program.is_empty()
        && program.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./".contains(&b));
    program_like
        && words.any(|w| {
            let option = w.strip_prefix("--").or_else(|| w.strip_prefix('-')).unwrap_or("");
            option.len() < w.len() && option.starts_with(|c: char| c.is_ascii_alphabetic())
        })
}

/// A number with a Rust type suffix: `4097u16`, `2i32`, `0x10_u8`, `1.5f64`.
fn is_suffixed_number(value: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64",
    ];
    let value = value.strip_prefix('-').unwrap_or(value);
    SUFFIXES.iter().any(|suffix| {
        value.strip_suffix(suffix).is_some_and(|n| {
            let n = n.trim_end_matches('_');
            let digits = n.strip_prefix("0x").map_or((n, false), |h| (h, true));
            !digits.0.is_empty()
                && digits.0.bytes().all(|b| {
                    b == b'_'
                        || if digits.1 { b.is_ascii_hexdigit() } else { b.is_ascii_digit() || b == b'.' }
                })
        })
    })
}

/// `a.b.c` where each part is an identifier: `_charset.UNKNOWN8BIT`, `settings.db_password`.
fn is_identifier_path(value: &str) -> bool {
    value.split('.').all(|part| {
        part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A name made of words, as people write them: `HttpRequestHandlerFactoryV3Impl`,
/// `accountHolderId42`, `POP3_SSL`. Split into words of letters perhaps followed by digits, at
/// least two thirds of the words have three letters or more; a random token breaks into short
/// pieces.
fn is_identifier_shaped(value: &str) -> bool {
    let parts: Vec<&str> =
        value.split(['_', '-', '.', '/', ':', '@', '#', '=', '\\']).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return false;
    }
    // A dotted path of three or more short names: `Microsoft.VisualStudio.VC.x86` (base64 has
    // no dots).
    let segments: Vec<&str> = value.split('.').collect();
    if segments.len() >= 3
        && segments.iter().all(|s| s.len() <= 24 && s.starts_with(|c: char| c.is_ascii_alphabetic()))
    {
        return true;
    }
    // Numbers (versions, sizes) are neither words nor pieces of a token.
    let parts: Vec<&str> = parts.into_iter().filter(|p| !p.bytes().all(|b| b.is_ascii_digit())).collect();
    if parts.is_empty() {
        return false;
    }
    let (mut words, mut short) = (0, 0);
    for part in parts {
        let b = part.as_bytes();
        let mut letters = 0;
        for i in 0..b.len() {
            let boundary = i > 0
                && b[i].is_ascii_alphabetic()
                && (b[i - 1].is_ascii_digit()
                    || b[i].is_ascii_uppercase() && b[i - 1].is_ascii_lowercase()
                    || b[i].is_ascii_uppercase()
                        && b[i - 1].is_ascii_uppercase()
                        && b.get(i + 1).is_some_and(u8::is_ascii_lowercase));
            if boundary {
                words += 1;
                short += usize::from(letters < 3);
                letters = 0;
            }
            letters += usize::from(b[i].is_ascii_alphabetic());
        }
        words += 1;
        short += usize::from(letters < 3);
    }
    short * 3 <= words
}

/// Amazon resource names: `arn:aws:secretsmanager:…:secret:prod/db-AbCdEf` says where a secret
/// is, not what it is.
fn is_arn(value: &str) -> bool {
    // `arn:partition:service:region:account:resource`; `arn:Zq8r…` is a value, not a name.
    value.starts_with("arn:") && value.split(':').count() >= 6
}

/// Authentication scheme names, given to `auth` and the like: `auth = "Basic"`.
fn is_auth_scheme(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "basic" | "bearer" | "digest" | "oauth" | "oauth2" | "ntlm" | "negotiate" | "token" | "none" | "jwt"
    )
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
/// `tuples` are the left-hand sides of tuple assignments, whose names [`tuple_assignments`]
/// pairs with their values.
fn assignments(rules: &Rules, text: &str, env_like: bool, tuples: &[Range<usize>], hits: &mut Vec<Hit>) {
    let bytes = text.as_bytes();
    let markers: Vec<Range<usize>> = rules.markers(text);
    let mut from = 0;
    while let Some(c) = rules.name.captures_at(text, from) {
        let whole = c.get(0).expect("group 0 is the match");
        let name = c.get(1).expect("the name always takes part");
        let mut op = c.get(2).expect("the operator always takes part").as_str();
        from = name.end().max(whole.start() + 1);
        if name.start() > 0 && is_name_byte(bytes[name.start() - 1]) {
            // The regex started inside a longer name (after a character it does not take).
            continue;
        }
        if markers.iter().any(|m| m.contains(&name.start()))
            || tuples.iter().any(|t| t.contains(&name.start()))
        {
            continue;
        }
        // `ProviderErrorKind::Auth => …` is a pattern, `Token::Ident("if")` a path: neither is an
        // assignment.
        if text[..name.start()].ends_with("::") || text[name.end()..].starts_with("::") {
            continue;
        }
        let mut end = whole.end();
        // `password: String::from("…")`, `api_key: k3y (rotated)`: what the pattern read as a
        // type ends inside a path or before a parenthesis, so the colon after the name is the
        // operator.
        if (op == ":" && bytes.get(end) == Some(&b':')
            || op == "("
                && bytes[..end - 1].ends_with(b" ")
                && !text[name.end()..end - 1].trim().ends_with(':'))
            && let Some(colon) = text[name.end()..end - 1].find(':')
        {
            end = name.end() + colon + 1;
            op = ":";
        }
        // `pub const PASSWORD_FLAG: some_long_type_name = 2i32`: a colon after a declared name
        // starts its type.
        if op == ":" {
            let line_start = line_start(text, name.start());
            let last = text[line_start..name.start()].split_whitespace().next_back();
            if matches!(last, Some("const" | "static" | "let" | "mut" | "var" | "val")) {
                continue;
            }
        }
        // `host:port`, `user:password@`, `a::b`: a colon mapping has a space or a quote after it.
        if op == ":" && !matches!(bytes.get(end), Some(b' ' | b'\t' | b'"' | b'\'' | b'`')) {
            continue;
        }
        let kind = if op == "(" {
            // A call passes a secret only to a setter or a builder: `.password("…")`,
            // `setToken("…")`, not `validate_password("…")`.
            let called = name.as_str().rsplit('.').next().unwrap_or("");
            let w = words(called);
            // A one-word callee is a setter only when it is the secret word itself
            // (`password(…)`), not a longer word ending in one (`splitpasswd(…)`).
            let setter =
                w.len() == 1 && word_kind(&w[0], None).is_some() && SECRET_WORDS.contains(&w[0].as_str())
                    || matches!(w.first().map(String::as_str), Some("set" | "with" | "use"));
            secret_name(called).filter(|_| setter)
        } else {
            // `token.SEMI`, `settings.db_password`: the last member is what is assigned.
            secret_name(name.as_str().rsplit('.').find(|s| !s.is_empty()).unwrap_or(name.as_str()))
        };
        let comparison = matches!(op, "==" | "!=" | "===" | "!==");
        let mut at = end;
        while at < bytes.len() && (bytes[at] == b' ' || bytes[at] == b'\t') {
            at += 1;
        }
        let assigning = matches!(op, "=" | ":=" | ":" | "=>");
        if let Some(kind) = kind.filter(|_| assigning) {
            // A collection of secrets (`passwords = ["…", "…"]`, `API_KEYS = {"a": "…"}`, `auth =
            // ("user", "…")`), or a fallback after code (`os.environ.get("PW") or "…"`).
            collection(text, at, kind, name.as_str(), hits);
            if let Some((value, false)) = value_at(text, at, false)
                && is_code(&text[value])
            {
                fallbacks(rules, text, at, kind, hits);
            }
        }
        if op == "(" && kind.is_some() && !single_argument(text, at) {
            continue;
        }
        let Some((value, quoted)) = value_at(text, at, op == "(") else { continue };
        let literal = &text[value.clone()];
        // `# comment` after `key: ` or `name = ` is a comment, not a value.
        let comment = !quoted && at > end && (literal.starts_with('#') || literal.starts_with("//"));
        let take = match kind {
            // A comparison with a literal checks a password against a hard-coded one
            // (`password == "logmein"`); a token compared is a tokenizer's (`token == "def"`)
            // unless shaped like a secret.
            Some(kind) if comparison => {
                quoted
                    && accepts(kind, literal)
                    && (matches!(kind, Name::Password | Name::Secret) || is_secret_shaped(literal))
            }
            Some(_) if comment => false,
            // Markdown code in documentation: `` `SECRET`: `secret` encrypts … ``.
            Some(_) if quoted && bytes[value.start - 1] == b'`' && is_secret_word(literal) => false,
            // Markdown code that is a command line: `` token: `acas mcp --print-token` prints it ``.
            Some(_) if quoted && bytes[value.start - 1] == b'`' && is_command_line(literal) => false,
            // `token("scheme")`, `"www-authenticate"`: a name passed to a call is not a secret.
            Some(_) if quoted && op == "(" && is_name_like(literal) => false,
            Some(_) if quoted && op == ":" && is_message(text, value.clone()) => false,
            // `correct.horse.battery`: words joined by dots are a passphrase when given to a
            // password's name; a module path has a name in it (`auth.hashers.PBKDF2Hasher`).
            Some(kind)
                if quoted
                    && is_dotted_name(literal, 3)
                    && !(kind == Name::Password
                        && literal.split('.').all(|p| p.bytes().all(|b| b.is_ascii_lowercase()))) =>
            {
                false
            }
            // `Token::new("if")`: a token read through a conversion is a lexer's unless shaped
            // like a secret or wrapped in a secret's type (`SecretString::from("…")`).
            Some(Name::Token)
                if quoted
                    && text[at..value.start].contains('(')
                    && !text[at..value.start].to_ascii_lowercase().contains("secret")
                    && !is_secret_shaped(literal) =>
            {
                false
            }
            Some(kind) if quoted => accepts(kind, literal),
            // `PIN: 4821`, `password: 20240917`: the name wins over the number's shape.
            Some(kind @ (Name::Password | Name::Pin))
                if is_numeric_secret(literal)
                    && numeric_secret_name(name.as_str())
                    && !text[name.end()..end].trim_end_matches(op).contains(':') =>
            {
                accepts(kind, literal)
            }
            Some(_) if is_sentence(literal) => false,
            // `PW=∞` in prose: a secret has letters or digits.
            Some(_) if !literal.bytes().any(|b| b.is_ascii_alphanumeric()) => false,
            Some(kind) => {
                // An identifier is a variable in code, a word a value in configuration.
                let word = literal.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && literal.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                let env_style = !name.as_str().chars().any(|c| c.is_ascii_lowercase());
                let line_rest = text[value.end..].split('\n').next().unwrap_or("").trim();
                // `TSPECIALS | WSP`: an expression of names.
                let expression = word && line_rest.starts_with(['|', '&', '+', '*', '/', '%', '^', '-', '<', '>', '?'])
                    // `stringify! {`, `vec![`: a macro call.
                    || literal.ends_with('!') && line_rest.starts_with(['{', '(', '['])
                    || literal.ends_with('!') && is_identifier_path(literal.trim_end_matches('!')) && text[value.end..].starts_with(['{', '(', '[']);
                // `password=hunter2pw` in a comment, a commit subject or a tool's message: a
                // word there is a value, not a variable.
                let line_start = line_start(text, name.start());
                let prose = is_prose_prefix(&text[line_start..name.start()])
                    && literal.chars().count() >= 4
                    && literal.bytes().any(|b| b.is_ascii_digit())
                    // `/// colon2_token: Colon2,`: a field of a code example.
                    && !matches!(line_rest, "," | ";")
                    && !is_secret_word(literal)
                    && !literal.eq_ignore_ascii_case(name.as_str());
                !is_code(literal)
                    && !expression
                    && accepts(kind, literal)
                    && (!word
                        || kind != Name::Key && (env_style || prose || op == ":" && line_rest.is_empty()))
            }
            None => false,
        };
        if take && !(kind == Some(Name::Key) && is_public_shape(literal)) {
            let kind = kind.expect("taken values have a kind");
            hits.push(Hit { range: value.clone(), kind: kind.label(), priority: 2 });
            if quoted {
                other_branch(text, value.end, kind, hits);
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
        let number = literal.starts_with("0x") || literal.starts_with("0b") || literal.starts_with("0o");
        let token_chars = literal.chars().all(|c| c.is_ascii_alphanumeric() || "+/=_.~-:@!#%&*?".contains(c));
        if op != "("
            && mixed
            && token_chars
            && !number
            && (quoted || !is_code(literal))
            && !is_identifier_shaped(literal)
            && !is_constant_name(literal)
            && !is_language_tag(literal)
            && !is_percent_encoded_text(literal)
            && !is_dotted_name(literal, 2)
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

/// Whether the text before a name on its line makes the line prose rather than code: a
/// comment (`# `, `// `, `/* `, `* `; not `#[…]` or `#include`), or words of a sentence with no
/// code punctuation that do not start with a keyword (`Fix login, `, `error secret from scanner
/// `, a commit line of the request's history; not `let `, `export `, `if x: `). Diff markers and the line numbers of
/// the request's code come off first.
fn is_prose_prefix(prefix: &str) -> bool {
    const CODE_WORDS: &[&str] = &[
        "let",
        "var",
        "const",
        "val",
        "export",
        "local",
        "my",
        "our",
        "set",
        "private",
        "public",
        "protected",
        "static",
        "final",
        "readonly",
        "declare",
        "def",
        "fn",
        "func",
        "if",
        "else",
        "elif",
        "return",
        "and",
        "or",
        "not",
        "in",
        "with",
        "async",
        "await",
        "yield",
        "unset",
        "ENV",
        "ARG",
        "RUN",
        "echo",
        "SET",
        "for",
        "while",
        "do",
        "then",
        "pub",
        "mut",
        "type",
        "typeset",
        "global",
        "string",
        "String",
        "int",
    ];
    static NUMBERED: OnceLock<Regex> = OnceLock::new();
    let numbered =
        NUMBERED.get_or_init(|| Regex::new(r"^[ \t]*(?:>>)?[ \t]*[0-9]+ \| ").expect("a valid pattern"));
    let p = numbered.find(prefix).map_or(prefix, |m| &prefix[m.end()..]);
    let p = p.trim_start().trim_start_matches(['+', '-']).trim_start();
    if p.starts_with("#[") || p.starts_with("#!") || p.starts_with("#include") || p.starts_with("#define") {
        return false;
    }
    if p.starts_with('#')
        || p.starts_with("//")
        || p.starts_with("/*")
        || p.starts_with("* ")
        || p.starts_with("<!--")
    {
        return true;
    }
    if p.contains(['(', ')', '{', '}', '[', ']', '=', ';', '$', '<', '>', '&', '|', '+', '`', '@']) {
        return false;
    }
    let words: Vec<&str> = p.split_whitespace().collect();
    let prose_words = words
        .iter()
        .filter(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            w.len() >= 2 && w.chars().all(|c| c.is_alphabetic())
        })
        .count();
    // A declaration or a statement starts with its keyword: `let `, `export `, `if x: `.
    let first = words.first().map(|w| w.trim_end_matches(':'));
    prose_words >= 2 && !first.is_some_and(|w| CODE_WORDS.contains(&w))
}

/// The other branch of a conditional value whose first branch was taken: `password = "dev"
/// if DEBUG else "…"`.
fn other_branch(text: &str, after_value: usize, kind: Name, hits: &mut Vec<Hit>) {
    let line_end = line_end(text, after_value);
    let rest = &text[after_value..line_end];
    let Some(i) = rest.find(" else ") else { return };
    if !rest[..i].trim_start_matches(['"', '\'']).trim_start().starts_with("if ") {
        return;
    }
    let at = after_value + i + " else ".len();
    let at = at + (text[at..line_end].len() - text[at..line_end].trim_start().len());
    if let Some((value, true)) = value_at(text, at, true)
        && accepts(kind, &text[value.clone()])
    {
        hits.push(Hit { range: value, kind: kind.label(), priority: 2 });
    }
}

/// Longest collection or argument list read item by item.
const MAX_ITEMS_LEN: usize = 16_384;

/// The items of a bracketed list starting at `open` (`(`, `[` or `{`), or, when `open` holds
/// none of them, of a bare list running to the end of the line or statement (`"a", "b"`): each
/// item's range with its spaces trimmed, and the end of the list. Strings are skipped whole, so
/// that commas and brackets inside them do not count.
fn list_items(text: &str, open: usize) -> Option<(Vec<Range<usize>>, usize)> {
    let bytes = text.as_bytes();
    let bracketed = matches!(bytes.get(open), Some(b'(' | b'[' | b'{'));
    let mut i = if bracketed { open + 1 } else { open };
    let (mut depth, mut start, mut items) = (0usize, i, Vec::new());
    let limit = (open + MAX_ITEMS_LEN).min(bytes.len());
    let push = |from: usize, to: usize, items: &mut Vec<Range<usize>>| {
        let item = &text[from..to];
        let lead = item.len() - item.trim_start().len();
        let range = from + lead..from + lead + item.trim().len();
        if !range.is_empty() {
            items.push(range);
        }
    };
    while i < limit {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                let (content, _) = value_at(text, i, true)?;
                let triple = content.start - i == 3;
                // A string left open runs to the end of its line or of the text: no closing
                // quote to step over there.
                i = (content.end + if triple { 3 } else { 1 }).min(bytes.len());
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth > 0 => depth -= 1,
            b')' | b']' | b'}' => {
                // A bare list ends with the block or call that holds it (`{ a, b := "x", "y" }`).
                push(start, i, &mut items);
                return Some((items, if bracketed { i + 1 } else { i }));
            }
            b',' if depth == 0 => {
                push(start, i, &mut items);
                start = i + 1;
            }
            b'\n' | b';' if depth == 0 && !bracketed => {
                push(start, i, &mut items);
                return Some((items, i));
            }
            _ => {}
        }
        i += 1;
    }
    if bracketed {
        return None;
    }
    push(start, i, &mut items);
    Some((items, i))
}

/// The contents of the string literal that is the whole of `item` (prefixes such as `r"…"`
/// allowed).
fn literal_item(text: &str, item: &Range<usize>) -> Option<Range<usize>> {
    let (content, true) = value_at(text, item.start, true)? else { return None };
    (literal_item_prefix(text, item) == Some(item.end)).then_some(content)
}

/// Whether an item is a keyword argument (`name=value`), not a positional one.
fn is_keyword_item(text: &str, item: &Range<usize>) -> bool {
    let item = &text[item.clone()];
    let name_len = item.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
    name_len > 0
        && item[name_len..].trim_start().starts_with('=')
        && !item[name_len..].trim_start().starts_with("==")
}

/// The value of a dictionary item (`"k": v`, `k: v`, `"k" => v`), or the item itself.
fn item_value(text: &str, item: &Range<usize>) -> Range<usize> {
    let key_end = match literal_item_prefix(text, item) {
        Some(end) => end,
        None => {
            item.start
                + text[item.clone()].bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count()
        }
    };
    let rest = &text[key_end..item.end];
    let trimmed = rest.trim_start();
    let op = if trimmed.starts_with("=>") {
        2
    } else if trimmed.starts_with(':') {
        1
    } else {
        return item.clone();
    };
    let from = key_end + (rest.len() - trimmed.len()) + op;
    let value = &text[from..item.end];
    from + (value.len() - value.trim_start().len())..item.end
}

/// Where a string literal that starts `item` ends (after its closing quote, or after the
/// closing parenthesis of a conversion wrapping it: `String::from("…")`).
fn literal_item_prefix(text: &str, item: &Range<usize>) -> Option<usize> {
    let (content, true) = value_at(text, item.start, true)? else { return None };
    let quote = if content.start >= item.start + 3
        && matches!(&text[content.start - 3..content.start], "\"\"\"" | "'''")
    {
        3
    } else {
        1
    };
    let end = content.end + quote;
    if end < item.end && text[item.start..content.start].contains('(') {
        let rest = text[end..item.end].trim();
        if rest.starts_with([')', ',']) && rest.ends_with(')') {
            return Some(item.end);
        }
    }
    Some(end).filter(|end| *end <= item.end)
}

/// Secrets in a collection given to a secret-like name: every string item of a list, set or
/// tuple, every string value of a dictionary. A pair given to an `auth` name is a user and a
/// password: only the second goes.
fn collection(text: &str, at: usize, kind: Name, name: &str, hits: &mut Vec<Hit>) {
    let bytes = text.as_bytes();
    // `set([…])`, `frozenset({…})`, `new Set([…])`, `vec![…]`, `List.of(…)`: a collection too.
    let mut open = at;
    for wrapper in [
        "new Set(",
        "set(",
        "frozenset(",
        "tuple(",
        "list(",
        "vec!",
        "List.of(",
        "Set.of(",
        "Arrays.asList(",
        "&",
    ] {
        if text[at..].starts_with(wrapper) {
            open = at + wrapper.len();
            break;
        }
    }
    if !matches!(bytes.get(open), Some(b'[' | b'{' | b'(')) {
        return;
    }
    let Some((items, _)) = list_items(text, open) else { return };
    let literals: Vec<Range<usize>> =
        items.iter().filter_map(|item| literal_item(text, &item_value(text, item))).collect();
    let pair = words(name).last().is_some_and(|w| w == "auth") && items.len() == 2;
    for (i, value) in literals.iter().enumerate() {
        let literal = &text[value.clone()];
        if pair && i == 0
            || !accepts(kind, literal)
            || is_code_item(kind, literal)
            || is_dotted_name(literal, 3)
        {
            continue;
        }
        hits.push(Hit { range: value.clone(), kind: kind.label(), priority: 2 });
    }
}

/// Items of a collection given to a `tokens` name that are words or symbols of a language
/// (a tokenizer's table), not tokens of a service.
fn is_code_item(kind: Name, literal: &str) -> bool {
    kind == Name::Token
        && (literal.len() < 8
            || !literal.bytes().any(|b| b.is_ascii_alphanumeric())
            || is_identifier_shaped(literal) && !literal.bytes().any(|b| b.is_ascii_digit()))
}

/// Literals given as a fallback to a secret-like name whose value is code:
/// `os.environ.get("PW") or "…"`, `process.env.PW || "…"`, `?? "…"`, `unwrap_or("…")`, and the
/// default argument of `getenv("PW", "…")`, `environ.get("PW", "…")`.
fn fallbacks(rules: &Rules, text: &str, at: usize, kind: Name, hits: &mut Vec<Hit>) {
    let end = line_end(text, at);
    for m in rules.fallback.find_iter(&text[at..end]) {
        // Only a fallback of the whole value: `getpass("… %s" % (host or "localhost"))` is not.
        if depth(text, at, at + m.start()) != Some(0) {
            continue;
        }
        if let Some((value, true)) = value_at(text, at + m.end(), true)
            && accepts(kind, &text[value.clone()])
        {
            hits.push(Hit { range: value, kind: kind.label(), priority: 2 });
        }
    }
    for c in rules.call.captures_iter(&text[at..end]) {
        let callee = c.get(1).expect("the callee always takes part").as_str();
        if !is_lookup(callee) {
            continue;
        }
        let open = at + c.get(0).expect("group 0 is the match").end() - 1;
        let Some((items, _)) = list_items(text, open) else { continue };
        if let Some(value) = items.get(1).and_then(|item| literal_item(text, item))
            && accepts(kind, &text[value.clone()])
        {
            hits.push(Hit { range: value, kind: kind.label(), priority: 2 });
        }
    }
}

/// How deep in brackets byte `to` lies, counting from `from`, strings skipped; `None` if a
/// string is left open.
fn depth(text: &str, from: usize, to: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut i, mut depth) = (from, 0usize);
    while i < to {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                let (content, _) = value_at(text, i, true)?;
                i = content.end + if content.start - i == 3 { 3 } else { 1 };
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Some(depth)
}

/// A call that looks a name up with a default: `getenv`, `get`, `fetch`, `environ.get`.
fn is_lookup(callee: &str) -> bool {
    let last = callee.rsplit('.').next().unwrap_or(callee);
    matches!(
        last,
        "getenv" | "get" | "fetch" | "get_env" | "getEnv" | "env" | "setdefault" | "getattr" | "GetEnv"
    )
}

/// Whether a call's argument list opening at `at` (just past the `(`) holds one argument.
fn single_argument(text: &str, at: usize) -> bool {
    list_items(text, at.saturating_sub(1)).is_none_or(|(items, _)| items.len() <= 1)
}

/// Tuple and destructuring assignments: `user, password = "admin", "…"`, `const [user, pass]
/// = ["a", "…"]`, `user, pass := "a", "…"`. Each secret-like name on the left takes the string
/// in its position on the right. Returns the left-hand sides.
fn tuple_assignments(rules: &Rules, text: &str, hits: &mut Vec<Hit>) -> Vec<Range<usize>> {
    let mut sides = Vec::new();
    for c in rules.tuple.captures_iter(text) {
        let whole = c.get(0).expect("group 0 is the match");
        if text.as_bytes().get(whole.end()) == Some(&b'=') || text[..whole.end()].ends_with("==") {
            continue;
        }
        // A statement after `if x:` or `{` starts a tuple; a parameter list (`f(a: int, b=…`)
        // does not.
        let line_start = line_start(text, whole.start());
        let before = &text[line_start..whole.start()];
        if before.matches('(').count() > before.matches(')').count() {
            continue;
        }
        let names = c.get(1).expect("the names always take part");
        sides.push(names.range());
        // A marker an earlier pass wrote stands first: its kind is not a name, and the places
        // are no longer known.
        if text[..names.start()].ends_with("[REDACTED:") {
            continue;
        }
        let Some((items, _)) = list_items(text, whole.end()) else { continue };
        pair_by_position(text, &tuple_side(names.as_str()), &items, hits);
    }
    sides
}

/// One place of the left-hand side of a tuple assignment: a name, or a nested tuple.
enum Place<'a> {
    Name(&'a str),
    Tuple(Vec<Place<'a>>),
}

/// The places of a left-hand side (`user, (password, host)`, `a, [b, c]`); brackets left open
/// or closed once too often are ignored.
fn tuple_side(side: &str) -> Vec<Place<'_>> {
    let mut stack: Vec<Vec<Place<'_>>> = vec![Vec::new()];
    let bytes = side.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' => stack.push(Vec::new()),
            b')' | b']' if stack.len() > 1 => {
                let inner = stack.pop().expect("more than one level");
                stack.last_mut().expect("one level left").push(Place::Tuple(inner));
            }
            b if b.is_ascii_alphabetic() || b == b'_' || b == b'$' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.'))
                    .count();
                stack.last_mut().expect("one level at least").push(Place::Name(&side[i..i + len]));
                i += len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    while stack.len() > 1 {
        let inner = stack.pop().expect("more than one level");
        stack.last_mut().expect("one level left").extend(inner);
    }
    stack.pop().unwrap_or_default()
}

/// Each secret-like name of `places` takes the string literal in its position among `items`;
/// a nested tuple takes the items of the bracketed list in its position.
fn pair_by_position(text: &str, places: &[Place<'_>], items: &[Range<usize>], hits: &mut Vec<Hit>) {
    for (place, item) in places.iter().zip(items) {
        match place {
            Place::Name(name) => {
                let Some(kind) = secret_name(name) else { continue };
                if let Some(value) = literal_item(text, item)
                    && accepts(kind, &text[value.clone()])
                {
                    hits.push(Hit { range: value, kind: kind.label(), priority: 2 });
                }
            }
            Place::Tuple(inner) => {
                if matches!(text.as_bytes().get(item.start), Some(b'(' | b'['))
                    && let Some((nested, _)) = list_items(text, item.start)
                {
                    pair_by_position(text, inner, &nested, hits);
                }
            }
        }
    }
}

/// Credentials passed by position: the second argument of a call whose name says it
/// authenticates (`HTTPBasicAuth("admin", "…")`, `aiohttp.BasicAuth(…)`, `smtp.login(user,
/// "…")`, `Credentials(…)`), the third of a DB-API `connect(host, user, password, …)`, and the
/// default of a lookup whose key is secret-like (`os.getenv("DB_PASSWORD", "…")`).
fn calls(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    for c in rules.call.captures_iter(text) {
        let callee = c.get(1).expect("the callee always takes part").as_str();
        let last = callee.rsplit('.').next().unwrap_or(callee);
        let last_word = words(last).pop().unwrap_or_default();
        let position = if matches!(
            last_word.as_str(),
            "auth" | "authenticate" | "login" | "logon" | "credential" | "credentials" | "creds" | "basic"
        ) {
            1
        } else if last == "connect" {
            2
        } else if is_lookup(callee) {
            1
        } else {
            continue;
        };
        let open = c.get(0).expect("group 0 is the match").end() - 1;
        // A call left open on the line being edited: its arguments run to the end of the line.
        let Some((items, _)) = list_items(text, open).or_else(|| list_items(text, open + 1)) else {
            continue;
        };
        let positional: Vec<&Range<usize>> = items.iter().filter(|i| !is_keyword_item(text, i)).collect();
        if is_lookup(callee) && last != "login" {
            // A lookup's default is a secret only when the key names one.
            let key = positional.first().and_then(|item| literal_item(text, item));
            if key.is_none_or(|k| secret_name(&text[k]).is_none()) {
                continue;
            }
        } else if last == "connect"
            && (positional.len() < 3 || positional.iter().any(|i| text[(*i).clone()].contains("::")))
        {
            // `connect(Service::UploadPack, Protocol::V1, b"…")`: a protocol, not a login.
            continue;
        }
        // A port among the arguments (`connect("host", 22, "root", "…")`) is a position too:
        // user and password follow it.
        let position =
            match positional.iter().position(|i| text[(*i).clone()].bytes().all(|b| b.is_ascii_digit())) {
                Some(port) if last == "connect" => port + 2,
                _ => position,
            };
        // `basic_auth("user", Some("…"))`: an optional value is the value.
        let literal = |item: &Range<usize>| {
            literal_item(text, item).or_else(|| {
                let inner = text[item.clone()].strip_prefix("Some(")?.strip_suffix(')')?;
                let start = item.start + "Some(".len();
                literal_item(text, &(start..start + inner.len()))
            })
        };
        let Some(value) = positional.get(position).and_then(|item| literal(item)) else {
            continue;
        };
        // `_parse_www_authenticate(response, "www-authenticate")`: a header name.
        if accepts(Name::Password, &text[value.clone()]) && !is_name_like(&text[value.clone()]) {
            hits.push(Hit { range: value, kind: "password", priority: 2 });
        }
    }
}

/// Calls that set a value under a name given as a string: the name is the key, the next
/// argument its value.
const SETTERS: &[&str] = &[
    "setattr",
    "putenv",
    "setenv",
    "Setenv",
    "set_var",
    "set",
    "put",
    "insert",
    "setdefault",
    "setProperty",
    "setItem",
    "Set",
    "Add",
    "add_header",
    "header",
];

/// Names given as strings with their value next to them: setters (`setattr(cfg, "password",
/// "…")`, `os.putenv("DB_PASSWORD", "…")`, `env::set_var`, `m.set("password", "…")`), argument
/// lists (`["--password", "…"]`, `["-p", "…"]`, `pass:…`), query strings (`?password=…`),
/// connection-string fields (`Password=…;`) and Go DSNs (`user:pw@tcp(…)`).
fn name_value_pairs(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    for c in rules.quoted_pair.captures_iter(text) {
        let whole = c.get(0).expect("group 0 is the match");
        let name = c.get(2).expect("the name always takes part").as_str();
        let (kind, dashed) = match name.strip_prefix('-') {
            Some(flag) => {
                let flag = flag.trim_start_matches('-');
                let kind = if flag == "p" && !name.starts_with("--") {
                    Some(Name::Password)
                } else {
                    secret_name(flag)
                };
                (kind, true)
            }
            None => {
                // Only as an argument of a setter: `{"password", "x"}` is a set of two strings.
                let line_start = line_start(text, whole.start());
                let before = &text[line_start..whole.start()];
                let Some(open) = before.rfind('(') else { continue };
                let callee = before[..open].trim_end();
                let callee =
                    callee.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
                if !SETTERS.contains(&callee) {
                    continue;
                }
                (secret_name(name), false)
            }
        };
        let Some(kind) = kind else { continue };
        let Some((value, true)) = value_at(text, whole.end(), true) else { continue };
        let literal = &text[value.clone()];
        // `-p 8080:80` is a port, `"-p", "--pattern"` two flags.
        if dashed && (!literal.bytes().any(|b| b.is_ascii_alphabetic()) || literal.starts_with('-')) {
            continue;
        }
        if accepts(kind, literal) && !is_sentence(literal) {
            hits.push(Hit { range: value, kind: kind.label(), priority: 2 });
        }
    }
    for c in rules.query.captures_iter(text) {
        let name = c.get(1).expect("the name always takes part").as_str();
        let value = c.get(2).expect("the value always takes part");
        if let Some(kind) = secret_name(name)
            && accepts(kind, value.as_str())
        {
            hits.push(Hit { range: value.range(), kind: kind.label(), priority: 2 });
        }
    }
    for c in rules.connection_field.captures_iter(text) {
        // A field among others: `;` before or after it.
        let field = |i: usize| c.get(i).is_some_and(|m| m.as_str() == ";");
        if !(field(1) || field(4)) {
            continue;
        }
        let value = c.get(3).expect("the value always takes part");
        let trimmed = value.as_str().trim_end();
        // `echo password=b;` in a test script: one letter is an example.
        if trimmed.chars().count() >= 3 && accepts(Name::Password, trimmed) && !is_code(trimmed) {
            hits.push(Hit {
                range: value.start()..value.start() + trimmed.len(),
                kind: "password",
                priority: 2,
            });
        }
    }
    for c in rules.go_dsn.captures_iter(text).chain(rules.pass_argument.captures_iter(text)) {
        let value = c.get(1).expect("the password always takes part");
        if accepts(Name::Password, value.as_str()) {
            hits.push(Hit { range: value.range(), kind: "password", priority: 2 });
        }
    }
}

/// Defaults of shell and Compose parameter expansions, `${DB_PASSWORD:-…}`, `${PW-…}`,
/// `${PW:=…}`, when the variable or the name they are given to is secret-like.
fn shell_defaults(rules: &Rules, text: &str, hits: &mut Vec<Hit>) {
    for c in rules.shell_default.captures_iter(text) {
        let whole = c.get(0).expect("group 0 is the match");
        let variable = c.get(1).expect("the variable always takes part").as_str();
        let value = c.get(2).expect("the default always takes part");
        let line_start = line_start(text, whole.start());
        let before = text[line_start..whole.start()].trim_end_matches([' ', '\t', '"', '\'']);
        let before = before.strip_suffix([':', '=']).unwrap_or(before).trim_end_matches(['"', '\'']);
        // After the last character that is not part of a name (of whatever width).
        let owner_start = before
            .char_indices()
            .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let kind = secret_name(variable).or_else(|| secret_name(&before[owner_start..]));
        if let Some(kind) = kind
            && accepts(kind, value.as_str())
        {
            hits.push(Hit { range: value.range(), kind: kind.label(), priority: 2 });
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
    let at = at + string_prefix(&bytes[at.min(bytes.len())..]);
    let first = *bytes.get(at)?;
    if matches!(first, b'"' | b'\'') && bytes.get(at + 1) == Some(&first) && bytes.get(at + 2) == Some(&first)
    {
        // A triple-quoted string (Python): its contents may hold quotes and span lines.
        let close = [first; 3];
        let limit = (at + 3 + MAX_QUOTED_LEN).min(bytes.len());
        return match bytes[at + 3..limit].windows(3).position(|w| w == close) {
            Some(end) => Some((at + 3..at + 3 + end, true)),
            None if limit == bytes.len() => unterminated(text, at + 3),
            None => None,
        };
    }
    if let Some((open, hashes)) = rust_raw_string(&bytes[at..]) {
        // A Rust raw string, `r#"…"#`: it ends at a quote followed by as many `#`.
        let from = at + open;
        let limit = (from + MAX_QUOTED_LEN).min(bytes.len());
        let mut close = vec![b'"'];
        close.extend(std::iter::repeat_n(b'#', hashes));
        return match bytes[from..limit].windows(close.len()).position(|w| w == close.as_slice()) {
            Some(end) => Some((from..from + end, true)),
            None => unterminated(text, from),
        };
    }
    if matches!(first, b'"' | b'\'' | b'`') {
        let mut i = at + 1;
        while i < bytes.len() && i - at <= MAX_QUOTED_LEN {
            match bytes[i] {
                b'\\' => i += 2,
                b'\n' => return opens(text, at).then(|| unterminated(text, at + 1)).flatten(),
                b if b == first => return Some((at + 1..i, true)),
                _ => i += 1,
            }
        }
        return if i >= bytes.len() && opens(text, at) { unterminated(text, at + 1) } else { None };
    }
    if only_quoted {
        return None;
    }
    let line_end = line_end(text, at);
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

/// A string left open on its line (the line being edited): its value runs to the end of the
/// line, so that a half-typed secret goes whole.
fn unterminated(text: &str, from: usize) -> Option<(Range<usize>, bool)> {
    let line_end = line_end(text, from);
    let end = from + text[from..line_end].trim_end().len();
    (end > from).then_some((from..end, true))
}

/// Whether the quote at `at` can open a string: an even number of the same quotes before it on
/// its line (`getpass('Password: ', stream)`: the quote after `Password: ` closes one).
fn opens(text: &str, at: usize) -> bool {
    let line_start = line_start(text, at);
    let quote = text.as_bytes()[at];
    text.as_bytes()[line_start..at].iter().filter(|b| **b == quote).count() % 2 == 0
}

/// The length of the opening of a Rust raw string (`r#"`, `br##"`) starting `rest`, and its
/// number of `#`.
fn rust_raw_string(rest: &[u8]) -> Option<(usize, usize)> {
    let r = usize::from(rest.first() == Some(&b'b'));
    if rest.get(r) != Some(&b'r') {
        return None;
    }
    let hashes = rest[r + 1..].iter().take_while(|b| **b == b'#').count();
    (hashes > 0 && rest.get(r + 1 + hashes) == Some(&b'"')).then_some((r + 2 + hashes, hashes))
}

/// Length of a Python string prefix (`r"…"`, `b'…'`, `f"…"`, `rb"…"`) or of a conversion that
/// wraps a literal (`SecretStr("…")`, `String::from("…")`, `[]byte("…")`, `bytes.fromhex("…")`,
/// `Buffer.from("…", "utf8")`, `new String("…")`, `Field(default="…")`) that starts `rest`, when
/// a quote follows it; 0 otherwise.
fn string_prefix(rest: &[u8]) -> usize {
    const WRAPPERS: &[&str] = &[
        "SecretStr(",
        "SecretBytes(",
        "SecretString::new(",
        "SecretString::from(",
        "Secret::new(",
        "String::from(",
        "str(",
        "Field(default=",
        "field(default=",
        "Field(",
        "bytes(",
    ];
    let quote_at = |n: usize| matches!(rest.get(n), Some(b'"' | b'\''));
    for w in WRAPPERS {
        if rest.starts_with(w.as_bytes()) {
            let after = w.len() + python_prefix(&rest[w.len()..]);
            if quote_at(after) {
                return after;
            }
        }
    }
    if let Some(after) = conversion(rest) {
        return after;
    }
    let n = python_prefix(rest);
    if quote_at(n) { n } else { 0 }
}

/// Where the literal starts when `rest` starts with a conversion of one literal argument
/// (`[]byte("…")`, `bytes.fromhex("…")`, `String::from("…")`, `Buffer.from("…", "hex")`,
/// `Secret::new("…")`, `new String("…")`, `Some("…")`): a value read through it is the literal's.
/// A call that fetches a value (`getenv("X")`, `input("…")`, `_("…")`) is not a conversion.
fn conversion(rest: &[u8]) -> Option<usize> {
    static CALL: OnceLock<regex::bytes::Regex> = OnceLock::new();
    let call = CALL.get_or_init(|| {
        regex::bytes::Regex::new(
            r"^(new[ \t]+)?(\[[0-9]*\](?:byte|rune)|[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::)[A-Za-z_][A-Za-z0-9_]*)*)[ \t]*\([ \t]*",
        )
        .expect("a valid pattern")
    });
    let c = call.captures(rest.get(..rest.len().min(120))?)?;
    let callee = std::str::from_utf8(c.get(2)?.as_bytes()).ok()?;
    let new = c.get(1).is_some();
    let segments: Vec<&str> = callee.split(['.', ':']).filter(|s| !s.is_empty()).collect();
    let (first, last) = (*segments.first()?, *segments.last()?);
    let type_like = first.starts_with(|c: char| c.is_ascii_uppercase())
        || matches!(first, "bytes" | "bytearray" | "binascii" | "base64" | "hex" | "str" | "std" | "codecs");
    let converts = callee.starts_with('[')
        || matches!(callee, "bytes" | "bytearray" | "str" | "string" | "String" | "Some" | "Ok" | "unhexlify" | "atob")
        || new && type_like
        || type_like
            && matches!(
                last,
                "from" | "new" | "of" | "valueOf" | "fromhex" | "from_hex" | "unhexlify" | "b64decode"
                    | "urlsafe_b64decode" | "decode" | "from_str" | "from_utf8" | "copyFrom" | "from_static"
            )
        // A type named for what it holds: `SecretBox("…")`, `Password("…")`, `ApiKey("…")`.
        || segments.len() == 1 && is_type_name(callee) && secret_name(callee).is_some();
    if !converts {
        return None;
    }
    let open = c.get(0)?.end();
    let at = open + python_prefix(&rest[open..]);
    let quote = *rest.get(at)?;
    if !matches!(quote, b'"' | b'\'' | b'`') {
        return None;
    }
    // One argument, perhaps with an encoding after it: `Buffer.from("…", "base64")`.
    let mut i = at + 1;
    while i < rest.len() && rest[i] != quote && rest[i] != b'\n' {
        i += if rest[i] == b'\\' { 2 } else { 1 };
    }
    if i >= rest.len() || rest[i] == b'\n' {
        // A call left open on the line being edited.
        return Some(at);
    }
    let after = &rest[i + 1..];
    let after = &after[after.iter().take_while(|b| matches!(b, b' ' | b'\t')).count()..];
    let single = after.starts_with(b")") || after.starts_with(b".") || {
        static ENCODING: OnceLock<regex::bytes::Regex> = OnceLock::new();
        ENCODING
            .get_or_init(|| {
                regex::bytes::Regex::new(r#"^,[ \t]*["'][A-Za-z0-9_-]{1,12}["'][ \t]*\)"#)
                    .expect("a valid pattern")
            })
            .is_match(after)
    };
    single.then_some(at)
}

/// Length of the letters of a Python string prefix starting `rest` (0 to 2 letters).
fn python_prefix(rest: &[u8]) -> usize {
    rest.iter()
        .take(2)
        .take_while(|b| matches!(b, b'r' | b'R' | b'b' | b'B' | b'f' | b'F' | b'u' | b'U'))
        .count()
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
    &text[line_start(text, range.start)..line_end(text, range.end)]
}

/// How far the line around a place is read, either side: a longer line (minified code, a
/// generated one-line file) is read as lines of this length around each place, so that the
/// work done for each candidate is bounded and the whole text is read in linear time.
const LINE_REACH: usize = 1024;

/// Where the line holding `at` starts, at most [`LINE_REACH`] bytes back.
fn line_start(text: &str, at: usize) -> usize {
    let from = floor_char(text, at.saturating_sub(LINE_REACH));
    step(at - from);
    text[from..at].rfind('\n').map_or(from, |i| from + i + 1)
}

/// Where the line holding `at` ends, at most [`LINE_REACH`] bytes on.
fn line_end(text: &str, at: usize) -> usize {
    let to = floor_char(text, at.saturating_add(LINE_REACH).min(text.len())).max(at);
    step(to - at);
    text[at..to].find('\n').map_or(to, |i| at + i)
}

/// `at`, or the start of the character holding it.
fn floor_char(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
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

/// Ids of vendored rules that could not be compiled, with why (for tests and diagnostics;
/// compiles every rule).
pub fn skipped_rules() -> Vec<(String, String)> {
    rules()
        .leaks
        .iter()
        .filter_map(|rule| rule.compiled().err().map(|e| (rule.id.to_owned(), e.to_owned())))
        .collect()
}

/// How many vendored rules are in use (compiles every rule).
pub fn vendored_rules() -> usize {
    rules().leaks.iter().filter(|rule| rule.compiled().is_ok()).count()
}

mod encoded;
mod positional;
mod wordlike;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;
