//! Running a checker: its whole process tree is guarded ([`process_tree`]), its stdout and
//! stderr are read line by line as they stream and given to its format's parser, and each
//! problem goes to the caller as soon as it is complete. A newer run cancels a stale one through
//! the cancellation token, which ends the whole tree.
//!
//! A run that cannot start, or that fails without printing a problem its parser can read, is an
//! error that says what to do: a checker is never silently empty.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::parse::{self, Stream};
use super::{Checker, Problem, Span};
use crate::process_tree::{self, Ended, Timing};

/// The longest line a parser is given; the rest of a longer line is read and dropped, and the
/// run says so. Formats that read one JSON document (which tools print on one line) are given
/// lines up to [`parse::DOCUMENT_LIMIT`] instead.
pub const LINE_LIMIT: usize = 8 * 1024 * 1024;

/// The most problems one run hands over; further ones are counted and dropped, and the run says
/// so ([`Outcome::dropped`]), so that a tool printing without end cannot take the memory.
pub const PROBLEM_LIMIT: usize = 100_000;

/// How a checker's tree is ended: what it leaves running may go on for a second after it
/// exited; on a timeout or a cancel the tree has two seconds between SIGTERM and SIGKILL.
const TIMING: Timing = Timing { linger: Duration::from_secs(1), grace: Duration::from_secs(2) };

/// Lines of stderr kept to explain a failure.
const STDERR_TAIL_LINES: usize = 20;

/// How a run that read its output to the end went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The tool's exit code (`None`: killed by a signal).
    pub exit_code: Option<i32>,
    /// How many problems were handed over (a problem printed twice, as cargo does for a file
    /// checked once per target, is handed over once).
    pub problems: usize,
    pub elapsed: Duration,
    /// Problems past [`PROBLEM_LIMIT`], counted and not handed over.
    pub dropped: usize,
    /// Lines of output longer than the line limit, cut there (what was cut may have held problems).
    pub cut_lines: usize,
}

impl Outcome {
    /// What a person should know of the limits the run hit, if any.
    pub fn note(&self, checker: &str) -> Option<String> {
        let mut notes = Vec::new();
        if self.dropped > 0 {
            notes.push(format!(
                "it reported more than {PROBLEM_LIMIT} problems; {} more were dropped (fix the first ones, or narrow the checker's command in .acas/config.toml)",
                self.dropped
            ));
        }
        if self.cut_lines > 0 {
            notes.push(format!(
                "{} line(s) of its output were longer than the limit of {} MiB and were cut there, so problems in them may be missing",
                self.cut_lines,
                LINE_LIMIT / (1024 * 1024)
            ));
        }
        (!notes.is_empty()).then(|| format!("checker `{checker}`: {}", notes.join("; ")))
    }
}

/// Why a run gave no complete result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error(
        "checker `{checker}`: `{program}` was not found (looked on PATH from {}); install it, or turn the checker off in .acas/config.toml with `[[checkers]] name = \"{checker}\"` and `enabled = false`",
        cwd.display()
    )]
    NotFound { checker: String, program: String, cwd: PathBuf },
    #[error("checker `{checker}`: cannot start `{program}` in {}: {message}", cwd.display())]
    Spawn { checker: String, program: String, cwd: PathBuf, message: String },
    #[error(
        "checker `{checker}`: `{command}` {how} and printed no problem ACAS could read{tail}; run it in {} to see why, or fix its command in .acas/config.toml",
        cwd.display(),
        tail = stderr_tail(.stderr)
    )]
    Failed { checker: String, command: String, cwd: PathBuf, how: String, stderr: Vec<String> },
    #[error(
        "checker `{checker}`: `{command}` printed a line longer than {} MiB, which was cut there, and no problem ACAS could read; its output is too large to read (run it in {} with fewer files, or narrow its command in .acas/config.toml)",
        limit / (1024 * 1024),
        cwd.display()
    )]
    TooLong { checker: String, command: String, cwd: PathBuf, limit: usize },
    #[error("checker `{checker}` ran longer than its timeout of {}s and was stopped; raise `timeout` for it in .acas/config.toml", after.as_secs_f64())]
    TimedOut { checker: String, after: Duration },
    #[error(
        "checker `{checker}`: the run failed inside ACAS; run the checker again, and report it with the log if it fails again"
    )]
    Internal { checker: String },
    #[error("checker `{checker}` was cancelled")]
    Cancelled { checker: String },
}

