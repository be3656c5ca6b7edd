//! A chain of providers with retries, backoff and cooldowns.
//!
//! [`Chain::complete`] tries the providers in order. A retryable failure is tried again on the
//! same provider after a delay: the `retry-after` the provider asked for, or exponential backoff
//! with full jitter, both capped at [`ChainOptions::max_delay`]. Other failures (Auth,
//! BadRequest, Malformed, ...) move straight to the next provider. A provider that fails
//! [`ChainOptions::failures_before_cooldown`] times in a row, or rejects its key, is taken out of
//! rotation for [`ChainOptions::cooldown`]; after that it gets one more chance, and one failure
//! sends it back. That state lives in the chain and is shared by every request. Cancellation
//! stops everything. Time comes from a [`Clock`], so tests control it.
//!
//! The chain does not pick providers by cost or success rate, and it does not cache.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::provider::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderErrorKind, StreamEvent,
};

/// The time source of a chain: what time it is, and waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()>;
}

/// The real clock: `Instant::now` and `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Retry and cooldown policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOptions {
    /// Tries per provider and request, the first one included.
    pub attempts_per_provider: u32,
    /// Backoff before the first retry, doubled for each further one (before jitter).
    pub base_delay: Duration,
    /// No wait is longer, whatever the backoff or `retry-after` says.
    pub max_delay: Duration,
    /// Consecutive failures that put a provider in cooldown.
    pub failures_before_cooldown: u32,
    /// How long a provider stays out of rotation.
    pub cooldown: Duration,
}

impl Default for ChainOptions {
    fn default() -> Self {
        Self {
            attempts_per_provider: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            failures_before_cooldown: 3,
            cooldown: Duration::from_secs(60),
        }
    }
}

/// One call to one provider, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// `None` when this attempt answered.
    pub error: Option<ProviderError>,
    /// How long the chain waited before making this attempt.
    pub waited: Duration,
}

/// A completion and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainReply {
    pub completion: Completion,
    pub attempts: Vec<Attempt>,
}

/// Every provider failed (or the request was cancelled): the error that ended the chain and
/// every attempt made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    pub error: ProviderError,
    pub attempts: Vec<Attempt>,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error.message)?;
        if self.attempts.len() > 1 {
            write!(f, " (after {} attempts)", self.attempts.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for ChainError {}

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    failures: u32,
    cooling_until: Option<Instant>,
    /// Back from cooldown: the next failure sends it back at once.
    probation: bool,
}

/// Providers tried in order; share one chain (in an `Arc`) between requests so that cooldowns
/// apply to all of them.
pub struct Chain {
    providers: Vec<Box<dyn Provider>>,
    options: ChainOptions,
    clock: Arc<dyn Clock>,
    health: Mutex<Vec<Health>>,
    rng: Mutex<u64>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.providers.iter().map(|p| p.name()).collect();
        f.debug_struct("Chain").field("providers", &names).field("options", &self.options).finish()
    }
}

impl Chain {
    pub fn new(providers: Vec<Box<dyn Provider>>, options: ChainOptions, clock: Arc<dyn Clock>) -> Self {
        let health = Mutex::new(vec![Health::default(); providers.len()]);
        let seed = RandomState::new().hash_one(0u64) | 1;
        Self { providers, options, clock, health, rng: Mutex::new(seed) }
    }

    /// Names of the providers out of rotation now.
    pub fn cooling_down(&self) -> Vec<String> {
        let now = self.clock.now();
        let health = self.health();
        self.providers
            .iter()
            .zip(health.iter())
            .filter(|(_, health)| health.cooling_until.is_some_and(|until| until > now))
            .map(|(provider, _)| provider.name().to_owned())
            .collect()
    }

