//! Keys and tokens passed by position to a call that says what they are: a key in hex given to
//! a MAC or a cipher (`hmac.new(b"9f86…", …)`, `AES.new(bytes.fromhex("…"))`,
//! `crypto.createHmac('sha256', '…')`, `HmacSha256::new_from_slice(&hex::decode("…"))`), and a
//! token given to a service's client after its account (`Client(account_sid, "…")`).
//!
//! Only literals in the call's own argument list on its line are read; a key built elsewhere and
//! passed as a variable is the variable's assignment's business.

use std::sync::OnceLock;

use regex::Regex;

use super::{Hit, LINE_REACH, floor_char, is_hex, line_end, looks_like_token, step};

/// Shortest key in hex read from a crypto call: 16 bytes.
const MIN_HEX_KEY: usize = 32;

/// The end of the argument list opened at `open` (the index of its `(`), or the end of the line
/// (at most [`LINE_REACH`] on) when it does not close there.
fn arguments_end(text: &str, open: usize) -> usize {
    let end = line_end(text, open).min(floor_char(text, (open + LINE_REACH).min(text.len())));
    let mut depth = 0usize;
    let mut quote = None;
    let bytes = text.as_bytes();
    let mut i = open;
    while i < end {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' | b'`' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    step(end - open);
    end
}

/// Quoted literals in `text[from..to]`, as ranges of their contents.
fn literals(text: &str, from: usize, to: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    static LITERAL: OnceLock<Regex> = OnceLock::new();
    let literal = LITERAL
        .get_or_init(|| Regex::new(r#""([^"\\\n]*)"|'([^'\\\n]*)'|`([^`\\\n]*)`"#).expect("a valid pattern"));
    literal.captures_iter(&text[from..to]).filter_map(move |c| {
        let m = c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3))?;
        Some(from + m.start()..from + m.end())
    })
}

/// Keys in hex passed to a MAC or a cipher, and tokens passed to a service's client.
pub(super) fn key_arguments(text: &str, hits: &mut Vec<Hit>) {
    // The names each pattern must find (it matches case by case): most texts hold none of them,
    // and are not searched, nor the patterns compiled.
    if CRYPTO_NAMES.iter().any(|n| text.contains(n)) {
        crypto_keys(text, hits);
    }
    if text.contains("Client") {
        client_tokens(text, hits);
    }
}

/// A literal every match of [`crypto_keys`]' pattern holds.
const CRYPTO_NAMES: [&str; 15] = [
    "hmac",
    "HMAC",
    "Hmac",
    "createDecipheriv",
    "AES",
    "Fernet",
    "ChaCha20",
    "Cipher",
    "Blowfish",
    "DES3",
    "TripleDES",
    "Poly1305",
    "SecretKeySpec",
    "new_from_slice",
    "new_varkey",
];

fn crypto_keys(text: &str, hits: &mut Vec<Hit>) {
    static CRYPTO: OnceLock<Regex> = OnceLock::new();
    let crypto = CRYPTO.get_or_init(|| {
        Regex::new(
            r"\b(?:hmac|HMAC|Hmac\w*|createHmac|createCipheriv|createDecipheriv|AES(?:GCM|SIV|CCM|_?256)?|Fernet|X?ChaCha20\w*|Cipher|Blowfish|DES3|TripleDES|Poly1305|SecretKeySpec|new_from_slice|new_varkey)(?:[ \t]*(?:\.|::)[ \t]*(?:new|create|init)\w*)?[ \t]*\(",
        )
        .expect("a valid pattern")
    });
    for m in crypto.find_iter(text) {
        let open = m.end() - 1;
        let end = arguments_end(text, open);
        for value in literals(text, open, end) {
            let v = text[value.clone()].trim_start_matches("0x");
            if v.len() >= MIN_HEX_KEY && is_hex(v) {
                hits.push(Hit { range: value.end - v.len()..value.end, kind: "key", priority: 2 });
            }
        }
    }
}

fn client_tokens(text: &str, hits: &mut Vec<Hit>) {
    static CLIENT: OnceLock<Regex> = OnceLock::new();
    let client =
        CLIENT.get_or_init(|| Regex::new(r"\b(?:[A-Za-z_][\w.]*)?Client[ \t]*\(").expect("a valid pattern"));
    for m in client.find_iter(text) {
        let open = m.end() - 1;
        let end = arguments_end(text, open);
        // The first argument names the account (`account_sid`, `"AC…"`); a token after it goes.
        let first_comma = text[open..end].find(',').map(|i| open + i);
        let Some(after) = first_comma else { continue };
        for value in literals(text, after, end) {
            let v = &text[value.clone()];
            if v.len() >= MIN_HEX_KEY && is_hex(v) || looks_like_token(v, 24) && !v.contains(['/', '.', ':'])
            {
                hits.push(Hit { range: value, kind: "token", priority: 2 });
            }
        }
    }
}
