//! The escalate providers and chain against the fake provider: real HTTP on 127.0.0.1, each
//! provider's exact wire format, and every way a provider fails. Retry timing is checked through
//! an injected clock that records the waits asked for and returns at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acas::escalate::anthropic::AnthropicProvider;
use acas::escalate::chain::{Chain, ChainOptions, ChainReply, Clock};
use acas::escalate::command::{CommandProvider, CommandSettings};
use acas::escalate::config::{self, HttpProviderConfig, ProviderConfig};
use acas::escalate::gemini::GeminiProvider;
use acas::escalate::http::HttpSettings;
use acas::escalate::openai::OpenAiProvider;
use acas::escalate::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderErrorKind, StreamEvent, Usage,
};
use acas_e2e::fake_provider::{FakeProvider, FakeUsage, Format, Reply, Request};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use ProviderErrorKind::*;

/// Bound on any one test's wait for a reply; never reached when the code under test works.
const BOUND: Duration = Duration::from_secs(30);

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Records requested sleeps and advances itself by them at once.
struct TestClock {
    now: Mutex<Instant>,
    sleeps: Mutex<Vec<Duration>>,
}

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(Self { now: Mutex::new(Instant::now()), sleeps: Mutex::new(Vec::new()) })
    }
    fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
    }
    fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()> {
        self.sleeps.lock().unwrap().push(duration);
        self.advance(duration);
        Box::pin(async {})
    }
}

fn settings(fake: &FakeProvider, name: &str) -> HttpSettings {
    HttpSettings {
        name: name.to_owned(),
        base_url: fake.base_url(),
        model: "test-model".to_owned(),
        api_key: Some(fake.api_key()),
        timeout: BOUND,
        idle_timeout: BOUND,
    }
}

fn http_provider(format: Format, settings: HttpSettings) -> Box<dyn Provider> {
    match format {
        Format::Anthropic => Box::new(AnthropicProvider::new(settings).unwrap()),
        Format::OpenAi => Box::new(OpenAiProvider::new(settings).unwrap()),
        Format::Gemini => Box::new(GeminiProvider::new(settings).unwrap()),
    }
}

fn provider(format: Format, fake: &FakeProvider, name: &str) -> Box<dyn Provider> {
    http_provider(format, settings(fake, name))
}

fn request() -> CompletionRequest {
    CompletionRequest {
        system: "You explain Rust compiler errors.".to_owned(),
        prompt: "error[E0382]: borrow of moved value: `v`".to_owned(),
        max_tokens: 256,
        temperature: Some(0.0),
        json_schema: None,
    }
}

/// Runs one request against one provider; returns the result and every event.
async fn complete(
    provider: &dyn Provider,
    request: &CompletionRequest,
) -> (Result<Completion, ProviderError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let cancel = CancellationToken::new();
    let result = tokio::time::timeout(BOUND, provider.complete(request, &mut |e| events.push(e), &cancel))
        .await
        .expect("the provider answers within the bound");
    (result, events)
}

fn chain(providers: Vec<Box<dyn Provider>>, clock: &Arc<TestClock>) -> Chain {
    Chain::new(providers, ChainOptions::default(), clock.clone())
}

async fn run_chain(chain: &Chain) -> Result<ChainReply, acas::escalate::ChainError> {
    let cancel = CancellationToken::new();
    tokio::time::timeout(BOUND, chain.complete(&request(), &mut |_| {}, &cancel))
        .await
        .expect("the chain answers within the bound")
}

fn outcomes(attempts: &[acas::escalate::Attempt]) -> Vec<(&str, Option<ProviderErrorKind>)> {
    attempts.iter().map(|a| (a.provider.as_str(), a.error.as_ref().map(|e| e.kind))).collect()
}

/// The key reaches the fake once, in its header: never in the URL or the body.
fn assert_key_only_in(request: &Request, key: &str, header: &str) {
    assert_eq!(request.raw.matches(key).count(), 1, "{}", request.raw);
    assert!(request.header(header).is_some_and(|value| value.contains(key)), "{header} carries the key");
    assert!(!request.path.contains(key));
}

const REPLY: &str = "The vector moved into `consume`; borrow it instead: `consume(&v)`.";
const USAGE: FakeUsage = FakeUsage { input_tokens: 120, output_tokens: 14, cached_input_tokens: 100 };

