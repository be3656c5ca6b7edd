//! `acas run -- CMD ARGS...`: runs a command in the terminal and passes it through, then says
//! what it recognised in the output and records it for a running editor.
//!
//! The command's stdin is the terminal's (inherited). Its stdout and stderr are pipes that ACAS
//! copies byte for byte, as they arrive, to its own stdout and stderr, so that it can read them
//! (the crash parser, [`crate::checkers::Format::Crash`]): the command therefore sees pipes, not a terminal
//! (`isatty` is false; tools that colour or line-buffer only on a terminal behave as when piped,
//! and the relative order of stdout and stderr is kept per stream only). ACAS exits with the
//! command's exit code, 128+N when it was ended by signal N. Ctrl-C reaches the command from the
//! terminal as usual; SIGTERM and SIGHUP sent to ACAS are passed on to it.
//!
//! Copying and reading are apart: each stream is copied on a thread of its own, which hands
//! each chunk to the parser's thread through a bounded channel and never waits for it. A chunk
//! that finds the channel full ([`PARSE_BACKLOG`]) is passed through unread (the parser skips
//! the rest of the line it cut) and ACAS says so at the end.
//!
//! The command has ended when its own process has: output that a process it left running in
//! the background (`sh -c 'server & echo started'`) still holds open is read for a short drain
//! only ([`DRAIN_QUIET`], [`DRAIN_LIMIT`]), then ACAS stops reading and exits, as a shell would.
//!
//! Problems recognised in files inside the workspace (resolved through `..` and links; never
//! under `.acas`) are recorded in `.acas/state.db` as the diagnostics of their tool
//! (`store::Record::Diagnostics`), and the files and tools recorded are listed under
//! [`RUN_LISTS`], where a running editor notices them and shows them.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::{EXIT_FAILED, output};
use crate::analysis;
use crate::checkers::parse::{self, Parser, Stream};
use crate::checkers::run::LINE_LIMIT;
use crate::checkers::{Problem, RUN_LISTS};
use crate::classify::Language;
use crate::store::{self, Record};
use crate::text::PositionEncoding;

/// The exit code when the command could not be found (as shells say it).
const EXIT_NOT_FOUND: i32 = 127;
/// The exit code when the command could not be started (as shells say it).
const EXIT_CANNOT_RUN: i32 = 126;
/// At most this many problems are listed in the summary.
const SUMMARY_LINES: usize = 10;

/// Once the command has exited, its output is read on until its pipes have been quiet this
/// long...
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// ...or this long has passed since it exited and more than a pipe's capacity was read since
/// (what the command itself wrote is never cut), whichever comes first; what processes it left
/// behind write later is not read (their writes then fail, as with a closed pipe).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// How often a copier looks whether the command has exited while its output is quiet.
const EXIT_TICK: Duration = Duration::from_millis(50);

/// The running command's pid, for the signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_on(signal: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe; the pid is the child's until ACAS has waited for it.
        unsafe { libc::kill(pid, signal) };
    }
}

extern "C" fn ignore(_: libc::c_int) {}

/// Installs the handlers: the terminal's Ctrl-C and Ctrl-\ reach the command by themselves (it is
/// in the same process group), so ACAS only outlives them; SIGTERM and SIGHUP are passed on.
/// Handlers, unlike ignored signals, are reset for the command when it starts.
fn handle_signals() {
    // SAFETY: the handlers only read an atomic and call kill, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, ignore as *const () as libc::sighandler_t);
        libc::signal(libc::SIGQUIT, ignore as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, pass_on as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, pass_on as *const () as libc::sighandler_t);
    }
}

