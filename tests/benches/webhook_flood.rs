//! Webhook latency under a flood: the time a valid signed request takes to be answered 202 while
//! the server's connection limit is held by idle, slowly-sent or kept-alive connections.
//!
//! Run with `cargo build --release -p acas && cargo bench -p acas-e2e --bench webhook_flood`.
//! `acas watch` (release build) serves one `on.webhook` workflow with the default `[webhooks]`
//! limits (64 connections, 5 s for headers, 10 s for a body, 16 KiB/s at least). For each kind
//! of flood, twice the connection limit of flood connections are opened (each one the server
//! closes is opened again at once, as an attacker in a loop would), then `ROUNDS` valid signed
//! requests are sent one after another, each timed from `connect` to the answer's status line.
//! `ACAS_BENCH_ROUNDS` changes the number of rounds; `ACAS_BIN` the binary measured.

#![allow(clippy::print_stdout)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use acas::workflow::signature;

const SECRET: &str = "bench-secret";
/// The default `[webhooks] max_connections`.
const LIMIT: usize = 64;
const FLOOD: usize = 2 * LIMIT;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Idle,
    SlowHeaders,
    SlowBody,
    KeepAlive,
}

fn main() {
    let rounds = std::env::var("ACAS_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(40);
    println!("# Webhooks under a flood ({rounds} requests each, {FLOOD} flood connections, limit {LIMIT})\n");
    println!(
        "| flood | p50 ms | p95 ms | max ms | flood connections closed by the server |\n|---|---|---|---|---|"
    );
    let floods: [(&str, &[Kind]); 6] = [
        ("none", &[]),
        ("idle", &[Kind::Idle]),
        ("headers a byte at a time", &[Kind::SlowHeaders]),
        ("body a byte at a time", &[Kind::SlowBody]),
        ("idle after a kept-alive 202", &[Kind::KeepAlive]),
        ("all four mixed", &[Kind::Idle, Kind::SlowHeaders, Kind::SlowBody, Kind::KeepAlive]),
    ];
    for (name, kinds) in floods {
        let (mut latencies, closed) = measure(kinds, rounds);
        latencies.sort();
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {closed} |",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.95),
            percentile(&latencies, 1.0)
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn measure(kinds: &[Kind], rounds: usize) -> (Vec<Duration>, usize) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".acas/workflows")).unwrap();
    for (name, path) in [("hooked", "/hooks/deploy"), ("idler", "/hooks/idle")] {
        let workflow = format!(
            "name: {name}\non:\n  webhook: {{ path: {path}, secret_env: BENCH_SECRET }}\nsteps:\n  - id: nothing\n    run: [\"true\"]\n"
        );
        std::fs::write(root.join(format!(".acas/workflows/{name}.yaml")), workflow).unwrap();
    }
    std::fs::write(root.join(".acas/config.toml"), "[webhooks]\nport = 0\n").unwrap();
    let mut child = Command::new(acas_e2e::acas_bin())
        .arg("watch")
        .arg(root)
        .env("ACAS_LOG", "info")
        .env("BENCH_SECRET", SECRET)
        .env("XDG_CONFIG_HOME", root.join(".no-user-config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting acas watch");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let addr: SocketAddr = lines
        .by_ref()
        .find_map(|line| Some(line.split_once("webhooks listen on http://")?.1.trim().parse().unwrap()))
        .expect("the webhook server never listened");
    std::thread::spawn(move || lines.for_each(drop));

    let stop = Arc::new(AtomicBool::new(false));
    let (ready, connected) = mpsc::channel();
    let flooder = {
        let (stop, kinds) = (stop.clone(), kinds.to_vec());
        std::thread::spawn(move || flood(&kinds, addr, &stop, &ready))
    };
    connected.recv().expect("the flood never connected");
    let latencies = (0..rounds).map(|n| request(addr, n)).collect();
    stop.store(true, Ordering::SeqCst);
    let closed = flooder.join().unwrap();
    drop(server);
    (latencies, closed)
}

/// A signed request to `path`, a new one each time (a signature is accepted once).
fn signed(path: &str, keep_alive: bool) -> Vec<u8> {
    static SENT: AtomicUsize = AtomicUsize::new(0);
    let body = format!(r#"{{"n":{}}}"#, SENT.fetch_add(1, Ordering::SeqCst));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let signature = signature::sign(SECRET.as_bytes(), now, body.as_bytes());
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nx-acas-timestamp: {now}\r\nx-acas-signature: {signature}\r\n\
         connection: {connection}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn request(addr: SocketAddr, n: usize) -> Duration {
    let request = signed("/hooks/deploy", false);
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connecting");
    stream.write_all(&request).expect("sending");
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).expect("an answer");
    let took = started.elapsed();
    assert!(status.starts_with("HTTP/1.1 202"), "request {n}: {status:?}");
    took
}

fn open(kind: Kind, addr: SocketAddr) -> Option<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    let start = match kind {
        Kind::Idle | Kind::SlowHeaders => Vec::new(),
        Kind::SlowBody => {
            b"POST /hooks/deploy HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n".to_vec()
        }
        Kind::KeepAlive => signed("/hooks/idle", true),
    };
    stream.write_all(&start).ok()?;
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

/// Holds [`FLOOD`] connections of `kinds` open, opening again each one the server closes, until
/// `stop`; returns how many the server closed.
fn flood(kinds: &[Kind], addr: SocketAddr, stop: &AtomicBool, ready: &mpsc::Sender<()>) -> usize {
    let mut sockets: Vec<(Kind, Option<TcpStream>)> = if kinds.is_empty() {
        Vec::new()
    } else {
        (0..FLOOD).map(|i| kinds[i % kinds.len()]).map(|kind| (kind, open(kind, addr))).collect()
    };
    let _ = ready.send(());
    let header = b"POST /hooks/deploy HTTP/1.1\r\nx-slow: ";
    let (mut tick, mut closed) = (0usize, 0usize);
    while !stop.load(Ordering::SeqCst) {
        for (kind, socket) in &mut sockets {
            let alive = socket.as_mut().is_some_and(|stream| {
                let mut answer = [0u8; 512];
                let gone = match stream.read(&mut answer) {
                    Ok(n) => n == 0,
                    Err(e) => e.kind() != ErrorKind::WouldBlock,
                };
                let next = match kind {
                    Kind::SlowHeaders => Some(header.get(tick).copied().unwrap_or(b'a')),
                    Kind::SlowBody => Some(b'x'),
                    Kind::Idle | Kind::KeepAlive => None,
                };
                !gone && next.is_none_or(|byte| stream.write(&[byte]).is_ok())
            });
            if !alive {
                closed += usize::from(socket.is_some());
                *socket = open(*kind, addr);
            }
        }
        tick += 1;
        // The pace of the slow clients: 20 bytes a second each.
        std::thread::sleep(Duration::from_millis(50));
    }
    closed
}
