//! Running the command of a `run:` step: an argv without a shell, or a script through `sh -c`.
//!
//! The command runs as a guarded tree ([`process_tree`](crate::process_tree)): a timeout or a
//! cancellation ends it and everything it started, and so does its own exit once what it left
//! running had [`TIMING`]'s linger time, so a background process holding the output pipes open
//! cannot keep the step running. Stdout and stderr are read concurrently and kept up to
//! [`OUTPUT_LIMIT`] bytes each; the rest is drained and counted, never kept. Reading stops once
//! the tree has had the time to end, whatever still holds the pipes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::policy::guard::Guard;
use crate::process_tree::{self, Ended, Timing};

/// Bytes of stdout and of stderr kept in a step's output.
pub const OUTPUT_LIMIT: usize = 1024 * 1024;

/// How a step's process tree is ended: what the command leaves running may go on for a second
/// after it exited; on a timeout or a cancel the tree has two seconds between SIGTERM and
/// SIGKILL.
pub const TIMING: Timing = Timing { linger: Duration::from_secs(1), grace: Duration::from_secs(2) };

/// How a command ended, when it did not end by itself with exit code 0.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandFailure {
    /// It could not be started (not found, not executable, bad directory).
    Spawn(String),
    /// It exited with a non-zero code or was killed by a signal; the output is kept.
    Exit {
        output: Value,
        message: String,
    },
    TimedOut {
        output: Value,
        after: Duration,
    },
    Cancelled,
}

/// Runs `argv` in `cwd` with `env` added to the inherited environment, its supervisor carrying
/// `label` (the run and the agent it acts for, see [`process_tree::enclosing`]). Returns
/// `{stdout, stderr, exit_code}` when it exits with 0.
pub async fn run(
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    timeout: Option<Duration>,
    label: Option<&process_tree::Label>,
    cancel: &CancellationToken,
) -> Result<Value, CommandFailure> {
    let Some(label) = label else { return run_hiding(argv, env, &[], cwd, timeout, None, cancel).await };
    // The policy files as they are now: what the command starts is judged by them, and any of
    // them it changes is put back once its tree has ended.
    let workspace = label.workspace.clone();
    let guard = tokio::task::spawn_blocking(move || Guard::take(&workspace)).await.map_err(|e| {
        CommandFailure::Spawn(format!("reading the policy files before the step failed: {e}"))
    })?;
    let mut label = label.clone();
    label.policy = guard.pins();
    let result = run_hiding(argv, env, &[], cwd, timeout, Some(&label), cancel).await;
    let told = tokio::task::spawn_blocking(move || guard.restore()).await.unwrap_or_else(|e| {
        vec![format!("checking the policy files after the step failed ({e}): check them before the next run")]
    });
    if told.is_empty() {
        return result;
    }
    let message = format!(
        "the step changed a policy file, which a run never does: {}; the step fails (change policy files \
         yourself, outside runs)",
        told.join("; ")
    );
    match result {
        Ok(output) | Err(CommandFailure::TimedOut { output, .. }) => {
            Err(CommandFailure::Exit { output, message })
        }
        Err(CommandFailure::Exit { output, message: ended }) => {
            Err(CommandFailure::Exit { output, message: format!("{message}; and {ended}") })
        }
        Err(CommandFailure::Spawn(ended)) => Err(CommandFailure::Spawn(format!("{message}; and {ended}"))),
        Err(CommandFailure::Cancelled) => Err(CommandFailure::Cancelled),
    }
}

