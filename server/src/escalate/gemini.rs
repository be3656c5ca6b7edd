//! Google's Gemini API, streamed:
//! `POST {base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse`.
//!
//! The key travels in the `x-goog-api-key` header, never in the URL. Each SSE event is a whole
//! `GenerateContentResponse`: text in `candidates[0].content.parts[].text` (thought parts are
//! skipped), cumulative `usageMetadata`, and a `finishReason` on the last candidate chunk, which
//! is what marks the reply complete (Gemini sends no `[DONE]`). A JSON schema sets
//! `responseMimeType: application/json` and is described in the system instruction.

use serde_json::{Value, json};

use super::http::{self, Flow, HttpProvider, HttpSettings, Reply, WireFormat};
use super::provider::{
    CompletionRequest, ProviderError, ProviderErrorKind, StreamEvent, Usage, schema_instruction,
};
use super::sse::SseEvent;

/// Default base URL.
pub const BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// A Gemini model.
pub type GeminiProvider = HttpProvider<Gemini>;

/// The Gemini wire format.
#[derive(Debug, Default)]
pub struct Gemini;

impl WireFormat for Gemini {
    fn path(&self, settings: &HttpSettings) -> String {
        format!("v1beta/models/{}:streamGenerateContent?alt=sse", settings.model)
    }

    fn authorize(&self, request: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder {
        match key {
            Some(key) => request.header("x-goog-api-key", key),
            None => request,
        }
    }

    fn body(&self, _settings: &HttpSettings, request: &CompletionRequest) -> Value {
        let mut system = request.system.clone();
        let mut config = json!({"maxOutputTokens": request.max_tokens});
        if let Some(temperature) = request.temperature {
            config["temperature"] = json!(temperature);
        }
        if let Some(schema) = &request.json_schema {
            system.push_str(&schema_instruction(schema));
            config["responseMimeType"] = json!("application/json");
        }
        json!({
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
            "generationConfig": config,
        })
    }

    fn on_event(
        &self,
        reply: &mut Reply,
        name: &str,
        event: &SseEvent,
        events: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Flow, ProviderError> {
        let chunk = http::parse_json(name, &event.data)?;
        if let Some(error) = chunk.get("error") {
            let status = error.get("status").and_then(Value::as_str).unwrap_or("");
            let kind = match status {
                "RESOURCE_EXHAUSTED" => ProviderErrorKind::RateLimited,
                "UNAVAILABLE" => ProviderErrorKind::Overloaded,
                "UNAUTHENTICATED" | "PERMISSION_DENIED" => ProviderErrorKind::Auth,
                "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "NOT_FOUND" => ProviderErrorKind::BadRequest,
                "DEADLINE_EXCEEDED" => ProviderErrorKind::Timeout,
                _ => ProviderErrorKind::Server,
            };
            let message = error.get("message").and_then(Value::as_str).unwrap_or("no message");
            return Err(ProviderError::new(kind, format!("{name}: {status} during the stream: {message}")));
        }
        if let Some(version) = chunk.get("modelVersion").and_then(Value::as_str) {
            reply.model = Some(version.to_owned());
        }
        if let Some(metadata) = chunk.get("usageMetadata") {
            let count = |key: &str| metadata.get(key).and_then(Value::as_u64).unwrap_or(0);
            reply.usage = Usage {
                input_tokens: count("promptTokenCount"),
                output_tokens: count("candidatesTokenCount") + count("thoughtsTokenCount"),
                cached_input_tokens: count("cachedContentTokenCount"),
                estimated: false,
            };
            events(StreamEvent::Usage(reply.usage));
        }
        let candidate = chunk.get("candidates").and_then(|candidates| candidates.get(0));
        let parts = candidate.and_then(|c| c["content"].get("parts")).and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(text) = part.get("text").and_then(Value::as_str)
                && !text.is_empty()
            {
                reply.text.push_str(text);
                events(StreamEvent::Text(text.to_owned()));
            }
        }
        if let Some(reason) = candidate.and_then(|c| c.get("finishReason")).and_then(Value::as_str) {
            reply.finish_reason = Some(reason.to_owned());
            return Ok(Flow::Done);
        }
        if let Some(reason) = chunk["promptFeedback"].get("blockReason").and_then(Value::as_str) {
            return Err(ProviderError::new(
                ProviderErrorKind::BadRequest,
                format!("{name}: the prompt was blocked: {reason}"),
            ));
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thoughts_count_as_output_but_are_not_text() {
        let mut reply = Reply::default();
        let mut events = |_| {};
        let data = r#"{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true},{"text":"Yes"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":1,"thoughtsTokenCount":30,"cachedContentTokenCount":8},"modelVersion":"gemini-x"}"#;
        let event = SseEvent { event: None, data: data.into() };
        assert!(matches!(Gemini.on_event(&mut reply, "g", &event, &mut events), Ok(Flow::Done)));
        assert_eq!(reply.text, "Yes");
        assert_eq!(
            reply.usage,
            Usage { input_tokens: 12, output_tokens: 31, cached_input_tokens: 8, estimated: false }
        );
    }
}
