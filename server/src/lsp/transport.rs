//! Framing guard between stdio and the LSP library.
//!
//! The library's transport ends the whole connection on the first message it cannot decode. An
//! editor must not lose its server to one bad frame, so every message is framed and checked here
//! first ([`framing`] splits the stream and resynchronises after a bad frame): well-formed ones
//! pass through untouched; a malformed one (including one that repeats a top-level key, which
//! the library would refuse) is answered with a JSON-RPC error (parse error, or invalid request
//! with its id when it has one) and dropped. A message is checked without building a JSON tree
//! of it: the top level is read with its values left as raw text, so a large document costs
//! its bytes once here. When the input ends inside a message, that is logged and the server
//! stops, as it does whenever the input ends.
//!
//! Messages that follow `initialize` or `shutdown` are held until its answer has been written:
//! clients send `initialized` (and sometimes requests) right after `initialize` without
//! waiting, and the library drops what arrives before it considers itself initialized; an
//! `exit` that overtakes the answer to `shutdown` would cancel it. Outgoing frames of the
//! library and of this guard are written to stdout whole, never interleaved. Error answers wait
//! in a bounded queue: when the client stops reading them, the guard stops reading its input.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::jsonrpc;

use super::framing::{Decoded, Decoder};

/// Size of one read from stdin or from the library.
const READ_SIZE: usize = 64 * 1024;

/// Error answers waiting to be written; when full, the reader waits (and so stops reading).
const ERRORS_QUEUED: usize = 64;

/// The `initialize` or `shutdown` request whose answer the reader waits for, and how to wake it.
type Awaited = Arc<Mutex<Option<(Value, oneshot::Sender<()>)>>>;

/// Connects `input`/`output` (stdio) to the library through checked pipes. Returns the ends
/// the library should use, and the writer's task, which ends once the library's output is closed
/// and the error answers queued by then are written.
pub fn guard(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> (tokio::io::DuplexStream, tokio::io::DuplexStream, tokio::task::JoinHandle<()>) {
    let (server_in, to_server) = tokio::io::duplex(1 << 20);
    let (from_server, server_out) = tokio::io::duplex(1 << 20);
    let (errors_tx, errors_rx) = mpsc::channel(ERRORS_QUEUED);
    let awaited = Awaited::default();
    tokio::spawn(read_input(input, to_server, errors_tx, awaited.clone()));
    let writer = tokio::spawn(write_output(from_server, output, errors_rx, awaited));
    (server_in, server_out, writer)
}

/// What the reader needs to know about a message that passed the checks.
#[derive(Debug)]
struct Checked {
    /// The method, for requests and notifications.
    method: Option<String>,
    /// The id when the message has one (`null` included: a request with a null id is answered).
    id: Option<Value>,
    /// Whether it has `params`.
    params: bool,
}

/// The top level of a message: the values the guard looks at, as raw text. Refuses a repeated
/// key, which the library would refuse by ending the connection.
#[derive(Default)]
struct Envelope<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: bool,
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Envelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
                let mut envelope = Envelope::default();
                let mut seen = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    match key.as_str() {
                        "jsonrpc" => envelope.jsonrpc = Some(value),
                        "id" => envelope.id = Some(value),
                        "method" => envelope.method = Some(value),
                        "params" => envelope.params = true,
                        _ => {}
                    }
                    if !seen.insert(key) {
                        return Err(serde::de::Error::custom(Repeated));
                    }
                }
                Ok(envelope)
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// Marks the error for a repeated key, to tell it apart from a top level that is not an object.
struct Repeated;

impl fmt::Display for Repeated {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("repeated key")
    }
}

/// Checks one message body; `Ok` says what the message is, `Err` carries the error response to
/// send back.
fn check(body: &[u8]) -> Result<Checked, Value> {
    let parse_error = |message: String| error_response(Value::Null, -32700, message);
    let text =
        std::str::from_utf8(body).map_err(|e| parse_error(format!("message is not valid UTF-8: {e}")))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| parse_error(format!("message is not valid JSON: {e}")))?;

    let envelope = serde_json::from_str::<Envelope>(text).map_err(|e| {
        let message = if e.to_string().starts_with("repeated key") {
            "a key appears more than once at the top level of the message"
        } else {
            "not a JSON-RPC message: it must be a JSON object"
        };
        error_response(Value::Null, -32600, message.to_owned())
    })?;
    let id = envelope.id.map(|raw| serde_json::from_str::<Value>(raw.get()).unwrap_or(Value::Null));
    let invalid =
        |message: &str| error_response(id.clone().unwrap_or(Value::Null), -32600, message.to_owned());
    if nesting(body) > MAX_NESTING {
        // The LSP library reads the message again into its own types, a few levels deeper:
        // past serde_json's limit of 128 it would fail and stop the server.
        return Err(invalid(&format!(
            "message is nested more than {MAX_NESTING} levels deep; no LSP message needs that"
        )));
    }
    let version = envelope.jsonrpc.and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    if version.as_deref() != Some("2.0") {
        return Err(invalid("not a JSON-RPC 2.0 message: `jsonrpc` must be \"2.0\""));
    }
    let not_valid = "not a valid JSON-RPC request, notification or response";
    let Some(method) = envelope.method else {
        // Responses are the client's answers to the server's requests: small, read whole.
        serde_json::from_str::<jsonrpc::Response>(text).map_err(|_| invalid(not_valid))?;
        return Ok(Checked { method: None, id, params: envelope.params });
    };
    // A request's `params` may be any JSON value, which the syntax check above already proved.
    let method = serde_json::from_str::<String>(method.get()).map_err(|_| invalid(not_valid))?;
    if let Some(raw) = envelope.id {
        serde_json::from_str::<jsonrpc::Id>(raw.get()).map_err(|_| invalid(not_valid))?;
    }
    Ok(Checked { method: Some(method), id, params: envelope.params })
}

