//! `acas mcp --http`: MCP's streamable HTTP transport on 127.0.0.1, behind a bearer token.
//!
//! The token is made on first use (32 random bytes, hex) and kept in the user's config
//! directory (`$XDG_CONFIG_HOME/acas/mcp-token`, else `~/.config/acas/mcp-token`), mode 0600;
//! `acas mcp --print-token` prints it for an agent's configuration. A request without it, or
//! with another, is answered 401 with a message saying how to get it; tokens are compared in
//! constant time. Connections are bounded ([`MAX_CONNECTIONS`], the one waiting longest for its
//! request making room for a new one), request headers and bodies must arrive in time
//! ([`BODY_TIMEOUT`]) and bodies are bounded ([`MAX_BODY_BYTES`]); live sessions are bounded
//! ([`MAX_SESSIONS`]) and end when idle ([`SESSION_IDLE`]). The transport checks the `Host`
//! header (DNS rebinding).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Shared;

/// The token's file name in `$XDG_CONFIG_HOME/acas/`.
pub const TOKEN_FILE: &str = "mcp-token";
/// Connections open at once. At the limit a new connection closes the open one that has waited
/// longest for a request to arrive (its headers or its body); when every open connection is
/// being answered, the new one is closed.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive once its headers have; answered 408 when over.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body read; answered 413 when over.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// MCP sessions live at once; a new one beyond it is refused with 503.
pub const MAX_SESSIONS: usize = 64;
/// A session without a request for this long ends; its client must initialize again.
pub const SESSION_IDLE: Duration = Duration::from_secs(60);
/// The path the MCP endpoint answers on.
pub const ENDPOINT: &str = "/mcp";

/// Where the token is kept: `$XDG_CONFIG_HOME/acas/mcp-token`, else `~/.config/acas/mcp-token`.
pub fn token_path() -> anyhow::Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => bail!("neither XDG_CONFIG_HOME nor HOME is set: set one so ACAS can keep the MCP token"),
        },
    };
    Ok(config.join("acas").join(TOKEN_FILE))
}

/// The token, made and stored (mode 0600) when there is none yet.
pub fn token() -> anyhow::Result<String> {
    let path = token_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => {
            // A token others can read is no secret: keep it the user's own.
            let mode = std::fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("making {} readable by its owner only", path.display()))?;
            }
            return Ok(text.trim().to_owned());
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading the MCP token {}", path.display())),
    }
    let dir = path.parent().expect("the token path has a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom for a new MCP token")?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let _ = std::fs::remove_file(&path); // an empty file left by a crash
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut file) => {
            file.write_all(token.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            Ok(token)
        }
        // Another `acas mcp` made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(e).with_context(|| format!("creating the MCP token {}", path.display())),
    }
}

/// Whether `given` is `expected`, in a time that does not depend on where they differ (both
/// are hashed first, so not on their lengths either).
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Why a request is refused, or `None` when it carries the token.
fn refusal(request: &Request<hyper::body::Incoming>, token: &str) -> Option<&'static str> {
    let Some(header) = request.headers().get(AUTHORIZATION) else {
        return Some(
            "missing bearer token: send `Authorization: Bearer TOKEN`, where TOKEN is what `acas mcp --print-token` prints",
        );
    };
    let given = header.as_bytes();
    let given = given.strip_prefix(b"Bearer ").or_else(|| given.strip_prefix(b"bearer ")).unwrap_or(b"");
    if same_token(given, token.as_bytes()) {
        None
    } else {
        Some("wrong bearer token: `acas mcp --print-token` prints the one this server takes")
    }
}

fn unauthorized(message: &str) -> Response<BoxBody<Bytes, Infallible>> {
    let body = serde_json::json!({ "error": "unauthorized", "message": message }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"acas\""));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// One open connection, as the accept loop sees it.
struct Connection {
    /// Since when it has waited for a request's headers or body; `None` while it is answered.
    waiting_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// Cancelled to close it for a new connection.
    evicted: CancellationToken,
}

impl Connection {
    fn reading(&self, reading: bool) {
        *self.waiting_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            reading.then(std::time::Instant::now);
    }
}

/// A response body that marks its connection as waiting for a request once it is dropped: sent
/// whole, or abandoned.
struct WaitingAfter {
    body: BoxBody<Bytes, Infallible>,
    connection: Arc<Connection>,
}

impl hyper::body::Body for WaitingAfter {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for WaitingAfter {
    fn drop(&mut self) {
        self.connection.reading(true);
    }
}

/// Makes room for a new connection: below [`MAX_CONNECTIONS`] it is simply added; at the limit
/// the connection that has waited longest for its request is closed to make room, and when
/// every connection is being answered there is none (the new connection is closed).
fn admit(open: &std::sync::Mutex<Vec<Arc<Connection>>>) -> Option<Arc<Connection>> {
    let mut open = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if open.len() >= MAX_CONNECTIONS {
        let oldest = open
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                (*c.waiting_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
                    .map(|since| (since, i))
            })
            .min()?;
        open.swap_remove(oldest.1).evicted.cancel();
    }
    let connection = Arc::new(Connection {
        waiting_since: std::sync::Mutex::new(Some(std::time::Instant::now())),
        evicted: CancellationToken::new(),
    });
    open.push(connection.clone());
    Some(connection)
}

