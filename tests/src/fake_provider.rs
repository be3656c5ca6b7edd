//! A fake AI provider: a local HTTP/1.1 server that speaks the Anthropic, OpenAI or Gemini wire
//! format and answers from a script.
//!
//! [`FakeProvider::start`] listens on `127.0.0.1:0`. Each request is checked the way the real
//! API would check it (method, path, auth and version headers, a JSON body asking to stream); a
//! wrong one gets that API's 400, 401 or 404 error. A right one gets the next scripted [`Reply`]:
//! a streamed text reply served from the templates in `fixtures/providers/`, an HTTP error, an
//! overload or rate limit as that provider reports them, or a failure (a request that is never
//! answered, a stream cut or stalled part-way, an unparseable event). Every request is recorded
//! with its headers and body so tests can assert what was sent. Dropping the fake stops it:
//! connections still open are closed and new ones are refused.
//!
//! Plain threads, not tokio, so the server does not depend on the runtime of the test it serves.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Which API the fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Anthropic,
    OpenAi,
    Gemini,
}

/// Token counts of a scripted reply; `input_tokens` includes `cached_input_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
}

impl Default for FakeUsage {
    fn default() -> Self {
        Self { input_tokens: 42, output_tokens: 7, cached_input_tokens: 0 }
    }
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A successful streamed reply.
    Text { text: String, usage: FakeUsage },
    /// Any status with these headers and body, not streamed.
    Status { code: u16, headers: Vec<(String, String)>, body: String },
    /// The provider's overload answer: Anthropic's 529 `overloaded_error`, a 503 from the others.
    Overloaded,
    /// 429 with the provider's rate-limit body and, if given, a `retry-after` header.
    RateLimited { retry_after: Option<String> },
    /// Reads the request and never answers.
    Hang,
    /// A successful streamed reply of this text, sent once [`FakeProvider::open_gate`] is called.
    Held(String),
    /// Starts a text reply, sends this many events, then closes the connection.
    CutStream { after_chunks: usize },
    /// Starts a text reply, sends this many events, then stays silent with the connection open.
    StallStream { after_chunks: usize },
    /// Starts a text reply, sends events up to the first that carries text, notes when that one
    /// was flushed ([`FakeProvider::first_text_sent`]), then stays silent with the connection open.
    StallAfterText,
    /// A 200 stream whose second event is not JSON.
    Malformed,
}

impl Reply {
    pub fn text(text: &str) -> Self {
        Self::Text { text: text.to_owned(), usage: FakeUsage::default() }
    }
}

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// Path and query, e.g. `/v1beta/models/m:streamGenerateContent?alt=sse`.
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The whole request as received, head and body.
    pub raw: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(key, _)| *key == name).map(|(_, value)| value.as_str())
    }
}

/// Text served when a failure needs a stream to cut or stall.
const PARTIAL_TEXT: &str = "This reply will not arrive whole";

struct Shared {
    format: Format,
    api_key: String,
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Request>>,
    stopped: Mutex<bool>,
    stop: Condvar,
    connections: Mutex<Vec<JoinHandle<()>>>,
    first_text_sent: Mutex<Option<Instant>>,
    /// Signalled at each request received.
    received: Condvar,
    /// Whether held replies may go, and a signal when they may.
    gate: Mutex<bool>,
    opened: Condvar,
}

