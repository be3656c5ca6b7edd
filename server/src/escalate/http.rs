//! What the HTTP providers share: settings, the client, the streaming loop with its timeouts and
//! cancellation, and the mapping from HTTP failures to [`ProviderErrorKind`].
//!
//! It knows HTTP and SSE but no provider's JSON: each wire format is a [`WireFormat`] (where to
//! post, how to authorise, the body, and how its events fill in a [`Reply`]), and
//! [`HttpProvider`] turns any of them into a [`Provider`]. It does not retry.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use futures_util::future::BoxFuture;

use super::provider::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderErrorKind, StreamEvent, Usage,
};
use super::sse::{SseEvent, SseParser};

/// Where and how an HTTP provider connects.
#[derive(Clone)]
pub struct HttpSettings {
    /// The configured provider name.
    pub name: String,
    /// Base URL without a trailing slash, e.g. `https://api.anthropic.com`.
    pub base_url: String,
    pub model: String,
    /// The API key; `None` sends no credentials (local OpenAI-compatible servers).
    pub api_key: Option<String>,
    /// The whole request, from connecting to the last byte, must finish within this.
    pub timeout: Duration,
    /// The longest silence allowed between two chunks of a streamed body.
    pub idle_timeout: Duration,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// The HTTP client for `url` as a provider's error when it cannot be set up.
pub(crate) fn client(url: &str) -> Result<reqwest::Client, ProviderError> {
    crate::http::client_for(url)
        .map_err(|error| ProviderError::new(ProviderErrorKind::Server, error.to_string()))
}

/// What a provider's event handler says about the stream.
pub enum Flow {
    Continue,
    /// The terminal event arrived; the reply is complete.
    Done,
}

/// One provider API: where a request goes, how it is authorised, what its body says, and how
/// its streamed events make the reply.
pub trait WireFormat: fmt::Debug + Default + Send + Sync + 'static {
    /// The request's path under the base URL.
    fn path(&self, settings: &HttpSettings) -> String;
    /// Adds the API key, and any header the API requires, to the request.
    fn authorize(&self, request: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder;
    /// The JSON body sent for `request`.
    fn body(&self, settings: &HttpSettings, request: &CompletionRequest) -> serde_json::Value;
    /// Reads one event into `reply`; [`Flow::Done`] when the reply is complete.
    fn on_event(
        &self,
        reply: &mut Reply,
        name: &str,
        event: &SseEvent,
        events: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Flow, ProviderError>;
}

/// A reply as its events arrive.
#[derive(Debug, Default)]
pub struct Reply {
    pub text: String,
    pub usage: Usage,
    /// The model the provider reported, if it did.
    pub model: Option<String>,
    /// Why generation stopped, if reported.
    pub finish_reason: Option<String>,
}

/// A model behind one [`WireFormat`] over HTTP with SSE streaming.
#[derive(Debug)]
pub struct HttpProvider<W> {
    settings: HttpSettings,
    client: reqwest::Client,
    wire: W,
}

impl<W: WireFormat> HttpProvider<W> {
    pub fn new(settings: HttpSettings) -> Result<Self, ProviderError> {
        let client = client(&settings.base_url)?;
        Ok(Self { settings, client, wire: W::default() })
    }

    /// The JSON body sent for `request`.
    pub fn body(&self, request: &CompletionRequest) -> serde_json::Value {
        self.wire.body(&self.settings, request)
    }

    async fn run(
        &self,
        request: &CompletionRequest,
        events: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<Completion, ProviderError> {
        let settings = &self.settings;
        let builder = self
            .client
            .post(join_url(&settings.base_url, &self.wire.path(settings)))
            .header("content-type", "application/json")
            .body(self.body(request).to_string());
        let builder = self.wire.authorize(builder, settings.api_key.as_deref());
        let mut reply = Reply::default();
        stream_sse(settings, builder, events, cancel, |event, events| {
            self.wire.on_event(&mut reply, &settings.name, &event, events)
        })
        .await?;
        Ok(Completion {
            text: reply.text,
            usage: reply.usage,
            model: reply.model.unwrap_or_else(|| settings.model.clone()),
            provider: settings.name.clone(),
            finish_reason: reply.finish_reason,
        })
    }
}

impl<W: WireFormat> Provider for HttpProvider<W> {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn model(&self) -> &str {
        &self.settings.model
    }

    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
        events: &'a mut (dyn FnMut(StreamEvent) + Send),
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(self.run(request, events, cancel))
    }
}

/// Sends `request`, then feeds every SSE event of a successful response to `on_event` until it
/// returns [`Flow::Done`]. Applies the overall and idle timeouts and stops when `cancel` fires.
pub(crate) async fn stream_sse(
    settings: &HttpSettings,
    request: reqwest::RequestBuilder,
    events: &mut (dyn FnMut(StreamEvent) + Send),
    cancel: &CancellationToken,
    mut on_event: impl FnMut(SseEvent, &mut (dyn FnMut(StreamEvent) + Send)) -> Result<Flow, ProviderError>,
) -> Result<(), ProviderError> {
    let name = settings.name.as_str();
    let deadline = Instant::now() + settings.timeout;
    let timed_out = || {
        ProviderError::new(
            ProviderErrorKind::Timeout,
            format!("{name}: no complete reply within {:?}", settings.timeout),
        )
    };

    let response = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(ProviderError::cancelled(name)),
        () = tokio::time::sleep_until(deadline) => return Err(timed_out()),
        response = request.send() => response.map_err(|error| transport_error(name, &error, false))?,
    };

    let status = response.status();
    if !status.is_success() {
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ProviderError::cancelled(name)),
            () = tokio::time::sleep_until(deadline) => return Err(timed_out()),
            body = response.text() => body.unwrap_or_default(),
        };
        let mut error = error_from_status(name, status.as_u16(), &body);
        error.retry_after = retry_after.or(error.retry_after);
        return Err(error);
    }

    events(StreamEvent::Started);
    let mut response = response;
    let mut parser = SseParser::default();
    loop {
        let idle = Instant::now() + settings.idle_timeout;
        let chunk = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(ProviderError::cancelled(name)),
            () = tokio::time::sleep_until(deadline) => return Err(timed_out()),
            () = tokio::time::sleep_until(idle) => {
                return Err(ProviderError::new(
                    ProviderErrorKind::Timeout,
                    format!("{name}: the stream was silent for {:?}", settings.idle_timeout),
                ));
            }
            chunk = response.chunk() => chunk.map_err(|error| transport_error(name, &error, true))?,
        };
        let Some(chunk) = chunk else { break };
        for event in parser.push(&chunk) {
            if let Flow::Done = on_event(event, events)? {
                return Ok(());
            }
        }
    }
    if let Some(event) = parser.finish()
        && let Flow::Done = on_event(event, events)?
    {
        return Ok(());
    }
    Err(ProviderError::new(
        ProviderErrorKind::StreamCut,
        format!("{name}: the connection closed before the reply was complete"),
    ))
}

