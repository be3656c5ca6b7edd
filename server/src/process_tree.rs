//! Running a command so that its whole process tree ends with it: workflow commands and
//! command providers.
//!
//! On Linux, once the `acas` binary has turned it on ([`use_supervisor`]), a command does not
//! start directly. ACAS starts a copy of itself as the command's supervisor ([`supervise`]),
//! which starts the command and stays its parent. The supervisor is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`): whatever the command starts, even in a new session (`setsid`) or
//! through a double fork, stays below it, is re-parented to it when its own parent exits, and is
//! found by walking `/proc`. The supervisor ends the tree:
//! - when the command exits: what it left running gets the linger time to finish (and to close
//!   the output pipes), then is killed;
//! - when ACAS asks (SIGTERM to the supervisor, on a timeout or a cancel): SIGTERM to every
//!   descendant, the grace time, then SIGKILL until none is left;
//! - when ACAS dies, even by SIGKILL: the kernel sends the supervisor SIGTERM
//!   (`PR_SET_PDEATHSIG`) and it ends the tree the same way.
//!
//! It then exits with the command's status (or dies by the same signal).
//!
//! When the command exits, or the supervisor dies, ACAS also kills the command's process group
//! itself: a process that killed its supervisor without leaving the group is reached that way.
//! The supervisor reports the command's end on a pipe just before it exits, so ACAS can tell a
//! supervisor that was killed ([`Ended::SupervisorKilled`]) from a command that was.
//!
//! Elsewhere, and in library tests (which have no `acas` binary to start), the command starts
//! directly in a process group of its own; the group is killed on a timeout, a cancel, and once
//! the command has exited. A descendant that leaves the group is not reached, and when ACAS dies
//! only the direct child dies with it (Linux).
//!
//! Every process of a tree also carries [`TREE_VAR`] in its environment, a mark unique to the
//! tree that names its owner (ACAS's pid and start time). Once the tree should have ended, ACAS
//! kills whatever still carries the mark (Linux, through `/proc`, the threads' environments too
//! when a main thread has exited): this catches a process that escaped by killing its
//! supervisor, or that left the process group where there is no supervisor. When ACAS and a
//! supervisor are killed together, nothing ends the tree then; the next `acas serve`, `acas
//! watch` or `acas workflow run|resume` kills every process whose mark names an owner that no
//! longer runs ([`end_orphans`]).
//!
//! Where the system lets ACAS make control groups (cgroup v2: as root, or in a user session
//! whose group systemd delegated), each tree also runs in a group of its own ([`cgroup`]),
//! which no process of the tree can leave: ending the tree kills the group, and the next start
//! finds a group left by a killed ACAS by its name, however its processes hid.
//!
//! A supervisor also carries what its command runs for (a workflow run's number, its workspace,
//! the agent it acts for and that agent's session: a [`Label`]) in its own arguments, where
//! nothing the command starts can change them. [`enclosing`] walks a process's parent chain in
//! `/proc` to the first supervisor above it: an `acas` started by a step finds the run it is
//! part of there, even after a double fork (the supervisor is the subreaper its orphans go to).
//!
//! What this does not do: limit resources (no controller is enabled); without a control group,
//! stop a process that leaves the process group, kills or stops its supervisor and removes the
//! mark from its environment; reap anything but the direct child in ACAS itself.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

#[cfg(target_os = "linux")]
mod cgroup;
pub mod namespaces;

/// The first argument that makes `acas` a supervisor (see [`supervise`]). Not a command of the
/// command line: nothing but ACAS itself starts it.
pub const SUPERVISE_ARG: &str = "__acas-supervise";

static SUPERVISOR: OnceLock<PathBuf> = OnceLock::new();

/// The environment variable that marks every process of a tree, `ACAS_TREE=PID.START.N`: the
/// owner (ACAS's pid and its start time, in clock ticks after boot, from `/proc/PID/stat`, so a
/// reused pid is not taken for the owner) and a count of its trees.
pub const TREE_VAR: &str = "ACAS_TREE";

