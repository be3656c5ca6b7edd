//! Splits the client's byte stream into JSON-RPC message bodies (`Content-Length` framing).
//!
//! [`Decoder`] is fed bytes as they arrive and hands out whole bodies. It never trusts a frame
//! to be well formed: a header it cannot use (a length that is missing, negative, not a number,
//! over [`MAX_MESSAGE`]; a line that is not a header) is reported and skipped, and decoding
//! resynchronises on the next `Content-Length:` or `Content-Type:` in the stream. A body that is
//! not JSON is handed out (the transport answers it) and then searched for the next header too,
//! so a length that was too small loses one message, not the connection. A body still being
//! received that already holds the next frame's header line cannot become JSON (a raw line
//! break is never inside a JSON string), so the announced length was too large: the wait ends
//! there and the next message is served as soon as it has arrived. One report is made per run
//! of bad bytes. The decoder buffers at most one message and its header, never the bytes it
//! skips; it does not look inside a body beyond checking that it is JSON.

use serde::de::IgnoredAny;

/// Largest message body accepted. A frame announcing more is refused without being read.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Largest header section accepted, from the first header to the empty line that ends it.
const MAX_HEADER: usize = 8 * 1024;

/// Header names a frame can start with, lower case.
const NAMES: [&[u8]; 2] = [b"content-length:", b"content-type:"];

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole body, exactly as long as its header said (not necessarily JSON).
    Message(Vec<u8>),
    /// Bytes that make no usable frame were skipped, for this reason.
    Skipped(String),
}

#[derive(Debug)]
pub struct Decoder {
    /// Bytes received and not yet handed out or skipped.
    buf: Vec<u8>,
    /// Looking for the start of the next header: everything before it is skipped.
    resync: bool,
    /// A problem was reported since the last good message: further skips are silent.
    quiet: bool,
    max_message: usize,
    /// How far the body being received has been searched for the next header line.
    searched: usize,
    /// Where the unfinished line after a header name found at `searched` has been scanned to, so
    /// that each byte of a body is looked at a bounded number of times.
    line_scanned: usize,
    /// Bytes looked at while searching bodies for a header line, for tests of the search cost.
    #[cfg(test)]
    examined: usize,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::with_limit(MAX_MESSAGE)
    }
}

/// What the header section at the start of the buffer says.
enum Header {
    /// Not complete yet.
    Partial,
    /// Usable: the body starts at `body` and is `length` bytes long.
    Frame { body: usize, length: usize },
    /// Unusable, for this reason.
    Bad(String),
}