    /// Asks the providers in turn until one answers. `events` sees every attempt's stream; a
    /// [`StreamEvent::Started`] begins each one.
    pub async fn complete(
        &self,
        request: &CompletionRequest,
        events: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<ChainReply, ChainError> {
        let mut attempts = Vec::new();
        let mut last_error = None;
        let mut skipped = Vec::new();
        for (index, provider) in self.providers.iter().enumerate() {
            if let Some(until) = self.cooling_until(index) {
                skipped.push((provider.name(), until));
                continue;
            }
            let mut waited = Duration::ZERO;
            for attempt in 0..self.options.attempts_per_provider.max(1) {
                if cancel.is_cancelled() {
                    return Err(cancelled(attempts));
                }
                let result = tokio::select! {
                    biased;
                    () = cancel.cancelled() => Err(ProviderError::cancelled(provider.name())),
                    result = provider.complete(request, &mut *events, cancel) => result,
                };
                let error = match result {
                    Ok(completion) => {
                        self.succeeded(index);
                        attempts.push(Attempt {
                            provider: provider.name().to_owned(),
                            model: provider.model().to_owned(),
                            error: None,
                            waited,
                        });
                        return Ok(ChainReply { completion, attempts });
                    }
                    Err(error) => error,
                };
                attempts.push(Attempt {
                    provider: provider.name().to_owned(),
                    model: provider.model().to_owned(),
                    error: Some(error.clone()),
                    waited,
                });
                if error.kind == ProviderErrorKind::Cancelled {
                    return Err(ChainError { error, attempts });
                }
                let cooling = self.failed(index, error.kind);
                let last_try = attempt + 1 >= self.options.attempts_per_provider;
                if !error.kind.retryable() || cooling || last_try {
                    last_error = Some(error);
                    break;
                }
                let delay = match error.retry_after {
                    Some(asked) => asked.min(self.options.max_delay),
                    None => self.backoff(attempt),
                };
                last_error = Some(error);
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(cancelled(attempts)),
                    () = self.clock.sleep(delay) => {}
                }
                waited = delay;
            }
        }
        let error = match last_error {
            Some(error) => error,
            None if self.providers.is_empty() => ProviderError::new(
                ProviderErrorKind::Unavailable,
                "no AI provider is configured: add one to .acas/config.toml or set an API key",
            ),
            None => {
                let now = self.clock.now();
                let waits: Vec<String> = skipped
                    .iter()
                    .map(|(name, until)| {
                        format!("{name} for {}s", until.saturating_duration_since(now).as_secs())
                    })
                    .collect();
                ProviderError::new(
                    ProviderErrorKind::Unavailable,
                    format!("every AI provider is cooling down after failures: {}", waits.join(", ")),
                )
            }
        };
        Err(ChainError { error, attempts })
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Vec<Health>> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the provider is out of rotation, until when; a cooldown that has passed puts it on
    /// probation.
    fn cooling_until(&self, index: usize) -> Option<Instant> {
        let now = self.clock.now();
        let mut health = self.health();
        let health = &mut health[index];
        match health.cooling_until {
            Some(until) if until > now => Some(until),
            Some(_) => {
                *health = Health { failures: 0, cooling_until: None, probation: true };
                None
            }
            None => None,
        }
    }

    fn succeeded(&self, index: usize) {
        self.health()[index] = Health::default();
    }

    /// Counts a failure; returns whether the provider is now cooling down.
    fn failed(&self, index: usize, kind: ProviderErrorKind) -> bool {
        if kind == ProviderErrorKind::BadRequest {
            return false; // the request's fault, not the provider's
        }
        let now = self.clock.now();
        let mut health = self.health();
        let health = &mut health[index];
        health.failures += 1;
        if kind == ProviderErrorKind::Auth
            || health.probation
            || health.failures >= self.options.failures_before_cooldown
        {
            health.cooling_until = Some(now + self.options.cooldown);
            health.probation = false;
            return true;
        }
        false
    }

    /// Full jitter: uniform between zero and `base_delay * 2^retry`, capped at `max_delay`.
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .options
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(31)))
            .min(self.options.max_delay);
        let random = {
            let mut state = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            // xorshift64*
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        ceiling.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
    }
}