static NEXT_TREE: AtomicU64 = AtomicU64::new(1);

/// How much lower than ACAS's own the CPU priority of every command is (`nice`): the server
/// that answers the editor gets the processor first when steps keep every core busy.
pub const STEP_NICENESS: libc::c_int = 10;

/// Makes every later command start under `program` (the `acas` binary) as its supervisor.
/// Has an effect on Linux only, and only the first time.
pub fn use_supervisor(program: PathBuf) {
    if cfg!(target_os = "linux") {
        let _ = SUPERVISOR.set(program);
    }
}

fn supervisor() -> Option<&'static PathBuf> {
    SUPERVISOR.get()
}

/// The `acas` binary that [`use_supervisor`] was given (Linux only): the program ACAS starts
/// again, with a hidden first argument, for work that runs in a process of its own.
pub fn acas_program() -> Option<&'static PathBuf> {
    SUPERVISOR.get()
}

/// How a tree is ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long what a command leaves running may go on after it exited.
    pub linger: Duration,
    /// How long the tree has between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// What a guarded command runs for: the workflow run it is a step of and the agent that run
/// acts for. Carried in the supervisor's arguments as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Label {
    pub run: i64,
    pub workspace: PathBuf,
    /// The agent as policies name it (`claude-code`, `cli`, `workflow`...).
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The policy files the run was judged by when the command started, each with the hash of
    /// its content then: an `acas` the command starts judges by these too, whatever its
    /// environment or `--workspace` say (see `policy::guard`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<PinnedFile>,
}

/// A file as it was when a command started: its path, the workspace root its patterns are
/// written from, and the SHA-256 of its content (hex; `None` when there was no such file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PinnedFile {
    pub path: PathBuf,
    pub root: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// The guarded tree a process runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enclosing {
    /// The supervisor's pid; `None` when only the tree's mark in the environment says so.
    pub supervisor: Option<u32>,
    /// What the tree runs for; `None` for commands that are not workflow steps (checkers, AI
    /// command providers) and when only the mark says so.
    pub label: Option<Label>,
}

impl Enclosing {
    /// The tree in a few words: `workflow run 7 (acting for claude-code/1a2b3c4d)`.
    pub fn describe(&self) -> String {
        match &self.label {
            Some(label) => {
                let agent = match &label.session {
                    Some(session) => format!("{}/{session}", label.agent),
                    None => label.agent.clone(),
                };
                format!("workflow run {} (acting for {agent})", label.run)
            }
            None => "a command ACAS runs (a workflow step, a checker or an AI command)".to_owned(),
        }
    }
}

/// Who a process acts for: an agent as policies name it, and its session when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    pub agent: String,
    pub session: Option<String>,
}

/// Who this process acts for when a command ACAS runs started it: the enclosing run's agent
/// and session, or `unknown agent` under a command that is not a step (a checker, an AI command);
/// `None` outside every guarded tree. What a step starts (`acas workflow run`, `acas mcp`, `acas
/// serve`) acts for that agent, never as whoever it says it is.
pub fn acting_for() -> Option<Acting> {
    enclosing().map(|enclosing| match enclosing.label {
        Some(label) => Acting { agent: label.agent, session: label.session },
        None => Acting { agent: "unknown agent".to_owned(), session: None },
    })
}

/// The supervisor's argument that stands for "no label".
const NO_LABEL: &str = "-";

/// The guarded tree this process is part of, if any: the first supervisor on its parent chain
/// (Linux, through `/proc`), else the tree's mark in its environment ([`TREE_VAR`]).
pub fn enclosing() -> Option<Enclosing> {
    static ENCLOSING: OnceLock<Option<Enclosing>> = OnceLock::new();
    ENCLOSING.get_or_init(find_enclosing).clone()
}

