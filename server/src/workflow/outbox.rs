//! Durable outgoing webhooks for plan and run progress.
//!
//! [`Outbox::enqueue`] commits an event to the store's `outbox` table and wakes the delivery
//! task ([`Outbox::spawn`]), which POSTs the JSON body signed as incoming webhooks are (see
//! [`signature`]): `X-Acas-Timestamp`, `X-Acas-Signature: sha256=<hex>` over
//! `"{timestamp}.{body}"`, plus `X-Acas-Event` (the event name) and `X-Acas-Delivery` (the row
//! id, the same on every attempt, for receivers that deduplicate). A fresh timestamp and
//! signature are made for every attempt.
//!
//! A 2xx answer delivers it. A 5xx, 408 or 429 answer, a connection error or a timeout is
//! tried again after an exponential backoff with jitter (between half and all of
//! `base_delay * 2^(attempt-1)`, capped at `max_delay`), up to `max_attempts`; then, or at once
//! on any other 4xx, the row is marked `failed` with the last error. Rows still pending when the
//! process stops are delivered by the next delivery task, after a restart.
//!
//! The secret is not stored: a row keeps the name of the environment variable that holds it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{OutboxRow, OutboxStatus, Store, StoreError};
use crate::workflow::signature::{self, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::workflow::triggers::webhook::{SecretLookup, env_secrets};

/// The progress events sent to outgoing webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressEvent {
    PlanGenerated,
    TaskStarted,
    TaskCompleted,
    TaskFailed,
    RunCompleted,
}

impl ProgressEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressEvent::PlanGenerated => "plan_generated",
            ProgressEvent::TaskStarted => "task_started",
            ProgressEvent::TaskCompleted => "task_completed",
            ProgressEvent::TaskFailed => "task_failed",
            ProgressEvent::RunCompleted => "run_completed",
        }
    }
}

/// How deliveries are retried.
#[derive(Clone)]
pub struct OutboxOptions {
    /// Attempts per webhook, the first included. Default: 8.
    pub max_attempts: u32,
    /// Backoff before the second attempt (before jitter). Default: 2 s.
    pub base_delay: Duration,
    /// Upper bound of any backoff. Default: 10 minutes.
    pub max_delay: Duration,
    /// Limit for one attempt, connecting included. Default: 10 s.
    pub timeout: Duration,
    pub secrets: SecretLookup,
}

impl Default for OutboxOptions {
    fn default() -> OutboxOptions {
        OutboxOptions {
            max_attempts: 8,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            secrets: env_secrets(),
        }
    }
}

/// What became of one attempt, for logs, progress and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: i64,
    pub attempt: u32,
    /// `Pending` when it will be tried again.
    pub status: OutboxStatus,
    pub error: Option<String>,
}

/// The queue of outgoing webhooks. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
    wake: Arc<Notify>,
    attempts: broadcast::Sender<Attempt>,
}

impl Outbox {
    pub fn new(store: Store) -> Outbox {
        Outbox { store, wake: Arc::new(Notify::new()), attempts: broadcast::channel(256).0 }
    }