impl Shared {
    fn stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until the fake is dropped.
    fn wait_for_stop(&self) {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            stopped = self.stop.wait(stopped).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A running fake provider; stops when dropped.
pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeProvider {
    /// Starts a fake speaking `format` on a free port of 127.0.0.1.
    pub fn start(format: Format) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            format,
            api_key: format!("test-key-{}-{}", format.slug(), addr.port()),
            replies: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            stopped: Mutex::new(false),
            stop: Condvar::new(),
            connections: Mutex::new(Vec::new()),
            first_text_sent: Mutex::new(None),
            received: Condvar::new(),
            gate: Mutex::new(false),
            opened: Condvar::new(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stopped() {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let connection = {
                        let shared = Arc::clone(&shared);
                        std::thread::spawn(move || serve(&shared, stream))
                    };
                    shared.connections.lock().unwrap_or_else(|e| e.into_inner()).push(connection);
                }
                // The listener is dropped here: from now on connections are refused.
            })
        };
        Self { addr, shared, acceptor: Some(acceptor) }
    }

    /// The base URL a provider of this format is configured with.
    pub fn base_url(&self) -> String {
        match self.shared.format {
            Format::OpenAi => format!("http://{}/v1", self.addr),
            Format::Anthropic | Format::Gemini => format!("http://{}", self.addr),
        }
    }

    /// The only API key the fake accepts.
    pub fn api_key(&self) -> String {
        self.shared.api_key.clone()
    }

    /// Queues the answer to the next request. Without one, a request gets a 400 saying so.
    pub fn push(&self, reply: Reply) {
        self.shared.replies.lock().unwrap_or_else(|e| e.into_inner()).push_back(reply);
    }

    /// Every request received so far.
    /// A `[[providers]]` section of `.acas/config.toml` for this fake, named `name`, asking for
    /// `model`, with its key in the `ACAS_FAKE_KEY` environment variable.
    pub fn provider_toml(&self, name: &str, model: &str) -> String {
        let kind = match self.shared.format {
            Format::Anthropic => "anthropic",
            Format::OpenAi => "openai",
            Format::Gemini => "gemini",
        };
        format!(
            "[[providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\nmodel = \"{model}\"\napi_key_env = \"ACAS_FAKE_KEY\"\n",
            self.base_url()
        )
    }

    /// When the last [`Reply::StallAfterText`] flushed its first text event.
    pub fn first_text_sent(&self) -> Option<Instant> {
        *self.shared.first_text_sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (at most 30 s) until `n` requests were received, and returns them.
    pub fn wait_for_requests(&self, n: usize) -> Vec<Request> {
        let requests = self.shared.requests.lock().unwrap_or_else(|e| e.into_inner());
        let (requests, _) = self
            .shared
            .received
            .wait_timeout_while(requests, Duration::from_secs(30), |r| r.len() < n)
            .unwrap_or_else(|e| e.into_inner());
        assert!(requests.len() >= n, "the fake provider received {} requests, not {n}", requests.len());
        requests.clone()
    }

    /// Lets [`Reply::Held`] replies go.
    pub fn open_gate(&self) {
        *self.shared.gate.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.opened.notify_all();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        *self.shared.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.stop.notify_all();
        self.open_gate();
        // Wake the acceptor so it sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections =
            std::mem::take(&mut *self.shared.connections.lock().unwrap_or_else(|e| e.into_inner()));
        for connection in connections {
            let _ = connection.join();
        }
    }
}

