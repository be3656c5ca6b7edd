//! The `acas` command line.
//!
//! Each subcommand is a thin front end over the same domain modules the server uses. Exit codes
//! are shared: 0 when all is well, 1 when the command found errors, 2 when the command itself
//! failed, 3 when `acas check --checkers` asked for a checker that gave no result (missing,
//! failed, timed out), 4 when `acas task` or `acas lock` was refused because another agent holds
//! the task or an overlapping path (or the agent's lease ended), 5 when `acas task claim` found
//! no task to give. `acas audit verify` exits 1 when it finds a broken record. `acas run` exits
//! with its command's code instead (128+N for signal N).

mod activity;
mod audit;
mod check;
mod check_state;
mod checkers;
mod cost;
mod explain;
mod mcp;
mod output;
mod plan;
mod policy;
mod run_command;
mod snippets;
mod stats;
mod status;
mod store;
mod task;
mod watch;
mod worker;
mod workflow;
mod workflow_run;
mod workflow_team;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FOUND: i32 = 1;
pub const EXIT_FAILED: i32 = 2;
pub const EXIT_CHECKER: i32 = 3;
pub const EXIT_REFUSED: i32 = 4;
pub const EXIT_EMPTY: i32 = 5;

#[derive(Parser)]
#[command(name = "acas", version, about = "Finds, classifies and explains errors in a workspace")]
struct Cli {
    /// Log level (error, warn, info, debug, trace); also ACAS_LOG, then RUST_LOG
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// `acas serve`: what goes to stderr besides the log file (default warn); also ACAS_LOG_STDERR
    #[arg(long, global = true)]
    log_stderr: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the language server over stdio
    Serve,
    /// Parse a directory or a file once and print classified diagnostics
    Check {
        /// A directory (its ignore files apply) or a single file
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also run the project's checkers: every enabled one that checks code, or only those
        /// named (comma-separated, as `acas checkers` lists them; tests run only when named)
        #[arg(
            long,
            value_name = "NAMES",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "",
            value_delimiter = ','
        )]
        checkers: Option<Vec<String>>,
    },
    /// List the project's checkers: what was detected and why, what runs on save and at start,
    /// what is off or missing
    Checkers {
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Trust a workspace to run its checkers (the commands its .acas/config.toml defines and
    /// the tools detected in it), or stop trusting it
    Trust {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Stop trusting it
        #[arg(long)]
        revoke: bool,
    },
    /// Run a command, pass its input, output and exit code through, and record the errors,
    /// tracebacks, panics and stack traces it printed
    Run {
        /// The workspace the problems are recorded in (default: the current directory)
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        /// The command and its arguments, after `--`
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// Watch a workspace headless and print each classified change
    Watch {
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Print the recorded activity of a workspace
    Activity {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Only activity newer than this (for example 30s, 10m, 2h, 7d)
        #[arg(long, value_parser = parse_duration)]
        since: Option<Duration>,
        /// At most this many rows, newest first
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Ask an AI provider to explain the error at FILE:LINE and propose a verified fix
    Explain {
        /// The error's file and line (from 1), as FILE:LINE
        target: String,
        /// Ask only this provider (by its name in [[providers]])
        #[arg(long)]
        provider: Option<String>,
        /// Print the exact request, its estimated tokens and cost, and send nothing
        #[arg(long)]
        dry_run: bool,
        /// Ask for this agent: its spend limit applies and the call counts as its spend (inside
        /// a workflow step, the run's agent, whatever this says)
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Show how AI fixes fared (offered, applied, resolved, reverted, dismissed)
    Stats {
        #[arg(default_value = ".")]
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Check, list and run the workflows in .acas/workflows
    Workflow {
        #[command(subcommand)]
        command: workflow::WorkflowCommand,
    },
    /// Ask an AI provider for a plan of tasks, show it, and run it as a workflow (or queue its tasks for agents) once approved
    Plan {
        /// What the plan should achieve
        prompt: String,
        /// Run the plan without asking
        #[arg(long)]
        yes: bool,
        /// Put the approved plan's tasks on the agents' task queue (with their dependencies) instead of running it
        #[arg(long, conflicts_with = "webhook")]
        tasks: bool,
        /// Print the plan and run nothing
        #[arg(long)]
        dry_run: bool,
        /// Ask only this provider (by its name in [[providers]])
        #[arg(long)]
        provider: Option<String>,
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// Send progress events (JSON, signed) to this URL
        #[arg(long, value_name = "URL", requires = "webhook_secret_env")]
        webhook: Option<String>,
        /// The environment variable holding the webhook signing secret
        #[arg(long, value_name = "VAR", requires = "webhook")]
        webhook_secret_env: Option<String>,
    },
    /// Read the whole state database (.acas/state.db) and say whether it is sound
    CheckState {
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Serve the workspace to AI agents over the Model Context Protocol (stdio by default)
    Mcp {
        /// The workspace
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Serve streamable HTTP on 127.0.0.1 (behind the bearer token) instead of stdio
        #[arg(long)]
        http: bool,
        /// The HTTP port (0: any free port, printed on stderr)
        #[arg(long, default_value_t = 8790, requires = "http")]
        port: u16,
        /// Print the bearer token HTTP clients must send (made on first use) and exit
        #[arg(long, conflicts_with = "http")]
        print_token: bool,
    },
    /// Run the team's workflow steps in this clone: claim `run:` steps from the shared store
    /// (those whose `runs_on` labels this worker has) until SIGINT or SIGTERM
    Worker {
        /// The workspace: a clone of the repository, with a remote
        #[arg(default_value = ".")]
        path: PathBuf,
        /// The labels this worker has, comma-separated (for example linux,gpu)
        #[arg(long, default_value = "")]
        labels: String,
        /// Steps run at once
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// How long a claimed step (and the worker's presence) holds without a heartbeat
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        lease: Duration,
        /// The worker's name among the team's (default: HOST:PID)
        #[arg(long)]
        name: Option<String>,
    },
    /// The agents' task queue: create, list, claim, heartbeat, finish and release tasks
    Task {
        #[command(subcommand)]
        command: task::TaskCommand,
    },
    /// The path locks agents' claims hold
    Lock {
        #[command(subcommand)]
        command: task::LockCommand,
    },
    /// What the workspace's policy says of an action, and whether its files are valid
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// List the approvals a policy waits for, or answer one
    Approve {
        /// The approval to answer; without it, the pending ones are listed
        id: Option<i64>,
        /// Deny instead of approving
        #[arg(long)]
        deny: bool,
        #[command(flatten)]
        common: policy::Common,
    },
    /// Print the tamper-evident audit log of every system event, verify or prune it
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        command: Option<audit::AuditCommand>,
        #[command(flatten)]
        args: audit::AuditArgs,
    },
    /// The team's shared store: copy a workspace's history into it
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
    /// Where the state lives; with a shared store, whether it can be reached, since when it
    /// cannot, and the changes waiting to be sent to it
    Status {
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Who is connected to the team's shared store, and the tasks held in this repository
    Team {
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Report what AI providers cost, by day, provider, model and category
    Cost {
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Only calls newer than this (for example 1d, 7d); default 30d
        #[arg(long, value_parser = parse_duration)]
        since: Option<Duration>,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

/// Kills the process trees of an ACAS that died with their supervisors, before starting
/// anything that runs commands.
pub(crate) fn end_orphans() {
    let killed = crate::process_tree::end_orphans();
    if killed > 0 {
        tracing::warn!(killed, "killed processes left running by an ACAS that was killed");
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_FAILED } else { EXIT_OK };
            let _ = error.print();
            return code;
        }
    };
    let default_level = match cli.command {
        Command::Serve | Command::Watch { .. } => "info",
        _ => "warn",
    };
    match cli.command {
        Command::Serve => crate::logging::init_serve(cli.log_level.as_deref(), cli.log_stderr.as_deref()),
        _ => crate::logging::init(cli.log_level.as_deref(), default_level),
    }
    if matches!(cli.command, Command::Serve | Command::Watch { .. }) {
        end_orphans();
    }
    match cli.command {
        Command::Serve => {
            let runtime = runtime();
            let code = runtime.block_on(crate::lsp::serve());
            // A read of stdin may still be pending on a blocking thread: do not wait for it.
            runtime.shutdown_background();
            code
        }
        Command::Check { path, format, checkers } => check::run(&path, format, checkers),
        Command::Checkers { path, format } => checkers::list(&path, format),
        Command::Trust { path, revoke } => checkers::trust(&path, revoke),
        Command::Run { workspace, command } => run_command::run(&workspace, command),
        Command::Watch { path, format } => watch::run(&path, format),
        Command::Activity { path, since, limit, format } => activity::run(&path, since, limit, format),
        Command::Explain { target, provider, dry_run, agent, format } => {
            explain::run(explain::Args { target, provider, dry_run, agent, format })
        }
        Command::Cost { path, since, format } => cost::run(&path, since, format),
        Command::Mcp { path, http, port, print_token } => {
            mcp::run(mcp::Args { path: &path, http, port, print_token })
        }
        Command::Stats { path, format } => stats::run(&path, format),
        Command::CheckState { path } => check_state::run(&path),
        Command::Task { command } => task::run(command),
        Command::Worker { path, labels, concurrency, lease, name } => {
            worker::run(worker::Args { path: &path, labels: &labels, concurrency, lease, name })
        }
        Command::Store { command } => store::run(command),
        Command::Team { workspace, format } => store::team(&workspace, format),
        Command::Status { workspace, format } => status::status(&workspace, format),
        Command::Lock { command } => task::run_lock(command),
        Command::Audit { command, args } => audit::run(command, &args),
        Command::Policy { command } => policy::run(command),
        Command::Approve { id, deny, common } => policy::approve(id, deny, &common),
        Command::Workflow { command } => workflow::run(command),
        Command::Plan {
            prompt,
            yes,
            tasks,
            dry_run,
            provider,
            workspace,
            format,
            webhook,
            webhook_secret_env,
        } => plan::run(plan::Args {
            prompt,
            yes,
            tasks,
            dry_run,
            provider,
            workspace,
            format,
            webhook,
            webhook_secret_env,
        }),
    }
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT), `kill` or `timeout` or a CI's
/// cancel (SIGTERM), or its terminal closing (SIGHUP). Commands that started work elsewhere (a
/// run's steps on workers, a provider's reservation) end it the same way whichever came. The
/// handlers are registered when this is called, not when the future is first polled; when no
/// signal can be heard the future never resolves. Must be called in the runtime.
pub(crate) fn stop_requested() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn heard(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let (int, term, hup) = (
        signal(SignalKind::interrupt()).ok(),
        signal(SignalKind::terminate()).ok(),
        signal(SignalKind::hangup()).ok(),
    );
    async move {
        tokio::select! {
            () = heard(int) => {}
            () = heard(term) => {}
            () = heard(hup) => {}
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("starting the async runtime")
}

/// glibc gives each thread that allocates its own arena, which holds on to freed memory; a
/// long-running server with a thread pool does better with a couple of shared ones.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning and is called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The workspace root for a path argument: the directory itself, or a file's directory.
/// Whether state was recorded in `root`; when the state cannot be used (`.acas` is a file,
/// `state.db` a directory...) says why and gives the exit code.
fn recorded(command: &str, root: &Path) -> Result<bool, i32> {
    crate::store::Store::recorded(root).map_err(|error| {
        output::note(&format!("acas {command}: {error}"));
        EXIT_FAILED
    })
}

/// What a command that only reads says when the state cannot be written; `None` when it can.
fn read_only_note(command: &str, root: &Path) -> Option<String> {
    crate::store::read_only(root).map(|why| {
        format!(
            "acas {command}: the state of {} is read-only ({why}); reading it without writing",
            root.display()
        )
    })
}

/// Refuses a command that must write the state when it cannot be written: says so, exit 2.
fn refuse_read_only(command: &str, root: &Path) -> Result<(), i32> {
    match crate::store::read_only(root) {
        None => Ok(()),
        Some(why) => {
            output::note(&format!(
                "acas {command}: the state of {} is read-only ({why}); this command must write it: run it in a copy of the workspace you can write, or fix the permissions",
                root.display()
            ));
            Err(EXIT_FAILED)
        }
    }
}

/// The answer of `store` (a read-write store) or, when the state is read-only, of `snapshot`
/// on a read-only snapshot, saying so on stderr.
fn read_state<T>(
    command: &str,
    root: &Path,
    snapshot: impl FnOnce(&crate::store::Snapshot) -> Result<T, crate::store::StoreError>,
    store: impl FnOnce(&crate::store::Store) -> Result<T, crate::store::StoreError>,
) -> Result<T, crate::store::StoreError> {
    match read_only_note(command, root) {
        Some(note) => {
            output::note(&note);
            let opened = crate::store::Snapshot::open(root)?;
            if let Some(note) = &opened.note {
                output::note(&format!("acas {command}: {note}"));
            }
            snapshot(&opened)
        }
        None => store(&crate::store::Store::open_workspace(root, crate::store::StoreOptions::default())?),
    }
}

fn resolve(path: &Path) -> Result<(PathBuf, bool), String> {
    let absolute = std::fs::canonicalize(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let is_dir = absolute.is_dir();
    Ok((absolute, is_dir))
}

/// Parses `30s`, `10m`, `2h`, `7d` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("2 parsecs").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999w").is_err());
    }
}