/// `: the last lines of stderr`, when there are some.
fn stderr_tail(lines: &[String]) -> String {
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_end()).filter(|l| !l.trim().is_empty()).collect();
    match lines.as_slice() {
        [] => String::new(),
        lines => {
            let shown: Vec<String> = lines[lines.len().saturating_sub(3)..]
                .iter()
                .map(|l| l.chars().take(300).collect())
                .collect();
            format!(": {}", shown.join(" | "))
        }
    }
}

/// Runs `checker` until it ends, times out or `cancel` fires, handing each problem to
/// `on_problem` as soon as it is read, with relative paths made absolute against the checker's
/// directory.
pub async fn run(
    checker: &Checker,
    cancel: &CancellationToken,
    on_problem: &mut (dyn FnMut(Problem) + Send),
) -> Result<Outcome, RunError> {
    let started_at = Instant::now();
    let cwd = checker.cwd.clone();
    let Some((program, args)) = checker.command.split_first() else {
        return Err(RunError::Spawn {
            checker: checker.name.clone(),
            program: String::new(),
            cwd,
            message: "the command is empty".to_owned(),
        });
    };
    if let super::Format::Pytest { junit_xml } = &checker.format
        && let Err(message) = prepare_report(junit_xml)
    {
        return Err(RunError::Spawn {
            checker: checker.name.clone(),
            program: program.clone(),
            cwd,
            message,
        });
    }
    let spawn_error = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound && cwd.is_dir() {
            RunError::NotFound { checker: checker.name.clone(), program: program.clone(), cwd: cwd.clone() }
        } else {
            RunError::Spawn {
                checker: checker.name.clone(),
                program: program.clone(),
                cwd: cwd.clone(),
                message: e.to_string(),
            }
        }
    };
    let (mut child, mut tree) = process_tree::spawn(program, args, TIMING, |command| {
        command
            .current_dir(&checker.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Tools colour and page less when they know they are not on a terminal; say so
            // anyway for those that look at the environment only.
            .env("NO_COLOR", "1")
            .env("CARGO_TERM_COLOR", "never")
            .env("FORCE_COLOR", "0");
    })
    .await
    .map_err(spawn_error)?;

    let (lines_tx, mut lines) = mpsc::channel::<(Stream, String)>(256);
    let limit = line_limit(&checker.format);
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let readers = [
        child
            .stdout
            .take()
            .map(|s| tokio::spawn(read_lines(s, Stream::Stdout, lines_tx.clone(), limit, cut.clone()))),
        child
            .stderr
            .take()
            .map(|s| tokio::spawn(read_lines(s, Stream::Stderr, lines_tx.clone(), limit, cut.clone()))),
    ];
    drop(lines_tx);

    let mut parser = parse::parser(&checker.format, &checker.cwd);
    let mut stderr: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut stdout_tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut found = Vec::new();
    let mut problems = 0usize;
    let mut dropped = 0usize;
    let mut seen: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut hand_over = |found: &mut Vec<Problem>| {
        for mut problem in found.drain(..) {
            if problems >= PROBLEM_LIMIT {
                dropped += 1;
                continue;
            }
            absolute(&mut problem, &checker.cwd);
            if !seen.insert(identity(&problem)) {
                continue;
            }
            problems += 1;
            on_problem(problem);
        }
    };
    let mut take_line = |stream: Stream, line: String, found: &mut Vec<Problem>| {
        parser.line(stream, &line, found);
        // Some tools (mypy) print why they failed on stdout: its tail explains a failure when
        // stderr says nothing.
        let tail = if stream == Stream::Stderr { &mut stderr } else { &mut stdout_tail };
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.chars().take(1000).collect());
    };

    let deadline = async {
        match checker.timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    enum End {
        Exited(std::process::ExitStatus),
        TimedOut,
        Cancelled,
    }
    // The deadline or the cancel may come before the tree has started; the deadline, once it
    // has fired, must not be polled again.
    let early = tokio::select! {
        started = tree.started() => {
            started.map_err(spawn_error)?;
            None
        }
        _ = &mut deadline => Some(End::TimedOut),
        _ = cancel.cancelled() => Some(End::Cancelled),
    };
    let mut open = true;
    let end = if let Some(end) = early {
        end
    } else {
        loop {
            tokio::select! {
                line = lines.recv(), if open => match line {
                    Some((stream, line)) => {
                        take_line(stream, line, &mut found);
                        hand_over(&mut found);
                    }
                    None => open = false,
                },
                status = child.wait() => match status {
                    Ok(status) => break End::Exited(status),
                    Err(e) => break End::Exited(wait_failed(e)),
                },
                _ = &mut deadline => break End::TimedOut,
                _ = cancel.cancelled() => break End::Cancelled,
            }
        }
    };
    let ended = match end {
        End::Exited(_) => tree.exited().await,
        End::TimedOut | End::Cancelled => {
            tree.terminate(&mut child).await;
            Ended::Normally
        }
    };
    match end {
        End::TimedOut => {
            return Err(RunError::TimedOut {
                checker: checker.name.clone(),
                after: checker.timeout.unwrap_or_default(),
            });
        }
        End::Cancelled => return Err(RunError::Cancelled { checker: checker.name.clone() }),
        End::Exited(_) => {}
    }
    // The pipes close when the tree has ended; something that escaped it may hold them open.
    let settle = tokio::time::sleep(tree.settle_time());
    tokio::pin!(settle);
    while open {
        tokio::select! {
            line = lines.recv() => match line {
                Some((stream, line)) => {
                    take_line(stream, line, &mut found);
                    hand_over(&mut found);
                }
                None => open = false,
            },
            _ = &mut settle => break,
        }
    }
    for reader in readers.into_iter().flatten() {
        reader.abort();
    }
    parser.finish(&mut found);
    hand_over(&mut found);

    let End::Exited(status) = end else { unreachable!("timeouts and cancels returned above") };
    let exit_code = status.code();
    let cut_lines = cut.load(std::sync::atomic::Ordering::Relaxed);
    if problems == 0 && cut_lines > 0 {
        return Err(RunError::TooLong {
            checker: checker.name.clone(),
            command: checker.command.join(" "),
            cwd: checker.cwd.clone(),
            limit,
        });
    }
    let how = match (exit_code, ended) {
        (_, Ended::SupervisorKilled) => Some("was killed before it ended".to_owned()),
        (Some(0), _) => None,
        (Some(code), _) => Some(format!("exited with code {code}")),
        (None, _) => Some("was killed by a signal".to_owned()),
    };
    match how {
        Some(how) if problems == 0 => Err(RunError::Failed {
            checker: checker.name.clone(),
            command: checker.command.join(" "),
            cwd: checker.cwd.clone(),
            how,
            stderr: if stderr.iter().any(|l| !l.trim().is_empty()) { stderr } else { stdout_tail }
                .into_iter()
                .collect(),
        }),
        _ => Ok(Outcome { exit_code, problems, elapsed: started_at.elapsed(), dropped, cut_lines }),
    }
}

