//! Anthropic's Messages API, streamed: `POST {base_url}/v1/messages` with `stream: true`.
//!
//! Reads `message_start` (input and cache-read tokens, the model), `content_block_delta`
//! (`text_delta` only: thinking and tool blocks are not requested), `message_delta` (output
//! tokens, stop reason), `message_stop` (the terminal event), `ping` and `error` events. Anthropic
//! has no general structured-output switch here, so a JSON schema is put in the system prompt.

use serde_json::{Value, json};

use super::http::{self, Flow, HttpProvider, HttpSettings, Reply, WireFormat};
use super::provider::{CompletionRequest, ProviderError, ProviderErrorKind, StreamEvent, schema_instruction};
use super::sse::SseEvent;

/// Default base URL.
pub const BASE_URL: &str = "https://api.anthropic.com";
/// The API version this code speaks.
pub const API_VERSION: &str = "2023-06-01";

/// A model behind Anthropic's Messages API.
pub type AnthropicProvider = HttpProvider<Anthropic>;

/// The Anthropic wire format.
#[derive(Debug, Default)]
pub struct Anthropic;

impl WireFormat for Anthropic {
    fn path(&self, _settings: &HttpSettings) -> String {
        "v1/messages".to_owned()
    }

    fn authorize(&self, request: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder {
        let request = request.header("anthropic-version", API_VERSION);
        match key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }

    fn body(&self, settings: &HttpSettings, request: &CompletionRequest) -> Value {
        let mut system = request.system.clone();
        if let Some(schema) = &request.json_schema {
            system.push_str(&schema_instruction(schema));
        }
        let mut body = json!({
            "model": settings.model,
            "max_tokens": request.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": request.prompt}],
            "stream": true,
        });
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        body
    }

    fn on_event(
        &self,
        reply: &mut Reply,
        name: &str,
        event: &SseEvent,
        events: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Flow, ProviderError> {
        let data = event.data.as_str();
        let event = http::parse_json(name, data)?;
        let count = |value: &Value, key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let message = &event["message"];
                reply.model = message.get("model").and_then(Value::as_str).map(str::to_owned);
                let usage = &message["usage"];
                let cache_read = count(usage, "cache_read_input_tokens");
                reply.usage.input_tokens =
                    count(usage, "input_tokens") + cache_read + count(usage, "cache_creation_input_tokens");
                reply.usage.cached_input_tokens = cache_read;
                reply.usage.output_tokens = count(usage, "output_tokens");
                events(StreamEvent::Usage(reply.usage));
            }
            Some("content_block_delta") => {
                let delta = &event["delta"];
                if delta.get("type").and_then(Value::as_str) == Some("text_delta")
                    && let Some(text) = delta.get("text").and_then(Value::as_str)
                {
                    reply.text.push_str(text);
                    events(StreamEvent::Text(text.to_owned()));
                }
            }
            Some("message_delta") => {
                if let Some(reason) = event["delta"].get("stop_reason").and_then(Value::as_str) {
                    reply.finish_reason = Some(reason.to_owned());
                }
                if let Some(output) = event["usage"].get("output_tokens").and_then(Value::as_u64) {
                    reply.usage.output_tokens = output;
                    events(StreamEvent::Usage(reply.usage));
                }
            }
            Some("message_stop") => return Ok(Flow::Done),
            Some("error") => return Err(stream_error(name, &event["error"])),
            // ping, content_block_start, content_block_stop and whatever Anthropic adds later
            _ => {}
        }
        Ok(Flow::Continue)
    }
}

/// Maps an `error` event (`{"type":"overloaded_error","message":"Overloaded"}`) to a kind.
fn stream_error(name: &str, error: &Value) -> ProviderError {
    let kind_name = error.get("type").and_then(Value::as_str).unwrap_or("unknown_error");
    let kind = match kind_name {
        "overloaded_error" => ProviderErrorKind::Overloaded,
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "authentication_error" | "permission_error" => ProviderErrorKind::Auth,
        "invalid_request_error" | "not_found_error" | "request_too_large" => ProviderErrorKind::BadRequest,
        "timeout_error" => ProviderErrorKind::Timeout,
        _ => ProviderErrorKind::Server,
    };
    let message = error.get("message").and_then(Value::as_str).unwrap_or("no message");
    ProviderError::new(kind, format!("{name}: {kind_name} during the stream: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escalate::provider::Usage;

    fn feed(lines: &[&str]) -> (Reply, Result<Flow, ProviderError>, Vec<StreamEvent>) {
        let mut reply = Reply::default();
        let mut seen = Vec::new();
        let mut flow = Ok(Flow::Continue);
        for line in lines {
            let event = SseEvent { event: None, data: (*line).to_owned() };
            flow = Anthropic.on_event(&mut reply, "claude", &event, &mut |event| seen.push(event));
            if !matches!(flow, Ok(Flow::Continue)) {
                break;
            }
        }
        (reply, flow, seen)
    }

    #[test]
    fn usage_counts_cached_and_written_tokens_as_input() {
        let (reply, flow, _) = feed(&[
            r#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":10,"cache_read_input_tokens":90,"cache_creation_input_tokens":5,"output_tokens":1}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        assert!(matches!(flow, Ok(Flow::Done)));
        assert_eq!(reply.text, "Hi");
        assert_eq!(
            reply.usage,
            Usage { input_tokens: 105, output_tokens: 7, cached_input_tokens: 90, estimated: false }
        );
        assert_eq!(reply.finish_reason.as_deref(), Some("end_turn"));
        assert_eq!(reply.model.as_deref(), Some("claude-x"));
    }

    #[test]
    fn error_events_map_to_kinds() {
        let (_, flow, _) =
            feed(&[r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#]);
        let error = flow.err().unwrap();
        assert_eq!(error.kind, ProviderErrorKind::Overloaded);
        assert_eq!(error.message, "claude: overloaded_error during the stream: Overloaded");
        let (_, flow, _) = feed(&[r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#]);
        assert_eq!(flow.err().unwrap().kind, ProviderErrorKind::Server);
        let (_, flow, _) = feed(&[r#"{"type":"content_block_delta","delta":"#]);
        assert_eq!(flow.err().unwrap().kind, ProviderErrorKind::Malformed);
    }
}
