//! Framing guard between stdio and the LSP library.
//!
//! The library's transport ends the whole connection on the first message it cannot decode. An
//! editor must not lose its server to one bad frame, so every message is framed and checked here
//! first ([`framing`] splits the stream and resynchronises after a bad frame): well-formed ones
//! pass through untouched; a malformed one is answered with a JSON-RPC error (parse error, or
//! invalid request with its id when it has one) and dropped. When the input ends inside a
//! message, that is logged and the server stops, as it does whenever the input ends.
//!
//! Messages that follow `initialize` are held until its answer has been written: clients send
//! `initialized` (and sometimes requests) right after `initialize` without waiting, and the
//! library drops what arrives before it considers itself initialized. Outgoing frames of the
//! library and of this guard are written to stdout whole, never interleaved.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::jsonrpc;

use super::framing::{Decoded, Decoder};

/// Size of one read from stdin or from the library.
const READ_SIZE: usize = 64 * 1024;

/// The `initialize` request whose answer the reader waits for, and how to wake it.
type Awaited = Arc<Mutex<Option<(Value, oneshot::Sender<()>)>>>;

/// Connects `input`/`output` (stdio) to the library through checked pipes. Returns the ends
/// the library should use.
pub fn guard(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> (tokio::io::DuplexStream, tokio::io::DuplexStream) {
    let (server_in, to_server) = tokio::io::duplex(1 << 20);
    let (from_server, server_out) = tokio::io::duplex(1 << 20);
    let (errors_tx, errors_rx) = mpsc::unbounded_channel();
    let awaited = Awaited::default();
    tokio::spawn(read_input(input, to_server, errors_tx, awaited.clone()));
    tokio::spawn(write_output(from_server, output, errors_rx, awaited));
    (server_in, server_out)
}

/// Checks one message body; `Ok` carries the message, `Err` the error response to send back.
fn check(body: &[u8]) -> Result<Value, Value> {
    let parse_error = |message: String| error_response(Value::Null, -32700, message);
    let text =
        std::str::from_utf8(body).map_err(|e| parse_error(format!("message is not valid UTF-8: {e}")))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| parse_error(format!("message is not valid JSON: {e}")))?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let invalid = |message: &str| error_response(id.clone(), -32600, message.to_owned());
    if value.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(invalid("not a JSON-RPC 2.0 message: `jsonrpc` must be \"2.0\""));
    }
    let valid = if value.get("method").is_some() {
        serde_json::from_value::<jsonrpc::Request>(value.clone()).is_ok()
    } else {
        serde_json::from_value::<jsonrpc::Response>(value.clone()).is_ok()
    };
    if valid { Ok(value) } else { Err(invalid("not a valid JSON-RPC request, notification or response")) }
}

fn error_response(id: Value, code: i64, message: String) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

async fn read_input(
    mut input: impl AsyncRead + Unpin,
    mut to_server: tokio::io::DuplexStream,
    errors: mpsc::UnboundedSender<Value>,
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
                    let _ = errors.send(error_response(Value::Null, -32700, message));
                    continue;
                }
                Decoded::Message(body) => body,
            };
            let message = match check(&body) {
                Ok(message) => message,
                Err(response) => {
                    tracing::warn!("malformed message from the client: {}", response["error"]["message"]);
                    let _ = errors.send(response);
                    continue;
                }
            };
            // Only a request is answered; a notification named `initialize` is not waited for.
            let is_request = message.get("id").is_some_and(|id| !id.is_null());
            let answered = (message["method"] == "initialize" && is_request).then(|| {
                let (tx, rx) = oneshot::channel();
                *awaited.lock().unwrap_or_else(PoisonError::into_inner) = Some((message["id"].clone(), tx));
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
    mut errors: mpsc::UnboundedReceiver<Value>,
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
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                decoder.feed(&chunk[..read]);
                while let Some(decoded) = decoder.next() {
                    match decoded {
                        Decoded::Message(body) => {
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

/// Wakes the reader when `body` answers the `initialize` request it waits for.
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
        assert!(check(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#).is_ok());
        assert!(check(br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#).is_ok());
        assert!(check(br#"{"jsonrpc":"2.0","id":1,"result":null}"#).is_ok());
        assert_eq!(check(b"{oops").unwrap_err()["error"]["code"], -32700);
        assert_eq!(check(b"\xff").unwrap_err()["error"]["code"], -32700);
        let invalid = check(br#"{"jsonrpc":"2.0","id":4,"method":7}"#).unwrap_err();
        assert_eq!((invalid["error"]["code"].as_i64(), invalid["id"].as_i64()), (Some(-32600), Some(4)));
        assert_eq!(check(br#"[1,2]"#).unwrap_err()["error"]["code"], -32600);
    }
}