fn transport_error(name: &str, error: &reqwest::Error, streaming: bool) -> ProviderError {
    let detail = crate::http::error_chain(error);
    if error.is_timeout() {
        ProviderError::new(ProviderErrorKind::Timeout, format!("{name}: timed out: {detail}"))
    } else if streaming {
        ProviderError::new(ProviderErrorKind::StreamCut, format!("{name}: the stream broke off: {detail}"))
    } else if error.is_connect() {
        ProviderError::new(ProviderErrorKind::Server, format!("{name}: could not connect: {detail}"))
    } else {
        ProviderError::new(ProviderErrorKind::Server, format!("{name}: the request failed: {detail}"))
    }
}

/// Maps an unsuccessful HTTP status and its body to an error, quoting the provider's message.
pub(crate) fn error_from_status(name: &str, status: u16, body: &str) -> ProviderError {
    let kind = match status {
        429 => ProviderErrorKind::RateLimited,
        503 | 529 => ProviderErrorKind::Overloaded,
        401 | 403 => ProviderErrorKind::Auth,
        500..=599 => ProviderErrorKind::Server,
        408 => ProviderErrorKind::Timeout,
        _ => ProviderErrorKind::BadRequest,
    };
    let reason = match status {
        529 => Some("Overloaded"), // Anthropic's own status
        _ => reqwest::StatusCode::from_u16(status).ok().and_then(|code| code.canonical_reason()),
    };
    let reason = reason.map(|reason| format!(" {reason}")).unwrap_or_default();
    let detail = error_message(body);
    let hint = match kind {
        ProviderErrorKind::Auth => ": check the API key and its permissions",
        _ => "",
    };
    let message = match detail {
        Some(detail) => format!("{name}: HTTP {status}{reason}: {detail}{hint}"),
        None => format!("{name}: HTTP {status}{reason}{hint}"),
    };
    ProviderError::new(kind, message)
}