fn cancelled(attempts: Vec<Attempt>) -> ChainError {
    ChainError { error: ProviderError::new(ProviderErrorKind::Cancelled, "request cancelled"), attempts }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::escalate::provider::Usage;

    /// A clock that records requested sleeps and advances itself by them at once.
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

    /// One scripted answer: the reply text, or an error kind and its `retry-after`.
    type Step = Result<&'static str, (ProviderErrorKind, Option<Duration>)>;

    /// A provider answering from a script.
    struct Scripted {
        name: String,
        script: Mutex<VecDeque<Step>>,
        calls: Mutex<u32>,
    }

    impl Scripted {
        fn new(name: &str, script: Vec<Step>) -> Arc<Self> {
            Arc::new(Self { name: name.into(), script: Mutex::new(script.into()), calls: Mutex::new(0) })
        }
        fn calls(&self) -> u32 {
            *self.calls.lock().unwrap()
        }
    }

    impl Provider for Arc<Scripted> {
        fn name(&self) -> &str {
            &self.name
        }
        fn model(&self) -> &str {
            "m"
        }
        fn complete<'a>(
            &'a self,
            _: &'a CompletionRequest,
            events: &'a mut (dyn FnMut(StreamEvent) + Send),
            _: &'a CancellationToken,
        ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
            *self.calls.lock().unwrap() += 1;
            events(StreamEvent::Started);
            let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok("default"));
            let result = match next {
                Ok(text) => Ok(Completion {
                    text: text.into(),
                    usage: Usage::default(),
                    model: "m".into(),
                    provider: self.name.clone(),
                    finish_reason: None,
                }),
                Err((kind, retry_after)) => {
                    Err(ProviderError { kind, message: format!("{kind:?}"), retry_after })
                }
            };
            Box::pin(async move { result })
        }
    }

    fn request() -> CompletionRequest {
        CompletionRequest {
            system: "s".into(),
            prompt: "p".into(),
            max_tokens: 10,
            temperature: None,
            json_schema: None,
        }
    }

    fn chain(providers: &[&Arc<Scripted>], clock: &Arc<TestClock>) -> Chain {
        let providers = providers.iter().map(|p| Box::new(Arc::clone(p)) as Box<dyn Provider>).collect();
        Chain::new(providers, ChainOptions::default(), clock.clone())
    }

    async fn run(chain: &Chain) -> Result<ChainReply, ChainError> {
        chain.complete(&request(), &mut |_| {}, &CancellationToken::new()).await
    }

    fn kinds(attempts: &[Attempt]) -> Vec<(String, Option<ProviderErrorKind>)> {
        attempts.iter().map(|a| (a.provider.clone(), a.error.as_ref().map(|e| e.kind))).collect()
    }

    use ProviderErrorKind::*;

    #[tokio::test]
    async fn backoff_doubles_within_full_jitter_and_is_capped() {
        let clock = TestClock::new();
        let a = Scripted::new("a", vec![Err((Server, None)), Err((Server, None)), Ok("fine")]);
        let chain = Chain::new(
            vec![Box::new(a.clone())],
            ChainOptions { failures_before_cooldown: 10, ..ChainOptions::default() },
            clock.clone(),
        );
        let reply = run(&chain).await.unwrap();
        assert_eq!(reply.completion.text, "fine");
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 2);
        assert!(sleeps[0] <= Duration::from_millis(500), "{sleeps:?}");
        assert!(sleeps[1] <= Duration::from_millis(1000), "{sleeps:?}");
        assert_eq!(reply.attempts[2].waited, sleeps[1]);
        for retry in 0..64 {
            assert!(chain.backoff(retry) <= Duration::from_secs(30));
        }
    }

    #[tokio::test]
    async fn retry_after_is_honoured_up_to_the_cap() {
        let clock = TestClock::new();
        let a = Scripted::new(
            "a",
            vec![
                Err((RateLimited, Some(Duration::from_secs(7)))),
                Err((RateLimited, Some(Duration::from_secs(3600)))),
                Ok("fine"),
            ],
        );
        let chain = chain(&[&a], &clock);
        run(&chain).await.unwrap();
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(7), Duration::from_secs(30)]);
    }

    #[tokio::test]
    async fn bad_requests_and_auth_move_on_at_once() {
        let clock = TestClock::new();
        let a = Scripted::new("a", vec![Err((BadRequest, None)), Err((Auth, None))]);
        let b = Scripted::new("b", vec![Ok("b1"), Ok("b2"), Ok("b3")]);
        let chain = chain(&[&a, &b], &clock);
        let reply = run(&chain).await.unwrap();
        assert_eq!(kinds(&reply.attempts), vec![("a".into(), Some(BadRequest)), ("b".into(), None)]);
        assert!(chain.cooling_down().is_empty(), "a bad request is not the provider's fault");

        let reply = run(&chain).await.unwrap();
        assert_eq!(kinds(&reply.attempts), vec![("a".into(), Some(Auth)), ("b".into(), None)]);
        assert_eq!(chain.cooling_down(), vec!["a".to_owned()]);
        assert!(clock.sleeps().is_empty());

        run(&chain).await.unwrap();
        assert_eq!(a.calls(), 2, "a is skipped while cooling down");
    }

    #[tokio::test]
    async fn consecutive_failures_cool_a_provider_and_probation_follows() {
        let clock = TestClock::new();
        let a = Scripted::new("a", vec![Err((Overloaded, None)); 4]);
        let b = Scripted::new("b", vec![]);
        let chain = chain(&[&a, &b], &clock);
        let reply = run(&chain).await.unwrap();
        assert_eq!(
            kinds(&reply.attempts),
            vec![
                ("a".into(), Some(Overloaded)),
                ("a".into(), Some(Overloaded)),
                ("a".into(), Some(Overloaded)),
                ("b".into(), None)
            ]
        );
        assert_eq!(chain.cooling_down(), vec!["a".to_owned()]);
        clock.advance(Duration::from_secs(61));
        assert!(chain.cooling_down().is_empty());
        let reply = run(&chain).await.unwrap();
        assert_eq!(kinds(&reply.attempts), vec![("a".into(), Some(Overloaded)), ("b".into(), None)]);
        assert_eq!(chain.cooling_down(), vec!["a".to_owned()], "one failure on probation cools it again");
    }

    #[tokio::test]
    async fn when_every_provider_cools_down_the_error_says_so() {
        let clock = TestClock::new();
        let a = Scripted::new("a", vec![Err((Auth, None)), Err((Auth, None))]);
        let chain = chain(&[&a], &clock);
        assert_eq!(run(&chain).await.unwrap_err().error.kind, Auth);
        let error = run(&chain).await.unwrap_err();
        assert_eq!(error.error.kind, Unavailable);
        assert_eq!(error.error.message, "every AI provider is cooling down after failures: a for 60s");
        assert!(error.attempts.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_request_stops_the_chain() {
        let clock = TestClock::new();
        let a = Scripted::new("a", vec![Err((Server, None))]);
        let b = Scripted::new("b", vec![]);
        let chain = chain(&[&a, &b], &clock);
        let cancel = CancellationToken::new();
        let mut events = |event| {
            if event == StreamEvent::Started {
                cancel.cancel();
            }
        };
        let error = chain.complete(&request(), &mut events, &cancel).await.unwrap_err();
        assert_eq!(error.error.kind, Cancelled);
        assert_eq!(b.calls(), 0);
    }
}
