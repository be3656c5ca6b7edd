//! `on.webhook`: a small HTTP/1.1 server on 127.0.0.1 that starts workflows on signed requests.
//!
//! Each workflow with `on.webhook` owns one URL path and says how its requests are signed, with
//! the secret in the environment variable the workflow names (see [`signature`]):
//!
//! - `scheme: acas` (the default): `X-Acas-Timestamp` (Unix seconds within
//!   [`signature::WINDOW`] of this machine's clock) and `X-Acas-Signature: sha256=<hex>`, the
//!   HMAC-SHA256 of `"{timestamp}.{body}"`. A signature is accepted once.
//! - `scheme: github`: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the body alone,
//!   and `X-GitHub-Delivery`, accepted once (remembered for [`DELIVERY_KEEP`]).
//!
//! What was accepted is recorded in the store before the answer, together with the run it asks
//! for (an inbox entry that the process running the workspace's workflows turns into a run), so a
//! replay is refused after a restart too, and an accepted request is not lost when the process
//! stops right after answering. Answers:
//!
//! | status | when |
//! |---|---|
//! | 202 `{"accepted": true, "workflow": NAME}` | signed, fresh, first seen: a run is requested |
//! | 400 | `scheme: github` without `X-GitHub-Delivery`; a body that broke off |
//! | 401 | timestamp missing, malformed or outside the window; signature missing or wrong |
//! | 404 | no workflow has this path |
//! | 405 | not `POST` |
//! | 408 | the body did not arrive within the body timeout, or fell behind the minimum rate |
//! | 409 | the signature (or GitHub delivery id) was already accepted (a replay) |
//! | 413 | the body is larger than `[webhooks] max_body_bytes` |
//! | 500 | the secret's environment variable is not set (logged with its name) |
//!
//! A client cannot hold the server: headers must arrive within the header timeout (counted from
//! when the connection opens or its last answer was sent, so it bounds idle keep-alive
//! connections too), else the connection is closed; a body must arrive within the body timeout
//! and at the minimum rate (`min_body_rate` bytes per second of its age, less [`RATE_GRACE`]),
//! else 408. At most `max_connections` are open: a new one beyond that closes the connection
//! furthest behind the minimum rate (idle, or sending its headers or body too slowly; see
//! `victim`), and waits only while every connection keeps up that rate or is being answered. An
//! answer other than 202 closes its connection. An attacker therefore delays a valid request only
//! by sending, on every connection at once, at least the minimum rate; each such request ends
//! within the header and body timeouts, and with it its connection.
//!
//! The run's trigger is `{"kind": "webhook", "path", "body", "headers"}` (plus `"event"`, the
//! `X-GitHub-Event`, for `scheme: github`): the body as JSON when it parses, else as a string,
//! and the request's `Content-Type`, `User-Agent` and `X-*` headers (the signatures and
//! timestamp left out). Nothing here knows about runs or LSP; the server stops when its
//! [`CancellationToken`] is cancelled (this process lost the workspace lease, or exits).
//!
//! Stopping loses no request a sender delivered: closing the listening socket would reset the
//! connections the kernel queued on it (while the process was stopped, say), so the server first
//! makes the kernel drop new connection attempts (senders retry them, and reach the process that
//! takes the port over), then accepts and answers every queued connection as usual (a valid
//! request is recorded in the store's inbox and gets 202; the process holding the lease runs
//! it), within the header and body timeouts, and only then closes the socket. Answering is
//! better than `503` for GitHub, which does not redeliver failed deliveries.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Fired, FiredSender, Trigger, default_inputs};
use crate::store::{InboxEntry, Replay, Store};
use crate::workflow::definition::{WebhookScheme, Workflow};
use crate::workflow::signature::{
    self, GITHUB_DELIVERY_HEADER, GITHUB_EVENT_HEADER, GITHUB_SIGNATURE_HEADER, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};

/// Looks up a secret by environment variable name.
pub type SecretLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment as a [`SecretLookup`].
pub fn env_secrets() -> SecretLookup {
    Arc::new(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// How the server listens, and what it lets a client hold.
#[derive(Clone)]
pub struct WebhookOptions {
    /// Port on 127.0.0.1; 0 picks a free one (see [`WebhookServer::local_addr`]).
    pub port: u16,
    /// Larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Connections open at once. A new connection beyond it closes the one furthest behind
    /// `min_body_rate` (idle, or sending its headers or body too slowly); while every connection
    /// keeps up that rate or is being answered, new ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Time to send a request's headers, counted from when the connection opens or its last
    /// answer was sent (so it is the keep-alive idle timeout too); the connection is closed then.
    pub header_timeout: Duration,
    /// Time to send the body once the headers arrived; 408 then.
    pub body_timeout: Duration,
    /// Bytes per second a request must arrive at: a body more than [`RATE_GRACE`] behind gets
    /// 408, and at the connection limit the connection furthest below it is closed first.
    pub min_body_rate: u64,
    pub secrets: SecretLookup,
}

struct Route {
    workflow: String,
    secret_env: String,
    scheme: WebhookScheme,
    inputs: Map<String, Value>,
}

/// How long accepted GitHub delivery ids are remembered: a GitHub request carries no
/// timestamp, so its replay is refused by its delivery id for this long.
pub const DELIVERY_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

struct Shared {
    routes: RwLock<HashMap<String, Route>>,
    store: Store,
    fired: FiredSender,
    secrets: SecretLookup,
    max_body_bytes: usize,
    body_timeout: Duration,
    min_body_rate: u64,
}

/// A running webhook server.
pub struct WebhookServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl WebhookServer {
    /// Binds 127.0.0.1 and serves the `on.webhook` paths of `workflows` until `cancel`. While the
    /// port is in use (another process, that held the workspace lease before, is still closing
    /// its server), binding is retried with a growing pause of up to [`BIND_RETRY_MAX`] until
    /// `cancel`.
    pub async fn start(
        options: WebhookOptions,
        workflows: &[Workflow],
        store: Store,
        fired: FiredSender,
        cancel: CancellationToken,
    ) -> std::io::Result<WebhookServer> {
        let listener = bind(options.port, &cancel).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            routes: RwLock::new(routes(workflows)),
            store,
            fired,
            secrets: options.secrets,
            max_body_bytes: options.max_body_bytes,
            body_timeout: options.body_timeout,
            min_body_rate: options.min_body_rate.max(1),
        });
        tracing::info!(%addr, "webhook server listening");
        let limits = Limits {
            max_connections: options.max_connections.max(1),
            header_timeout: options.header_timeout,
            body_timeout: options.body_timeout,
            min_body_rate: options.min_body_rate.max(1),
        };
        let task = tokio::spawn(serve(listener, shared.clone(), limits, cancel));
        Ok(WebhookServer { addr, shared, task })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the routes with the `on.webhook` paths of `workflows`.
    pub fn reload(&self, workflows: &[Workflow]) {
        *self.shared.routes.write().unwrap_or_else(PoisonError::into_inner) = routes(workflows);
    }

    /// Waits until the server has stopped (after its token is cancelled).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// The longest pause between two tries to bind a port in use.
pub const BIND_RETRY_MAX: Duration = Duration::from_secs(2);

async fn bind(port: u16, cancel: &CancellationToken) -> std::io::Result<TcpListener> {
    let mut pause = Duration::from_millis(50);
    let mut warned = false;
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                if !warned {
                    tracing::warn!(port, "webhook server: the port is in use; trying again until it is free");
                    warned = true;
                }
                tokio::select! {
                    () = cancel.cancelled() => return Err(error),
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(BIND_RETRY_MAX);
            }
            Err(error) => return Err(error),
        }
    }
}