/// The human-readable message inside a provider's JSON error body (`error.message` in Anthropic,
/// OpenAI and Gemini alike, the last also wrapped in an array), or the start of the body.
pub(crate) fn error_message(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        let value = value.as_array().and_then(|items| items.first()).unwrap_or(&value);
        let error = value.get("error").unwrap_or(value);
        if let Some(message) = error.get("message").and_then(|m| m.as_str()) {
            return Some(message.to_owned());
        }
        if let Some(message) = error.as_str() {
            return Some(message.to_owned());
        }
    }
    Some(body.chars().take(300).collect())
}

/// How long the response asks us to wait: `retry-after-ms` (OpenAI), else `retry-after` in
/// seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return crate::duration::clamp_secs_f64(ms / 1000.0, crate::duration::MAX);
    }
    header("retry-after").and_then(|value| parse_retry_after(value, now))
}

/// Parses a `retry-after` value: delay seconds, or an IMF-fixdate such as
/// `Wed, 21 Oct 2015 07:28:00 GMT` (a date in the past means now).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return crate::duration::clamp_secs_f64(seconds, crate::duration::MAX);
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_http_date(value: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT"
    let mut parts = value.split_ascii_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|part| part.parse::<u64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if parts.next()? != "GMT" || parts.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = crate::time::days_from_civil(year, month, day);
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Parses one event's JSON data, or says which provider sent something unreadable.
pub(crate) fn parse_json(name: &str, data: &str) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(data).map_err(|error| {
        let start: String = data.chars().take(120).collect();
        ProviderError::new(
            ProviderErrorKind::Malformed,
            format!("{name}: unreadable event ({error}): {start}"),
        )
    })
}

/// Joins a base URL and a path without doubling or losing the slash.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        use ProviderErrorKind::*;
        for (status, kind) in [
            (429, RateLimited),
            (529, Overloaded),
            (503, Overloaded),
            (500, Server),
            (502, Server),
            (504, Server),
            (401, Auth),
            (403, Auth),
            (400, BadRequest),
            (404, BadRequest),
            (413, BadRequest),
        ] {
            assert_eq!(error_from_status("p", status, "").kind, kind, "HTTP {status}");
        }
    }

    #[test]
    fn the_providers_message_is_quoted() {
        let anthropic =
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#;
        assert_eq!(
            error_from_status("claude", 400, anthropic).message,
            "claude: HTTP 400 Bad Request: max_tokens: too big"
        );
        let openai = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        assert_eq!(
            error_from_status("gpt", 401, openai).message,
            "gpt: HTTP 401 Unauthorized: Incorrect API key provided: check the API key and its permissions"
        );
        let gemini = r#"[{"error":{"code":400,"message":"API key not valid","status":"INVALID_ARGUMENT"}}]"#;
        assert_eq!(error_message(gemini).as_deref(), Some("API key not valid"));
        assert_eq!(error_message("<html>bad gateway</html>").as_deref(), Some("<html>bad gateway</html>"));
        assert_eq!(error_message("  "), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", UNIX_EPOCH),
            Some(Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1e300", now), Some(crate::duration::MAX));
        assert_eq!(parse_retry_after("inf", now), Some(crate::duration::MAX));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 PST", now), None);

        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "20".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(20)));
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_millis(250)));
    }

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(join_url("http://h/v1/", "/chat/completions"), "http://h/v1/chat/completions");
        assert_eq!(join_url("http://h", "v1/messages"), "http://h/v1/messages");
    }
}