impl Decoder {
    pub fn with_limit(max_message: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            resync: false,
            quiet: false,
            max_message,
            searched: 0,
            line_scanned: 0,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Adds bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next body or problem, or `None` when more bytes are needed. Every call that returns
    /// `Some` consumes bytes, so calling until `None` ends.
    pub fn next(&mut self) -> Option<Decoded> {
        loop {
            if let Some(decoded) = self.step()? {
                return Some(decoded);
            }
        }
    }

    /// One decision: `None` to wait for bytes, `Some(None)` when bytes were skipped silently.
    fn step(&mut self) -> Option<Option<Decoded>> {
        if self.resync {
            let Some(at) = find_name(&self.buf, 0) else {
                // Keep what could be the beginning of a header name cut by the read.
                let drop = self.buf.len().saturating_sub(NAMES[0].len() - 1);
                self.buf.drain(..drop);
                return None;
            };
            self.buf.drain(..at);
            self.resync = false;
        }
        let blank = self.buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        self.buf.drain(..blank);
        if self.buf.is_empty() {
            return None;
        }
        let (body, length) = match header(&self.buf, self.max_message) {
            Header::Partial => return None,
            Header::Bad(reason) => return Some(self.skip(1, reason)),
            Header::Frame { body, length } => (body, length),
        };
        let end = body.saturating_add(length);
        if self.buf.len() < end {
            if self.next_header_inside(body) {
                let reason = format!(
                    "a message was shorter than the {length} bytes its Content-Length announced; it was \
                     skipped"
                );
                return Some(self.skip(body, reason));
            }
            return None;
        }
        self.searched = 0;
        self.line_scanned = 0;
        if serde_json::from_slice::<IgnoredAny>(&self.buf[body..end]).is_ok() {
            // The body is moved out, not copied: it can be as large as the limit.
            let rest = self.buf.split_off(end);
            let mut message = std::mem::replace(&mut self.buf, rest);
            message.drain(..body);
            self.quiet = false;
            return Some(Some(Decoded::Message(message)));
        }
        // Not JSON: the length may have been wrong, so what follows is searched for the next
        // header.
        let message = self.buf[body..end].to_vec();
        self.buf.drain(..body);
        self.resync = true;
        self.quiet = true;
        Some(Some(Decoded::Message(message)))
    }

    /// At the end of the input: why the bytes left over make no message, if there are any.
    pub fn finish(&mut self) -> Option<String> {
        if self.resync || self.buf.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let reason = match header(&self.buf, self.max_message) {
            Header::Frame { body, length } => format!(
                "the input ended inside a message: {} of the {length} bytes announced by its \
                 Content-Length arrived",
                self.buf.len() - body
            ),
            _ => "the input ended inside a message header".to_owned(),
        };
        self.buf.clear();
        Some(reason)
    }

    /// Skips the first `resume` bytes and looks for the next header; reports `reason` unless a
    /// problem was reported since the last good message.
    fn skip(&mut self, resume: usize, reason: String) -> Option<Decoded> {
        self.buf.drain(..resume.min(self.buf.len()));
        self.resync = true;
        self.searched = 0;
        self.line_scanned = 0;
        let report = !self.quiet;
        self.quiet = true;
        report.then_some(Decoded::Skipped(reason))
    }

    /// Whether the part of the body received so far holds a whole header line, which no JSON
    /// text can: a header name outside a string is not JSON, and a string cannot hold a raw
    /// line break.
    fn next_header_inside(&mut self, body: usize) -> bool {
        let mut from = self.searched.max(body);
        while let Some(at) = find_name(&self.buf, from) {
            // Resume the scan of a line left unfinished by the previous call.
            let scan_from = if at == self.searched { self.line_scanned.max(at) } else { at };
            let found = self.buf[scan_from..].iter().position(|&b| b == b'\n' || b == b'"');
            #[cfg(test)]
            {
                self.examined += found.map_or(self.buf.len() - scan_from, |i| i + 1);
            }
            match found {
                Some(i) if self.buf[scan_from + i] == b'\n' => return true,
                Some(_) => from = at + 1,
                None => {
                    // The line is not complete yet: look at the rest of it when more has arrived.
                    self.searched = at;
                    self.line_scanned = self.buf.len();
                    return false;
                }
            }
        }
        // A name cut by the end of the buffer is found on the next call.
        self.searched = self.buf.len().saturating_sub(NAMES[0].len()).max(body);
        self.line_scanned = 0;
        false
    }
}

/// Reads the header section at the start of `buf` (which starts with a non-blank byte).
fn header(buf: &[u8], max_message: usize) -> Header {
    let mut length: Option<usize> = None;
    let mut start = 0;
    loop {
        let Some(newline) = buf[start..].iter().position(|&b| b == b'\n').map(|i| start + i) else {
            // An unfinished line: wait for it only while it can still become a header.
            let rest = &buf[start..];
            let could_be = could_start_header(rest) || start > 0 && rest == b"\r";
            if !could_be {
                return not_a_header(rest);
            }
            if buf.len() > MAX_HEADER {
                return Header::Bad(format!("a message header was over {MAX_HEADER} bytes"));
            }
            return Header::Partial;
        };
        let line = buf[start..newline].strip_suffix(b"\r").unwrap_or(&buf[start..newline]);
        let next = newline + 1;
        if line.is_empty() {
            // The empty line ends the header section (the first line is never empty).
            return match length {
                Some(length) if length > max_message => Header::Bad(format!(
                    "a message of {length} bytes is over the {max_message}-byte limit; it was skipped"
                )),
                Some(length) => Header::Frame { body: next, length },
                None => Header::Bad("a message had no Content-Length header; it was skipped".to_owned()),
            };
        }
        if next > MAX_HEADER {
            return Header::Bad(format!("a message header was over {MAX_HEADER} bytes"));
        }
        match field(line) {
            Field::Length(value) => match parse_length(value) {
                Ok(n) => length = Some(n),
                Err(reason) => return Header::Bad(reason),
            },
            Field::Type => {}
            Field::Other => return not_a_header(line),
        }
        start = next;
    }
}

fn not_a_header(line: &[u8]) -> Header {
    let shown: String = String::from_utf8_lossy(line).chars().take(60).collect();
    Header::Bad(format!("expected a Content-Length header, got `{}`", shown.escape_debug()))
}

enum Field<'a> {
    Length(&'a [u8]),
    Type,
    Other,
}

fn field(line: &[u8]) -> Field<'_> {
    if let Some(value) = strip_name(line, NAMES[0]) {
        Field::Length(value)
    } else if strip_name(line, NAMES[1]).is_some() {
        Field::Type
    } else {
        Field::Other
    }
}