fn failure(status: StatusCode, message: &str) -> Response<BoxBody<Bytes, Infallible>> {
    let body =
        serde_json::json!({ "error": status.canonical_reason().unwrap_or("error"), "message": message });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// 503 with a JSON-RPC error naming the session limit.
fn too_many_sessions(live: usize) -> Response<BoxBody<Bytes, Infallible>> {
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32000, "message": format!(
        "too many MCP sessions: {live} are live, the limit is {MAX_SESSIONS}; reuse your session \
         (Mcp-Session-Id), end unused ones (DELETE), or wait {} s for idle ones to expire",
        SESSION_IDLE.as_secs()
    ) } });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Serves until interrupted; `listening` hears the address once it is bound.
pub(super) async fn serve(
    shared: Arc<Shared>,
    port: u16,
    listening: impl FnOnce(SocketAddr, &std::path::Path),
) -> anyhow::Result<()> {
    let token: Arc<str> = token()?.into();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}; choose another port with --port"))?;
    let address = listener.local_addr()?;
    listening(address, &token_path()?);
    let cancel = CancellationToken::new();
    let config =
        StreamableHttpServerConfig::default().with_cancellation_token(cancel.clone()).with_allowed_hosts([
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            format!("127.0.0.1:{}", address.port()),
            format!("localhost:{}", address.port()),
        ]);
    let connect = shared.clone();
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(SESSION_IDLE);
    let sessions = Arc::new(sessions);
    let service =
        Arc::new(StreamableHttpService::new(move || Ok(connect.connect()), sessions.clone(), config));
    let open = Arc::new(std::sync::Mutex::new(Vec::<Arc<Connection>>::new()));
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut interrupted => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accepting an MCP connection failed: {error}");
                    continue;
                }
            },
        };
        let Some(this) = admit(&open) else {
            tracing::warn!("mcp: {MAX_CONNECTIONS} connections are being answered; closing a new one");
            continue;
        };
        let service = service.clone();
        let token = token.clone();
        let stop = cancel.clone();
        let sessions = sessions.clone();
        let open = open.clone();
        connections.spawn(async move {
            let state = this.clone();
            let handler = service_fn(move |request: Request<hyper::body::Incoming>| {
                let service = service.clone();
                let token = token.clone();
                let sessions = sessions.clone();
                let state = state.clone();
                async move {
                    if request.uri().path() != ENDPOINT {
                        let mut response = Response::new(
                            Full::new(Bytes::from(format!("the MCP endpoint is {ENDPOINT}"))).boxed(),
                        );
                        *response.status_mut() = StatusCode::NOT_FOUND;
                        return Ok::<_, Infallible>(response);
                    }
                    if let Some(why) = refusal(&request, &token) {
                        return Ok(unauthorized(why));
                    }
                    state.reading(true);
                    let (parts, body) = request.into_parts();
                    let body = tokio::time::timeout(
                        BODY_TIMEOUT,
                        http_body_util::Limited::new(body, MAX_BODY_BYTES).collect(),
                    )
                    .await;
                    state.reading(false);
                    let body = match body {
                        Ok(Ok(body)) => body.to_bytes(),
                        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
                            return Ok(failure(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                &format!(
                                    "the request body is over {MAX_BODY_BYTES} bytes; send smaller messages"
                                ),
                            ));
                        }
                        Ok(Err(error)) => {
                            return Ok(failure(
                                StatusCode::BAD_REQUEST,
                                &format!("reading the request body: {error}"),
                            ));
                        }
                        Err(_) => {
                            return Ok(failure(
                                StatusCode::REQUEST_TIMEOUT,
                                &format!(
                                    "the request body did not arrive within {} s; send it whole at once",
                                    BODY_TIMEOUT.as_secs()
                                ),
                            ));
                        }
                    };
                    let new_session = !parts.headers.contains_key("mcp-session-id");
                    if new_session && parts.method == hyper::Method::POST {
                        let live = sessions.sessions.read().await.len();
                        if live >= MAX_SESSIONS {
                            return Ok(too_many_sessions(live));
                        }
                    }
                    let response = service.handle(Request::from_parts(parts, Full::new(body))).await;
                    // Waiting again once the answer has been sent whole (its stream dropped).
                    Ok(response.map(|body| WaitingAfter { body, connection: state }.boxed()))
                }
            });
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(stream), handler);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = this.evicted.cancelled() => {}
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|c| !Arc::ptr_eq(c, &this));
        });
        while connections.try_join_next().is_some() {}
    }
    cancel.cancel();
    connections.abort_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_token;

    #[test]
    fn tokens_compare_by_content_only() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abd", b"abc"));
        assert!(!same_token(b"ab", b"abc"));
        assert!(!same_token(b"", b"abc"));
    }
}