/// [`enclosing`], read from `/proc` once per process: the first answer holds, so a step that
/// later kills the supervisor does not change who this process acts for.
fn find_enclosing() -> Option<Enclosing> {
    #[cfg(target_os = "linux")]
    {
        let mut pid = std::os::unix::process::parent_id();
        // A chain is short; the bound only guards against a cycle read while processes exit.
        for _ in 0..4096 {
            if pid <= 1 {
                break;
            }
            if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                if argv.get(1).is_some_and(|a| *a == SUPERVISE_ARG.as_bytes()) {
                    let label = argv
                        .get(6)
                        .filter(|a| **a != NO_LABEL.as_bytes())
                        .and_then(|a| serde_json::from_slice::<Label>(a).ok());
                    return Some(Enclosing { supervisor: Some(pid), label });
                }
            }
            let Some(parent) = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| {
                stat.rfind(')').and_then(|at| stat[at + 1..].split_whitespace().nth(1)?.parse().ok())
            }) else {
                break;
            };
            pid = parent;
        }
    }
    std::env::var_os(TREE_VAR).filter(|v| !v.is_empty()).map(|_| Enclosing { supervisor: None, label: None })
}

/// Starts `program` with `args` as a guarded tree, in a process group of its own, after
/// `configure` has set its stdio, environment and directory. Under a supervisor, whether the
/// program itself could start (found, executable) is known from [`Tree::started`], which the
/// caller awaits under its timeout and cancellation; without one, this fails as starting the
/// program fails.
pub async fn spawn(
    program: &str,
    args: &[String],
    timing: Timing,
    configure: impl FnOnce(&mut Command),
) -> std::io::Result<(Child, Tree)> {
    spawn_labelled(program, args, timing, None, configure).await
}

/// [`spawn`] for a command that runs for `label`, which its supervisor carries (see
/// [`enclosing`]).
pub async fn spawn_labelled(
    program: &str,
    args: &[String],
    timing: Timing,
    label: Option<&Label>,
    configure: impl FnOnce(&mut Command),
) -> std::io::Result<(Child, Tree)> {
    let supervisor = supervisor();
    // The supervisor reports a failure to start the command on this pipe (an errno), and closes
    // it once the command runs.
    let report = match supervisor {
        Some(_) => Some(report_pipe()?),
        None => None,
    };
    let mut command = match (supervisor, &report) {
        (Some(supervisor), Some((_, write))) => {
            let mut command = Command::new(supervisor);
            command
                .arg(SUPERVISE_ARG)
                .arg(std::process::id().to_string())
                .arg(timing.linger.as_millis().to_string())
                .arg(timing.grace.as_millis().to_string())
                .arg(write.as_raw_fd().to_string())
                .arg(label.and_then(|l| serde_json::to_string(l).ok()).unwrap_or_else(|| NO_LABEL.to_owned()))
                .arg("--")
                .arg(program)
                .args(args);
            command
        }
        _ => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    };
    configure(&mut command);
    let own = std::process::id();
    let start = start_time(own).unwrap_or(0);
    let mark = format!("{own}.{start}.{}", NEXT_TREE.fetch_add(1, Ordering::Relaxed));
    command.env(TREE_VAR, &mark).process_group(0).kill_on_drop(false);
    #[cfg(target_os = "linux")]
    let group = cgroup::Group::create(&mark);
    #[cfg(target_os = "linux")]
    let group_fd = group.as_ref().and_then(cgroup::Group::procs_fd);
    let death_signal = if supervisor.is_some() { libc::SIGTERM } else { libc::SIGKILL };
    let report_fd = report.as_ref().map(|(_, write)| write.as_raw_fd());
    // SAFETY: prctl and fcntl are async-signal-safe; they change this child's own death signal
    // and let it keep the report pipe (which is close-on-exec in ACAS).
    unsafe {
        command.pre_exec(move || {
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong);
            // Below the server that answers the editor: a busy step cannot starve its answers.
            libc::nice(STEP_NICENESS);
            #[cfg(target_os = "linux")]
            if let Some(fd) = group_fd {
                cgroup::join(fd);
            }
            #[cfg(not(target_os = "linux"))]
            let _ = death_signal;
            if let Some(fd) = report_fd
                && libc::fcntl(fd, libc::F_SETFD, 0) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            #[cfg(target_os = "linux")]
            if let Some(group) = group {
                group.end();
            }
            return Err(e);
        }
    };
    let mut tree = Tree::new(&child, timing, mark);
    #[cfg(target_os = "linux")]
    {
        tree.group = group.map(|mut group| {
            group.started();
            group
        });
    }
    if let Some((read, write)) = report {
        drop(write);
        tree.starting = Some(read);
    }
    Ok((child, tree))
}

