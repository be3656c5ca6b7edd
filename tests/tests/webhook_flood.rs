//! The webhook server of `acas watch` under a flood of idle and slowly-sent connections, more of
//! them than its connection limit and than the process has file descriptors to spare: a valid
//! signed request is still answered. And with a small connection limit and timeouts too long to
//! help, a flood of each kind of connection that holds a place (idle, sending headers or a body a
//! byte at a time, idle after a kept-alive answer, all of them mixed), reopened as soon as the
//! server closes it: a valid request, small or large, is accepted and its run starts while the
//! flood holds its connections.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acas::workflow::signature;
use acas_e2e::{TIMEOUT, acas_bin};

const SECRET: &str = "flood-test-secret";
/// The default `[webhooks] max_connections`.
const LIMIT: usize = 64;
/// Descriptors the server may open: enough for its own files (about 25) and the connection
/// limit, fewer than the flood.
const FD_LIMIT: usize = 112;
/// More connections than the limit and than the descriptors left.
const FLOOD: usize = LIMIT + 52;
/// Timeouts that cannot end a flood connection while a test runs: only the connection limit's
/// choice of whom to close can make room.
const NO_TIMEOUTS: &str = "header_timeout_ms = 600000\nbody_timeout_ms = 600000\n";

const HOOKED: &str = r#"name: hooked
on:
  webhook: { path: /hooks/deploy, secret_env: FLOOD_SECRET }
steps:
  - id: mark
    run: ["sh", "-c", "echo ran >> ran.log"]
"#;

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `acas watch` with at most [`FD_LIMIT`] descriptors, once its webhook server listens.
fn start(root: &Path) -> Server {
    start_with_fds(root, FD_LIMIT)
}

/// `acas watch` on `root`, allowed `fds` file descriptors.
fn start_with_fds(root: &Path, fds: usize) -> Server {
    // The user trusts the workspace, so that its webhooks start runs.
    acas_e2e::trust(root, &acas_e2e::trusting_config_home());
    let script = format!("ulimit -n {fds} && exec \"$0\" watch \"$1\"");
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .arg(acas_bin())
        .arg(root)
        .env("ACAS_LOG", "info")
        .env("FLOOD_SECRET", SECRET)
        .env("XDG_CONFIG_HOME", acas_e2e::trusting_config_home())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting acas watch");
    let stderr = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + TIMEOUT;
    let addr = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).expect("the webhook server never listened");
        if let Some((_, rest)) = line.split_once("webhooks listen on http://") {
            break rest.trim().parse().expect("a socket address");
        }
    };
    // Keep draining the log so that the server never blocks on it.
    std::thread::spawn(move || while lines.recv().is_ok() {});
    Server { child, addr }
}

/// Connections that never send a byte, and connections that send their headers a byte at a
/// time; each one the server closes is opened again, until `stop`. Says on `progress` when all
/// are connected and when the server first closed one; returns how many it closed.
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>, progress: mpsc::Sender<&'static str>) -> usize {
    let open = || {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
        stream.set_nonblocking(true).ok()?;
        Some(stream)
    };
    let mut sockets: Vec<Option<TcpStream>> = (0..FLOOD).map(|_| open()).collect();
    let _ = progress.send("connected");
    let header = b"POST /hooks/deploy HTTP/1.1\r\nx-slow: ";
    let mut tick = 0usize;
    let mut closed_by_server = 0;
    while !stop.load(Ordering::SeqCst) {
        for (i, socket) in sockets.iter_mut().enumerate() {
            let slow = i % 2 == 1;
            let alive = match socket {
                None => false,
                Some(stream) => {
                    let mut answer = [0u8; 256];
                    let closed = match stream.read(&mut answer) {
                        Ok(n) => n == 0,
                        Err(e) => e.kind() != ErrorKind::WouldBlock,
                    };
                    let sent = !slow || {
                        let next = header.get(tick).copied().unwrap_or(b'a');
                        stream.write(&[next]).is_ok()
                    };
                    !closed && sent
                }
            };
            if !alive {
                if socket.is_some() {
                    closed_by_server += 1;
                    if closed_by_server == 1 {
                        let _ = progress.send("closed one");
                    }
                }
                *socket = open();
            }
        }
        tick += 1;
        // The pace of the slow clients.
        std::thread::sleep(Duration::from_millis(50));
    }
    closed_by_server
}