/// [`run`], with the inherited variables named in `hidden` taken out of the command's
/// environment (a worker's own credentials, which a step queued by anyone must not see).
pub async fn run_hiding(
    argv: &[String],
    env: &BTreeMap<String, String>,
    hidden: &[&str],
    cwd: &Path,
    timeout: Option<Duration>,
    label: Option<&process_tree::Label>,
    cancel: &CancellationToken,
) -> Result<Value, CommandFailure> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CommandFailure::Spawn("the command is empty".to_owned()));
    };
    let (mut child, mut tree) = process_tree::spawn_labelled(program, args, TIMING, label, |command| {
        for name in hidden {
            command.env_remove(name);
        }
        command.envs(env).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    })
    .await
    .map_err(|e| CommandFailure::Spawn(format!("cannot start `{program}` in {}: {e}", cwd.display())))?;
    let stdout = Captured::default();
    let stderr = Captured::default();
    let readers = [
        child.stdout.take().map(|s| tokio::spawn(read_capped(s, stdout.clone()))),
        child.stderr.take().map(|s| tokio::spawn(read_capped(s, stderr.clone()))),
    ];

    let deadline = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    enum End {
        Exited(std::io::Result<std::process::ExitStatus>),
        TimedOut,
        Cancelled,
    }
    let started = tokio::select! {
        started = tree.started() => Ok(started),
        _ = &mut deadline => Err(End::TimedOut),
        _ = cancel.cancelled() => Err(End::Cancelled),
    };
    let end = match started {
        Ok(Err(e)) => {
            return Err(CommandFailure::Spawn(format!("cannot start `{program}` in {}: {e}", cwd.display())));
        }
        Ok(Ok(())) => tokio::select! {
            status = child.wait() => End::Exited(status),
            _ = &mut deadline => End::TimedOut,
            _ = cancel.cancelled() => End::Cancelled,
        },
        Err(end) => end,
    };
    let ended = match end {
        End::Exited(_) => tree.exited().await,
        End::TimedOut | End::Cancelled => {
            tree.terminate(&mut child).await;
            Ended::Normally
        }
    };
    // The pipes close when the tree has ended; something that escaped it may hold them open.
    let settle = tokio::time::sleep(tree.settle_time());
    tokio::pin!(settle);
    for reader in readers.into_iter().flatten() {
        let abort = reader.abort_handle();
        tokio::select! {
            _ = reader => {}
            _ = &mut settle => abort.abort(),
        }
    }
    let (out, out_dropped) = stdout.take();
    let (err, err_dropped) = stderr.take();
    let output = |code: Option<i32>| {
        let mut o = json!({ "stdout": out, "stderr": err, "exit_code": code });
        if out_dropped > 0 || err_dropped > 0 {
            o["truncated_bytes"] = json!(out_dropped + err_dropped);
        }
        o
    };
    match end {
        End::Exited(Ok(status)) if ended == Ended::SupervisorKilled => {
            use std::os::unix::process::ExitStatusExt;
            let by = status.signal().map(|s| format!(" by signal {s}")).unwrap_or_default();
            let message = format!(
                "the supervisor of `{program}` was killed{by} before `{program}` ended (the command or something it started may have killed it): ACAS then killed the command's process group and every process marked as part of the step, so how `{program}` itself ended is unknown; do not kill the step's parent process{}",
                stderr_tail(&err)
            );
            Err(CommandFailure::Exit { output: output(None), message })
        }
        End::Exited(Ok(status)) if status.success() => Ok(output(Some(0))),
        End::Exited(Ok(status)) => {
            let message = match status.code() {
                Some(code) => format!("`{program}` exited with code {code}{}", stderr_tail(&err)),
                None => format!("`{program}` was killed by a signal{}", stderr_tail(&err)),
            };
            Err(CommandFailure::Exit { output: output(status.code()), message })
        }
        End::Exited(Err(e)) => Err(CommandFailure::Spawn(format!("waiting for `{program}` failed: {e}"))),
        End::TimedOut => {
            Err(CommandFailure::TimedOut { output: output(None), after: timeout.unwrap_or_default() })
        }
        End::Cancelled => Err(CommandFailure::Cancelled),
    }
}

/// `: last line of stderr`, when there is one, for the failure message.
fn stderr_tail(stderr: &str) -> String {
    match stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => {
            let line: String = line.chars().take(300).collect();
            format!(": {line}")
        }
        None => String::new(),
    }
}

/// What a reader kept of a stream: the first [`OUTPUT_LIMIT`] bytes, and how many more came.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<(Vec<u8>, usize)>>);

impl Captured {
    /// The kept bytes as text (lossy UTF-8) and the count of dropped ones.
    fn take(&self) -> (String, usize) {
        let mut captured = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (kept, dropped) = std::mem::take(&mut *captured);
        (String::from_utf8_lossy(&kept).into_owned(), dropped)
    }
}

/// Reads everything into `captured`, keeping the first [`OUTPUT_LIMIT`] bytes and counting the
/// rest.
async fn read_capped(mut reader: impl AsyncRead + Unpin, captured: Captured) {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut captured = captured.0.lock().unwrap_or_else(|e| e.into_inner());
                let (kept, dropped) = &mut *captured;
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                *dropped += n.saturating_sub(room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    async fn run_here(items: &[&str], timeout: Option<Duration>) -> Result<Value, CommandFailure> {
        let env = BTreeMap::from([("ACAS_TEST_VAR".to_owned(), "from env".to_owned())]);
        run(&argv(items), &env, Path::new("/"), timeout, None, &CancellationToken::new()).await
    }

    #[tokio::test]
    async fn output_exit_codes_and_no_shell() {
        let out =
            run_here(&["sh", "-c", "printf '%s' \"$ACAS_TEST_VAR\"; echo oops >&2"], None).await.unwrap();
        assert_eq!(out, json!({"stdout": "from env", "stderr": "oops\n", "exit_code": 0}));
        // An argument full of shell syntax reaches the program as one literal argument.
        let out = run_here(&["printf", "%s", "a b;$(echo no)|`x`"], None).await.unwrap();
        assert_eq!(out["stdout"], "a b;$(echo no)|`x`");
        match run_here(&["sh", "-c", "echo why >&2; exit 3"], None).await {
            Err(CommandFailure::Exit { output, message }) => {
                assert_eq!(output["exit_code"], 3);
                assert_eq!(message, "`sh` exited with code 3: why");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(run_here(&["/no/such/program"], None).await, Err(CommandFailure::Spawn(_))));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child-pid");
        let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let result = run_here(&["sh", "-c", &script], Some(Duration::from_millis(300))).await;
        assert!(matches!(result, Err(CommandFailure::TimedOut { .. })), "{result:?}");
        let pid: i32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
        // The grandchild goes too (it may stay a zombie until init reaps it).
        let gone = || {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            state.is_empty() || state.contains(") Z ")
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !gone() && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert!(gone(), "sleep {pid} still runs after its group was killed");
    }

    #[tokio::test]
    async fn output_is_capped() {
        let out =
            run_here(&["sh", "-c", &format!("head -c {} /dev/zero", OUTPUT_LIMIT + 10)], None).await.unwrap();
        assert_eq!(out["stdout"].as_str().unwrap().len(), OUTPUT_LIMIT);
        assert_eq!(out["truncated_bytes"], 10);
    }
}