/// An `acas/` message without `params` gets `"params": null`: the library refuses a missing
/// `params` for a method that takes some, and ACAS reads `null` as "nothing" everywhere.
fn with_params(message: &Checked, body: Vec<u8>) -> Vec<u8> {
    let acas = message.method.as_deref().is_some_and(|m| m.starts_with("acas/"));
    match body.iter().rposition(|b| *b == b'}') {
        Some(end) if acas && !message.params => {
            let mut out = body[..end].to_vec();
            out.extend_from_slice(br#","params":null}"#);
            out
        }
        _ => body,
    }
}

/// How deep arrays and objects may nest in a message.
const MAX_NESTING: usize = 64;

/// The deepest nesting of arrays and objects in a JSON text (already known to be valid).
fn nesting(body: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn error_response(id: Value, code: i64, message: String) -> Value {
    if code == -32600 {
        return json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message, "data": { "kind": "invalidRequest" } } });
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

async fn read_input(
    mut input: impl AsyncRead + Unpin,
    mut to_server: tokio::io::DuplexStream,
    errors: mpsc::Sender<Value>,
    awaited: Awaited,
) {
    let mut decoder = Decoder::default();
    let mut chunk = vec![0; READ_SIZE];
    'read: loop {
        let read = match input.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) => {
                tracing::info!("reading from the client ended: {error}");
                break;
            }
        };
        decoder.feed(&chunk[..read]);
        while let Some(decoded) = decoder.next() {
            let body = match decoded {
                Decoded::Skipped(message) => {
                    tracing::warn!("malformed input from the client: {message}");
                    if errors.send(error_response(Value::Null, -32700, message)).await.is_err() {
                        break 'read;
                    }
                    continue;
                }
                Decoded::Message(body) => body,
            };
            let message = match check(&body) {
                Ok(message) => message,
                Err(response) => {
                    tracing::warn!("malformed message from the client: {}", response["error"]["message"]);
                    if errors.send(response).await.is_err() {
                        break 'read;
                    }
                    continue;
                }
            };
            // Only a request is answered (a null id included); a notification is not waited for.
            let held = matches!(message.method.as_deref(), Some("initialize" | "shutdown"));
            let body = with_params(&message, body);
            let answered = message.id.filter(|_| held).map(|id| {
                let (tx, rx) = oneshot::channel();
                *awaited.lock().unwrap_or_else(PoisonError::into_inner) = Some((id, tx));
                rx
            });
            if write_frame(&mut to_server, &body).await.is_err() {
                break 'read;
            }
            if let Some(answered) = answered {
                // An error means the writer stopped; the library is gone then anyway.
                let _ = answered.await;
            }
        }
    }
    if let Some(reason) = decoder.finish() {
        tracing::error!("{reason}; ACAS stops so that the editor can start it again");
    }
    // Closing the pipe tells the library the client is gone.
    let _ = to_server.shutdown().await;
}

async fn write_output(
    mut from_server: tokio::io::DuplexStream,
    mut output: impl AsyncWrite + Unpin,
    mut errors: mpsc::Receiver<Value>,
    awaited: Awaited,
) {
    // The library's own frames are trusted: no limit on their size.
    let mut decoder = Decoder::with_limit(usize::MAX);
    let mut chunk = vec![0; READ_SIZE];
    let mut errors_open = true;
    loop {
        // Errors first: the answer to a bad frame goes out before anything read after it.
        tokio::select! {
            biased;
            error = errors.recv(), if errors_open => match error {
                Some(response) => {
                    let body = serde_json::to_vec(&response).expect("JSON values serialise");
                    if write_frame(&mut output, &body).await.is_err() {
                        return;
                    }
                }
                None => errors_open = false,
            },
            read = from_server.read(&mut chunk) => {
                let read = match read {
                    Ok(0) | Err(_) => {
                        // The library is done: the answers already queued still go out.
                        while let Ok(response) = errors.try_recv() {
                            let body = serde_json::to_vec(&response).expect("JSON values serialise");
                            if write_frame(&mut output, &body).await.is_err() {
                                return;
                            }
                        }
                        return;
                    }
                    Ok(n) => n,
                };
                decoder.feed(&chunk[..read]);
                while let Some(decoded) = decoder.next() {
                    match decoded {
                        Decoded::Message(body) => {
                            let body = with_error_kind(body);
                            if write_frame(&mut output, &body).await.is_err() {
                                return;
                            }
                            answered(&awaited, &body);
                        }
                        Decoded::Skipped(message) => {
                            tracing::error!("the server wrote a malformed frame: {message}")
                        }
                    }
                }
            },
        }
    }
}