/// A close-on-exec pipe: (read end, write end).
fn report_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, which are then owned here.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// A spawned tree. Dropping it before [`Tree::exited`] or [`Tree::terminate`] ends the tree.
/// Do not set `kill_on_drop` on its child: that would kill a supervisor before it ends its tree.
#[derive(Debug)]
pub struct Tree {
    /// The direct child's pid while it is not reaped; it leads the tree's process group.
    pid: Option<libc::pid_t>,
    supervised: bool,
    timing: Timing,
    /// The value of [`TREE_VAR`] in the tree's processes.
    mark: String,
    /// Where the supervisor says whether the command started, until [`Tree::started`] has read it.
    starting: Option<OwnedFd>,
    /// Where the supervisor reports the command's end just before it exits itself.
    report: Option<tokio::net::unix::pipe::Receiver>,
    /// The tree's control group, where the system lets ACAS make one.
    #[cfg(target_os = "linux")]
    group: Option<cgroup::Group>,
}

/// How a tree ended, as [`Tree::exited`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The command ended (its status is the child's).
    Normally,
    /// The supervisor died before the command's end was known: something killed it, the
    /// command itself possibly. ACAS killed the tree's process group and everything marked.
    SupervisorKilled,
}

impl Tree {
    fn new(child: &Child, timing: Timing, mark: String) -> Self {
        Self {
            pid: child.id().and_then(|id| libc::pid_t::try_from(id).ok()),
            supervised: supervisor().is_some(),
            timing,
            mark,
            starting: None,
            report: None,
            #[cfg(target_os = "linux")]
            group: None,
        }
    }

    /// Waits for the supervisor to say that the command started, and fails as starting the
    /// program fails (not found, not executable). Without a supervisor the command has started
    /// already. Await it under the caller's timeout and cancellation, and end the tree with
    /// [`Tree::terminate`] when they come first: the command may stop its supervisor
    /// (`kill -STOP $PPID`) before it could say.
    pub async fn started(&mut self) -> std::io::Result<()> {
        use tokio::io::AsyncReadExt;
        let Some(read) = self.starting.take() else { return Ok(()) };
        // Read on the runtime, not on a blocking thread: a step of hundreds of commands must not
        // fill the blocking pool that SQLite work and renders share.
        let mut read = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
        let mut bytes = [0u8; 4];
        match read.read_exact(&mut bytes).await.ok().map(|_| i32::from_ne_bytes(bytes)) {
            Some(0) => {
                self.report = Some(read);
                Ok(())
            }
            // Dropping the tree and the child ends and reaps the supervisor.
            Some(errno) => Err(std::io::Error::from_raw_os_error(errno)),
            // The supervisor died before it could say: `exited` tells.
            None => Ok(()),
        }
    }

    /// Kills whatever is still in the tree's control group or carries its mark, off the async
    /// threads.
    async fn sweep(&mut self) {
        let mark = self.mark.clone();
        #[cfg(target_os = "linux")]
        let group = self.group.take();
        let _ = tokio::task::spawn_blocking(move || {
            #[cfg(target_os = "linux")]
            if let Some(group) = group {
                group.end();
            }
            kill_marked(&mark);
        })
        .await;
    }

