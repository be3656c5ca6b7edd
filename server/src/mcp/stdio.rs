//! The stdio transport of `acas mcp`: one JSON-RPC message a line in each direction.
//!
//! It answers what it cannot decode instead of dropping it, so a client never waits for an
//! answer that will not come: a line that is not JSON gets a parse error (-32700) with a null
//! id; a request whose id can still be read (its text holds a lone surrogate escape such as
//! `\udcff`, or it is not an MCP request) gets an error on that id (-32602 or -32600). A
//! notification or response that cannot be decoded is dropped, as JSON-RPC asks. It does not
//! know what messages mean: that is the server's.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// The longest line read, in bytes; a longer one is answered with a parse error and skipped.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Lines from `R`, answers to `W`.
pub struct LineTransport<R, W> {
    reader: BufReader<R>,
    writer: Arc<Mutex<W>>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> LineTransport<R, W> {
    pub fn new(reader: R, writer: W) -> Self {
        LineTransport { reader: BufReader::new(reader), writer: Arc::new(Mutex::new(writer)) }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(writer: &Mutex<W>, mut line: Vec<u8>) -> std::io::Result<()> {
    line.push(b'\n');
    let mut writer = writer.lock().await;
    writer.write_all(&line).await?;
    writer.flush().await
}

/// Only the id of a message: read even when the rest of it cannot be decoded (serde skips what
/// it ignores without checking its escapes).
#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<serde::de::IgnoredAny>,
}

/// The error answer for a line that did not decode as a client message, or `None` when it
/// should get none (a notification or a response).
fn answer_for(line: &[u8], error: &serde_json::Error) -> Option<Value> {
    let answer = |id: Value, code: i64, message: String| {
        Some(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }))
    };
    let Ok(head) = serde_json::from_slice::<IdOnly>(line) else {
        return answer(
            Value::Null,
            -32700,
            format!("parse error: the line is not a JSON-RPC message ({error}); send one JSON object a line"),
        );
    };
    let id = head.id.filter(|id| id.is_string() || id.is_number())?;
    head.method.as_ref()?;
    if serde_json::from_slice::<Value>(line).is_err() {
        return answer(
            id,
            -32602,
            format!(
                "invalid params: a string in the request is not valid Unicode ({error}); \
                 send text without lone surrogate escapes such as \\udcff"
            ),
        );
    }
    answer(id, -32600, format!("invalid request: not an MCP request this server knows ({error})"))
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move {
            let line = serde_json::to_vec(&item).map_err(std::io::Error::other)?;
            write_line(&writer, line).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = (&mut self.reader).take(MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut line).await;
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
                // Skip the rest of the line, then answer it.
                let mut rest = Vec::new();
                loop {
                    rest.clear();
                    match (&mut self.reader).take(64 * 1024).read_until(b'\n', &mut rest).await {
                        Ok(0) | Err(_) => return None,
                        Ok(_) if rest.last() == Some(&b'\n') => break,
                        Ok(_) => {}
                    }
                }
                let answer = json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32700, "message":
                    format!("parse error: a line over {MAX_LINE_BYTES} bytes; send smaller messages") } });
                if write_line(&self.writer, answer.to_string().into_bytes()).await.is_err() {
                    return None;
                }
                continue;
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(text) {
                Ok(message) => return Some(message),
                Err(error) => {
                    tracing::warn!("mcp: a message that cannot be decoded: {error}");
                    if let Some(answer) = answer_for(text, &error)
                        && write_line(&self.writer, answer.to_string().into_bytes()).await.is_err()
                    {
                        return None;
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answers(input: &str) -> (Vec<Value>, usize) {
        let (mut client, server_out) = tokio::io::duplex(1 << 16);
        let mut transport = LineTransport::new(std::io::Cursor::new(input.as_bytes().to_vec()), server_out);
        let mut decoded = 0;
        while transport.receive().await.is_some() {
            decoded += 1;
        }
        drop(transport);
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut client, &mut out).await.unwrap();
        (out.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), decoded)
    }

    #[tokio::test]
    async fn undecodable_lines_get_an_answer_and_the_rest_is_served() {
        let input = concat!(
            "{bad json\n",
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"check","arguments":{"paths":["a\udcff"]}}}"#,
            "\n",
            r#"{"jsonrpc":"1.0","id":"x","method":"ping"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","method":"notifications/nonsense\udcff"}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#,
            "\n"
        );
        let (answers, decoded) = answers(input).await;
        assert_eq!(decoded, 1, "the ping is decoded and handed on");
        let codes: Vec<(Value, i64)> =
            answers.iter().map(|a| (a["id"].clone(), a["error"]["code"].as_i64().unwrap())).collect();
        assert_eq!(codes, vec![(Value::Null, -32700), (json!(3), -32602), (json!("x"), -32600)]);
        assert!(answers[1]["error"]["message"].as_str().unwrap().contains("surrogate"));
    }
}
