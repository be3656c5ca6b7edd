//! Rendering a template in a child process with a capped address space, for templates that can
//! build values much larger than themselves.
//!
//! A template of plain substitutions (`{{ steps.read.output.content }}`) can only produce text
//! in proportion to its own length and to the values it reads, and renders in ACAS itself. A
//! template that can repeat or reuse values renders in a copy of the `acas` binary started with
//! [`RENDER_ARG`] (Linux only; see [`needs_process`] for the precise rule): the copy caps its
//! address space (`RLIMIT_AS`, `[workflows] template_max_memory`) and its CPU time
//! ([`CPU_SECONDS`]), reads the request (template, context, limits) as JSON on stdin, renders
//! with the same engine setup, and writes the result or a typed error as JSON on stdout. A
//! render that allocates past the cap dies (allocation failure aborts) and the render fails
//! with a message naming `template_max_memory`; ACAS itself never holds the value.
//!
//! A render runs under a [`RenderGuard`] when the engine gives one (a step's timeout and
//! cancellation): killing the guard kills the render process at once, and the thread waiting
//! for it returns. Elsewhere than Linux, and when no `acas` binary is known (library tests),
//! every template renders in-process under fuel and the output limit only.
//!
//! At most `[workflows] max_render_processes` render processes run at once in one ACAS process,
//! all runs together (each may take up to `template_max_memory`); a render past that waits for
//! one to end, and stops waiting when its step times out or is cancelled.
//!
//! What this does not do: limit memory of in-process renders (they are linear), or keep a
//! render process alive across renders (each render starts one, a few milliseconds).

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Status, TemplateError, TemplateLimits, Templates};

/// The first argument that makes `acas` a render process. Not a command of the command line:
/// nothing but ACAS itself starts it.
pub const RENDER_ARG: &str = "__acas-render";

/// CPU seconds a render process may use before the kernel stops it (`RLIMIT_CPU`). Fuel stops
/// a render long before; this catches work fuel does not count (one huge string operation).
pub const CPU_SECONDS: u64 = 30;

/// Whether `source` (a template, or a bare condition when `expression`) renders in a process of
/// its own. A template renders in-process only when it has no statement (`{%`) and every
/// expression in it (`{{ ... }}`, or the whole bare condition) is made of names, literals,
/// attribute and item access, list literals, calls, comparisons and `not`/`and`/`or` alone: no
/// filter (`|`), no `~`, `+`, `*`, `/`, `%`, no dict literal. Such a template produces at most
/// its own length times the largest value it reads. Anything else can repeat values (loops,
/// macros, `namespace` updates, filter chains such as `tojson|tojson`, `s ~ s`) and renders in
/// a process of its own.
pub fn needs_process(source: &str, expression: bool) -> bool {
    fn plain(expr: &str) -> bool {
        expr.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.[]'\"-(),=!<>:".contains(c))
    }
    if source.contains("{%") {
        return true;
    }
    if !source.contains("{{") {
        return expression && !plain(source);
    }
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").unwrap_or(after.len());
        if !plain(&after[..end]) {
            return true;
        }
        rest = &after[(end + 2).min(after.len())..];
    }
    false
}

/// The render processes running now, all runs of this process together, and the cap on them
/// (`[workflows] max_render_processes`).
struct Slots {
    running: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots { running: Mutex::new(0), freed: Condvar::new() };

/// A render process's place among the [`SLOTS`]; given back when dropped.
struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS.running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        SLOTS.freed.notify_all();
    }
}