/// An exit status for a child that could not be waited for: a failure with no code.
fn wait_failed(_: std::io::Error) -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    std::process::ExitStatus::from_raw(libc::SIGKILL)
}

/// Makes the place of a report the tool writes (`.acas/checkers/pytest.xml`) safe to write: its
/// directory and the one above it are real directories, created when missing, never links
/// (a repository may carry links there), and a link or anything but a file at the report's path
/// is removed, so that the tool writes nothing through a link.
fn prepare_report(report: &Path) -> Result<(), String> {
    let Some(dir) = report.parent() else { return Ok(()) };
    for dir in [dir.parent(), Some(dir)].into_iter().flatten() {
        match std::fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} is a link or not a directory, and ACAS writes nothing through links; replace it with a directory",
                    dir.display()
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(dir)
                    .map_err(|e| format!("cannot create {}: {e}; check its permissions", dir.display()))?;
            }
            Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
        }
    }
    match std::fs::symlink_metadata(report) {
        Ok(meta) if !meta.file_type().is_file() || meta.file_type().is_symlink() => {
            std::fs::remove_file(report).map_err(|e| {
                format!("cannot remove the link or entry at {}: {e}; remove it", report.display())
            })
        }
        _ => Ok(()),
    }
}

/// The longest line `format`'s parser is given: a whole JSON document for the formats that read
/// one, else [`LINE_LIMIT`].
fn line_limit(format: &super::Format) -> usize {
    use super::Format;
    match format {
        Format::Eslint | Format::Ruff | Format::Pyright | Format::Jest => parse::DOCUMENT_LIMIT,
        _ => LINE_LIMIT,
    }
}