/// The LSP library's own error answers (a request before `initialize`, a request after
/// `shutdown`, a second `initialize`, params it could not read) with the `data.kind` every ACAS
/// error carries.
fn with_error_kind(body: Vec<u8>) -> Vec<u8> {
    let own = |code: &[u8]| body.windows(code.len()).any(|w| w == code);
    if !own(b"\"code\":-32002") && !own(b"\"code\":-32600") && !own(b"\"code\":-32602") {
        return body;
    }
    let Ok(mut message) = serde_json::from_slice::<Value>(&body) else { return body };
    let Some(error) = message.get_mut("error").and_then(Value::as_object_mut) else { return body };
    if error.contains_key("data") {
        return body;
    }
    let kind = match error.get("code").and_then(Value::as_i64) {
        Some(-32002) => "notInitialized",
        Some(-32600) => "invalidRequest",
        // Params the library could not read into the method's type.
        Some(-32602) => "invalidParams",
        _ => return body,
    };
    error.insert("data".into(), json!({ "kind": kind }));
    serde_json::to_vec(&message).unwrap_or(body)
}

/// Wakes the reader when `body` answers the request it waits for.
fn answered(awaited: &Awaited, body: &[u8]) {
    let mut awaited = awaited.lock().unwrap_or_else(PoisonError::into_inner);
    let Some((id, _)) = awaited.as_ref() else { return };
    let Ok(message) = serde_json::from_slice::<Value>(body) else { return };
    if message.get("method").is_none()
        && message.get("id") == Some(id)
        && let Some((_, wake)) = awaited.take()
    {
        let _ = wake.send(());
    }
}

async fn write_frame(output: &mut (impl AsyncWrite + Unpin), body: &[u8]) -> std::io::Result<()> {
    output.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes()).await?;
    output.write_all(body).await?;
    output.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_classify_messages() {
        let initialize = check(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#).unwrap();
        assert_eq!((initialize.method.as_deref(), initialize.id), (Some("initialize"), Some(json!(1))));
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":null,"method":"shutdown"}"#).unwrap().id,
            Some(Value::Null)
        );
        let repeated = check(br#"{"jsonrpc":"2.0","id":2,"id":3,"method":"shutdown"}"#).unwrap_err();
        assert_eq!(repeated["error"]["code"], -32600);
        assert_eq!(check(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).unwrap_err()["error"]["code"], -32600);
        assert!(check(br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#).is_ok());
        assert!(check(br#"{"jsonrpc":"2.0","id":1,"result":null}"#).is_ok());
        assert_eq!(check(b"{oops").unwrap_err()["error"]["code"], -32700);
        assert_eq!(check(b"\xff").unwrap_err()["error"]["code"], -32700);
        let invalid = check(br#"{"jsonrpc":"2.0","id":4,"method":7}"#).unwrap_err();
        assert_eq!((invalid["error"]["code"].as_i64(), invalid["id"].as_i64()), (Some(-32600), Some(4)));
        assert_eq!(check(br#"[1,2]"#).unwrap_err()["error"]["code"], -32600);
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"acas/status","params":{}"x"{}}}"#,
            "[".repeat(127),
            "]".repeat(127)
        );
        let refused = check(deep.as_bytes()).unwrap_err();
        assert_eq!((refused["error"]["code"].as_i64(), refused["id"].as_i64()), (Some(-32600), Some(5)));
        let strings = format!(r#"{{"jsonrpc":"2.0","id":6,"method":"x","params":["{}"]}}"#, "[{".repeat(100));
        assert!(check(strings.as_bytes()).is_ok(), "brackets inside strings do not nest");
    }

    #[test]
    fn acas_messages_without_params_get_null_params() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"acas/status"} "#.to_vec();
        let added = with_params(&check(&body).unwrap(), body);
        let added: Value = serde_json::from_slice(&added).unwrap();
        assert_eq!(added["params"], Value::Null);
        assert!(added.as_object().unwrap().contains_key("params"));
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"acas/problems","params":{}}"#.to_vec();
        assert_eq!(with_params(&check(&body).unwrap(), body.clone()), body);
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#.to_vec();
        assert_eq!(with_params(&check(&body).unwrap(), body.clone()), body);
    }
}