pub(super) fn run(workspace: &Path, command: Vec<OsString>) -> i32 {
    let root = match super::resolve(workspace) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!(
                "acas run: {} is not a directory; give the workspace",
                workspace.display()
            ));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas run: {error}"));
            return EXIT_FAILED;
        }
    };
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(error) => {
            output::note(&format!("acas run: cannot tell the current directory: {error}"));
            return EXIT_FAILED;
        }
    };
    let Some((program, args)) = command.split_first() else {
        output::note("acas run: give the command after `--`, as in `acas run -- cargo test`");
        return EXIT_FAILED;
    };
    handle_signals();
    let mut child = match Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            let name = program.to_string_lossy();
            return if error.kind() == std::io::ErrorKind::NotFound {
                output::note(&format!("acas run: `{name}` was not found; check its name and PATH"));
                EXIT_NOT_FOUND
            } else {
                output::note(&format!("acas run: cannot start `{name}`: {error}"));
                EXIT_CANNOT_RUN
            };
        }
    };
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    // Copying never waits for reading: the chunks go to the parser through a bounded channel,
    // and those that find it full are left unread.
    let (chunks, received) = crossbeam_channel::bounded::<Chunk>(PARSE_BACKLOG);
    let reading = {
        let root = root.clone();
        std::thread::spawn(move || read_chunks(&root, &received))
    };
    let exited: std::sync::Arc<OnceLock<Instant>> = std::sync::Arc::default();
    let mut copiers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let (chunks, exited) = (chunks.clone(), exited.clone());
        copiers.push(std::thread::spawn(move || tee(stdout, Stream::Stdout, &chunks, &exited)));
    }
    if let Some(stderr) = child.stderr.take() {
        let (chunks, exited) = (chunks.clone(), exited.clone());
        copiers.push(std::thread::spawn(move || tee(stderr, Stream::Stderr, &chunks, &exited)));
    }
    drop(chunks);
    let status = child.wait();
    let _ = exited.set(Instant::now());
    CHILD.store(0, Ordering::SeqCst);
    let unread: u64 = copiers.into_iter().map(|c| c.join().unwrap_or(0)).sum();
    let mut problems = reading.join().unwrap_or_default();
    let code = match status {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(EXIT_FAILED)
        }
        Err(error) => {
            output::note(&format!("acas run: waiting for the command failed: {error}"));
            EXIT_FAILED
        }
    };
    if unread > 0 {
        output::note(&format!(
            "acas run: the command printed faster than ACAS could read it: {} MiB of its output were passed through but not looked at for problems",
            unread.div_ceil(1024 * 1024)
        ));
    }
    for problem in &mut problems {
        absolute(problem, &cwd);
    }
    let problems = problems;
    if !problems.is_empty() {
        summarise(&root, &problems);
    }
    record(&root, &cwd, &command, &problems);
    code
}

/// How many chunks of output may wait for the parser; beyond, chunks are passed through unread.
const PARSE_BACKLOG: usize = 256;

/// Output on its way to the parser: a chunk of a stream, and whether chunks of that stream
/// before it were left unread.
struct Chunk {
    stream: Stream,
    bytes: Vec<u8>,
    after_gap: bool,
}