async fn streamed_reply(format: Format) -> (Completion, Vec<StreamEvent>, Vec<Request>, String) {
    let fake = FakeProvider::start(format);
    fake.push(Reply::Text { text: REPLY.to_owned(), usage: USAGE });
    let provider = provider(format, &fake, "p");
    let (result, events) = complete(provider.as_ref(), &request()).await;
    let completion = result.unwrap();
    assert_eq!(completion.text, REPLY);
    assert_eq!(
        completion.usage,
        Usage { input_tokens: 120, output_tokens: 14, cached_input_tokens: 100, estimated: false }
    );
    assert_eq!((completion.provider.as_str(), completion.model.as_str()), ("p", "test-model"));
    assert_eq!(events.first(), Some(&StreamEvent::Started));
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(texts.len() > 1, "the text arrives in pieces: {texts:?}");
    assert_eq!(texts.concat(), REPLY);
    let last_usage = events.iter().rev().find_map(|e| match e {
        StreamEvent::Usage(usage) => Some(*usage),
        _ => None,
    });
    assert_eq!(last_usage, Some(completion.usage));
    (completion, events, fake.requests(), fake.api_key())
}

#[tokio::test]
async fn anthropic_stream_gives_text_usage_and_stop_reason() {
    let (completion, _, requests, key) = streamed_reply(Format::Anthropic).await;
    assert_eq!(completion.finish_reason.as_deref(), Some("end_turn"));
    let [request] = &requests[..] else { panic!("{requests:?}") };
    assert_key_only_in(request, &key, "x-api-key");
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        request.body,
        json!({
            "model": "test-model",
            "max_tokens": 256,
            "system": "You explain Rust compiler errors.",
            "messages": [{"role": "user", "content": "error[E0382]: borrow of moved value: `v`"}],
            "stream": true,
            "temperature": 0.0,
        })
    );
}

#[tokio::test]
async fn openai_stream_takes_usage_from_the_final_chunk() {
    let (completion, _, requests, key) = streamed_reply(Format::OpenAi).await;
    assert_eq!(completion.finish_reason.as_deref(), Some("stop"));
    let [request] = &requests[..] else { panic!("{requests:?}") };
    assert_key_only_in(request, &key, "authorization");
    assert_eq!(request.header("authorization"), Some(format!("Bearer {key}").as_str()));
    assert_eq!(
        request.body,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "You explain Rust compiler errors."},
                {"role": "user", "content": "error[E0382]: borrow of moved value: `v`"},
            ],
            "max_tokens": 256,
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.0,
        })
    );
}

#[tokio::test]
async fn gemini_stream_gives_text_usage_and_finish_reason() {
    let (completion, _, requests, key) = streamed_reply(Format::Gemini).await;
    assert_eq!(completion.finish_reason.as_deref(), Some("STOP"));
    let [request] = &requests[..] else { panic!("{requests:?}") };
    assert_key_only_in(request, &key, "x-goog-api-key");
    assert_eq!(request.path, "/v1beta/models/test-model:streamGenerateContent?alt=sse");
    assert_eq!(
        request.body,
        json!({
            "systemInstruction": {"parts": [{"text": "You explain Rust compiler errors."}]},
            "contents": [{"role": "user", "parts": [{"text": "error[E0382]: borrow of moved value: `v`"}]}],
            "generationConfig": {"maxOutputTokens": 256, "temperature": 0.0},
        })
    );
}

#[tokio::test]
async fn structured_output_is_requested_where_the_api_has_it() {
    let schema = json!({"type": "object", "properties": {"fix": {"type": "string"}}, "required": ["fix"]});
    let request = CompletionRequest { json_schema: Some(schema.clone()), ..request() };
    for format in [Format::Anthropic, Format::OpenAi, Format::Gemini] {
        let fake = FakeProvider::start(format);
        fake.push(Reply::text("{\"fix\": \"borrow\"}"));
        let (result, _) = complete(provider(format, &fake, "p").as_ref(), &request).await;
        assert_eq!(result.unwrap().text, "{\"fix\": \"borrow\"}");
        let body = &fake.requests()[0].body;
        match format {
            Format::OpenAi => assert_eq!(
                body["response_format"],
                json!({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}})
            ),
            Format::Gemini => {
                assert_eq!(body["generationConfig"]["responseMimeType"], "application/json");
                let system = body["systemInstruction"]["parts"][0]["text"].as_str().unwrap();
                assert!(system.contains(&schema.to_string()), "{system}");
            }
            Format::Anthropic => {
                assert!(body["system"].as_str().unwrap().contains(&schema.to_string()), "{body}");
            }
        }
    }
}