/// Waits for a place among at most `max` render processes. `None` when `guard` was killed
/// (the step timed out or was cancelled) while it waited.
fn slot(max: usize, guard: Option<&RenderGuard>) -> Option<Slot> {
    let mut running = SLOTS.running.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if guard.is_some_and(|g| g.killed.load(Ordering::SeqCst)) {
            return None;
        }
        if *running < max.max(1) {
            *running += 1;
            return Some(Slot);
        }
        // A kill notifies too; the timeout only covers a kill between the check and the wait.
        running = SLOTS
            .freed
            .wait_timeout(running, Duration::from_millis(100))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Kills the render processes of one step attempt when its timeout or cancellation fires.
#[derive(Debug, Default)]
pub struct RenderGuard {
    killed: AtomicBool,
    /// The render process running now, if any.
    child: Mutex<Option<libc::pid_t>>,
}

thread_local! {
    static GUARD: RefCell<Option<Arc<RenderGuard>>> = const { RefCell::new(None) };
}

impl RenderGuard {
    /// Runs `f` on this thread with every render process it starts under this guard.
    pub fn enter<T>(self: &Arc<Self>, f: impl FnOnce() -> T) -> T {
        let previous = GUARD.with(|g| g.replace(Some(self.clone())));
        let result = f();
        GUARD.with(|g| *g.borrow_mut() = previous);
        result
    }

    /// Kills the render process when the returned value is dropped: when the attempt ends, how
    /// ever it ends (its task may be aborted).
    pub fn kill_on_drop(self: &Arc<Self>) -> KillOnDrop {
        KillOnDrop(self.clone())
    }

    /// Kills the running render process, and any later one at its start.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // A render waiting for a slot stops waiting.
        SLOTS.freed.notify_all();
        if let Some(pid) = *self.child.lock().unwrap_or_else(|e| e.into_inner()) {
            // SAFETY: kill(2) has no memory effects; the pid is an unreaped child (it is
            // cleared before the child is waited for).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Kills its guard's render process when dropped.
#[derive(Debug)]
pub struct KillOnDrop(Arc<RenderGuard>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// What to render, as sent to the render process.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Op {
    Str { source: String },
    Shell { source: String },
    Value { value: serde_json::Value },
    Condition { source: String, success: bool, failure: bool, cancelled: bool },
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    op: Op,
    ctx: serde_json::Value,
    fuel: u64,
    max_bytes: usize,
    max_memory: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Response {
    Ok(serde_json::Value),
    Error(String),
}

fn run_op(
    templates: &Templates,
    op: Op,
    ctx: &serde_json::Value,
) -> Result<serde_json::Value, TemplateError> {
    Ok(match op {
        Op::Str { source } => serde_json::Value::String(templates.render_str_here(&source, ctx)?),
        Op::Shell { source } => serde_json::Value::String(templates.render_shell_here(&source, ctx)?),
        Op::Value { value } => templates.render_value_here(&value, ctx)?,
        Op::Condition { source, success, failure, cancelled } => serde_json::Value::Bool(
            templates.condition_here(&source, ctx, Status { success, failure, cancelled })?,
        ),
    })
}

/// Renders `op` in a render process started from `program`, under the guard of this thread.
pub(super) fn render(
    program: &std::path::Path,
    limits: TemplateLimits,
    op: Op,
    ctx: &serde_json::Value,
) -> Result<serde_json::Value, TemplateError> {
    let error = |message: String| TemplateError { message };
    let request = Request {
        op,
        ctx: ctx.clone(),
        fuel: limits.fuel,
        max_bytes: limits.max_bytes,
        max_memory: limits.max_memory,
    };
    let request =
        serde_json::to_vec(&request).map_err(|e| error(format!("encoding the render request: {e}")))?;
    let guard = GUARD.with(|g| g.borrow().clone());
    let Some(_slot) = slot(limits.max_processes, guard.as_deref()) else {
        return Err(error("the template render was stopped".into()));
    };
    let mut command = Command::new(program);
    command.arg(RENDER_ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and changes only this child's death signal.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(|e| {
        error(format!("starting the template render process {} failed: {e}", program.display()))
    })?;
    if let (Some(guard), Ok(pid)) = (&guard, libc::pid_t::try_from(child.id())) {
        *guard.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
        if guard.killed.load(Ordering::SeqCst) {
            let _ = child.kill();
        }
    }
    // The child reads its whole request before it writes anything.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&request);
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        // JSON escaping at most sextuples the text (`\u0000`); what is beyond is not a result.
        let bound = (limits.max_bytes as u64).saturating_mul(6).saturating_add(64 * 1024);
        let _ = stdout.take(bound).read_to_end(&mut out);
    }
    if let Some(guard) = &guard {
        *guard.child.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    let _ = child.kill();
    let status = child.wait().map_err(|e| error(format!("waiting for the template render process: {e}")))?;
    if guard.as_ref().is_some_and(|g| g.killed.load(Ordering::SeqCst)) {
        return Err(error("the template render was stopped".into()));
    }
    if status.success()
        && let Ok(response) = serde_json::from_slice::<Response>(&out)
    {
        return match response {
            Response::Ok(value) => Ok(value),
            Response::Error(message) => Err(error(message)),
        };
    }
    use std::os::unix::process::ExitStatusExt;
    Err(error(match status.signal() {
        Some(libc::SIGXCPU) => format!(
            "the template used more than {CPU_SECONDS} seconds of CPU time while rendering; make it do less"
        ),
        _ => format!(
            "the template ran out of its memory limit of {} MiB while rendering ({status}); make it \
             build smaller values, or raise `template_max_memory` (bytes) under `[workflows]` in \
             .acas/config.toml",
            limits.max_memory / (1024 * 1024)
        ),
    }))
}

/// Runs as a render process when `args` (the process's arguments, program first) ask for it,
/// and returns its exit code; `None` when they do not.
pub fn serve(args: &[OsString]) -> Option<i32> {
    if args.get(1).is_none_or(|a| a != RENDER_ARG) {
        return None;
    }
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return Some(2);
    }
    let Ok(request) = serde_json::from_slice::<Request>(&input) else {
        return Some(2);
    };
    drop(input);
    #[cfg(target_os = "linux")]
    // SAFETY: setrlimit only changes limits of this process.
    unsafe {
        let memory = libc::rlimit { rlim_cur: request.max_memory, rlim_max: request.max_memory };
        let cpu = libc::rlimit { rlim_cur: CPU_SECONDS, rlim_max: CPU_SECONDS + 1 };
        if libc::setrlimit(libc::RLIMIT_AS, &memory) != 0 || libc::setrlimit(libc::RLIMIT_CPU, &cpu) != 0 {
            return Some(3);
        }
    }
    let limits = TemplateLimits {
        fuel: request.fuel,
        max_bytes: request.max_bytes,
        max_memory: request.max_memory,
        ..TemplateLimits::default()
    };
    let templates = Templates::in_process(limits);
    let response = match run_op(&templates, request.op, &request.ctx) {
        Ok(value) => Response::Ok(value),
        Err(e) => Response::Error(e.message),
    };
    let mut stdout = std::io::stdout().lock();
    if serde_json::to_writer(&mut stdout, &response).is_err() || stdout.flush().is_err() {
        return Some(4);
    }
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::needs_process;

    #[test]
    fn plain_substitutions_render_in_process() {
        for plain in [
            "hello {{ inputs.who }}",
            "{{ steps.read.output['content'] }} and {{ run.id }}",
            "{{- trigger.path -}}",
            "steps.lint.outcome == 'failure' and not cancelled()",
            "no template at all",
        ] {
            assert!(!needs_process(plain, true), "{plain}");
        }
        for hostile in [
            "{% set ns = namespace(s='x') %}{{ ns.s }}",
            "{{ s ~ s }}",
            "{{ s|tojson|tojson }}",
            "{{ {'a': s} }}",
            "{{ 'x' * 10 }}",
            "a {{ x }} b {{ x + x }}",
        ] {
            assert!(needs_process(hostile, false), "{hostile}");
        }
        assert!(needs_process("s ~ s", true));
        assert!(!needs_process("s ~ s", false));
    }
}