impl Format {
    fn slug(self) -> &'static str {
        match self {
            Format::Anthropic => "anthropic",
            Format::OpenAi => "openai",
            Format::Gemini => "gemini",
        }
    }

    fn fixture(self) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/providers")
            .join(format!("{}_stream.sse", self.slug()));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// The provider's JSON error body.
    fn error_body(self, status: u16, kind: &str, message: &str) -> String {
        match self {
            Format::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
            Format::OpenAi => {
                json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            }
            Format::Gemini => json!({"error": {"code": status, "message": message, "status": kind}}),
        }
        .to_string()
    }
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(request) = read_request(&mut stream) else { return };
    if shared.stopped() {
        return;
    }
    let problem = check(shared, &request);
    let model = model_of(shared.format, &request);
    shared.requests.lock().unwrap_or_else(|e| e.into_inner()).push(request);
    shared.received.notify_all();
    if let Some((status, kind, message)) = problem {
        let body = shared.format.error_body(status, &kind, &message);
        let _ = respond(&mut stream, status, &[], &body);
        return;
    }
    let reply = shared.replies.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
    let format = shared.format;
    let _ = match reply {
        None => {
            let body = format.error_body(400, "invalid_request_error", "fake provider: no reply scripted");
            respond(&mut stream, 400, &[], &body)
        }
        Some(Reply::Text { text, usage }) => {
            let events = events(format, &text, usage, &model);
            stream_events(&mut stream, &events, true)
        }
        Some(Reply::Status { code, headers, body }) => respond(&mut stream, code, &headers, &body),
        Some(Reply::Overloaded) => {
            let (code, body) = match format {
                Format::Anthropic => (529, format.error_body(529, "overloaded_error", "Overloaded")),
                Format::OpenAi => (503, format.error_body(503, "server_error", "The server is overloaded")),
                Format::Gemini => (
                    503,
                    format.error_body(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
                ),
            };
            respond(&mut stream, code, &[], &body)
        }
        Some(Reply::RateLimited { retry_after }) => {
            let kind = match format {
                Format::Anthropic => "rate_limit_error",
                Format::OpenAi => "requests",
                Format::Gemini => "RESOURCE_EXHAUSTED",
            };
            let body = format.error_body(429, kind, "Rate limit reached: please try again later");
            let headers: Vec<(String, String)> =
                retry_after.into_iter().map(|value| ("retry-after".to_owned(), value)).collect();
            respond(&mut stream, 429, &headers, &body)
        }
        Some(Reply::Held(text)) => {
            let gate = shared.gate.lock().unwrap_or_else(|e| e.into_inner());
            drop(shared.opened.wait_while(gate, |open| !*open).unwrap_or_else(|e| e.into_inner()));
            let events = events(format, &text, FakeUsage::default(), &model);
            stream_events(&mut stream, &events, true)
        }
        Some(Reply::Hang) => {
            shared.wait_for_stop();
            Ok(())
        }
        Some(Reply::CutStream { after_chunks }) => {
            let events = events(format, PARTIAL_TEXT, FakeUsage::default(), &model);
            let result = stream_events(&mut stream, &events[..after_chunks.min(events.len())], false);
            let _ = stream.shutdown(Shutdown::Both);
            result
        }
        Some(Reply::StallStream { after_chunks }) => {
            let events = events(format, PARTIAL_TEXT, FakeUsage::default(), &model);
            let result = stream_events(&mut stream, &events[..after_chunks.min(events.len())], false);
            shared.wait_for_stop();
            result
        }
        Some(Reply::StallAfterText) => {
            let events = events(format, PARTIAL_TEXT, FakeUsage::default(), &model);
            let first = events.iter().position(|e| e.contains("This")).map_or(events.len(), |i| i + 1);
            let result = stream_events(&mut stream, &events[..first], false);
            *shared.first_text_sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            shared.wait_for_stop();
            result
        }
        Some(Reply::Malformed) => {
            let mut events = events(format, PARTIAL_TEXT, FakeUsage::default(), &model);
            let ending = if format == Format::Gemini { "\r\n\r\n" } else { "\n\n" };
            events
                .insert(1, format!("data: {{\"type\":\"content_block_delta\",\"delta\":{{\"text\":{ending}"));
            stream_events(&mut stream, &events, true)
        }
    };
}

/// Reads one request: head up to the blank line, then `content-length` bytes of body.
fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut lines = head.lines();
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Some(Request {
        method,
        path,
        headers,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        raw: format!("{head}{body}"),
    })
}

/// What the real API would reject in this request: (status, error kind, message).
fn check(shared: &Shared, request: &Request) -> Option<(u16, String, String)> {
    let bad = |status: u16, kind: &str, message: String| Some((status, kind.to_owned(), message));
    let body = &request.body;
    let (path_ok, key, kinds) = match shared.format {
        Format::Anthropic => (
            request.path == "/v1/messages",
            request.header("x-api-key"),
            ("not_found_error", "authentication_error", "invalid_request_error"),
        ),
        Format::OpenAi => (
            request.path == "/v1/chat/completions",
            request.header("authorization").and_then(|value| value.strip_prefix("Bearer ")),
            ("invalid_request_error", "invalid_request_error", "invalid_request_error"),
        ),
        Format::Gemini => (
            request.path.starts_with("/v1beta/models/")
                && request.path.ends_with(":streamGenerateContent?alt=sse"),
            request.header("x-goog-api-key"),
            ("NOT_FOUND", "UNAUTHENTICATED", "INVALID_ARGUMENT"),
        ),
    };
    let (not_found, unauthenticated, invalid) = kinds;
    if request.method != "POST" || !path_ok {
        return bad(404, not_found, format!("no route for {} {}", request.method, request.path));
    }
    if key != Some(shared.api_key.as_str()) {
        return bad(401, unauthenticated, "invalid or missing API key".to_owned());
    }
    if !request.header("content-type").is_some_and(|value| value.starts_with("application/json")) {
        return bad(400, invalid, "content-type must be application/json".to_owned());
    }
    if body.is_null() {
        return bad(400, invalid, "the body is not JSON".to_owned());
    }
    let problem = match shared.format {
        Format::Anthropic => {
            if request.header("anthropic-version") != Some("2023-06-01") {
                Some("anthropic-version: header is required".to_owned())
            } else {
                messages_problem(body, &["user"])
                    .or_else(|| {
                        (!body["max_tokens"].is_u64()).then(|| "max_tokens: Field required".to_owned())
                    })
                    .or_else(|| (!body["system"].is_string()).then(|| "system: must be a string".to_owned()))
            }
        }
        Format::OpenAi => messages_problem(body, &["system", "user"]).or_else(|| {
            (body["stream_options"]["include_usage"] != json!(true))
                .then(|| "stream_options.include_usage must be true".to_owned())
        }),
        Format::Gemini => {
            let text = &body["contents"][0]["parts"][0]["text"];
            if body["contents"][0]["role"] != "user" || !text.is_string() {
                Some("contents[0] must be a user turn with a text part".to_owned())
            } else if !body["systemInstruction"]["parts"][0]["text"].is_string() {
                Some("systemInstruction.parts[0].text must be a string".to_owned())
            } else if !body["generationConfig"]["maxOutputTokens"].is_u64() {
                Some("generationConfig.maxOutputTokens must be an integer".to_owned())
            } else {
                None
            }
        }
    };
    problem.map(|message| (400, invalid.to_owned(), message))
}