/// Sends a signed request and returns the answer's status line, or why there was none.
fn signed_request(addr: SocketAddr, n: usize) -> Result<String, String> {
    let body = format!(r#"{{"deploy":"main","n":{n}}}"#);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let signature = signature::sign(SECRET.as_bytes(), now, body.as_bytes());
    let request = format!(
        "POST /hooks/deploy HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-acas-timestamp: {now}\r\nx-acas-signature: {signature}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).map_err(|e| format!("no answer: {e}"))?;
    Ok(status.trim_end().to_owned())
}

#[test]
fn a_signed_webhook_is_served_during_a_flood_of_idle_and_slow_connections() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/workflows/hooked.yaml"), HOOKED).unwrap();
    std::fs::write(root.join(".acas/config.toml"), format!("[webhooks]\nport = 0\n{NO_TIMEOUTS}")).unwrap();
    let server = start(root);

    let stop = Arc::new(AtomicBool::new(false));
    let (progress, flooding) = mpsc::channel();
    let flooder = {
        let stop = stop.clone();
        let addr = server.addr;
        std::thread::spawn(move || flood(addr, stop, progress))
    };
    assert_eq!(flooding.recv_timeout(TIMEOUT), Ok("connected"), "the flood never connected");

    let answers: Vec<Result<String, String>> = (0..3).map(|n| signed_request(server.addr, n)).collect();
    for answer in &answers {
        assert_eq!(answer.as_deref(), Ok("HTTP/1.1 202 Accepted"), "{answers:?}");
    }
    // The flood was over the limit: the server closed flood connections to make room.
    assert_eq!(
        flooding.recv_timeout(TIMEOUT),
        Ok("closed one"),
        "the server kept all {FLOOD} flood connections open"
    );
    stop.store(true, Ordering::SeqCst);
    flooder.join().unwrap();
}

/// Lines of `ran.log` once there are `n` of them, or what there is at the deadline.
fn wait_for_runs(root: &Path, n: usize) -> usize {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let ran = std::fs::read_to_string(root.join("ran.log")).unwrap_or_default().lines().count();
        if ran >= n || Instant::now() >= deadline {
            return ran;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_accepted_webhook_runs_in_the_process_that_accepted_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/workflows/hooked.yaml"), HOOKED).unwrap();
    std::fs::write(root.join(".acas/config.toml"), "[webhooks]\nport = 0\n").unwrap();
    let server = start(root);
    // One after another, each once the one before has run: an accepted request is deleted from
    // the inbox when its run starts, and the next must not be taken for it.
    for n in 1..=4 {
        assert_eq!(signed_request(server.addr, n).as_deref(), Ok("HTTP/1.1 202 Accepted"));
        assert_eq!(wait_for_runs(root, n), n, "request {n} was accepted but did not run");
    }
}

/// The connection limit of the servers below, well under their [`FD_LIMIT`].
const SMALL_LIMIT: usize = 8;
/// Flood connections: three times the limit, so that some always wait in the accept queue.
const SMALL_FLOOD: usize = 3 * SMALL_LIMIT;
/// Well below the descriptors the server may open.
const _: () = assert!(SMALL_LIMIT < FD_LIMIT / 4);

/// `[webhooks]` with [`SMALL_LIMIT`], and timeouts that end no flood connection while a test
/// runs: only the choice of which connection a newcomer closes, and the minimum body rate, can
/// make room for a valid request.
fn small_limit_config() -> String {
    format!("[webhooks]\nport = 0\nmax_connections = {SMALL_LIMIT}\n{NO_TIMEOUTS}")
}

/// How a flood connection holds its place.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Connects and sends nothing.
    Idle,
    /// Sends its headers a byte at a time, never ending them.
    SlowHeaders,
    /// Sends complete headers for a 100,000-byte body, then the body a byte at a time.
    SlowBody,
    /// Sends a valid signed request (to another workflow), reads the answer and keeps the
    /// connection open, idle.
    KeepAlive,
}

const KINDS: [Kind; 4] = [Kind::Idle, Kind::SlowHeaders, Kind::SlowBody, Kind::KeepAlive];

/// A workflow for the kept-alive flood connections' requests, apart from [`HOOKED`]'s runs.
const IDLER: &str = r#"name: idler
on:
  webhook: { path: /hooks/idle, secret_env: FLOOD_SECRET }
steps:
  - id: nothing
    run: ["true"]
"#;

/// A signed request for [`IDLER`], a new one each time (a signature is accepted once).
fn idle_request() -> Vec<u8> {
    static SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let body = format!(r#"{{"n":{}}}"#, SENT.fetch_add(1, Ordering::SeqCst));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let signature = signature::sign(SECRET.as_bytes(), now, body.as_bytes());
    format!(
        "POST /hooks/idle HTTP/1.1\r\nhost: x\r\nx-acas-timestamp: {now}\r\nx-acas-signature: {signature}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One flood connection and how much of its part it has sent.
struct Attacker {
    kind: Kind,
    stream: Option<TcpStream>,
}

impl Attacker {
    fn open(kind: Kind, addr: SocketAddr) -> Attacker {
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok().and_then(|mut stream| {
                let start = match kind {
                    Kind::Idle | Kind::SlowHeaders => Vec::new(),
                    Kind::SlowBody => {
                        b"POST /hooks/deploy HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n".to_vec()
                    }
                    Kind::KeepAlive => idle_request(),
                };
                stream.write_all(&start).ok()?;
                stream.set_nonblocking(true).ok()?;
                Some(stream)
            });
        Attacker { kind, stream }
    }

    /// One step of the flood: false when the server closed the connection.
    fn step(&mut self, tick: usize) -> bool {
        let Some(stream) = &mut self.stream else { return false };
        let mut answer = [0u8; 512];
        let closed = match stream.read(&mut answer) {
            Ok(n) => n == 0,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        };
        let next = match self.kind {
            Kind::Idle | Kind::KeepAlive => None,
            Kind::SlowHeaders => {
                Some(b"POST /hooks/deploy HTTP/1.1\r\nx-slow: ".get(tick).copied().unwrap_or(b'a'))
            }
            Kind::SlowBody => Some(b'x'),
        };
        let sent = next.is_none_or(|byte| stream.write(&[byte]).is_ok());
        !closed && sent
    }
}

/// Holds [`SMALL_FLOOD`] connections of `kinds` (in turn) open, opening each one the server
/// closes again at once, until `stop`. Says on `progress` when all are connected and when the
/// server first closed one; returns how many it closed.
fn flood_of(
    kinds: &[Kind],
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    progress: mpsc::Sender<&'static str>,
) -> usize {
    let mut attackers: Vec<Attacker> =
        (0..SMALL_FLOOD).map(|i| Attacker::open(kinds[i % kinds.len()], addr)).collect();
    let _ = progress.send("connected");
    let mut closed_by_server = 0;
    let mut tick = 0;
    while !stop.load(Ordering::SeqCst) {
        for attacker in &mut attackers {
            if !attacker.step(tick) {
                if attacker.stream.is_some() {
                    closed_by_server += 1;
                    if closed_by_server == 1 {
                        let _ = progress.send("closed one");
                    }
                }
                *attacker = Attacker::open(attacker.kind, addr);
            }
        }
        tick += 1;
        // The pace of the slow clients.
        std::thread::sleep(Duration::from_millis(50));
    }
    closed_by_server
}

/// Sends a signed request with a body of `size` bytes, written as fast as the server reads it,
/// and returns the answer's status line, or why there was none within [`TIMEOUT`].
fn signed_request_of(addr: SocketAddr, size: usize) -> Result<String, String> {
    let body = format!(r#"{{"deploy":"main","pad":"{}"}}"#, "p".repeat(size.saturating_sub(27)));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let signature = signature::sign(SECRET.as_bytes(), now, body.as_bytes());
    let request = format!(
        "POST /hooks/deploy HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-acas-timestamp: {now}\r\nx-acas-signature: {signature}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.write_all(request.as_bytes()).map_err(|e| format!("sending: {e}"))?;
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).map_err(|e| format!("no answer: {e}"))?;
    Ok(status.trim_end().to_owned())
}

/// Floods a server limited to [`SMALL_LIMIT`] connections with `kinds`, and sends a valid signed
/// request of `size` bytes: it is accepted and its run starts while the flood still holds its
/// connections (and opens again each one the server closes).
fn served_during(kinds: &[Kind], size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    std::fs::write(root.join(".acas/workflows/hooked.yaml"), HOOKED).unwrap();
    std::fs::write(root.join(".acas/workflows/idler.yaml"), IDLER).unwrap();
    std::fs::write(root.join(".acas/config.toml"), small_limit_config()).unwrap();
    // Descriptors to spare: a flood of kept-alive connections is a flood of valid requests, each
    // starting a run whose processes need descriptors of their own.
    let server = start_with_fds(root, 1024);

    let stop = Arc::new(AtomicBool::new(false));
    let (progress, flooding) = mpsc::channel();
    let flooder = {
        let (stop, addr, kinds) = (stop.clone(), server.addr, kinds.to_vec());
        std::thread::spawn(move || flood_of(&kinds, addr, stop, progress))
    };
    assert_eq!(flooding.recv_timeout(TIMEOUT), Ok("connected"), "the flood never connected");

    let answer = signed_request_of(server.addr, size);
    assert_eq!(answer.as_deref(), Ok("HTTP/1.1 202 Accepted"), "during a flood of {kinds:?}");
    // Accepted while the flood went on: it is stopped only now.
    assert!(!flooder.is_finished(), "the flood ended early");
    // The flood was over the limit: the server closed flood connections to make room.
    assert_eq!(flooding.recv_timeout(TIMEOUT), Ok("closed one"), "the server kept every flood connection");
    stop.store(true, Ordering::SeqCst);
    assert!(flooder.join().unwrap() > 0);
    // An accepted request is in the durable inbox and runs. (A flood of kept-alive connections
    // is a flood of valid signed requests, each starting a run of its own: the run of this one
    // may come after theirs, so it is awaited once they stop coming.)
    assert_eq!(wait_for_runs(root, 1), 1, "accepted during a flood of {kinds:?} but did not run");
}

#[test]
fn a_signed_webhook_is_served_during_a_flood_of_idle_connections() {
    served_during(&[Kind::Idle], 64);
}

#[test]
fn a_signed_webhook_is_served_during_a_flood_of_slowly_sent_headers() {
    served_during(&[Kind::SlowHeaders], 64);
}

#[test]
fn a_signed_webhook_is_served_during_a_flood_of_slowly_sent_bodies() {
    served_during(&[Kind::SlowBody], 64);
}

#[test]
fn a_signed_webhook_is_served_during_a_flood_of_idle_keep_alive_connections() {
    served_during(&[Kind::KeepAlive], 64);
}

#[test]
fn a_signed_webhook_is_served_during_a_mixed_flood() {
    served_during(&KINDS, 64);
}

#[test]
fn a_large_body_sent_at_a_normal_pace_is_not_closed_for_the_flood() {
    served_during(&KINDS, 768 * 1024);
}