fn routes(workflows: &[Workflow]) -> HashMap<String, Route> {
    let mut routes = HashMap::new();
    for workflow in workflows {
        let Some(hook) = &workflow.on.webhook else { continue };
        if let Some(Route { workflow: first, .. }) = routes.get(&hook.path) {
            tracing::warn!(path = %hook.path, %first, second = %workflow.name, "two workflows claim one webhook path; the first keeps it");
            continue;
        }
        let route = Route {
            workflow: workflow.name.clone(),
            secret_env: hook.secret_env.clone(),
            scheme: hook.scheme,
            inputs: default_inputs(workflow),
        };
        routes.insert(hook.path.clone(), route);
    }
    routes
}

#[derive(Clone, Copy)]
struct Limits {
    max_connections: usize,
    header_timeout: Duration,
    body_timeout: Duration,
    min_body_rate: u64,
}

/// How far a request may fall behind `min_body_rate` before its body is refused with 408: a
/// body must have `min_body_rate` bytes per second of its age, less this.
pub const RATE_GRACE: Duration = Duration::from_secs(1);

/// What a connection has sent, for choosing which one to close when a new one needs its place.
#[derive(Default)]
struct Progress {
    /// Bytes read from the socket.
    read: AtomicU64,
    /// Set once a read found nothing more to read: until then a whole request may be waiting
    /// unread, and the connection is not to be closed for a newcomer.
    waited: AtomicBool,
    current: Mutex<Current>,
}

/// The request a connection is on: since its opening or its last answer.
struct Current {
    since: Instant,
    /// [`Progress::read`] when it began.
    base: u64,
    /// The whole request arrived and is being answered: not to be closed for a newcomer.
    handling: bool,
}

impl Default for Current {
    fn default() -> Current {
        Current { since: Instant::now(), base: 0, handling: false }
    }
}

impl Progress {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn handling(&self) {
        self.current().handling = true;
    }

    /// The answer was sent: the next request starts now.
    fn answered(&self) {
        let read = self.read.load(Ordering::SeqCst);
        *self.current() = Current { since: Instant::now(), base: read, handling: false };
    }

    fn seen(&self, now: Instant) -> Seen {
        let current = self.current();
        Seen {
            waited: self.waited.load(Ordering::SeqCst),
            handling: current.handling,
            bytes: self.read.load(Ordering::SeqCst).saturating_sub(current.base),
            age: now.saturating_duration_since(current.since),
        }
    }
}

/// A connection as the choice of one to close sees it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    waited: bool,
    handling: bool,
    /// Bytes of the current request (headers and body) read so far.
    bytes: u64,
    /// Time since the current request began: the connection opened or the last answer was sent.
    age: Duration,
}

/// Which of `open` (oldest first) a newcomer closes: the one furthest behind `min_rate`, that is
/// with the most bytes missing from `min_rate` × the age of its current request; the oldest of
/// equals. So an idle connection goes before a younger idle one, a slowly sent one before one just
/// opened, and nothing that keeps up: never one whose request may wait unread or is complete and
/// being answered, nor one at or above `min_rate` (a request arriving at a normal pace, however
/// large). `None` when no connection may be closed.
fn victim(open: &[Seen], min_rate: u64) -> Option<usize> {
    let behind = |s: &Seen| min_rate as f64 * s.age.as_secs_f64() - s.bytes as f64;
    open.iter()
        .enumerate()
        .filter(|(_, s)| s.waited && !s.handling && behind(s) > 0.0)
        .min_by(|(_, a), (_, b)| behind(b).total_cmp(&behind(a)))
        .map(|(at, _)| at)
}

/// An open connection.
struct Slot {
    id: u64,
    progress: Arc<Progress>,
    close: CancellationToken,
}