    /// The time after the command's exit within which its tree is ended and its pipes close:
    /// wait this long for output before giving up on it.
    pub fn settle_time(&self) -> Duration {
        self.timing.linger + self.timing.grace + Duration::from_secs(1)
    }

    fn signal_child(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) has no memory effects; the pid is our unreaped child, so it cannot
            // have been reused.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    fn signal_group(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid {
            // SAFETY: as above; the child leads its own group (process_group(0)), so the group
            // cannot contain ACAS itself.
            unsafe {
                libc::killpg(pid, signal);
            }
        }
    }

    /// Ends the tree and reaps the child: SIGTERM to the supervisor, which ends its tree within
    /// the grace time; SIGKILL to the group when it has not exited a second later. Without a
    /// supervisor: SIGTERM to the group, the grace time, SIGKILL.
    pub async fn terminate(&mut self, child: &mut Child) {
        let wait = if self.supervised {
            self.signal_child(libc::SIGTERM);
            // A supervisor the command stopped takes SIGTERM once it runs again.
            self.signal_child(libc::SIGCONT);
            self.timing.grace + Duration::from_secs(1)
        } else {
            self.signal_group(libc::SIGTERM);
            self.timing.grace
        };
        let exited = tokio::time::timeout(wait, child.wait()).await.is_ok();
        // The group outlives its leader while a member lives: this reaches what ignored SIGTERM.
        self.signal_group(libc::SIGKILL);
        if !exited {
            let _ = child.wait().await;
        }
        self.pid = None;
        self.sweep().await;
    }

    /// The child exited by itself (and was reaped). A supervisor has normally ended the tree
    /// already; what is left of the process group is killed anyway (a process that killed its
    /// supervisor stays in the group). Then whatever carries the mark is killed.
    pub async fn exited(&mut self) -> Ended {
        // The group id cannot be taken by a new process while a member of the group lives.
        self.signal_group(libc::SIGKILL);
        self.pid = None;
        self.sweep().await;
        if !self.supervised {
            return Ended::Normally;
        }
        // The supervisor has exited, so its end of the pipe is closed: this does not wait.
        let reported = match self.report.take() {
            Some(mut report) => {
                use tokio::io::AsyncReadExt;
                let mut bytes = [0u8; 4];
                report.read_exact(&mut bytes).await.is_ok()
            }
            None => false,
        };
        if reported { Ended::Normally } else { Ended::SupervisorKilled }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.supervised {
            // The supervisor ends its tree and exits; tokio reaps it in the background.
            self.signal_child(libc::SIGTERM);
        } else {
            self.signal_group(libc::SIGKILL);
        }
        // What the supervisor has not ended within its grace time goes with the control group.
        #[cfg(target_os = "linux")]
        if let Some(group) = self.group.take() {
            let wait =
                if self.supervised { self.timing.grace + Duration::from_secs(1) } else { Duration::ZERO };
            let _ = std::thread::Builder::new().name("acas-end-tree".into()).spawn(move || {
                std::thread::sleep(wait);
                group.end();
            });
        }
    }
}

