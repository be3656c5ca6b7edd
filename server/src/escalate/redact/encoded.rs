//! Secrets written in an encoding of the text around them: JSON escaped inside a string
//! (`"{\"password\":\"…\"}"`, `{\\"token\\": \\"…\\"}` escaped twice, `{&quot;password&quot;:
//! &quot;…&quot;}` in HTML), and a secret's characters written as codes and given to a secret's
//! name (`String.fromCharCode(104, 117, …)`, `bytes([104, …])`, `"\x68\x75…"`, `"\u0068…"`).
//!
//! The key decides, as it does for plain JSON: the value of a secret-like key goes whatever its
//! shape. Encodings that hide a value's characters under a transformation (base32, rot13, a
//! cipher) are not read.

use std::sync::OnceLock;

use regex::Regex;
use regex::bytes::Regex as BytesRegex;

use super::{Hit, MAX_QUOTED_LEN, Name, accepts, line_end, secret_name};

/// Values of secret-like keys in JSON escaped inside a string or an HTML attribute: the key and
/// its value are quoted with the same escaped quote (`\"`, `\\"`, `\\\"`, `&quot;`, `&#34;`).
pub(super) fn escaped_keys(text: &str, hits: &mut Vec<Hit>) {
    static KEY: OnceLock<Regex> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        Regex::new(
            r#"(\\+"|&quot;|&#34;|&#x22;)([A-Za-z0-9_.$@-]{1,80})(\\+"|&quot;|&#34;|&#x22;)[ \t]*:[ \t]*"#,
        )
        .expect("a valid pattern")
    });
    for c in key.captures_iter(text) {
        let (open, name, close) = (&c[1], &c[2], &c[3]);
        if open != close {
            continue;
        }
        let Some(kind) = secret_name(name) else { continue };
        let at = c.get(0).expect("group 0 is the match").end();
        if !text[at..].starts_with(open) {
            continue;
        }
        let from = at + open.len();
        let limit = line_end(text, from).min(from + MAX_QUOTED_LEN);
        let Some(len) = text[from..limit].find(open) else { continue };
        // A value that itself ends in an escaped backslash (`\\\"` closing `\"`) keeps it.
        let value = text[from..from + len].trim_end_matches('\\');
        if accepts(kind, value) {
            hits.push(Hit { range: from..from + value.len(), kind: kind.label(), priority: 2 });
        }
    }
}

/// Fewest character codes read as a secret's characters.
const MIN_CODES: usize = 4;

/// A secret's characters written as codes and given to a secret-like name: a list of four or
/// more numbers of printable characters (`String.fromCharCode(90, 113, …)`, `bytes([104, …])`,
/// `"".join(map(chr, [104, …]))`), or a string written wholly in escapes of four or more
/// characters (`"\x68\x75…"`, `"\u0068…"`, `"\150\165…"`), on the right of the assignment.
pub(super) fn character_codes(text: &str, hits: &mut Vec<Hit>) {
    // Matched over bytes with ASCII classes: the names, numbers and escapes are ASCII, and the
    // Unicode classes under bounded repetitions compiled to automata that took a third of a
    // short-lived `acas explain` to build.
    static CODES: OnceLock<BytesRegex> = OnceLock::new();
    static ESCAPES: OnceLock<BytesRegex> = OnceLock::new();
    let ascii = |pattern: &str| {
        regex::bytes::RegexBuilder::new(pattern).unicode(false).build().expect("a valid pattern")
    };
    let codes = CODES.get_or_init(|| {
        ascii(
            r#"([A-Za-z_$][\w$.]*)["'`\]]?[ \t]*(?::[ \t]*[\w<>\[\]&; ]{1,40}?)?[ \t]*(?:=|:=|:)[ \t]*([^\n;=]{0,80}?)[(\[{][ \t]*((?:(?:0[xX][0-9a-fA-F]{1,2}|[0-9]{1,3})[ \t]*,[ \t]*){3,}(?:0[xX][0-9a-fA-F]{1,2}|[0-9]{1,3}))[ \t]*,?[ \t]*[)\]}]"#,
        )
    });
    let escapes = ESCAPES.get_or_init(|| {
        ascii(
            r#"([A-Za-z_$][\w$.]*)["'`\]]?[ \t]*(?::[ \t]*[\w<>\[\]&; ]{1,40}?)?[ \t]*(?:=|:=|:)[ \t]*[bB]?["'`]((?:\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\u\{[0-9a-fA-F]{1,6}\}|\\[0-7]{3}){4,})["'`]"#,
        )
    });
    // The groups start and end next to ASCII bytes, so their ranges are boundaries of `text`.
    let group =
        |c: &regex::bytes::Captures, i: usize| c.get(i).and_then(|m| Some((m.range(), text.get(m.range())?)));
    let named = |name: &str| {
        let last = name.rsplit('.').find(|s| !s.is_empty()).unwrap_or(name);
        secret_name(last)
    };
    for c in codes.captures_iter(text.as_bytes()) {
        let (Some((name_at, name)), Some((list_at, list)), Some((_, between))) =
            (group(&c, 1), group(&c, 3), group(&c, 2))
        else {
            continue;
        };
        if name_at.start > 0 && super::is_name_byte(text.as_bytes()[name_at.start - 1]) {
            continue;
        }
        let Some(kind) = named(name) else { continue };
        // Keys and tokens are numbers in code (key codes, a tokenizer's ids) unless a conversion
        // to characters says otherwise.
        let converted = ["fromCharCode", "chr", "bytes", "bytearray", "Uint8Array", "byte", "char"]
            .iter()
            .any(|w| between.contains(w));
        if matches!(kind, Name::Key | Name::Session | Name::Token) && !converted {
            continue;
        }
        let printable = list.split(',').map(str::trim).filter(|n| !n.is_empty()).all(|n| {
            let code = match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => n.parse::<u32>(),
            };
            code.is_ok_and(|c| (32..127).contains(&c))
        });
        if printable && list.split(',').count() >= MIN_CODES {
            hits.push(Hit { range: list_at, kind: kind.label(), priority: 2 });
        }
    }
    for c in escapes.captures_iter(text.as_bytes()) {
        let (Some((name_at, name)), Some((value_at, _))) = (group(&c, 1), group(&c, 2)) else { continue };
        if name_at.start > 0 && super::is_name_byte(text.as_bytes()[name_at.start - 1]) {
            continue;
        }
        if let Some(kind) = named(name) {
            hits.push(Hit { range: value_at, kind: kind.label(), priority: 2 });
        }
    }
}
