//! Framing guard between stdio and the LSP library.
//!
//! The library's transport ends the whole connection on the first message it cannot decode. An
//! editor must not lose its server to one bad frame, so every message is framed and checked here
//! first: well-formed ones pass through untouched; a malformed one is answered with a JSON-RPC
//! error (parse error, or invalid request with its id when it has one) and dropped. Outgoing
//! frames of the library and of this guard are written to stdout whole, never interleaved.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tower_lsp_server::jsonrpc;

/// Largest message accepted; anything bigger is read past and refused.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Connects `input`/`output` (stdio) to the library through checked pipes. Returns the ends
/// the library should use.
pub fn guard(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> (tokio::io::DuplexStream, tokio::io::DuplexStream) {
    let (server_in, to_server) = tokio::io::duplex(1 << 20);
    let (from_server, server_out) = tokio::io::duplex(1 << 20);
    let (errors_tx, errors_rx) = mpsc::unbounded_channel();
    tokio::spawn(read_input(input, to_server, errors_tx));
    tokio::spawn(write_output(from_server, output, errors_rx));
    (server_in, server_out)
}

enum Frame {
    Message(Vec<u8>),
    /// Bytes that are not a frame: answered with a parse error.
    Garbage(String),
    End,
}

async fn read_frame(reader: &mut BufReader<impl AsyncRead + Unpin>) -> std::io::Result<Frame> {
    let mut length: Option<usize> = None;
    let mut bad_header = None;
    let mut saw_header = false;
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(Frame::End);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if !saw_header {
                continue;
            }
            break;
        }
        saw_header = true;
        match text.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<usize>() {
                    Ok(n) => length = Some(n),
                    Err(_) => bad_header = Some(format!("invalid Content-Length `{}`", value.trim())),
                }
            }
            Some((name, _)) if name.eq_ignore_ascii_case("content-type") => {}
            _ => {
                // Not a header: skip to the next line that could start a frame.
                return Ok(Frame::Garbage(format!(
                    "expected a `Content-Length` header, got `{}`",
                    truncate(text)
                )));
            }
        }
    }
    let Some(length) = length else {
        return Ok(Frame::Garbage(bad_header.unwrap_or_else(|| "missing Content-Length header".to_owned())));
    };
    if length > MAX_MESSAGE {
        let mut skip = reader.take(length as u64);
        tokio::io::copy(&mut skip, &mut tokio::io::sink()).await?;
        return Ok(Frame::Garbage(format!("message of {length} bytes is over the {MAX_MESSAGE}-byte limit")));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Frame::Message(body))
}

fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Checks one message body; `Err` carries the error response to send back.
fn check(body: &[u8]) -> Result<(), Value> {
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
    if valid { Ok(()) } else { Err(invalid("not a valid JSON-RPC request, notification or response")) }
}

fn error_response(id: Value, code: i64, message: String) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

async fn read_input(
    input: impl AsyncRead + Unpin,
    mut to_server: tokio::io::DuplexStream,
    errors: mpsc::UnboundedSender<Value>,
) {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    loop {
        let frame = match read_frame(&mut reader).await {
            Ok(frame) => frame,
            Err(error) => {
                tracing::info!("reading from the client ended: {error}");
                break;
            }
        };
        match frame {
            Frame::End => break,
            Frame::Garbage(message) => {
                tracing::warn!("malformed input from the client: {message}");
                let _ = errors.send(error_response(Value::Null, -32700, message));
            }
            Frame::Message(body) => match check(&body) {
                Ok(()) => {
                    let header = format!("Content-Length: {}\r\n\r\n", body.len());
                    let written = async {
                        to_server.write_all(header.as_bytes()).await?;
                        to_server.write_all(&body).await?;
                        to_server.flush().await
                    };
                    if written.await.is_err() {
                        break;
                    }
                }
                Err(response) => {
                    tracing::warn!("malformed message from the client: {}", response["error"]["message"]);
                    let _ = errors.send(response);
                }
            },
        }
    }
    // Closing the pipe tells the library the client is gone.
    let _ = to_server.shutdown().await;
}

async fn write_output(
    from_server: tokio::io::DuplexStream,
    mut output: impl AsyncWrite + Unpin,
    mut errors: mpsc::UnboundedReceiver<Value>,
) {
    let mut reader = BufReader::with_capacity(1 << 16, from_server);
    let mut errors_open = true;
    loop {
        tokio::select! {
            frame = read_frame(&mut reader) => match frame {
                Ok(Frame::Message(body)) => {
                    if write_frame(&mut output, &body).await.is_err() {
                        return;
                    }
                }
                Ok(Frame::Garbage(message)) => tracing::error!("the server wrote a malformed frame: {message}"),
                Ok(Frame::End) | Err(_) => return,
            },
            error = errors.recv(), if errors_open => match error {
                Some(response) => {
                    let body = serde_json::to_vec(&response).expect("JSON values serialise");
                    if write_frame(&mut output, &body).await.is_err() {
                        return;
                    }
                }
                None => errors_open = false,
            },
        }
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