/// Checks `model`, `stream: true` and messages with these roles and string contents.
fn messages_problem(body: &Value, roles: &[&str]) -> Option<String> {
    if !body["model"].is_string() {
        return Some("model: Field required".to_owned());
    }
    if body["stream"] != json!(true) {
        return Some("stream must be true".to_owned());
    }
    let messages = body["messages"].as_array()?;
    let found: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    if found != roles || !messages.iter().all(|m| m["content"].is_string()) {
        return Some(format!("messages: expected roles {roles:?} with text content, got {found:?}"));
    }
    None
}

fn model_of(format: Format, request: &Request) -> String {
    match format {
        Format::Gemini => request
            .path
            .strip_prefix("/v1beta/models/")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or("gemini")
            .to_owned(),
        _ => request.body["model"].as_str().unwrap_or("model").to_owned(),
    }
}

/// The fixture's events with the placeholders filled in, the text event once per text piece.
fn events(format: Format, text: &str, usage: FakeUsage, model: &str) -> Vec<String> {
    let fixture = format.fixture();
    let fill = |event: &str| {
        event
            .replace("{{model}}", model)
            .replace("{{input_tokens}}", &usage.input_tokens.to_string())
            .replace(
                "{{uncached_input_tokens}}",
                &(usage.input_tokens - usage.cached_input_tokens).to_string(),
            )
            .replace("{{cached_tokens}}", &usage.cached_input_tokens.to_string())
            .replace("{{output_tokens}}", &usage.output_tokens.to_string())
            .replace("{{total_tokens}}", &(usage.input_tokens + usage.output_tokens).to_string())
    };
    let mut events = Vec::new();
    for event in split_events(&fixture) {
        if event.contains("{{text}}") {
            for piece in pieces(text) {
                let escaped = serde_json::to_string(&piece).expect("a string serialises");
                events.push(fill(&event.replace("{{text}}", &escaped[1..escaped.len() - 1])));
            }
        } else {
            events.push(fill(&event));
        }
    }
    events
}

/// Splits an SSE text into events, each with its terminating blank line.
fn split_events(text: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        current.push_str(line);
        if line == "\n" || line == "\r\n" {
            events.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        events.push(current);
    }
    events
}

/// The text in pieces of two words, as a model streams it.
fn pieces(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    words.chunks(2).map(|chunk| chunk.concat()).collect()
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// A 200 event stream, chunked; each event goes out in two chunks split mid-line, so the client
/// must join lines across reads. `finish` sends the last chunk; without it the body is cut.
fn stream_events(stream: &mut TcpStream, events: &[String], finish: bool) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
          transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    for event in events {
        let middle = (0..=event.len() / 2).rev().find(|&i| event.is_char_boundary(i)).unwrap_or(0);
        for part in [&event[..middle], &event[middle..]] {
            if !part.is_empty() {
                write!(stream, "{:x}\r\n{part}\r\n", part.len())?;
                stream.flush()?;
            }
        }
    }
    if finish {
        stream.write_all(b"0\r\n\r\n")?;
    }
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Status",
    }
}