fn strip_name<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    (line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name)).then(|| &line[name.len()..])
}

fn parse_length(value: &[u8]) -> Result<usize, String> {
    let value = value.trim_ascii();
    let shown: String = String::from_utf8_lossy(value).chars().take(30).collect();
    if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
        // All digits: only too many of them can fail.
        return std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| format!("Content-Length `{shown}` is too large; the message was skipped"));
    }
    Err(format!("Content-Length `{}` is not a byte count; the message was skipped", shown.escape_debug()))
}

/// Whether an unfinished line may still become a header line.
fn could_start_header(rest: &[u8]) -> bool {
    NAMES.iter().any(|name| {
        let n = rest.len().min(name.len());
        rest[..n].eq_ignore_ascii_case(&name[..n])
    })
}

/// The first position at or after `from` where a header name starts, case-insensitively.
fn find_name(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find(|&i| {
        buf[i].eq_ignore_ascii_case(&b'c')
            && NAMES
                .iter()
                .any(|name| buf.len() - i >= name.len() && buf[i..i + name.len()].eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    const VALID: &[u8] = br#"{"jsonrpc":"2.0","id":7,"method":"shutdown"}"#;

    /// Feeds `input` in chunks of `chunk` bytes and collects everything decoded.
    fn decode(input: &[u8], chunk: usize) -> (Vec<Decoded>, Option<String>) {
        let mut decoder = Decoder::with_limit(1024);
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            decoder.feed(piece);
            // Each call consumes bytes or returns None, so this ends.
            while let Some(decoded) = decoder.next() {
                out.push(decoded);
            }
        }
        let end = decoder.finish();
        (out, end)
    }

    fn messages(decoded: &[Decoded]) -> Vec<&[u8]> {
        decoded
            .iter()
            .filter_map(|d| match d {
                Decoded::Message(m) => Some(m.as_slice()),
                Decoded::Skipped(_) => None,
            })
            .collect()
    }

    #[test]
    fn bad_frames_are_skipped_and_the_next_frame_is_served() {
        let body = br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("negative", [b"Content-Length: -5\r\n\r\n".as_slice(), body].concat()),
            ("not a number", [b"Content-Length: ten\r\n\r\n".as_slice(), body].concat()),
            ("overflowing", [b"Content-Length: 99999999999999999999999\r\n\r\n".as_slice(), body].concat()),
            ("missing", [b"Content-Type: application/json\r\n\r\n".as_slice(), body].concat()),
            ("too small", [b"Content-Length: 5\r\n\r\n".as_slice(), body].concat()),
            ("too large", [b"Content-Length: 70\r\n\r\n".as_slice(), body].concat()),
            ("over the limit", [b"Content-Length: 5000\r\n\r\n".as_slice(), body].concat()),
            ("no empty line", [b"Content-Length: 52\r\n".as_slice(), body].concat()),
            ("garbage", b"hello there\r\n\r\n".to_vec()),
            ("not a header", b"X-Other: 1\r\n\r\n".to_vec()),
        ];
        for (name, bad) in cases {
            for chunk in [1, 3, 4096] {
                let input = [bad.clone(), frame(VALID)].concat();
                let (decoded, end) = decode(&input, chunk);
                assert_eq!(messages(&decoded).last(), Some(&VALID), "{name}, chunks of {chunk}: {decoded:?}");
                let reported = decoded.iter().filter(|d| **d != Decoded::Message(VALID.to_vec())).count();
                assert_eq!(reported, 1, "{name}, chunks of {chunk}: one report expected: {decoded:?}");
                assert_eq!(end, None, "{name}");
            }
        }
    }

    #[test]
    fn well_formed_frames_pass_whole_in_order() {
        let input = [frame(VALID), b"\r\n".to_vec(), frame(b"{}"), frame(b"not json")].concat();
        for chunk in [1, 2, 4096] {
            let (decoded, end) = decode(&input, chunk);
            assert_eq!(
                decoded,
                vec![
                    Decoded::Message(VALID.to_vec()),
                    Decoded::Message(b"{}".to_vec()),
                    Decoded::Message(b"not json".to_vec())
                ]
            );
            assert_eq!(end, None);
        }
    }

    #[test]
    fn a_body_that_ends_early_at_the_end_of_input_is_reported() {
        let (decoded, end) = decode(b"Content-Length: 100\r\n\r\n{\"jsonrpc\"", 4096);
        assert_eq!(decoded, vec![]);
        let end = end.expect("an unfinished message is reported");
        assert!(end.contains("10 of the 100 bytes"), "{end}");
    }

    #[test]
    fn a_body_holding_a_header_name_and_a_long_line_is_searched_once() {
        // `Content-Length:` inside a string, then a run with no line break and no quote.
        for name in ["Content-Length:", "Content-Type:"] {
            let text = format!("{name}{}", "a".repeat(4 * 1024 * 1024));
            let body = format!(r#"{{"jsonrpc":"2.0","method":"x","params":{{"t":"{text}"}}}}"#);
            let input = frame(body.as_bytes());
            let mut decoder = Decoder::with_limit(8 * 1024 * 1024);
            let mut decoded = Vec::new();
            for piece in input.chunks(64 * 1024) {
                decoder.feed(piece);
                while let Some(d) = decoder.next() {
                    decoded.push(d);
                }
            }
            assert_eq!(decoded, vec![Decoded::Message(body.clone().into_bytes())], "{name}");
            assert!(
                decoder.examined <= 2 * body.len(),
                "{name}: {} bytes examined for a {}-byte body",
                decoder.examined,
                body.len()
            );
        }
    }

    fn junk() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            Just(b"Content-Length: ".to_vec()),
            Just(b"content-type: x\r\n".to_vec()),
            Just(b"\r\n\r\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"{\"a\":1}".to_vec()),
            "-?[0-9]{0,25}".prop_map(String::into_bytes),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// After any garbage, an empty line and a valid frame, the frame comes out last and
        /// nothing is left waiting; decoding never panics and every call returns.
        #[test]
        fn garbage_then_a_frame_yields_the_frame(garbage in junk(), chunk in 1usize..64) {
            let input = [garbage, b"\r\n\r\n".to_vec(), frame(VALID)].concat();
            let (decoded, end) = decode(&input, chunk);
            let last = messages(&decoded).last().map(|m| m.to_vec());
            prop_assert_eq!(last, Some(VALID.to_vec()), "{:?}", decoded);
            prop_assert_eq!(end, None);
        }

        /// Whatever arrives, the decoder does not panic and buffers no more than one message.
        #[test]
        fn any_input_is_decoded_without_panic(input in proptest::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..128) {
            let mut decoder = Decoder::with_limit(1024);
            for piece in input.chunks(chunk) {
                decoder.feed(piece);
                while decoder.next().is_some() {}
                prop_assert!(decoder.buf.len() <= 1024 + MAX_HEADER + chunk);
            }
            decoder.finish();
        }
    }
}
