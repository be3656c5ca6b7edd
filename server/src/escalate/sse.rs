//! A server-sent events parser that is fed bytes as they arrive.
//!
//! It follows the WHATWG event-stream rules: lines end in LF, CRLF or CR (also when the two bytes
//! of a CRLF arrive in different chunks); `data:` lines of one event are joined with newlines; an
//! `event:` line names the event; lines starting with `:` are comments; a blank line dispatches.
//! It does not interpret the data: `[DONE]` and JSON are the providers' business, and `id:` and
//! `retry:` are ignored because a provider request is never resumed.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental parser: [`SseParser::push`] each chunk, [`SseParser::finish`] at the end.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous chunk ended in CR, so an LF starting the next one belongs to it.
    skip_lf: bool,
    started: bool,
}

impl SseParser {
    /// Feeds a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut chunk = chunk;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < chunk.len() {
            let byte = chunk[i];
            if byte == b'\n' || byte == b'\r' {
                self.buffer.extend_from_slice(&chunk[start..i]);
                let line = std::mem::take(&mut self.buffer);
                self.line(&line, &mut events);
                if byte == b'\r' {
                    if i + 1 < chunk.len() {
                        if chunk[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.skip_lf = true;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.buffer.extend_from_slice(&chunk[start..]);
        events
    }

    /// Ends the stream: a last line without its line ending still counts, and an event that was
    /// not followed by a blank line is dispatched rather than lost.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut events = Vec::new();
        if !self.buffer.is_empty() {
            let line = std::mem::take(&mut self.buffer);
            self.line(&line, &mut events);
        }
        self.line(b"", &mut events);
        events.pop()
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        let mut line = String::from_utf8_lossy(line).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned();
            }
        }
        if line.is_empty() {
            if self.has_data {
                events.push(SseEvent { event: self.event.take(), data: std::mem::take(&mut self.data) });
            }
            self.event = None;
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &str, piece: usize) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for chunk in input.as_bytes().chunks(piece) {
            events.extend(parser.push(chunk));
        }
        events.extend(parser.finish());
        events
    }

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: name.map(str::to_owned), data: data.to_owned() }
    }

    #[test]
    fn events_are_the_same_whatever_the_chunk_boundaries() {
        let input = "\u{feff}: a comment\nevent: message_start\ndata: {\"a\":1}\n\n\
                     data: first\ndata: second\n\n\
                     event: ping\r\ndata: {}\r\n\r\n\
                     data: [DONE]\r\rdata:no space\n\n";
        let expected = vec![
            event(Some("message_start"), "{\"a\":1}"),
            event(None, "first\nsecond"),
            event(Some("ping"), "{}"),
            event(None, "[DONE]"),
            event(None, "no space"),
        ];
        for piece in 1..=input.len() {
            assert_eq!(parse_in_pieces(input, piece), expected, "chunks of {piece} bytes");
        }
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_ending() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: x\r").is_empty());
        // A CR already ends a line, so the blank line is complete before the LF arrives...
        assert_eq!(parser.push(b"\n\r"), vec![event(None, "x")]);
        // ...and that LF is not another (empty) line.
        assert!(parser.push(b"\ndata: y\n").is_empty());
        assert_eq!(parser.push(b"\n"), vec![event(None, "y")]);
    }

    #[test]
    fn comments_and_events_without_data_dispatch_nothing() {
        assert_eq!(parse_in_pieces(": keep-alive\n\nevent: ping\n\nid: 4\nretry: 10\n\n", 7), vec![]);
    }

    #[test]
    fn an_event_without_its_blank_line_is_flushed_at_the_end() {
        assert_eq!(parse_in_pieces("data: {\"last\":true}", 5), vec![event(None, "{\"last\":true}")]);
    }
}