/// Copies `reader` to the same stream of ACAS as it arrives, and hands each chunk to the parser
/// unless it is behind; answers how many bytes it left unread. Stops at the end of the stream,
/// or once the command has `exited` and the drain is over (quiet, or too long).
fn tee(
    mut reader: impl Read + std::os::fd::AsRawFd,
    stream: Stream,
    chunks: &crossbeam_channel::Sender<Chunk>,
    exited: &OnceLock<Instant>,
) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut unread = 0u64;
    let mut gap = false;
    // What the command wrote before it exited is at most a pipe's capacity: that much is always
    // read after its exit, however slowly ACAS's own output is taken (`| less`).
    // SAFETY: F_GETPIPE_SZ reads a property of a descriptor `reader` keeps open.
    let capacity = match unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_GETPIPE_SZ) } {
        n if n > 0 => n as u64,
        _ => 1 << 20,
    };
    let mut after_exit = 0u64;
    loop {
        let draining = exited.get().copied();
        let wait = match draining {
            None => EXIT_TICK,
            Some(at) if at.elapsed() >= DRAIN_LIMIT && after_exit >= capacity => break,
            Some(_) => DRAIN_QUIET,
        };
        let mut poll = libc::pollfd { fd: reader.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd this function owns, for a descriptor `reader` keeps open.
        let ready = unsafe { libc::poll(&mut poll, 1, wait.as_millis() as libc::c_int) };
        match ready {
            0 if draining.is_some() => break,
            0 => continue,
            -1 if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
            -1 => break,
            _ => {}
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if draining.is_some() {
            after_exit += n as u64;
        }
        let chunk = &buf[..n];
        let passed = match stream {
            Stream::Stdout => output::raw_stdout(chunk),
            Stream::Stderr => output::raw_stderr(chunk),
        };
        if !passed {
            // Nobody reads this stream any more (`acas run -- yes | head -1`): stop reading it
            // too, so that the command's next write fails as it would without ACAS in between
            // (SIGPIPE), instead of running on with its output thrown away.
            break;
        }
        match chunks.try_send(Chunk { stream, bytes: chunk.to_vec(), after_gap: gap }) {
            Ok(()) => gap = false,
            Err(_) => {
                unread += n as u64;
                gap = true;
            }
        }
    }
    unread
}

/// Reads the chunks' lines, per stream, with the crash parser; answers the problems found.
/// After a gap, the rest of the line it cut is skipped.
fn read_chunks(root: &Path, chunks: &crossbeam_channel::Receiver<Chunk>) -> Vec<Problem> {
    let mut parser: Box<dyn Parser> = parse::crash(root);
    let mut found = Vec::new();
    // Per stream: the line so far, and whether the rest of a cut line is being skipped.
    let mut lines: [(Vec<u8>, bool); 2] = [(Vec::new(), false), (Vec::new(), false)];
    let index = |stream: Stream| if stream == Stream::Stdout { 0 } else { 1 };
    let take =
        |parser: &mut Box<dyn Parser>, stream: Stream, line: &mut Vec<u8>, found: &mut Vec<Problem>| {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let text = String::from_utf8_lossy(line).into_owned();
            line.clear();
            parser.line(stream, &text, found);
        };
    for chunk in chunks.iter() {
        let (line, skipping) = &mut lines[index(chunk.stream)];
        if chunk.after_gap {
            line.clear();
            *skipping = true;
        }
        let mut rest = chunk.bytes.as_slice();
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            if std::mem::take(skipping) {
                line.clear();
            } else {
                let room = LINE_LIMIT.saturating_sub(line.len());
                line.extend_from_slice(&rest[..at.min(room)]);
                take(&mut parser, chunk.stream, line, &mut found);
            }
            rest = &rest[at + 1..];
        }
        if !*skipping {
            let room = LINE_LIMIT.saturating_sub(line.len());
            line.extend_from_slice(&rest[..rest.len().min(room)]);
        }
    }
    for stream in [Stream::Stdout, Stream::Stderr] {
        let (line, skipping) = &mut lines[index(stream)];
        if !line.is_empty() && !*skipping {
            take(&mut parser, stream, line, &mut found);
        }
    }
    parser.finish(&mut found);
    found
}

fn absolute(problem: &mut Problem, cwd: &Path) {
    let fix = |path: &mut PathBuf| {
        if path.is_relative() {
            *path = cwd.join(&*path);
        }
    };
    fix(&mut problem.span.path);
    problem.related.iter_mut().for_each(|r| fix(&mut r.span.path));
    problem.fixes.iter_mut().flat_map(|f| f.edits.iter_mut()).for_each(|e| fix(&mut e.span.path));
}

/// `path` resolved (its `..` and its links), when that is a file inside the workspace and not
/// ACAS's own under `.acas`.
fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    (real.starts_with(root) && !real.starts_with(root.join(".acas")) && real.is_file()).then_some(real)
}

fn shown(root: &Path, path: &Path) -> String {
    if path.starts_with(root) { crate::files::relative(root, path) } else { path.display().to_string() }
}

/// A few lines on stderr: what was recognised, where.
fn summarise(root: &Path, problems: &[Problem]) {
    let mut text = format!(
        "acas run: recognised {} {}:",
        problems.len(),
        if problems.len() == 1 { "problem" } else { "problems" }
    );
    for p in problems.iter().take(SUMMARY_LINES) {
        let first = p.message.lines().next().unwrap_or("");
        text.push_str(&format!(
            "\n  {}:{}:{}: {} ({})",
            shown(root, &p.span.path),
            p.span.start.line,
            p.span.start.column,
            first,
            p.source
        ));
    }
    if problems.len() > SUMMARY_LINES {
        text.push_str(&format!("\n  and {} more", problems.len() - SUMMARY_LINES));
    }
    output::note(&text);
}