    /// Queues `payload` for `url` and returns its id once it is committed. Blocks on the store,
    /// so async callers run it on a blocking thread. `secret_env` names the variable holding the
    /// signing secret; `None` sends the webhook unsigned.
    pub fn enqueue(
        &self,
        url: &str,
        secret_env: Option<&str>,
        event: ProgressEvent,
        payload: &Value,
    ) -> Result<i64, StoreError> {
        let id =
            self.store.outbox_enqueue(url, secret_env, event.as_str(), &payload.to_string(), now_ms())?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Every attempt from now on.
    pub fn attempts(&self) -> broadcast::Receiver<Attempt> {
        self.attempts.subscribe()
    }

    /// Starts the delivery task: pending rows first (those left by a previous process
    /// included), then each new one as it is queued, until `cancel`.
    pub fn spawn(&self, options: OutboxOptions, cancel: CancellationToken) -> JoinHandle<()> {
        let outbox = self.clone();
        tokio::spawn(async move { outbox.deliver_all(options, cancel).await })
    }

    async fn deliver_all(self, options: OutboxOptions, cancel: CancellationToken) {
        let client = match crate::http::client() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "outgoing webhooks are off");
                return;
            }
        };
        let mut rng = Rng::seeded();
        loop {
            let store = self.store.clone();
            let due = match blocking(move || store.outbox_due(now_ms(), 32)).await {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%error, "could not read the outgoing webhooks; trying again in a minute");
                    Vec::new()
                }
            };
            let busy = !due.is_empty();
            for row in due {
                let attempt = tokio::select! {
                    () = cancel.cancelled() => return,
                    attempt = self.deliver(&client, &options, &mut rng, row) => attempt,
                };
                let _ = self.attempts.send(attempt);
            }
            if busy {
                continue;
            }
            let store = self.store.clone();
            let next = blocking(move || store.outbox_next_at()).await.ok().flatten();
            let wait = match next {
                Some(at) => Duration::from_millis((at - now_ms()).max(0) as u64).min(Duration::from_secs(60)),
                None => Duration::from_secs(60),
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One attempt at `row`, recorded in the store.
    async fn deliver(
        &self,
        client: &reqwest::Client,
        options: &OutboxOptions,
        rng: &mut Rng,
        row: OutboxRow,
    ) -> Attempt {
        let attempt = row.attempts + 1;
        let result = post(client, options, &row).await;
        let (status, error, next_at_ms) = match result {
            Ok(()) => (OutboxStatus::Delivered, None, row.next_at_ms),
            Err(Failure { retry: true, message }) if attempt < options.max_attempts => {
                let ceiling = options.base_delay.saturating_mul(2u32.saturating_pow((attempt - 1).min(30)));
                let delay = ceiling.min(options.max_delay).mul_f64(0.5 + rng.unit() / 2.0);
                (OutboxStatus::Pending, Some(message), now_ms() + delay.as_millis() as i64)
            }
            Err(Failure { message, .. }) => (OutboxStatus::Failed, Some(message), row.next_at_ms),
        };
        match (status, &error) {
            (OutboxStatus::Failed, Some(error)) => {
                tracing::warn!(id = row.id, url = %row.url, attempt, %error, "outgoing webhook given up")
            }
            (OutboxStatus::Pending, Some(error)) => {
                tracing::info!(id = row.id, url = %row.url, attempt, %error, "outgoing webhook failed; will retry")
            }
            _ => tracing::debug!(id = row.id, url = %row.url, attempt, "outgoing webhook delivered"),
        }
        let store = self.store.clone();
        let (id, recorded_error) = (row.id, error.clone());
        let recorded = blocking(move || {
            store.outbox_attempted(id, status, attempt, next_at_ms, recorded_error.as_deref(), now_ms())
        })
        .await;
        if let Err(error) = recorded {
            tracing::error!(id, %error, "could not record an outgoing webhook attempt");
        }
        Attempt { id: row.id, attempt, status, error }
    }
}

struct Failure {
    retry: bool,
    message: String,
}

