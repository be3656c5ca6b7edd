//! HMAC-SHA256 signatures of webhook bodies, incoming and outgoing alike.
//!
//! The signed message is the decimal Unix timestamp (seconds), a `.`, and the raw body bytes:
//! `"{timestamp}.{body}"`. The signature travels as `X-Acas-Signature: sha256=<hex>` beside
//! `X-Acas-Timestamp: <timestamp>`, so the timestamp cannot be changed without breaking the
//! signature, and a receiver refuses timestamps outside [`WINDOW`] of its own clock.
//!
//! GitHub's scheme signs the body alone (`X-Hub-Signature-256: sha256=<hex>`) and sends no
//! timestamp ([`sign_body`], [`verify_body`]); a receiver refuses replays by `X-GitHub-Delivery`.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-acas-signature";
pub const TIMESTAMP_HEADER: &str = "x-acas-timestamp";
pub const EVENT_HEADER: &str = "x-acas-event";

/// GitHub's signature of the body alone (`scheme: github`), its delivery id and event name.
pub const GITHUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";
pub const GITHUB_DELIVERY_HEADER: &str = "x-github-delivery";
pub const GITHUB_EVENT_HEADER: &str = "x-github-event";

/// How far a request's timestamp may be from the receiver's clock, either way.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Acas-Signature` value of `body` sent at `timestamp`: `sha256=<lowercase hex>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Whether `header` (an `X-Acas-Signature` value) signs `body` at `timestamp`. The comparison
/// takes the same time wherever the first difference is.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else { return false };
    let Some(bytes) = decode_hex(hex) else { return false };
    mac(secret, timestamp, body).verify_slice(&bytes).is_ok()
}

/// GitHub's `X-Hub-Signature-256` value of `body`: `sha256=<lowercase hex>` of the HMAC of the
/// body alone.
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    hex_header(&mac.finalize().into_bytes())
}

/// Whether `header` (an `X-Hub-Signature-256` value) signs `body`, in constant time.
pub fn verify_body(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else { return false };
    let Some(bytes) = decode_hex(hex) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

fn hex_header(digest: &[u8]) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_timestamp_and_the_body() {
        // The same as: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        let signature = sign(b"s3cret", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(signature, "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940");
        assert!(verify(b"s3cret", 1_700_000_000, br#"{"a":1}"#, &signature));
        assert!(verify(
            b"s3cret",
            1_700_000_000,
            br#"{"a":1}"#,
            &signature.to_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!verify(b"s3cret", 1_700_000_001, br#"{"a":1}"#, &signature));
        assert!(!verify(b"s3cret", 1_700_000_000, br#"{"a":2}"#, &signature));
        assert!(!verify(b"other", 1_700_000_000, br#"{"a":1}"#, &signature));
        assert!(!verify(b"s3cret", 1_700_000_000, br#"{"a":1}"#, &signature[7..]));
        assert!(!verify(b"s3cret", 1_700_000_000, br#"{"a":1}"#, "sha256=zz"));
    }

    #[test]
    fn github_signs_the_body_alone() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let signature = sign_body(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(signature, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        assert!(verify_body(b"It's a Secret to Everybody", b"Hello, World!", &signature));
        assert!(!verify_body(b"It's a Secret to Everybody", b"Hello, World?", &signature));
        assert!(!verify_body(b"other", b"Hello, World!", &signature));
        assert!(!verify_body(b"It's a Secret to Everybody", b"Hello, World!", &signature[7..]));
    }
}
