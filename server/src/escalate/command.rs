//! A provider that runs a configured command, such as an AI coding CLI, and reads its reply.
//!
//! The command is an argv (no shell). The system prompt and the prompt, separated by a blank
//! line, go to its stdin; its stdout is the reply, streamed line by line. It runs as a guarded
//! tree ([`process_tree`](crate::process_tree)), so that a timeout or a cancellation ends it and
//! everything it started: SIGTERM, SIGKILL after the grace period, then the child is reaped.
//! What it leaves running when it exits gets the same grace period, then is killed. A non-zero
//! exit is an error quoting the last lines of stderr. Usage is estimated from the text (about
//! four characters per token) and marked as estimated.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::process_tree::{self, Timing};

use super::provider::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderErrorKind, StreamEvent, Usage,
    estimate_tokens, schema_instruction,
};

/// How a command provider runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSettings {
    /// The configured provider name.
    pub name: String,
    /// Program and arguments; the program is looked up in `PATH` when it has no slash.
    pub argv: Vec<String>,
    /// The command must finish within this.
    pub timeout: Duration,
    /// How long the process group has to exit after SIGTERM before it gets SIGKILL.
    pub grace: Duration,
}

/// How many lines of stderr an error quotes.
const STDERR_LINES: usize = 5;
/// How much of stderr is kept.
const STDERR_BYTES: usize = 16 * 1024;

/// Runs a command per request.
#[derive(Debug)]
pub struct CommandProvider {
    settings: CommandSettings,
    model: String,
}

impl CommandProvider {
    /// Fails when `argv` is empty.
    pub fn new(settings: CommandSettings) -> Result<Self, ProviderError> {
        let Some(program) = settings.argv.first() else {
            return Err(ProviderError::new(
                ProviderErrorKind::Spawn,
                format!("{}: the command is empty: give at least the program to run", settings.name),
            ));
        };
        let model = program.rsplit('/').next().unwrap_or(program).to_owned();
        Ok(Self { settings, model })
    }

    async fn run(
        &self,
        request: &CompletionRequest,
        events: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
    ) -> Result<Completion, ProviderError> {
        let CommandSettings { name, argv, timeout, grace } = &self.settings;
        if cancel.is_cancelled() {
            return Err(ProviderError::cancelled(name));
        }
        let mut input = request.system.clone();
        if let Some(schema) = &request.json_schema {
            input.push_str(&schema_instruction(schema));
        }
        input.push_str("\n\n");
        input.push_str(&request.prompt);

        let timing = Timing { linger: *grace, grace: *grace };
        let (mut child, mut tree) = process_tree::spawn(&argv[0], &argv[1..], timing, |command| {
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        })
        .await
        .map_err(|error| {
            ProviderError::new(
                ProviderErrorKind::Spawn,
                format!("{name}: could not start `{}`: {error}", argv[0]),
            )
        })?;
        let deadline = Instant::now() + *timeout;
        let started = tokio::select! {
            started = tree.started() => Some(started),
            () = tokio::time::sleep_until(deadline) => None,
            () = cancel.cancelled() => None,
        };
        match started {
            Some(Ok(())) => {}
            Some(Err(error)) => {
                return Err(ProviderError::new(
                    ProviderErrorKind::Spawn,
                    format!("{name}: could not start `{}`: {error}", argv[0]),
                ));
            }
            None => {
                // `read` below gives the cancel or the timeout its error, at once.
            }
        }
        events(StreamEvent::Started);

        if let Some(mut stdin) = child.stdin.take() {
            let input = input.clone();
            // A command that does not read its stdin must not block us: write on the side and
            // ignore a broken pipe.
            tokio::spawn(async move {
                let _ = stdin.write_all(input.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_task = child.stderr.take().map(|mut pipe| {
            let stderr = Arc::clone(&stderr);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buffer).await {
                    let mut kept = stderr.lock().unwrap_or_else(|e| e.into_inner());
                    kept.extend_from_slice(&buffer[..n]);
                    if kept.len() > STDERR_BYTES {
                        let excess = kept.len() - STDERR_BYTES;
                        kept.drain(..excess);
                    }
                }
            })
        });

        let mut text = String::new();
        let status = match self.read(&mut child, &mut text, events, cancel, deadline).await {
            Ok(status) => status,
            Err(error) => {
                tree.terminate(&mut child).await;
                return Err(error);
            }
        };
        let ended = tree.exited().await;
        if let Some(task) = stderr_task {
            // The pipe closes once the tree has ended, unless something escaped it.
            let abort = task.abort_handle();
            if tokio::time::timeout(tree.settle_time(), task).await.is_err() {
                abort.abort();
            }
        }

        if ended == process_tree::Ended::SupervisorKilled {
            return Err(ProviderError::new(
                ProviderErrorKind::Spawn,
                format!(
                    "{name}: the supervisor of `{}` was killed ({status}) before the command ended (the command or something it started may have killed it): ACAS killed the command's process group and every process marked as its own; the answer is lost",
                    argv.join(" ")
                ),
            ));
        }
        if !status.success() {
            let stderr = stderr.lock().unwrap_or_else(|e| e.into_inner());
            let stderr = String::from_utf8_lossy(&stderr);
            let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
            let tail = if tail.is_empty() { "no output on stderr".to_owned() } else { tail };
            return Err(ProviderError::new(
                ProviderErrorKind::Spawn,
                format!("{name}: `{}` failed ({status}): {tail}", argv.join(" ")),
            ));
        }
        let usage = Usage {
            input_tokens: estimate_tokens(&input),
            output_tokens: estimate_tokens(&text),
            cached_input_tokens: 0,
            estimated: true,
        };
        events(StreamEvent::Usage(usage));
        Ok(Completion {
            text,
            usage,
            model: self.model.clone(),
            provider: name.clone(),
            finish_reason: Some("exit".to_owned()),
        })
    }

    /// Streams stdout until it closes, then waits for the exit status.
    async fn read(
        &self,
        child: &mut Child,
        text: &mut String,
        events: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<ExitStatus, ProviderError> {
        let name = &self.settings.name;
        let timed_out = || {
            ProviderError::new(
                ProviderErrorKind::Timeout,
                format!("{name}: `{}` did not finish within {:?}", self.model, self.settings.timeout),
            )
        };
        if let Some(stdout) = child.stdout.take() {
            let mut stdout = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                let read = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(ProviderError::cancelled(name)),
                    () = tokio::time::sleep_until(deadline) => return Err(timed_out()),
                    read = stdout.read_until(b'\n', &mut line) => read,
                };
                match read {
                    Ok(0) => break,
                    Ok(_) => {
                        let piece = String::from_utf8_lossy(&line).into_owned();
                        text.push_str(&piece);
                        events(StreamEvent::Text(piece));
                    }
                    Err(error) => {
                        return Err(ProviderError::new(
                            ProviderErrorKind::StreamCut,
                            format!("{name}: could not read the command's output: {error}"),
                        ));
                    }
                }
            }
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ProviderError::cancelled(name)),
            () = tokio::time::sleep_until(deadline) => Err(timed_out()),
            status = child.wait() => status.map_err(|error| {
                ProviderError::new(ProviderErrorKind::Spawn, format!("{name}: could not wait for the command: {error}"))
            }),
        }
    }
}

impl Provider for CommandProvider {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
        events: &'a mut (dyn FnMut(StreamEvent) + Send),
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(self.run(request, events, cancel))
    }
}