/// A connection's stream that counts what it reads and notes when a read finds nothing more.
struct Watched {
    inner: tokio::net::TcpStream,
    progress: Arc<Progress>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        match &poll {
            std::task::Poll::Pending => self.progress.waited.store(true, Ordering::SeqCst),
            std::task::Poll::Ready(Ok(())) => {
                let read = buf.filled().len().saturating_sub(before) as u64;
                self.progress.read.fetch_add(read, Ordering::SeqCst);
            }
            std::task::Poll::Ready(Err(_)) => {}
        }
        poll
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open connections, oldest first.
#[derive(Default)]
struct Slots {
    next: AtomicU64,
    open: Mutex<VecDeque<Slot>>,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Slot>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self) -> (u64, Arc<Progress>, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Slot { id, progress: Arc::default(), close: CancellationToken::new() };
        let handles = (id, slot.progress.clone(), slot.close.clone());
        self.lock().push_back(slot);
        handles
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|s| s.id != id);
    }

    /// Closes the connection [`victim`] chooses; false when there is none.
    fn close_slowest(&self, min_rate: u64) -> bool {
        let mut open = self.lock();
        let now = Instant::now();
        let seen: Vec<Seen> = open.iter().map(|s| s.progress.seen(now)).collect();
        let Some(at) = victim(&seen, min_rate) else { return false };
        if let Some(slot) = open.remove(at) {
            slot.close.cancel();
        }
        true
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, limits: Limits, cancel: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let slots = Arc::new(Slots::default());
    let never = CancellationToken::new();
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "webhook server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // At the limit, the connection furthest behind the minimum rate (idle, or sending its
        // headers or body too slowly) makes room for the new one; while every connection keeps
        // up or is being answered, the new one waits.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match make_room(&permits, &slots, limits, &cancel).await {
                Some(permit) => permit,
                None => break,
            },
        };
        connections.spawn(connection(stream, permit, shared.clone(), slots.clone(), limits, cancel.clone()));
        while connections.try_join_next().is_some() {}
    }
    // Connections the kernel has accepted for us but we have not taken yet would be reset with
    // the listening socket: their requests are read and answered first, then the port is freed
    // for the process that takes over.
    match listener.into_std() {
        Ok(listener) => {
            refuse_new_connections(&listener);
            let deadline = tokio::time::Instant::now() + limits.header_timeout + limits.body_timeout;
            let mut drained = 0usize;
            loop {
                let permit = match permits.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        match tokio::time::timeout_at(deadline, make_room(&permits, &slots, limits, &never))
                            .await
                        {
                            Ok(Some(permit)) => permit,
                            _ => {
                                tracing::warn!(
                                    "webhook server: connections still queued when stopping could not all be answered within the header and body timeouts; the rest are closed"
                                );
                                break;
                            }
                        }
                    }
                };
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(error) => {
                        tracing::warn!(%error, "webhook server: accept failed while stopping");
                        break;
                    }
                };
                let stream =
                    match stream.set_nonblocking(true).and_then(|()| tokio::net::TcpStream::from_std(stream))
                    {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::warn!(%error, "webhook server: a queued connection could not be served");
                            continue;
                        }
                    };
                drained += 1;
                connections.spawn(connection(
                    stream,
                    permit,
                    shared.clone(),
                    slots.clone(),
                    limits,
                    cancel.clone(),
                ));
            }
            if drained > 0 {
                tracing::info!(drained, "webhook server: answering the connections queued when it stopped");
            }
            drop(listener);
        }
        Err(error) => {
            tracing::warn!(%error, "webhook server: could not take the connections queued when it stopped")
        }
    }
    while connections.join_next().await.is_some() {}
    tracing::info!("webhook server stopped");
}

/// Serves one connection until it ends, is closed for a newcomer, or, once the server stops,
/// has answered the request it is on (a connection taken while stopping answers one request).
async fn connection(
    stream: tokio::net::TcpStream,
    permit: tokio::sync::OwnedSemaphorePermit,
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    limits: Limits,
    cancel: CancellationToken,
) {
    let _permit = permit;
    let (id, progress, close) = slots.add();
    let watched = Watched { inner: stream, progress: progress.clone() };
    let (served, stopping) = (progress.clone(), cancel.clone());
    let service = service_fn(move |request| {
        let shared = shared.clone();
        let progress = served.clone();
        let stopping = stopping.clone();
        async move {
            let mut response = handle(&shared, request, &progress).await;
            // A refused request ends its connection: a client without the secret cannot keep a
            // place by sending request after request on it, and comes back through the accept
            // queue, behind whoever came meanwhile. So does every answer once the server stops.
            if response.status() != StatusCode::ACCEPTED || stopping.is_cancelled() {
                response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            progress.answered();
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    // A client may shut its sending side once its request is out and still wait for the answer.
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).half_close(true);
    let connection = builder.serve_connection(TokioIo::new(watched), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        // Dropping the connection closes its socket.
        () = close.cancelled() => {}
        () = cancel.cancelled() => {
            // The request being read or answered is answered, then the connection closes. A
            // connection that has not been read yet may hold a whole request: hyper's graceful
            // shutdown would close it unread, so it is served on, and its answer closes it (or the
            // header timeout does, when nothing comes).
            if progress.read.load(Ordering::SeqCst) > 0 {
                connection.as_mut().graceful_shutdown();
            }
            let _ = tokio::time::timeout(limits.header_timeout + limits.body_timeout, connection).await;
        }
    }
    slots.remove(id);
}

/// Makes the kernel drop, from now on, the connection attempts (`SYN`s) that reach `listener`,
/// so that what is queued on it can be drained to the end: a sender's TCP stack sends its
/// attempt again a second later, and again, by which time the port is free for the process that
/// takes over. (A one-instruction classic BPF socket filter, `ret #0`.) Elsewhere than Linux,
/// attempts keep joining the queue until it is closed.
#[cfg(target_os = "linux")]
fn refuse_new_connections(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let mut drop_all = [libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: 0 }];
    let program = libc::sock_fprog { len: 1, filter: drop_all.as_mut_ptr() };
    // SAFETY: `program` points to one valid instruction that lives across the call, and the
    // option's length is the size of `program`; the kernel copies the filter.
    let set = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&raw const program).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if set != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "webhook server: could not stop new connections before draining the queue"
        );
    }
}
#[cfg(not(target_os = "linux"))]
fn refuse_new_connections(_listener: &std::net::TcpListener) {}

/// How often a server at its connection limit looks again for a connection to close: one that
/// was not to be closed a moment ago (not read yet, or still keeping up the minimum rate) may be
/// by now.
pub const ROOM_RETRY: Duration = Duration::from_millis(20);