#[tokio::test]
async fn providers_built_from_config_reach_the_fake() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::text("configured"));
    let key = fake.api_key();
    let config = ProviderConfig::Openai(HttpProviderConfig {
        name: "primary".into(),
        base_url: Some(fake.base_url()),
        model: Some("local-model".into()),
        api_key_env: Some("ACAS_TEST_KEY".into()),
        timeout_secs: Some(30),
        idle_timeout_secs: None,
    });
    let env = move |name: &str| (name == "ACAS_TEST_KEY").then(|| key.clone());
    let provider = config::build(&config, &env).unwrap();
    let (result, _) = complete(provider.as_ref(), &request()).await;
    assert_eq!(result.unwrap().text, "configured");
    assert_eq!(fake.requests()[0].body["model"], "local-model");
}

#[tokio::test]
async fn a_429_waits_exactly_the_retry_after_then_succeeds() {
    let fake = FakeProvider::start(Format::Anthropic);
    fake.push(Reply::RateLimited { retry_after: Some("3".into()) });
    fake.push(Reply::text("after the wait"));
    let clock = TestClock::new();
    let chain = chain(vec![provider(Format::Anthropic, &fake, "claude")], &clock);
    let reply = run_chain(&chain).await.unwrap();
    assert_eq!(reply.completion.text, "after the wait");
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(3)]);
    assert_eq!(outcomes(&reply.attempts), vec![("claude", Some(RateLimited)), ("claude", None)]);
    assert_eq!(reply.attempts[1].waited, Duration::from_secs(3));
    let message = &reply.attempts[0].error.as_ref().unwrap().message;
    assert!(message.contains("HTTP 429 Too Many Requests: Rate limit reached"), "{message}");
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let fake = FakeProvider::start(Format::OpenAi);
    let error = |code| Reply::Status {
        code,
        headers: vec![],
        body: r#"{"error":{"message":"The server had an error while processing your request"}}"#.into(),
    };
    fake.push(error(500));
    fake.push(error(502));
    fake.push(Reply::text("third time"));
    let clock = TestClock::new();
    let chain = chain(vec![provider(Format::OpenAi, &fake, "gpt")], &clock);
    let reply = run_chain(&chain).await.unwrap();
    assert_eq!(reply.completion.text, "third time");
    assert_eq!(outcomes(&reply.attempts), vec![("gpt", Some(Server)), ("gpt", Some(Server)), ("gpt", None)]);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 2);
    let base = ChainOptions::default().base_delay;
    assert!(sleeps[0] <= base && sleeps[1] <= base * 2, "full jitter under the doubled ceiling: {sleeps:?}");
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn overloaded_is_retried_then_the_next_provider_answers() {
    let claude = FakeProvider::start(Format::Anthropic);
    for _ in 0..3 {
        claude.push(Reply::Overloaded);
    }
    let gemini = FakeProvider::start(Format::Gemini);
    gemini.push(Reply::text("from the fallback"));
    let clock = TestClock::new();
    let chain = chain(
        vec![provider(Format::Anthropic, &claude, "claude"), provider(Format::Gemini, &gemini, "gemini")],
        &clock,
    );
    let reply = run_chain(&chain).await.unwrap();
    assert_eq!(reply.completion.provider, "gemini");
    assert_eq!(reply.completion.text, "from the fallback");
    assert_eq!(
        outcomes(&reply.attempts),
        vec![
            ("claude", Some(Overloaded)),
            ("claude", Some(Overloaded)),
            ("claude", Some(Overloaded)),
            ("gemini", None)
        ]
    );
    assert_eq!(clock.sleeps().len(), 2);
    let message = &reply.attempts[0].error.as_ref().unwrap().message;
    assert_eq!(message, "claude: HTTP 529 Overloaded: Overloaded");
}