/// SIGKILL to every process whose environment holds `TREE_VAR=mark`, until none is found (at
/// most a few passes, for processes that fork meanwhile). Linux only.
fn kill_marked(mark: &str) {
    #[cfg(target_os = "linux")]
    {
        let entry = format!("{TREE_VAR}={mark}");
        let own = std::process::id();
        for _ in 0..10 {
            let Ok(processes) = std::fs::read_dir("/proc") else { return };
            let mut found = false;
            for process in processes.flatten() {
                let Some(pid) = process.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if pid == own {
                    continue;
                }
                if marks(pid).iter().any(|var| var == entry.as_bytes())
                    && let Ok(pid) = libc::pid_t::try_from(pid)
                {
                    found = true;
                    // SAFETY: kill(2) has no memory effects; the process carries this tree's mark.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            if !found {
                return;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = mark;
}

/// The `ACAS_TREE=...` entries of `pid`'s environment. When the main thread has exited while
/// other threads run, `/proc/PID/environ` is empty or unreadable: the threads' are read instead.
#[cfg(target_os = "linux")]
fn marks(pid: u32) -> Vec<Vec<u8>> {
    let prefix = format!("{TREE_VAR}=");
    let pick = |environ: Vec<u8>| -> Vec<Vec<u8>> {
        environ
            .split(|b| *b == 0)
            .filter(|var| var.starts_with(prefix.as_bytes()))
            .map(<[u8]>::to_vec)
            .collect()
    };
    // Unreadable for processes of other users, empty for zombies.
    let main = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    if !main.is_empty() {
        return pick(main);
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    for task in tasks.flatten() {
        let environ = std::fs::read(task.path().join("environ")).unwrap_or_default();
        if !environ.is_empty() {
            return pick(environ);
        }
    }
    Vec::new()
}

/// `pid`'s start time in clock ticks after boot (`/proc/PID/stat`, field 22).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from the state (3rd) on: the start time is the 22nd field.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Kills the trees left by an ACAS that died with its supervisors (both killed with SIGKILL at
/// once, so that neither could end the tree): every process whose mark names an owner that no
/// longer runs (its pid is gone, or is now another process started at another time). Run when
/// `acas serve`, `acas watch` and `acas workflow run|resume` start. Returns how many processes
/// were killed. Linux only.
pub fn end_orphans() -> usize {
    #[cfg(target_os = "linux")]
    {
        let own = std::process::id();
        let mut killed = 0;
        for (group, _) in cgroup::orphaned_groups(|mark| orphaned(mark.as_bytes(), own)) {
            if !cgroup::has_supervisor(&group, SUPERVISE_ARG) {
                killed += cgroup::end_group(&group);
            }
        }
        for _ in 0..10 {
            let Ok(processes) = std::fs::read_dir("/proc") else { return killed };
            // Marks of orphaned trees, the processes carrying them, and the marks whose
            // supervisor still runs: that supervisor ends its tree itself, with the grace time.
            let mut orphans: Vec<(libc::pid_t, Vec<u8>)> = Vec::new();
            let mut supervised = std::collections::HashSet::new();
            for process in processes.flatten() {
                let Some(pid) = process.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if pid == own {
                    continue;
                }
                for var in marks(pid) {
                    if !orphaned(&var[TREE_VAR.len() + 1..], own) {
                        continue;
                    }
                    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    if cmdline.split(|b| *b == 0).nth(1) == Some(SUPERVISE_ARG.as_bytes()) {
                        supervised.insert(var.clone());
                    }
                    if let Ok(pid) = libc::pid_t::try_from(pid) {
                        orphans.push((pid, var));
                    }
                }
            }
            let mut found = false;
            for (pid, var) in orphans {
                if supervised.contains(&var) {
                    continue;
                }
                found = true;
                killed += 1;
                // SAFETY: kill(2) has no memory effects; the process carries the mark of a tree
                // whose owner is gone.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            if !found {
                break;
            }
        }
        killed
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Whether a mark `PID.START.N` names an owner that no longer runs. Marks of another form are
/// never taken for orphans.
#[cfg(target_os = "linux")]
fn orphaned(mark: &[u8], own: u32) -> bool {
    let Ok(mark) = std::str::from_utf8(mark) else { return false };
    let parts: Vec<&str> = mark.split('.').collect();
    let [owner, start, tree] = parts.as_slice() else { return false };
    let (Ok(owner), Ok(start), Ok(_)) = (owner.parse::<u32>(), start.parse::<u64>(), tree.parse::<u64>())
    else {
        return false;
    };
    start != 0 && owner != own && start_time(owner) != Some(start)
}

/// Runs as a supervisor when `args` (the process's arguments, program first) ask for it, and
/// returns its exit code; `None` when they do not.
pub fn supervise(args: &[OsString]) -> Option<i32> {
    if args.get(1).is_none_or(|a| a != SUPERVISE_ARG) {
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        Some(supervisor::main(&args[2..]))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Some(127)
    }
}

#[cfg(target_os = "linux")]
mod supervisor {
    //! The supervisor process: single-threaded, blocking, no runtime.

    use std::collections::HashMap;
    use std::ffi::OsString;
    use std::io::Write;
    use std::os::fd::FromRawFd;
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};

    use libc::{c_int, pid_t};

    /// The signals that ask the supervisor to end its tree.
    const STOP_SIGNALS: [c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

    /// `PARENT_PID LINGER_MS GRACE_MS REPORT_FD LABEL -- PROGRAM ARGS...`; the label (JSON, or
    /// `-`) is only read by [`super::enclosing`], from this process's command line.
    pub(super) fn main(args: &[OsString]) -> i32 {
        let number = |i: usize| args.get(i).and_then(|a| a.to_str()).and_then(|a| a.parse::<u64>().ok());
        let (Some(parent), Some(linger), Some(grace), Some(report)) =
            (number(0), number(1), number(2), number(3))
        else {
            return fail(
                "the supervisor's arguments are PARENT_PID LINGER_MS GRACE_MS REPORT_FD LABEL -- PROGRAM ARGS",
            );
        };
        let Some(argv) = args.get(6..).filter(|a| !a.is_empty() && args[5] == "--") else {
            return fail("the supervisor was given no command after `--`");
        };
        let Ok(report) = c_int::try_from(report) else {
            return fail("the supervisor's REPORT_FD is not a file descriptor");
        };
        // SAFETY: the descriptor was handed over by ACAS for this process alone; the command
        // must not inherit it.
        let report = unsafe {
            libc::fcntl(report, libc::F_SETFD, libc::FD_CLOEXEC);
            std::fs::File::from_raw_fd(report)
        };
        // SAFETY: prctl only changes attributes of this process.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
        }
        // ACAS may have died before the death signal was set.
        // SAFETY: getppid cannot fail.
        if i64::from(unsafe { libc::getppid() }) != parent as i64 {
            return 128 + libc::SIGTERM;
        }
        let signals = signal_set(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT]);
        // SAFETY: this process has one thread; blocked signals are taken by sigtimedwait below.
        unsafe {
            libc::sigprocmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut());
        }
        let mut command = std::process::Command::new(&argv[0]);
        command.args(&argv[1..]);
        // SAFETY: sigprocmask is async-signal-safe; the command starts with no signal blocked.
        unsafe {
            command.pre_exec(|| {
                let empty = signal_set(&[]);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                Ok(())
            });
        }
        let main_pid = match command.spawn() {
            Ok(child) => child.id() as pid_t,
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(libc::ENOEXEC);
                let _ = (&report).write_all(&errno.to_ne_bytes());
                return 127;
            }
        };
        // Started; the command's status follows on the same pipe just before this exits, so
        // that ACAS can tell this process's own death from the command's.
        let _ = (&report).write_all(&0i32.to_ne_bytes());
        let mut tree = Supervised { main_pid, status: None };
        let linger = Duration::from_millis(linger);
        let grace = Duration::from_millis(grace);
        let mut linger_until: Option<Instant> = None;
        loop {
            if !tree.reap() {
                break;
            }
            if tree.status.is_some() && linger_until.is_none() {
                linger_until = Some(Instant::now() + linger);
            }
            let wait = match linger_until {
                Some(until) => until.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if linger_until.is_some() && wait.is_zero() {
                tree.end(Duration::ZERO);
                break;
            }
            match wait_signal(&signals, wait) {
                Some(signal) if STOP_SIGNALS.contains(&signal) => {
                    tree.end(grace);
                    if tree.status.is_none() {
                        return 128 + signal;
                    }
                    break;
                }
                _ => {}
            }
        }
        let _ = (&report).write_all(&tree.status.unwrap_or(0).to_ne_bytes());
        tree.exit()
    }

    fn fail(message: &str) -> i32 {
        // Stderr is the step's stderr here, read by ACAS, not a terminal.
        let _ = writeln!(std::io::stderr(), "acas: {message}");
        127
    }

    fn signal_set(signals: &[c_int]) -> libc::sigset_t {
        // SAFETY: sigemptyset initialises the set before any use.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &signal in signals {
                libc::sigaddset(&mut set, signal);
            }
            set
        }
    }

    /// The next of `signals` to arrive within `wait`, if any.
    fn wait_signal(signals: &libc::sigset_t, wait: Duration) -> Option<c_int> {
        let timeout = libc::timespec {
            tv_sec: wait.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: every pointer is to a live local; a null siginfo is allowed.
        let signal = unsafe { libc::sigtimedwait(signals, std::ptr::null_mut(), &timeout) };
        (signal > 0).then_some(signal)
    }

    struct Supervised {
        main_pid: pid_t,
        /// The command's wait status, once it was reaped.
        status: Option<c_int>,
    }

    impl Supervised {
        /// Reaps every child that has ended. False when no child is left.
        fn reap(&mut self) -> bool {
            loop {
                let mut status = 0;
                // SAFETY: waitpid writes the status into a live local.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid == self.main_pid {
                    self.status = Some(status);
                } else if pid == 0 {
                    return true;
                } else if pid < 0 {
                    return std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
                }
            }
        }

        /// Ends every descendant: SIGTERM, up to `grace` for them to exit, then SIGKILL until
        /// none is left. A process that forks meanwhile is found again on the next pass.
        fn end(&mut self, grace: Duration) {
            let chld = signal_set(&[libc::SIGCHLD]);
            if !grace.is_zero() {
                signal_descendants(libc::SIGTERM);
                let until = Instant::now() + grace;
                while self.reap() {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    wait_signal(&chld, left);
                }
            }
            while self.reap() {
                signal_descendants(libc::SIGKILL);
                wait_signal(&chld, Duration::from_millis(50));
            }
        }

        /// Exits as the command did.
        fn exit(self) -> i32 {
            let Some(status) = self.status else { return 128 + libc::SIGKILL };
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            let signal = if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { libc::SIGKILL };
            // SAFETY: restores the default action of `signal` and sends it to this process,
            // which then dies by it like the command did.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                let set = signal_set(&[signal]);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::kill(libc::getpid(), signal);
            }
            128 + signal
        }
    }

    /// Sends `signal` to every descendant of this process, found through `/proc`.
    fn signal_descendants(signal: c_int) {
        let mut children: HashMap<pid_t, Vec<pid_t>> = HashMap::new();
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<pid_t>().ok()) else {
                continue;
            };
            if let Some(ppid) = parent_of(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
        // SAFETY: getpid cannot fail.
        let mut pending = vec![unsafe { libc::getpid() }];
        while let Some(pid) = pending.pop() {
            for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
                // SAFETY: kill(2) has no memory effects; `child` is below this process.
                unsafe {
                    libc::kill(child, signal);
                }
                pending.push(child);
            }
        }
    }

    /// The parent pid in `/proc/PID/stat` (the field after the state, after the name in
    /// parentheses, which may itself hold spaces and parentheses).
    fn parent_of(pid: pid_t) -> Option<pid_t> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_name = &stat[stat.rfind(')')? + 1..];
        after_name.split_whitespace().nth(1)?.parse().ok()
    }
}
