//! Stable fingerprints: FNV-1a over a normalised message, the category and the symbol path.
//!
//! Normalising removes what varies between occurrences of the same mistake: positions and
//! other numbers, and identifiers quoted in backticks. Punctuation in backticks (`` `)` ``)
//! stays, since it is the essence of a syntax message.

use super::Category;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// The message with numbers replaced by `#` and quoted identifiers by `_`.
pub(crate) fn normalise(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        if c == '`'
            && let Some(close) = rest[1..].find('`')
        {
            let inner = &rest[1..1 + close];
            let word = inner.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$');
            out.push('`');
            out.push_str(if word { "_" } else { inner });
            out.push('`');
            rest = &rest[close + 2..];
            continue;
        }
        if c.is_ascii_digit() {
            out.push('#');
            rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':');
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// 16 hex digits identifying a diagnostic across unrelated edits.
pub fn fingerprint(message: &str, category: Category, symbol: Option<&str>) -> String {
    let mut h = fnv1a(FNV_OFFSET, normalise(message).as_bytes());
    h = fnv1a(h, &[0]);
    h = fnv1a(h, category.as_str().as_bytes());
    h = fnv1a(h, &[0]);
    h = fnv1a(h, symbol.unwrap_or("").as_bytes());
    format!("{h:016x}")
}