#[tokio::test]
async fn a_rejected_key_moves_on_at_once_and_cools_the_provider_down() {
    let gpt = FakeProvider::start(Format::OpenAi);
    let claude = FakeProvider::start(Format::Anthropic);
    for _ in 0..3 {
        claude.push(Reply::text("claude answers"));
    }
    let wrong_key = HttpSettings { api_key: Some("sk-wrong".into()), ..settings(&gpt, "gpt") };
    let clock = TestClock::new();
    let chain = chain(
        vec![http_provider(Format::OpenAi, wrong_key), provider(Format::Anthropic, &claude, "claude")],
        &clock,
    );

    let reply = run_chain(&chain).await.unwrap();
    assert_eq!(outcomes(&reply.attempts), vec![("gpt", Some(Auth)), ("claude", None)]);
    assert!(clock.sleeps().is_empty(), "no wait before the next provider");
    assert_eq!(chain.cooling_down(), vec!["gpt".to_owned()]);
    let message = &reply.attempts[0].error.as_ref().unwrap().message;
    assert!(message.contains("HTTP 401 Unauthorized: invalid or missing API key"), "{message}");

    let reply = run_chain(&chain).await.unwrap();
    assert_eq!(outcomes(&reply.attempts), vec![("claude", None)]);
    assert_eq!(gpt.requests().len(), 1, "gpt is skipped while it cools down");

    clock.advance(ChainOptions::default().cooldown + Duration::from_secs(1));
    let reply = run_chain(&chain).await.unwrap();
    assert_eq!(outcomes(&reply.attempts), vec![("gpt", Some(Auth)), ("claude", None)]);
    assert_eq!(gpt.requests().len(), 2, "tried again once the cooldown passed");
}

#[tokio::test]
async fn a_request_that_is_never_answered_times_out() {
    for format in [Format::Anthropic, Format::OpenAi, Format::Gemini] {
        let fake = FakeProvider::start(format);
        fake.push(Reply::Hang);
        let settings = HttpSettings { timeout: Duration::from_millis(200), ..settings(&fake, "p") };
        let (result, _) = complete(http_provider(format, settings).as_ref(), &request()).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind, Timeout, "{format:?}: {error:?}");
    }
}

#[tokio::test]
async fn a_silent_stream_times_out() {
    let fake = FakeProvider::start(Format::OpenAi);
    fake.push(Reply::StallStream { after_chunks: 3 });
    let settings = HttpSettings { idle_timeout: Duration::from_millis(200), ..settings(&fake, "p") };
    let (result, _) = complete(http_provider(Format::OpenAi, settings).as_ref(), &request()).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind, Timeout);
    assert!(error.message.contains("silent"), "{}", error.message);
}

#[tokio::test]
async fn a_cut_stream_is_retried() {
    for format in [Format::Anthropic, Format::OpenAi, Format::Gemini] {
        let fake = FakeProvider::start(format);
        fake.push(Reply::CutStream { after_chunks: 2 });
        fake.push(Reply::text("whole this time"));
        let clock = TestClock::new();
        let chain = chain(vec![provider(format, &fake, "p")], &clock);
        let mut events = Vec::new();
        let cancel = CancellationToken::new();
        let reply = tokio::time::timeout(BOUND, chain.complete(&request(), &mut |e| events.push(e), &cancel))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply.completion.text, "whole this time", "{format:?}");
        assert_eq!(outcomes(&reply.attempts), vec![("p", Some(StreamCut)), ("p", None)], "{format:?}");
        let starts = events.iter().filter(|e| **e == StreamEvent::Started).count();
        assert_eq!(starts, 2, "{format:?}: each attempt starts afresh");
    }
}

#[tokio::test]
async fn an_unparseable_event_is_malformed() {
    for format in [Format::Anthropic, Format::OpenAi, Format::Gemini] {
        let fake = FakeProvider::start(format);
        fake.push(Reply::Malformed);
        let (result, _) = complete(provider(format, &fake, "p").as_ref(), &request()).await;
        let error = result.unwrap_err();
        assert_eq!(error.kind, Malformed, "{format:?}: {error:?}");
        assert!(error.message.starts_with("p: unreadable event"), "{}", error.message);
    }
}

