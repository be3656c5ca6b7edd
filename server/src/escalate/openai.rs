//! OpenAI-compatible chat completions, streamed: `POST {base_url}/chat/completions`.
//!
//! The same code serves OpenAI, OpenRouter and local servers (Ollama, vLLM, LM Studio, llama.cpp
//! server) through `base_url`; a provider without a key sends no `Authorization` header. Reads
//! `choices[0].delta.content`, the finish reason, the final usage chunk that
//! `stream_options.include_usage` asks for (`choices: []`), and `data: [DONE]`, the terminal
//! event. A JSON schema becomes `response_format: json_schema`.

use serde_json::{Value, json};

use super::http::{self, Flow, HttpProvider, HttpSettings, Reply, WireFormat};
use super::provider::{CompletionRequest, ProviderError, ProviderErrorKind, StreamEvent, Usage};
use super::sse::SseEvent;

/// Default base URL.
pub const BASE_URL: &str = "https://api.openai.com/v1";

/// A model behind an OpenAI-compatible chat completions endpoint.
pub type OpenAiProvider = HttpProvider<OpenAi>;

/// The OpenAi wire format.
#[derive(Debug, Default)]
pub struct OpenAi;

impl WireFormat for OpenAi {
    fn path(&self, _settings: &HttpSettings) -> String {
        "chat/completions".to_owned()
    }

    fn authorize(&self, request: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder {
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn body(&self, settings: &HttpSettings, request: &CompletionRequest) -> Value {
        let mut body = json!({
            "model": settings.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.prompt},
            ],
            "max_tokens": request.max_tokens,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(schema) = &request.json_schema {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema},
            });
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
        if data.trim() == "[DONE]" {
            return Ok(Flow::Done);
        }
        let chunk = http::parse_json(name, data)?;
        if let Some(error) = chunk.get("error") {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("no message");
            return Err(ProviderError::new(
                ProviderErrorKind::Server,
                format!("{name}: error during the stream: {message}"),
            ));
        }
        if reply.model.is_none() {
            reply.model = chunk.get("model").and_then(Value::as_str).map(str::to_owned);
        }
        if let Some(choice) = chunk.get("choices").and_then(|choices| choices.get(0)) {
            if let Some(text) = choice["delta"].get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                reply.text.push_str(text);
                events(StreamEvent::Text(text.to_owned()));
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                reply.finish_reason = Some(reason.to_owned());
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|usage| usage.is_object()) {
            let count = |value: &Value| value.as_u64().unwrap_or(0);
            reply.usage = Usage {
                input_tokens: count(&usage["prompt_tokens"]),
                output_tokens: count(&usage["completion_tokens"]),
                cached_input_tokens: count(&usage["prompt_tokens_details"]["cached_tokens"]),
                estimated: false,
            };
            events(StreamEvent::Usage(reply.usage));
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_usage_chunk_and_done_complete_the_reply() {
        let mut reply = Reply::default();
        let mut seen = Vec::new();
        let mut events = |event| seen.push(event);
        for data in [
            r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}"#,
            r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","model":"gpt-x","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":16}}}"#,
        ] {
            let event = SseEvent { event: None, data: data.to_owned() };
            assert!(matches!(OpenAi.on_event(&mut reply, "gpt", &event, &mut events), Ok(Flow::Continue)));
        }
        let done = SseEvent { event: None, data: "[DONE]".to_owned() };
        assert!(matches!(OpenAi.on_event(&mut reply, "gpt", &done, &mut events), Ok(Flow::Done)));
        assert_eq!(reply.text, "Hello");
        assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            reply.usage,
            Usage { input_tokens: 20, output_tokens: 2, cached_input_tokens: 16, estimated: false }
        );
        assert_eq!(seen.first(), Some(&StreamEvent::Text("Hello".into())));
    }
}