async fn post(client: &reqwest::Client, options: &OutboxOptions, row: &OutboxRow) -> Result<(), Failure> {
    let timestamp = now_ms() / 1000;
    let mut request = client
        .post(&row.url)
        .timeout(options.timeout)
        .header("content-type", "application/json")
        .header(EVENT_HEADER, &row.event)
        .header("x-acas-delivery", row.id.to_string())
        .header(TIMESTAMP_HEADER, timestamp.to_string());
    if let Some(name) = &row.secret_env {
        let Some(secret) = (options.secrets)(name) else {
            return Err(Failure { retry: true, message: format!("the secret variable `{name}` is not set") });
        };
        request = request
            .header(SIGNATURE_HEADER, signature::sign(secret.as_bytes(), timestamp, row.payload.as_bytes()));
    }
    let response = request.body(row.payload.clone()).send().await.map_err(|error| Failure {
        retry: true,
        message: match error.is_timeout() {
            true => format!("no answer within {:?}", options.timeout),
            false => format!("could not send it: {error}"),
        },
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
    Err(Failure { retry, message: format!("HTTP {}", status.as_u16()) })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%error, "a store call of the outbox panicked");
            std::panic::resume_unwind(error.into_panic())
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// xorshift64*, enough to spread retries.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Rng(nanos | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::store::StoreOptions;
    use crate::workflow::definition::{Triggers, WebhookTrigger};
    use crate::workflow::triggers::testing::workflow;
    use crate::workflow::triggers::webhook::{WebhookOptions, WebhookServer};
    use crate::workflow::triggers::{FiredReceiver, channel};

    const SECRET: &str = "progress-secret";

    /// A real receiver with a store of its own: the webhook server, whose secret lookup fails
    /// (500) for the first `failures` requests.
    async fn receiver(store: Store, failures: usize) -> (WebhookServer, FiredReceiver, CancellationToken) {
        let calls = AtomicUsize::new(0);
        let secrets: SecretLookup = Arc::new(move |name| {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            (name == "PROGRESS_SECRET" && call >= failures).then(|| SECRET.to_owned())
        });
        let webhook = Some(WebhookTrigger {
            path: "/progress".into(),
            secret_env: "PROGRESS_SECRET".into(),
            scheme: Default::default(),
        });
        let workflows = [workflow("progress", Triggers { webhook, ..Triggers::default() })];
        let (tx, rx) = channel();
        let cancel = CancellationToken::new();
        let options = WebhookOptions {
            port: 0,
            max_body_bytes: 65536,
            max_connections: 8,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            min_body_rate: 16 * 1024,
            secrets,
        };
        (WebhookServer::start(options, &workflows, store, tx, cancel.clone()).await.unwrap(), rx, cancel)
    }

    fn options() -> OutboxOptions {
        OutboxOptions {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
            timeout: Duration::from_secs(5),
            secrets: Arc::new(|name| (name == "PROGRESS_SECRET").then(|| SECRET.to_owned())),
        }
    }

    async fn next(attempts: &mut broadcast::Receiver<Attempt>) -> Attempt {
        tokio::time::timeout(Duration::from_secs(20), attempts.recv()).await.unwrap().unwrap()
    }

    fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn retries_until_the_receiver_accepts_then_records_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let receiver_dir = tempfile::tempdir().unwrap();
        let (server, mut fired, server_cancel) = receiver(open(&receiver_dir), 2).await;
        let outbox = Outbox::new(store.clone());
        let mut attempts = outbox.attempts();
        let cancel = CancellationToken::new();
        outbox.spawn(options(), cancel.clone());

        let url = format!("http://{}/progress", server.local_addr());
        let payload = json!({"event": "task_started", "run_id": "r1", "task": "lint"});
        let id = outbox.enqueue(&url, Some("PROGRESS_SECRET"), ProgressEvent::TaskStarted, &payload).unwrap();

        let first = next(&mut attempts).await;
        assert_eq!((first.id, first.attempt, first.status), (id, 1, OutboxStatus::Pending));
        assert_eq!(first.error.as_deref(), Some("HTTP 500"));
        assert_eq!(next(&mut attempts).await.status, OutboxStatus::Pending);
        let third = next(&mut attempts).await;
        assert_eq!((third.attempt, third.status, third.error), (3, OutboxStatus::Delivered, None));

        // The receiver checked the signature and saw the event header and the body.
        let run = fired.recv().await.unwrap();
        assert_eq!(run.trigger.to_value()["body"], payload);
        assert_eq!(run.trigger.to_value()["headers"]["x-acas-event"], "task_started");
        assert_eq!(run.trigger.to_value()["headers"]["x-acas-delivery"], id.to_string());
        let row = store.outbox_get(id).unwrap().unwrap();
        assert_eq!(
            (row.status, row.attempts, row.last_error.as_deref()),
            (OutboxStatus::Delivered, 3, Some("HTTP 500"))
        );
        cancel.cancel();
        server_cancel.cancel();
    }

    #[tokio::test]
    async fn gives_up_after_the_last_attempt_or_at_once_on_a_client_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let receiver_dir = tempfile::tempdir().unwrap();
        let (server, _fired, server_cancel) = receiver(open(&receiver_dir), 0).await;
        // A port with nothing listening.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let outbox = Outbox::new(store.clone());
        let mut attempts = outbox.attempts();
        let cancel = CancellationToken::new();
        outbox.spawn(options(), cancel.clone());

        let refused = outbox
            .enqueue(&format!("http://{closed}/x"), None, ProgressEvent::RunCompleted, &json!({}))
            .unwrap();
        let unknown = format!("http://{}/nowhere", server.local_addr());
        let not_found =
            outbox.enqueue(&unknown, Some("PROGRESS_SECRET"), ProgressEvent::TaskFailed, &json!({})).unwrap();
        let mut last = std::collections::HashMap::new();
        while last.values().filter(|a: &&Attempt| a.status == OutboxStatus::Failed).count() < 2 {
            let attempt = next(&mut attempts).await;
            last.insert(attempt.id, attempt);
        }
        assert_eq!(last[&not_found].attempt, 1);
        assert_eq!(last[&not_found].error.as_deref(), Some("HTTP 404"));
        assert_eq!(last[&refused].attempt, 3);
        assert!(
            last[&refused].error.as_deref().unwrap().starts_with("could not send it"),
            "{:?}",
            last[&refused]
        );
        let row = store.outbox_get(refused).unwrap().unwrap();
        assert_eq!((row.status, row.attempts), (OutboxStatus::Failed, 3));
        assert!(row.done_ms.is_some());
        cancel.cancel();
        server_cancel.cancel();
    }

    #[tokio::test]
    async fn rows_left_pending_are_delivered_after_a_restart() {
        let receiver_dir = tempfile::tempdir().unwrap();
        let (server, mut fired, server_cancel) = receiver(open(&receiver_dir), 0).await;
        let url = format!("http://{}/progress", server.local_addr());

        let dir = tempfile::tempdir().unwrap();
        // Queued by a process that stopped before delivering it.
        let store = open(&dir);
        let payload = json!({"tasks": 2});
        let id = Outbox::new(store.clone())
            .enqueue(&url, Some("PROGRESS_SECRET"), ProgressEvent::PlanGenerated, &payload)
            .unwrap();
        store.close().unwrap();

        let store = open(&dir);
        let outbox = Outbox::new(store.clone());
        let mut attempts = outbox.attempts();
        let cancel = CancellationToken::new();
        outbox.spawn(options(), cancel.clone());
        let attempt = next(&mut attempts).await;
        assert_eq!((attempt.id, attempt.status), (id, OutboxStatus::Delivered));
        assert_eq!(fired.recv().await.unwrap().trigger.to_value()["body"], payload);
        assert_eq!(store.outbox_get(id).unwrap().unwrap().status, OutboxStatus::Delivered);
        cancel.cancel();
        server_cancel.cancel();
    }
}