/// What makes two problems the same for a person: place, tool, code, severity and message.
fn identity(problem: &Problem) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let span = &problem.span;
    span.path.hash(&mut hasher);
    (span.start.line, span.start.column).hash(&mut hasher);
    span.end.map(|e| (e.line, e.column)).hash(&mut hasher);
    problem.source.hash(&mut hasher);
    problem.code.hash(&mut hasher);
    problem.severity.as_str().hash(&mut hasher);
    problem.message.hash(&mut hasher);
    hasher.finish()
}

/// Makes the problem's paths absolute against `cwd`.
fn absolute(problem: &mut Problem, cwd: &Path) {
    let fix = |span: &mut Span| {
        if span.path.is_relative() {
            span.path = cwd.join(&span.path);
        }
    };
    fix(&mut problem.span);
    problem.related.iter_mut().for_each(|r| fix(&mut r.span));
    problem.fixes.iter_mut().flat_map(|f| f.edits.iter_mut()).for_each(|e| fix(&mut e.span));
}

/// Sends each line of `reader` (without its ending; invalid UTF-8 replaced) until it closes or
/// the receiver is gone. A line longer than `limit` is cut there, and counted in `cut`.
async fn read_lines(
    mut reader: impl AsyncRead + Unpin,
    stream: Stream,
    lines: mpsc::Sender<(Stream, String)>,
    limit: usize,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    let mut overlong = false;
    let send = |line: &mut Vec<u8>| {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(line).into_owned();
        line.clear();
        text
    };
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut rest = &buf[..n];
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            if !overlong {
                line.extend_from_slice(&rest[..at]);
            }
            overlong = false;
            let text = send(&mut line);
            if lines.send((stream, text)).await.is_err() {
                return;
            }
            rest = &rest[at + 1..];
        }
        if !overlong {
            let room = limit.saturating_sub(line.len());
            line.extend_from_slice(&rest[..rest.len().min(room)]);
            if rest.len() > room {
                overlong = true;
                cut.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let text = send(&mut line);
                if lines.send((stream, text)).await.is_err() {
                    return;
                }
            }
        }
    }
    if !line.is_empty() {
        let text = send(&mut line);
        let _ = lines.send((stream, text)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::checkers::{ColumnUnit, Format, Kind, Matcher, Point};
    use crate::classify::Severity;

    fn checker(dir: &Path, script: &str) -> Checker {
        Checker {
            name: "lint".to_owned(),
            command: vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
            cwd: dir.to_path_buf(),
            format: Format::Matcher(Matcher {
                pattern: regex::Regex::new(
                    r"^(?P<file>[^:\s]+):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$",
                )
                .unwrap(),
                source: "lint".to_owned(),
                severity: Severity::Error,
                columns: ColumnUnit::Bytes,
            }),
            kind: Kind::Check,
            on_save: true,
            on_start: false,
            files: Vec::new(),
            timeout: None,
        }
    }

    #[tokio::test]
    async fn problems_are_handed_over_as_their_lines_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("go-on");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        // The tool prints one problem, then waits until the test has seen it.
        let script = "echo 'src/a.py:3:5: first'; read _ < go-on; echo 'b.py:1:1: second' >&2";
        let checker = checker(dir.path(), script);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
        let release = std::thread::spawn({
            let fifo = fifo.clone();
            move || {
                first_rx.recv().unwrap();
                std::fs::write(fifo, "go\n").unwrap();
            }
        });
        let mut on_problem = {
            let seen = seen.clone();
            move |p: Problem| {
                seen.lock().unwrap().push(p);
                let _ = first_tx.send(());
            }
        };
        let outcome = run(&checker, &CancellationToken::new(), &mut on_problem).await.unwrap();
        release.join().unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(outcome.problems, 2);
        assert_eq!(outcome.exit_code, Some(0));
        assert_eq!(seen[0].span.path, dir.path().join("src/a.py"));
        assert_eq!(seen[0].span.start, Point { line: 3, column: 5 });
        assert_eq!(seen[1].message, "second");
    }

    #[tokio::test]
    async fn a_missing_program_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let mut checker = checker(dir.path(), "");
        checker.command = vec!["acas-no-such-tool".to_owned(), "--check".to_owned()];
        let error = run(&checker, &CancellationToken::new(), &mut |_| {}).await.unwrap_err();
        assert!(matches!(error, RunError::NotFound { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("`acas-no-such-tool` was not found"), "{message}");
        assert!(message.contains("enabled = false"), "{message}");
    }

    #[tokio::test]
    async fn a_failure_without_readable_problems_is_an_error_with_the_tools_words() {
        let dir = tempfile::tempdir().unwrap();
        let checker = checker(dir.path(), "echo 'config error: no such rule \"X1\"' >&2; exit 3");
        let error = run(&checker, &CancellationToken::new(), &mut |_| {}).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("exited with code 3 and printed no problem ACAS could read"), "{message}");
        assert!(message.contains("no such rule \"X1\""), "{message}");
    }

    #[tokio::test]
    async fn a_failure_explained_on_stdout_only_shows_stdouts_words() {
        let dir = tempfile::tempdir().unwrap();
        let checker = checker(dir.path(), "echo 'utils.py: error: Duplicate module named \"utils\"'; exit 2");
        let error = run(&checker, &CancellationToken::new(), &mut |_| {}).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains("Duplicate module named \"utils\""), "{message}");
    }

    #[tokio::test]
    async fn a_problem_printed_twice_is_handed_over_once() {
        let dir = tempfile::tempdir().unwrap();
        let checker = checker(dir.path(), "echo 'a.rs:1:2: bad'; echo 'a.rs:1:2: bad'; echo 'a.rs:1:3: bad'");
        let mut seen = Vec::new();
        let outcome = run(&checker, &CancellationToken::new(), &mut |p| seen.push(p)).await.unwrap();
        assert_eq!((outcome.problems, seen.len()), (2, 2));
    }

    #[tokio::test]
    async fn a_failure_with_problems_is_a_result() {
        let dir = tempfile::tempdir().unwrap();
        let checker = checker(dir.path(), "echo 'a.rs:1:2: bad'; exit 1");
        let outcome = run(&checker, &CancellationToken::new(), &mut |_| {}).await.unwrap();
        assert_eq!((outcome.exit_code, outcome.problems), (Some(1), 1));
    }

    #[tokio::test]
    async fn cancelling_ends_the_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        // The tool starts a grandchild that would outlive it, says where it is, and waits.
        let checker = checker(dir.path(), "sleep 600 & echo \"pid:1:1: $!\"; wait");
        let cancel = CancellationToken::new();
        let pid = Arc::new(Mutex::new(None));
        let mut on_problem = {
            let (cancel, pid) = (cancel.clone(), pid.clone());
            move |p: Problem| {
                *pid.lock().unwrap() = p.message.parse::<i32>().ok();
                cancel.cancel();
            }
        };
        let error = run(&checker, &cancel, &mut on_problem).await.unwrap_err();
        assert!(matches!(error, RunError::Cancelled { .. }), "{error:?}");
        let pid = pid.lock().unwrap().expect("the grandchild's pid was read");
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0 && !is_zombie(pid);
        assert!(!alive, "the grandchild {pid} outlived the cancelled run");
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
            .unwrap_or(true)
    }

    #[tokio::test]
    async fn a_timeout_stops_the_run_and_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let mut checker = checker(dir.path(), "exec sleep 600");
        checker.timeout = Some(Duration::from_millis(200));
        let error = run(&checker, &CancellationToken::new(), &mut |_| {}).await.unwrap_err();
        assert!(error.to_string().contains("raise `timeout`"), "{error}");
    }

    #[tokio::test]
    async fn an_overlong_line_is_cut_and_the_next_line_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let limit = LINE_LIMIT + 10;
        let script = format!("head -c {limit} /dev/zero | tr '\\0' x; echo; echo 'a.go:2:3: after'");
        let checker = checker(dir.path(), &script);
        let mut seen = Vec::new();
        let outcome = run(&checker, &CancellationToken::new(), &mut |p| seen.push(p)).await.unwrap();
        assert_eq!(outcome.problems, 1);
        assert_eq!(seen[0].message, "after");
    }
}