/// A connection's place for a newcomer at the limit: the connection furthest behind the minimum
/// rate is closed (see [`victim`]), now or as soon as there is one; `None` when cancelled.
async fn make_room(
    permits: &Arc<Semaphore>,
    slots: &Slots,
    limits: Limits,
    cancel: &CancellationToken,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let mut warned = false;
    loop {
        if slots.close_slowest(limits.min_body_rate) {
            tracing::debug!("webhook server: connection limit reached; closed the one furthest behind");
            // Its place is free as soon as its task has dropped it.
            return tokio::select! {
                () = cancel.cancelled() => None,
                permit = permits.clone().acquire_owned() => permit.ok(),
            };
        }
        if !warned {
            tracing::warn!(
                limit = limits.max_connections,
                "webhook server: every connection is keeping up the minimum rate or being answered; new ones wait"
            );
            warned = true;
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            permit = permits.clone().acquire_owned() => return permit.ok(),
            () = tokio::time::sleep(ROOM_RETRY) => {}
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn refuse(status: StatusCode, error: &str) -> Response<Full<Bytes>> {
    answer(status, json!({"accepted": false, "error": error}))
}

enum BodyError {
    TooLarge,
    Broken,
    /// Not all there within the body timeout.
    Late,
    /// Fell more than [`RATE_GRACE`] behind the minimum rate.
    Slow,
}

/// Reads a body of at most `max` bytes that arrives within `timeout` and at `min_rate` bytes per
/// second or faster, less [`RATE_GRACE`] (so a sender may pause up to that long).
async fn read_body(
    mut body: Incoming,
    max: usize,
    timeout: Duration,
    min_rate: u64,
) -> Result<Bytes, BodyError> {
    let started = tokio::time::Instant::now();
    let end = started + timeout;
    let mut data = Vec::new();
    loop {
        let allowed = Duration::from_millis((data.len() as u64).saturating_mul(1000) / min_rate.max(1));
        let behind = started.checked_add(RATE_GRACE + allowed).unwrap_or(end);
        let until = behind.min(end);
        match tokio::time::timeout_at(until, body.frame()).await {
            Err(_) if until == end => return Err(BodyError::Late),
            Err(_) => return Err(BodyError::Slow),
            Ok(None) => return Ok(Bytes::from(data)),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(Some(Ok(frame))) => {
                if let Some(chunk) = frame.data_ref() {
                    if data.len().saturating_add(chunk.len()) > max {
                        return Err(BodyError::TooLarge);
                    }
                    data.extend_from_slice(chunk);
                }
            }
        }
    }
}

async fn handle(shared: &Shared, request: Request<Incoming>, progress: &Progress) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let (workflow, secret_env, scheme, inputs) = {
        let routes = shared.routes.read().unwrap_or_else(PoisonError::into_inner);
        match routes.get(&path) {
            Some(route) => {
                (route.workflow.clone(), route.secret_env.clone(), route.scheme, route.inputs.clone())
            }
            None => return refuse(StatusCode::NOT_FOUND, "no workflow has this webhook path"),
        }
    };
    if request.method() != Method::POST {
        let mut response = refuse(StatusCode::METHOD_NOT_ALLOWED, "webhooks take POST only");
        response.headers_mut().insert("allow", HeaderValue::from_static("POST"));
        return response;
    }
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > shared.max_body_bytes as u64) {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than [webhooks] max_body_bytes");
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body, shared.max_body_bytes, shared.body_timeout, shared.min_body_rate).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the body is larger than [webhooks] max_body_bytes",
            );
        }
        Err(BodyError::Broken) => return refuse(StatusCode::BAD_REQUEST, "the body could not be read"),
        Err(BodyError::Late) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive within [webhooks] body_timeout_ms",
            );
        }
        Err(BodyError::Slow) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the body arrived slower than [webhooks] min_body_bytes_per_sec",
            );
        }
    };
    progress.handling();

    let Some(secret) = (shared.secrets)(&secret_env) else {
        tracing::error!(
            %workflow,
            %path,
            variable = %secret_env,
            "webhook refused: the secret's environment variable is not set; set it where ACAS runs and restart"
        );
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the webhook secret is not configured on this machine",
        );
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let mut event = None;
    let (replay, keep_ms) = match scheme {
        WebhookScheme::Acas => {
            // Digits only, so that the value signed is the value as written (no `+`, no zeros
            // to strip, no spaces inside).
            let timestamp = header(TIMESTAMP_HEADER)
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.len() <= 18 && t.bytes().all(|b| b.is_ascii_digit()))
                .filter(|t| t.len() == 1 || !t.starts_with('0'))
                .and_then(|t| t.parse::<i64>().ok());
            let Some(timestamp) = timestamp else {
                return refuse(StatusCode::UNAUTHORIZED, "missing or malformed X-Acas-Timestamp");
            };
            if timestamp.abs_diff(now) > signature::WINDOW.as_secs() {
                return refuse(StatusCode::UNAUTHORIZED, "X-Acas-Timestamp is outside the 5-minute window");
            }
            let Some(signature) = header(SIGNATURE_HEADER) else {
                return refuse(StatusCode::UNAUTHORIZED, "missing X-Acas-Signature");
            };
            if !signature::verify(secret.as_bytes(), timestamp, &body, signature) {
                tracing::warn!(%workflow, %path, "webhook refused: wrong signature");
                return refuse(StatusCode::UNAUTHORIZED, "wrong X-Acas-Signature");
            }
            // Kept for twice the window: a request older than that is refused as stale anyway.
            let seen = signature.trim().to_ascii_lowercase();
            (Replay::Signature(seen), 2 * signature::WINDOW.as_millis() as i64)
        }
        WebhookScheme::Github => {
            let Some(signature) = header(GITHUB_SIGNATURE_HEADER) else {
                return refuse(StatusCode::UNAUTHORIZED, "missing X-Hub-Signature-256");
            };
            if !signature::verify_body(secret.as_bytes(), &body, signature) {
                tracing::warn!(%workflow, %path, "webhook refused: wrong signature");
                return refuse(StatusCode::UNAUTHORIZED, "wrong X-Hub-Signature-256");
            }
            let Some(delivery) = header(GITHUB_DELIVERY_HEADER).map(str::trim).filter(|d| !d.is_empty())
            else {
                return refuse(StatusCode::BAD_REQUEST, "missing X-GitHub-Delivery");
            };
            event = Some(header(GITHUB_EVENT_HEADER).unwrap_or_default().to_owned());
            let replay = Replay::Github {
                delivery: delivery.to_owned(),
                signature: signature.trim().to_ascii_lowercase(),
            };
            (replay, DELIVERY_KEEP.as_millis() as i64)
        }
    };

    let body_value = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let trigger = Trigger::Webhook {
        path: path.to_string(),
        body: body_value,
        headers: selected(&parts.headers),
        event,
    };
    // The request is recorded as accepted together with the run it asks for, before the answer:
    // a process killed after the answer leaves the run to whichever process runs the workspace
    // next, and a replay is refused.
    let entry = InboxEntry {
        workflow: workflow.clone(),
        trigger: serde_json::to_string(&trigger).unwrap_or_default(),
        inputs: Value::Object(inputs.clone()).to_string(),
    };
    let store = shared.store.clone();
    let github = scheme == WebhookScheme::Github;
    let accepted =
        tokio::task::spawn_blocking(move || store.webhook_accept(replay, now * 1000, keep_ms, entry)).await;
    let inbox = match accepted {
        Ok(Ok(Some(id))) => id,
        Ok(Ok(None)) if github => {
            return refuse(
                StatusCode::CONFLICT,
                "this X-GitHub-Delivery or signature was already accepted (replay)",
            );
        }
        Ok(Ok(None)) => return refuse(StatusCode::CONFLICT, "this signature was already accepted (replay)"),
        Ok(Err(error)) => {
            tracing::error!(%error, "webhook refused: could not record it");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "the store could not record the request");
        }
        Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "the store could not record the request"),
    };
    let fired = Fired { workflow: workflow.clone(), trigger, inputs, inbox: Some(inbox) };
    // Recorded: if the engine is not taking runs now, the inbox keeps the request for later.
    let _ = shared.fired.send(fired).await;
    tracing::info!(%workflow, %path, "webhook accepted");
    answer(StatusCode::ACCEPTED, json!({"accepted": true, "workflow": workflow}))
}