/// The name of the file under [`RUN_LISTS`] that lists the sets a command (run in `cwd`)
/// recorded last: a hash of the directory and the command.
fn recorded_list(cwd: &Path, command: &[OsString]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(cwd.as_os_str().as_encoded_bytes());
    for arg in command {
        hash.update([0u8]);
        hash.update(arg.as_encoded_bytes());
    }
    let name: String = hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{name}.json")
}

/// Records the problems in files inside the workspace, one set per file and tool, and clears
/// the sets the same command (in the same directory) recorded the last time that it no longer
/// reports.
fn record(root: &Path, cwd: &Path, command: &[OsString], problems: &[Problem]) {
    let mut sets: BTreeMap<(PathBuf, String), Vec<Problem>> = BTreeMap::new();
    for p in problems {
        let Some(real) = inside(root, &p.span.path) else { continue };
        let mut p = p.clone();
        p.span.path = real.clone();
        sets.entry((real, p.source.clone())).or_default().push(p);
    }
    let name = recorded_list(cwd, command);
    let list = root.join(RUN_LISTS).join(&name);
    let acas = root.join(".acas");
    let before: Vec<(PathBuf, String)> = std::fs::read(&list)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Vec<(PathBuf, String)>>(&bytes).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|(path, _)| path.starts_with(root) && !path.starts_with(&acas))
        .filter(|(path, _)| path.components().all(|c| c != std::path::Component::ParentDir))
        .collect();
    let now: Vec<(PathBuf, String)> = sets.keys().cloned().collect();
    for key in before {
        sets.entry(key).or_default();
    }
    if sets.is_empty() {
        return;
    }
    if let Some(why) = store::read_only(root) {
        output::note(&format!(
            "acas run: not recorded: the state of {} is read-only ({why})",
            root.display()
        ));
        return;
    }
    let store = match store::Store::open_workspace(root, store::StoreOptions::default()) {
        Ok(store) => store,
        Err(error) => {
            output::note(&format!("acas run: not recorded: {error}"));
            return;
        }
    };
    let (config, _) = crate::config::load(root);
    let at_ms = crate::time::now_ms();
    let mut records = Vec::new();
    for ((path, source), problems) in sets {
        let text = crate::files::read_source(&path, config.max_file_size).unwrap_or_default();
        let placed =
            analysis::place_problems(&text, Language::from_path(&path), &problems, PositionEncoding::Utf16);
        let diagnostics = placed
            .into_iter()
            .map(|d| store::DiagnosticRecord {
                fingerprint: d.fingerprint,
                category: d.category.as_str().to_owned(),
                severity: d.severity.as_str().to_owned(),
                message: d.message,
                source: d.source,
                symbol: d.symbol,
                line: d.range.start.line,
                character: d.range.start.character,
            })
            .collect();
        records.push(Record::Diagnostics(store::FileDiagnostics {
            at_ms,
            path: crate::files::relative(root, &path),
            source,
            diagnostics,
        }));
    }
    store.record(records);
    if let Err(error) = store.close() {
        output::note(&format!("acas run: recording the problems failed: {error}"));
        return;
    }
    // Written whole under a new name, then renamed over the list: a running editor reads
    // either list, never half of one. No link under `.acas` is followed.
    let written = (|| {
        let temp_name = format!("{name}.{}", std::process::id());
        let temp = root.join(RUN_LISTS).join(&temp_name);
        let _ = std::fs::remove_file(&temp);
        let bytes = serde_json::to_vec(&now).expect("paths serialise");
        crate::files::create_beneath(root, RUN_LISTS, &temp_name, &bytes)?;
        std::fs::rename(&temp, &list)
    })();
    if let Err(error) = written {
        output::note(&format!(
            "acas run: cannot note what was recorded in {} ({error}); the next run of this command will not clear it",
            list.display()
        ));
    }
}