#[tokio::test]
async fn cancelling_mid_stream_ends_the_request() {
    for (format, after_chunks) in [(Format::Anthropic, 4), (Format::OpenAi, 3), (Format::Gemini, 1)] {
        let fake = FakeProvider::start(format);
        fake.push(Reply::StallStream { after_chunks });
        let provider = provider(format, &fake, "p");
        let cancel = CancellationToken::new();
        let mut texts = 0;
        let mut events = |event| {
            if let StreamEvent::Text(_) = event {
                texts += 1;
                cancel.cancel();
            }
        };
        let request = request();
        let result = tokio::time::timeout(BOUND, provider.complete(&request, &mut events, &cancel))
            .await
            .expect("cancellation ends the request");
        assert_eq!(result.unwrap_err().kind, Cancelled, "{format:?}");
        assert!(texts >= 1, "{format:?}: cancelled after text arrived");
    }
}

#[tokio::test]
async fn a_stopped_fake_refuses_connections() {
    let fake = FakeProvider::start(Format::Anthropic);
    let provider = provider(Format::Anthropic, &fake, "p");
    drop(fake);
    let (result, _) = complete(provider.as_ref(), &request()).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind, Server);
    assert!(error.message.contains("could not connect"), "{}", error.message);
}

fn command(argv: &[&str], timeout: Duration) -> CommandProvider {
    CommandProvider::new(CommandSettings {
        name: "agent".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        timeout,
        grace: Duration::from_millis(200),
    })
    .unwrap()
}

#[tokio::test]
async fn a_command_reads_the_prompt_and_streams_its_reply() {
    let provider = command(&["cat"], BOUND);
    let (result, events) = complete(&provider, &request()).await;
    let completion = result.unwrap();
    let expected = "You explain Rust compiler errors.\n\nerror[E0382]: borrow of moved value: `v`";
    assert_eq!(completion.text, expected);
    assert_eq!((completion.provider.as_str(), completion.model.as_str()), ("agent", "cat"));
    let tokens = expected.chars().count().div_ceil(4) as u64;
    assert_eq!(
        completion.usage,
        Usage { input_tokens: tokens, output_tokens: tokens, cached_input_tokens: 0, estimated: true }
    );
    let texts: Vec<_> = events.iter().filter(|e| matches!(e, StreamEvent::Text(_))).collect();
    assert_eq!(texts.len(), 3, "one event per line: {texts:?}");
}

/// Whether `pid` is a live process (a zombie waiting for its parent counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_command_that_runs_too_long_is_killed_with_its_process_group() {
    // Both the shell and its child ignore SIGTERM, so only the SIGKILL after the grace period ends
    // them. The timeout leaves ample time to print both pids.
    let script = "trap '' TERM; sleep 30 & echo $!; echo $$; wait";
    let provider = command(&["sh", "-c", script], Duration::from_secs(3));
    let (result, events) = complete(&provider, &request()).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind, Timeout, "{error:?}");
    let pids: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Text(line) => line.trim().parse().ok(),
            _ => None,
        })
        .collect();
    assert_eq!(pids.len(), 2, "{events:?}");
    let (grandchild, child) = (pids[0], pids[1]);
    assert!(!alive(child), "the command was reaped");
    // SIGKILL is delivered asynchronously: wait for it, with a bound.
    let deadline = Instant::now() + BOUND;
    while alive(grandchild) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(grandchild), "what the command started died with it");
}

#[tokio::test]
async fn a_failing_command_reports_its_stderr() {
    let script = "echo partial; echo 'warming up' >&2; echo 'error: unknown flag --frobnicate' >&2; exit 3";
    let provider = command(&["sh", "-c", script], BOUND);
    let (result, _) = complete(&provider, &request()).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind, Spawn);
    assert!(error.message.contains("exit status: 3"), "{}", error.message);
    assert!(error.message.ends_with("warming up\nerror: unknown flag --frobnicate"), "{}", error.message);

    let provider = command(&["/nonexistent/acas-agent"], BOUND);
    let (result, _) = complete(&provider, &request()).await;
    let error = result.unwrap_err();
    assert_eq!(error.kind, Spawn);
    assert!(
        error.message.starts_with("agent: could not start `/nonexistent/acas-agent`"),
        "{}",
        error.message
    );
}