/// The headers a workflow may read: `Content-Type`, `User-Agent` and `X-*`, without the
/// signatures and timestamp; names in lower case.
fn selected(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        let wanted = name == "content-type" || name == "user-agent" || name.starts_with("x-");
        if wanted && name != SIGNATURE_HEADER && name != TIMESTAMP_HEADER && name != GITHUB_SIGNATURE_HEADER {
            out.insert(
                name.to_owned(),
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
            );
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::StoreOptions;
    use crate::workflow::definition::{Triggers, WebhookTrigger};
    use crate::workflow::triggers::testing::workflow;
    use crate::workflow::triggers::{FiredReceiver, channel};

    const SECRET: &str = "s3cret";

    fn hooked(name: &str, path: &str, secret_env: &str) -> Workflow {
        hooked_with(name, path, secret_env, WebhookScheme::Acas)
    }

    fn hooked_with(name: &str, path: &str, secret_env: &str, scheme: WebhookScheme) -> Workflow {
        let webhook = Some(WebhookTrigger { path: path.into(), secret_env: secret_env.into(), scheme });
        workflow(name, Triggers { webhook, ..Triggers::default() })
    }

    struct Harness {
        server: WebhookServer,
        fired: FiredReceiver,
        cancel: CancellationToken,
        client: reqwest::Client,
    }

    async fn start(store: Store) -> Harness {
        start_on(store, 0).await
    }

    async fn start_on(store: Store, port: u16) -> Harness {
        start_with(store, port, 8).await
    }

    async fn start_with(store: Store, port: u16, max_connections: usize) -> Harness {
        start_options(store, options(port, max_connections)).await
    }

    fn options(port: u16, max_connections: usize) -> WebhookOptions {
        let secrets: BTreeMap<&str, &str> = BTreeMap::from([("HOOK_SECRET", SECRET)]);
        WebhookOptions {
            port,
            max_body_bytes: 1024,
            max_connections,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_millis(300),
            min_body_rate: 16 * 1024,
            secrets: Arc::new(move |name| secrets.get(name).map(|s| s.to_string())),
        }
    }

    async fn start_options(store: Store, options: WebhookOptions) -> Harness {
        let workflows = [
            hooked("review", "/hooks/review", "HOOK_SECRET"),
            hooked("unset", "/hooks/unset", "NOT_SET"),
            hooked_with("gh", "/hooks/github", "HOOK_SECRET", WebhookScheme::Github),
        ];
        let (tx, fired) = channel();
        let cancel = CancellationToken::new();
        let server = WebhookServer::start(options, &workflows, store, tx, cancel.clone()).await.unwrap();
        assert!(server.local_addr().ip().is_loopback());
        Harness { server, fired, cancel, client: crate::http::client().unwrap() }
    }

    fn now() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
    }

    impl Harness {
        /// POSTs `body` to `path` with a timestamp and a signature (`None`: leave the header out).
        async fn post(
            &self,
            path: &str,
            body: &str,
            timestamp: Option<i64>,
            signature: Option<&str>,
        ) -> (u16, Value) {
            let mut request = self
                .client
                .post(format!("http://{}{path}", self.server.local_addr()))
                .header("content-type", "application/json")
                .header("x-github-event", "push")
                .body(body.to_owned());
            if let Some(t) = timestamp {
                request = request.header("X-Acas-Timestamp", t.to_string());
            }
            if let Some(s) = signature {
                request = request.header("X-Acas-Signature", s);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap())
        }

        async fn signed(&self, path: &str, body: &str, timestamp: i64) -> (u16, Value) {
            let signature = signature::sign(SECRET.as_bytes(), timestamp, body.as_bytes());
            self.post(path, body, Some(timestamp), Some(&signature)).await
        }

        async fn stop(self) {
            self.cancel.cancel();
            self.server.stopped().await;
        }
    }

    fn open(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn a_signed_request_starts_a_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = start(open(&dir)).await;
        let t = now();
        let (status, body) = h.signed("/hooks/review", r#"{"ref":"main"}"#, t).await;
        assert_eq!((status, body), (202, json!({"accepted": true, "workflow": "review"})));
        let fired = h.fired.try_recv().unwrap();
        assert_eq!(fired.workflow, "review");
        assert_eq!(
            fired.trigger.to_value(),
            json!({"kind": "webhook", "path": "/hooks/review", "body": {"ref": "main"},
                   "headers": {"content-type": "application/json", "x-github-event": "push"}})
        );
        // A body that is not JSON reaches the workflow as a string.
        let (status, _) = h.signed("/hooks/review", "plain text", t).await;
        assert_eq!(status, 202);
        assert_eq!(h.fired.try_recv().unwrap().trigger.to_value()["body"], "plain text");

        // The same request again is a replay, also after a restart with the same store.
        let (status, body) = h.signed("/hooks/review", r#"{"ref":"main"}"#, t).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (409, Some("this signature was already accepted (replay)"))
        );
        h.stop().await;
        let mut h = start(open(&dir)).await;
        let (status, _) = h.signed("/hooks/review", r#"{"ref":"main"}"#, t).await;
        assert_eq!(status, 409);
        assert!(h.fired.try_recv().is_err());
        h.stop().await;
    }

    #[tokio::test]
    async fn unsigned_wrong_and_stale_requests_are_refused_without_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = start(open(&dir)).await;
        let body = r#"{"a":1}"#;
        let t = now();
        let good = signature::sign(SECRET.as_bytes(), t, body.as_bytes());
        let other_key = signature::sign(b"guess", t, body.as_bytes());
        // Well outside the window, so that a second ticking over during the test changes nothing.
        let stale = t - 400;
        let stale_signature = signature::sign(SECRET.as_bytes(), stale, body.as_bytes());
        let cases: Vec<(Option<i64>, Option<&str>, &str)> = vec![
            (Some(t), None, "missing X-Acas-Signature"),
            (Some(t), Some(&other_key), "wrong X-Acas-Signature"),
            (Some(t), Some(&good[7..]), "wrong X-Acas-Signature"),
            (Some(t + 1), Some(&good), "wrong X-Acas-Signature"),
            (None, Some(&good), "missing or malformed X-Acas-Timestamp"),
            (Some(stale), Some(&stale_signature), "X-Acas-Timestamp is outside the 5-minute window"),
            (Some(t + 400), Some(&good), "X-Acas-Timestamp is outside the 5-minute window"),
        ];
        for (timestamp, signature, error) in cases {
            let (status, answer) = h.post("/hooks/review", body, timestamp, signature).await;
            assert_eq!((status, answer["error"].as_str()), (401, Some(error)), "{timestamp:?} {signature:?}");
        }
        // A tampered body with the signature of the original.
        let (status, _) = h.post("/hooks/review", r#"{"a":2}"#, Some(t), Some(&good)).await;
        assert_eq!(status, 401);
        assert!(h.fired.try_recv().is_err());
        // The refused requests did not use up the signature.
        assert_eq!(h.post("/hooks/review", body, Some(t), Some(&good)).await.0, 202);
        h.stop().await;
    }

    #[tokio::test]
    async fn routes_methods_sizes_and_missing_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = start(open(&dir)).await;
        let t = now();
        assert_eq!(h.signed("/hooks/nothing", "{}", t).await.0, 404);
        let response =
            h.client.get(format!("http://{}/hooks/review", h.server.local_addr())).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 405);
        assert_eq!(response.headers()["allow"], "POST");
        assert_eq!(h.signed("/hooks/review", &"x".repeat(1025), t).await.0, 413);
        assert_eq!(h.signed("/hooks/review", &"x".repeat(1024), t).await.0, 202);
        let (status, answer) = h.signed("/hooks/unset", "{}", t).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (500, Some("the webhook secret is not configured on this machine"))
        );
        assert_eq!(h.fired.try_recv().unwrap().workflow, "review");
        assert!(h.fired.try_recv().is_err());

        // Reloading moves the route.
        h.server.reload(&[hooked("review", "/hooks/moved", "HOOK_SECRET")]);
        assert_eq!(h.signed("/hooks/review", "{}", t).await.0, 404);
        assert_eq!(h.signed("/hooks/moved", "{}", t).await.0, 202);
        h.stop().await;
    }

    impl Harness {
        /// POSTs `body` to `path` with GitHub's headers (`None`: leave the header out).
        async fn github(&self, body: &str, signature: Option<&str>, delivery: Option<&str>) -> (u16, Value) {
            let mut request = self
                .client
                .post(format!("http://{}/hooks/github", self.server.local_addr()))
                .header("content-type", "application/json")
                .header("x-github-event", "pull_request")
                .body(body.to_owned());
            if let Some(s) = signature {
                request = request.header("X-Hub-Signature-256", s);
            }
            if let Some(d) = delivery {
                request = request.header("X-GitHub-Delivery", d);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, serde_json::from_str(&response.text().await.unwrap()).unwrap())
        }
    }

    #[tokio::test]
    async fn github_signed_deliveries_start_a_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = start(open(&dir)).await;
        let body = r#"{"action":"opened"}"#;
        let good = signature::sign_body(SECRET.as_bytes(), body.as_bytes());
        let (status, answer) = h.github(body, Some(&good), Some("d-1")).await;
        assert_eq!((status, answer), (202, json!({"accepted": true, "workflow": "gh"})));
        let fired = h.fired.try_recv().unwrap();
        assert_eq!(
            serde_json::to_value(&fired.trigger).unwrap(),
            json!({"kind": "webhook", "path": "/hooks/github", "body": {"action": "opened"},
                   "event": "pull_request",
                   "headers": {"content-type": "application/json", "x-github-delivery": "d-1",
                               "x-github-event": "pull_request"}})
        );

        // Refused, and without using up the delivery id.
        let wrong = signature::sign_body(b"guess", body.as_bytes());
        let acas = signature::sign(SECRET.as_bytes(), now(), body.as_bytes());
        let cases: Vec<(Option<&str>, Option<&str>, u16, &str)> = vec![
            (None, Some("d-2"), 401, "missing X-Hub-Signature-256"),
            (Some(&wrong), Some("d-2"), 401, "wrong X-Hub-Signature-256"),
            (Some(&acas), Some("d-2"), 401, "wrong X-Hub-Signature-256"),
            (Some(&good), None, 400, "missing X-GitHub-Delivery"),
        ];
        for (signature, delivery, code, error) in cases {
            let (status, answer) = h.github(body, signature, delivery).await;
            assert_eq!((status, answer["error"].as_str()), (code, Some(error)), "{signature:?} {delivery:?}");
        }
        let tampered = h.github(r#"{"action":"closed"}"#, Some(&good), Some("d-2")).await;
        assert_eq!(tampered.0, 401);
        assert!(h.fired.try_recv().is_err());

        // A replayed delivery id is refused, also after a restart.
        let (status, answer) = h.github(body, Some(&good), Some("d-1")).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (409, Some("this X-GitHub-Delivery or signature was already accepted (replay)"))
        );
        h.stop().await;
        let mut h = start(open(&dir)).await;
        assert_eq!(h.github(body, Some(&good), Some("d-1")).await.0, 409);
        assert!(h.fired.try_recv().is_err());
        // A new delivery (its own body, so its own signature) is accepted.
        let other = r#"{"action":"edited"}"#;
        let signed = signature::sign_body(SECRET.as_bytes(), other.as_bytes());
        assert_eq!(h.github(other, Some(&signed), Some("d-2")).await.0, 202);
        assert_eq!(h.fired.try_recv().unwrap().workflow, "gh");
        // The ACAS scheme's headers do not open a GitHub route.
        let (status, _) = h.post("/hooks/github", body, Some(now()), Some(&acas)).await;
        assert_eq!(status, 401);
        h.stop().await;
    }

    /// Sends the headers of a request announcing `length` bytes and one byte of its body, then
    /// nothing; returns the server's answer (read until it closes, for at most 30 s).
    async fn answer_to_a_stopped_body(addr: std::net::SocketAddr, length: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("POST /hooks/review HTTP/1.1\r\nhost: x\r\ncontent-length: {length}\r\n\r\n{{");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "no answer to a body that stopped");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_gets_408() {
        let dir = tempfile::tempdir().unwrap();
        let h = start(open(&dir)).await;
        let answer = answer_to_a_stopped_body(h.server.local_addr(), 100).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        h.stop().await;
    }

    #[tokio::test]
    async fn a_port_in_use_is_bound_once_it_is_free_and_freed_at_once_when_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let before = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = before.local_addr().unwrap().port();
        let starting = tokio::spawn(start_on(store, port));
        // The server waits for the port rather than failing; it gets it once the other one goes.
        tokio::task::yield_now().await;
        drop(before);
        let h = tokio::time::timeout(Duration::from_secs(30), starting).await.unwrap().unwrap();
        assert_eq!(h.server.local_addr().port(), port);
        assert_eq!(h.signed("/hooks/review", "{}", now()).await.0, 202);

        // A connection left open does not keep the port: it is free as soon as the server is told
        // to stop.
        let idle = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        h.cancel.cancel();
        let again = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(listener) => break listener,
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        })
        .await
        .unwrap();
        drop((again, idle));
        h.server.stopped().await;
    }

    #[tokio::test]
    async fn an_accepted_request_is_kept_until_its_run_starts_even_when_none_can_start_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let db = store.path().to_path_buf();
        let h = start(store).await;
        // The process is going away: nothing takes runs from the server any more.
        let Harness { server, fired, cancel, client } = h;
        drop(fired);
        let h = Harness { server, fired: channel().1, cancel, client };
        let body = r#"{"action":"opened"}"#;
        let good = signature::sign_body(SECRET.as_bytes(), body.as_bytes());
        assert_eq!(h.github(body, Some(&good), Some("d-kept")).await.0, 202);
        // A redelivery is a replay: the first one must therefore not be lost.
        assert_eq!(h.github(body, Some(&good), Some("d-kept")).await.0, 409);
        h.stop().await;

        // The next process finds it in the store, with the run's trigger and inputs.
        let reopened = Store::open(&db, StoreOptions::default()).unwrap();
        let inbox = reopened.webhook_inbox().unwrap();
        assert_eq!(inbox.len(), 1, "{inbox:?}");
        let (id, entry) = &inbox[0];
        assert_eq!(entry.workflow, "gh");
        let trigger: Trigger = serde_json::from_str(&entry.trigger).unwrap();
        assert_eq!(trigger.to_value()["body"], json!({"action": "opened"}));
        assert_eq!(trigger.to_value()["event"], "pull_request");
        assert!(reopened.webhook_inbox_done(*id).unwrap());
        assert!(reopened.webhook_inbox().unwrap().is_empty());
        assert!(!reopened.webhook_inbox_done(*id).unwrap());
    }

    #[tokio::test]
    async fn a_client_that_shuts_its_sending_side_after_the_request_gets_its_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let h = start(open(&dir)).await;
        let body = "{}";
        let t = now();
        let signature = signature::sign(SECRET.as_bytes(), t, body.as_bytes());
        let request = format!(
            "POST /hooks/review HTTP/1.1\r\nHost: x\r\nX-Acas-Timestamp: {t}\r\nX-Acas-Signature: {signature}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(h.server.local_addr()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let read = async {
            let mut chunk = [0u8; 1024];
            while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await.unwrap() {
                    0 => break,
                    n => answer.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        h.stop().await;
    }

    #[tokio::test]
    async fn a_github_request_replayed_with_a_new_delivery_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = start(open(&dir)).await;
        let body = r#"{"action":"closed"}"#;
        let good = signature::sign_body(SECRET.as_bytes(), body.as_bytes());
        assert_eq!(h.github(body, Some(&good), Some("first")).await.0, 202);
        assert_eq!(h.fired.try_recv().unwrap().workflow, "gh");
        // The delivery id is not signed: the replay changes it, the signature stays.
        assert_eq!(h.github(body, Some(&good), Some("second")).await.0, 409);
        assert!(h.fired.try_recv().is_err());
        h.stop().await;
    }

    #[tokio::test]
    async fn a_timestamp_not_written_as_plain_digits_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = start(open(&dir)).await;
        let t = now();
        // Signed over the number: the header's `+` (or leading zero) would not be what was signed.
        let signature = signature::sign(SECRET.as_bytes(), t, b"{}");
        let client = h.client.clone();
        for written in [format!("+{t}"), format!("0{t}"), format!("{t}.0")] {
            let response = client
                .post(format!("http://{}/hooks/review", h.server.local_addr()))
                .header("X-Acas-Timestamp", written.as_str())
                .header("X-Acas-Signature", signature.as_str())
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 401, "{written}");
            let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert_eq!(answer["error"], "missing or malformed X-Acas-Timestamp", "{written}");
        }
        assert!(h.fired.try_recv().is_err());
        h.stop().await;
    }

    #[tokio::test]
    async fn a_connection_whose_request_waits_unread_is_not_closed_for_a_newcomer() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let h = start_with(open(&dir), 0, 1).await;
        let body = "{}";
        let t = now();
        let signature = signature::sign(SECRET.as_bytes(), t, body.as_bytes());
        let request = format!(
            "POST /hooks/review HTTP/1.1\r\nHost: x\r\nX-Acas-Timestamp: {t}\r\nX-Acas-Signature: {signature}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        // Both connections (and the first one's whole request) are in before the server runs
        // again: it accepts the first, then the second at the limit of one connection.
        let mut valid = std::net::TcpStream::connect(h.server.local_addr()).unwrap();
        std::io::Write::write_all(&mut valid, request.as_bytes()).unwrap();
        let newcomer = std::net::TcpStream::connect(h.server.local_addr()).unwrap();
        valid.set_nonblocking(true).unwrap();
        let mut valid = tokio::net::TcpStream::from_std(valid).unwrap();
        let mut answer = Vec::new();
        let read = async {
            let mut chunk = [0u8; 1024];
            while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
                match valid.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 202"), "the valid request was dropped: {answer:?}");
        drop((valid, newcomer));
        h.stop().await;
    }

    /// Requests that arrived on connections the server had not taken yet when it is told to
    /// stop (the process lost the workspace lease) are answered and recorded, not reset with the
    /// listening socket; then the port is closed.
    #[tokio::test]
    async fn connections_queued_when_the_server_stops_are_answered() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let db = store.path().to_path_buf();
        let h = start(store).await;
        let addr = h.server.local_addr();
        // Connected and sent without letting the server run: they wait in the kernel's queue.
        let queued: Vec<std::net::TcpStream> = (0..3)
            .map(|n| {
                let body = format!(r#"{{"n":{n}}}"#);
                let signature = signature::sign_body(SECRET.as_bytes(), body.as_bytes());
                let request = format!(
                    "POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Delivery: queued-{n}\r\n\
                     X-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
                stream
            })
            .collect();
        h.cancel.cancel();
        for stream in queued {
            stream.set_nonblocking(true).unwrap();
            let mut stream = tokio::net::TcpStream::from_std(stream).unwrap();
            let mut answer = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
            assert!(read.is_ok(), "no answer to a queued request");
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 202"), "a queued request was dropped: {answer:?}");
        }
        h.server.stopped().await;
        assert!(std::net::TcpStream::connect(addr).is_err(), "the port is still open");
        // Recorded for the process that takes over.
        let inbox = Store::open(&db, StoreOptions::default()).unwrap().webhook_inbox().unwrap();
        assert_eq!(inbox.len(), 3, "{inbox:?}");
    }

    /// Once a stopping server has closed its listening socket's door, a new connection attempt
    /// joins no queue (it would be reset with the socket): the sender's stack keeps trying, and
    /// reaches the process that takes the port over.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_stopping_listener_queues_no_new_connection() {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let before = std::net::TcpStream::connect(addr).unwrap();
        refuse_new_connections(&listener);
        // Its attempts are dropped: it is not connected within a second (a loopback handshake
        // takes microseconds), and nothing joined the queue.
        let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        assert!(refused.is_err(), "a connection joined the queue of a stopping listener");
        // What was queued before is still there to be answered.
        assert!(listener.accept().is_ok(), "the connection queued before was lost");
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        drop(before);
    }

    fn seen(bytes: u64, age_ms: u64) -> Seen {
        Seen { waited: true, handling: false, bytes, age: Duration::from_millis(age_ms) }
    }

    #[test]
    fn a_newcomer_closes_the_connection_furthest_behind_the_minimum_rate() {
        let rate = 1000;
        // Idle for 2 s (2000 bytes behind), a slow body at 2 s (1900 behind), one opened just now.
        let open = [seen(100, 2000), seen(0, 2000), seen(0, 5)];
        assert_eq!(victim(&open, rate), Some(1));
        // Of equals, the oldest.
        assert_eq!(victim(&[seen(0, 1000), seen(0, 1000)], rate), Some(0));
        // Headers sent slowly lose to an idle connection of the same age, win against a younger one.
        assert_eq!(victim(&[seen(50, 1000), seen(0, 1000)], rate), Some(1));
        assert_eq!(victim(&[seen(50, 1000), seen(0, 500)], rate), Some(0));
        // A request that keeps up the rate, however large and long, is never closed.
        assert_eq!(victim(&[seen(1_000_000, 900), seen(5000, 5000)], rate), None);
        // Nor one not read yet (its request may be waiting whole), nor one being answered.
        let unread = Seen { waited: false, ..seen(0, 60_000) };
        let answering = Seen { handling: true, ..seen(0, 60_000) };
        assert_eq!(victim(&[unread, answering], rate), None);
        assert_eq!(victim(&[unread, answering, seen(0, 10)], rate), Some(2));
        assert_eq!(victim(&[], rate), None);
    }

    #[tokio::test]
    async fn a_body_sent_slower_than_the_minimum_rate_gets_408_before_the_body_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let options = WebhookOptions {
            header_timeout: Duration::from_secs(600),
            body_timeout: Duration::from_secs(600),
            min_body_rate: 1024,
            ..options(0, 8)
        };
        let h = start_options(open(&dir), options).await;
        // Nothing after the first byte: far behind 1 KiB/s once the grace has passed, long
        // before 600 s.
        let answer = answer_to_a_stopped_body(h.server.local_addr(), 1000).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("min_body_bytes_per_sec"), "{answer}");
        h.stop().await;
    }

    #[tokio::test]
    async fn a_refused_request_ends_its_connection_and_an_accepted_one_keeps_it() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        // No timeout closes the connection while the test runs.
        let long = WebhookOptions { header_timeout: Duration::from_secs(600), ..options(0, 8) };
        let h = start_options(open(&dir), long).await;
        let t = now();
        let body = "{}";
        let signature = signature::sign(SECRET.as_bytes(), t, body.as_bytes());
        let accepted = format!(
            "POST /hooks/review HTTP/1.1\r\nHost: x\r\nX-Acas-Timestamp: {t}\r\nX-Acas-Signature: {signature}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let refused = "POST /hooks/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        let mut stream = tokio::net::TcpStream::connect(h.server.local_addr()).await.unwrap();
        // Both on one connection: the first answer keeps it open for the second, which closes it.
        stream.write_all(format!("{accepted}{refused}").as_bytes()).await.unwrap();
        let mut answers = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answers)).await;
        assert!(read.is_ok(), "the connection stayed open after a refused request");
        let answers = String::from_utf8_lossy(&answers);
        assert!(answers.starts_with("HTTP/1.1 202"), "{answers}");
        assert!(answers.contains("HTTP/1.1 404"), "{answers}");
        h.stop().await;
    }
}
