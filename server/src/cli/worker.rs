//! `acas worker`: runs the team's workflow steps in this clone of the repository.
//!
//! A thin front end over [`crate::workflow::workers::serve`]: it resolves the shared store and
//! the repository's identity (refusing a workspace whose repository has no remote, which no
//! other clone could name), prints one line per step taken and ended, and stops cleanly on
//! SIGINT or SIGTERM (what runs is killed and returned to the queue). Exit codes: 0 after a
//! clean stop, 2 when it cannot start or the store fails.

use std::path::Path;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{EXIT_FAILED, EXIT_OK, output};
use crate::workflow::workers::{WorkerEvent, WorkerOptions, parse_labels, serve};

/// The most steps one worker runs at once: its heartbeat renews each lease, and a machine runs
/// only so many commands well.
const MAX_CONCURRENCY: usize = 256;

pub(super) struct Args<'a> {
    pub path: &'a Path,
    pub labels: &'a str,
    pub concurrency: usize,
    pub lease: Duration,
    pub name: Option<String>,
}

pub(super) fn run(args: Args<'_>) -> i32 {
    let fail = |message: String| {
        output::note(&format!("acas worker: {message}"));
        EXIT_FAILED
    };
    let root = match super::resolve(args.path) {
        Ok((root, true)) => root,
        Ok((root, false)) => return fail(format!("{} is not a directory", root.display())),
        Err(e) => return fail(e),
    };
    let labels = match parse_labels(args.labels) {
        Ok(labels) => labels,
        Err(e) => return fail(e),
    };
    if !(1..=MAX_CONCURRENCY).contains(&args.concurrency) {
        return fail(format!(
            "`--concurrency` must be between 1 and {MAX_CONCURRENCY}; run more workers for more steps at once"
        ));
    }
    if args.lease < Duration::from_secs(1) {
        return fail("`--lease` must be at least 1s".to_owned());
    }
    let (config, error) = crate::config::load(&root);
    if let Some(error) = error {
        return fail(output::shown_lines(&error.to_string()));
    }
    let Some(shared) = config.shared_store else {
        return fail(
            "workers take steps from the team's shared store, and none is configured: set `[store] url` in \
             .acas/config.toml or ACAS_DATABASE_URL"
                .to_owned(),
        );
    };
    if shared.identity.repository.starts_with("local:") {
        return fail(format!(
            "the repository at {} has no remote, so no other clone can send it steps: add one \
             (`git remote add origin URL`) with the URL the team's clones use",
            root.display()
        ));
    }
    super::end_orphans();
    let host = crate::store::host_name();
    let options = WorkerOptions {
        name: args.name.unwrap_or_else(|| format!("{host}:{}", std::process::id())),
        labels,
        concurrency: args.concurrency,
        lease: args.lease,
        poll: Duration::from_millis(50),
        workspace: root,
        host,
    };
    let runtime = super::runtime();
    runtime.block_on(async move {
        let store = {
            let shared = shared.clone();
            match tokio::task::spawn_blocking(move || shared.connect()).await {
                Ok(Ok(store)) => store,
                Ok(Err(e)) => return fail(e.to_string()),
                Err(e) => return fail(e.to_string()),
            }
        };
        let stop = CancellationToken::new();
        let (mut interrupt, mut terminate) =
            match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
                (Ok(i), Ok(t)) => (i, t),
                _ => return fail("could not listen for SIGINT and SIGTERM".to_owned()),
            };
        let labels = if options.labels.is_empty() { "none".to_owned() } else { options.labels.join(", ") };
        output::line(&format!(
            "worker {} for {} (labels: {labels}; {} at once)",
            options.name,
            store.identity().repository,
            options.concurrency
        ));
        let (tx, mut events) = mpsc::unbounded_channel();
        let worker = tokio::spawn(serve(store, options, stop.clone(), tx));
        tokio::pin!(worker);
        let result = loop {
            tokio::select! {
                Some(event) = events.recv() => print(&event),
                _ = interrupt.recv() => stop.cancel(),
                _ = terminate.recv() => stop.cancel(),
                ended = &mut worker => break ended,
            }
        };
        while let Ok(event) = events.try_recv() {
            print(&event);
        }
        match result {
            Ok(Ok(())) => {
                output::line("worker stopped");
                EXIT_OK
            }
            Ok(Err(e)) => fail(e.to_string()),
            Err(e) => fail(format!("the worker stopped unexpectedly: {e}")),
        }
    })
}

fn print(event: &WorkerEvent) {
    match event {
        WorkerEvent::Started { step, attempt, claims, run_key } => {
            let again = if *claims > 1 { format!(", claim {claims}") } else { String::new() };
            output::line(&format!("  started    {step} (attempt {attempt}{again}) of {run_key}"));
        }
        WorkerEvent::Finished { step, attempt, succeeded: true, .. } => {
            output::line(&format!("  succeeded  {step} (attempt {attempt})"));
        }
        WorkerEvent::Finished { step, attempt, error, .. } => {
            output::line(&format!(
                "  failed     {step} (attempt {attempt}): {}",
                error.as_deref().unwrap_or("failed")
            ));
        }
        WorkerEvent::Released { step, attempt } => {
            output::line(&format!("  released   {step} (attempt {attempt}): back on the queue"));
        }
    }
}
