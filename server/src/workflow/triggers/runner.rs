//! The trigger task: one task owns the file-change, schedule, diagnostic and escalation
//! triggers, takes their inputs in arrival order through a [`TriggerHandle`], wakes up at the
//! next debounce, persistence or cron deadline, and sends every [`Fired`] on the channel given
//! to [`spawn`].
//!
//! The webhook server ([`super::webhook`]) and manual runs do not go through it. Inputs never
//! block the sender (the queue is unbounded and each input is small); a full `Fired` channel
//! makes this task wait, so nothing is dropped. The task stops when cancelled, when every handle
//! is dropped, or when the `Fired` receiver is gone.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::diagnostic::{DiagnosticTriggers, OpenDiagnostic};
use super::escalation::{EscalationEvent, EscalationTriggers};
use super::file_change::FileChangeTriggers;
use super::schedule::{Clock, Schedule};
use super::{Fired, FiredSender, TriggerError};
use crate::workflow::definition::{FileEventKind, Workflow};

/// The longest sleep before the wall clock is read again, so that a schedule stays on time
/// when the machine was suspended or its clock was set.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// What the trigger task is fed.
#[derive(Debug)]
pub enum TriggerInput {
    /// Workspace-relative paths that changed (see [`super::file_change::changes`]).
    Files(Vec<(String, FileEventKind)>),
    /// The complete set of open diagnostics of one file.
    Diagnostics { path: String, diagnostics: Vec<OpenDiagnostic> },
    /// An escalation that ended.
    Escalation(EscalationEvent),
    /// The workflow definitions changed: this set replaces the previous one.
    Reload(Vec<Workflow>),
}

/// Feeds the trigger task. Cheap to clone; calls never block.
#[derive(Debug, Clone)]
pub struct TriggerHandle {
    inputs: mpsc::UnboundedSender<TriggerInput>,
}

impl TriggerHandle {
    pub fn send(&self, input: TriggerInput) {
        if self.inputs.send(input).is_err() {
            tracing::debug!("the trigger task has stopped; input dropped");
        }
    }

    pub fn files(&self, changes: Vec<(String, FileEventKind)>) {
        if !changes.is_empty() {
            self.send(TriggerInput::Files(changes));
        }
    }

    pub fn diagnostics(&self, path: String, diagnostics: Vec<OpenDiagnostic>) {
        self.send(TriggerInput::Diagnostics { path, diagnostics });
    }

    pub fn escalation(&self, event: EscalationEvent) {
        self.send(TriggerInput::Escalation(event));
    }

    pub fn reload(&self, workflows: Vec<Workflow>) {
        self.send(TriggerInput::Reload(workflows));
    }
}

/// Starts the trigger task for `workflows`. Schedules read the time from `clock`
/// ([`Clock::System`] outside tests).
pub fn spawn(
    workflows: Vec<Workflow>,
    clock: Clock,
    fired: FiredSender,
    cancel: CancellationToken,
) -> (TriggerHandle, JoinHandle<()>) {
    let (inputs, receiver) = mpsc::unbounded_channel();
    let mut task = Task {
        clock,
        files: FileChangeTriggers::default(),
        schedule: Schedule::default(),
        diagnostics: DiagnosticTriggers::default(),
        escalations: EscalationTriggers::default(),
    };
    task.reload(&workflows);
    let join = tokio::spawn(task.run(receiver, fired, cancel));
    (TriggerHandle { inputs }, join)
}

struct Task {
    clock: Clock,
    files: FileChangeTriggers,
    schedule: Schedule,
    diagnostics: DiagnosticTriggers,
    escalations: EscalationTriggers,
}

impl Task {
    async fn run(
        mut self,
        mut inputs: mpsc::UnboundedReceiver<TriggerInput>,
        fired: FiredSender,
        cancel: CancellationToken,
    ) {
        loop {
            let wake = self.next_wake();
            let mut ready = Vec::new();
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                input = inputs.recv() => match input {
                    Some(input) => ready.extend(self.handle(input)),
                    None => return,
                },
                () = sleep_until(wake) => {}
            }
            let now = Instant::now();
            ready.extend(self.files.due(now));
            ready.extend(self.diagnostics.due(now));
            ready.extend(self.schedule.due(self.clock.now()));
            for run in ready {
                tracing::info!(workflow = %run.workflow, trigger = run.trigger.kind(), "workflow triggered");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    sent = fired.send(run) => if sent.is_err() { return },
                }
            }
        }
    }

    fn handle(&mut self, input: TriggerInput) -> Vec<Fired> {
        let now = Instant::now();
        match input {
            TriggerInput::Files(changes) => {
                self.files.observe(&changes, now);
                Vec::new()
            }
            TriggerInput::Diagnostics { path, diagnostics } => {
                self.diagnostics.set_file(&path, &diagnostics, now)
            }
            TriggerInput::Escalation(event) => self.escalations.fire(&event),
            TriggerInput::Reload(workflows) => {
                self.reload(&workflows);
                Vec::new()
            }
        }
    }

    /// Replaces every trigger. Debounces and persistence timers in progress start over; unchanged
    /// schedules keep their next time.
    fn reload(&mut self, workflows: &[Workflow]) {
        let mut errors: Vec<TriggerError> = Vec::new();
        let (files, e) = FileChangeTriggers::new(workflows);
        errors.extend(e);
        let (diagnostics, e) = DiagnosticTriggers::new(workflows);
        errors.extend(e);
        errors.extend(self.schedule.reload(workflows, self.clock.now()));
        self.files = files;
        self.diagnostics = diagnostics;
        self.escalations = EscalationTriggers::new(workflows);
        for error in errors {
            tracing::warn!("{error}; that trigger is off until the workflow is fixed");
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let now = Instant::now();
        let schedule = self.schedule.next_fire().map(|at| {
            let wait = (at - self.clock.now()).to_std().unwrap_or_default();
            now + wait.min(MAX_SLEEP)
        });
        [self.files.next_deadline(), self.diagnostics.next_deadline(), schedule].into_iter().flatten().min()
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::workflow::definition::{
        EscalationOutcome, EscalationTrigger, FileChangeTrigger, ScheduleTrigger, Triggers,
    };
    use crate::workflow::triggers::testing::workflow;
    use crate::workflow::triggers::{FiredReceiver, channel};

    fn start(workflows: Vec<Workflow>, clock: Clock) -> (TriggerHandle, FiredReceiver, CancellationToken) {
        let (tx, rx) = channel();
        let cancel = CancellationToken::new();
        let (handle, _join) = spawn(workflows, clock, tx, cancel.clone());
        (handle, rx, cancel)
    }

    /// The next run, waiting at most an hour of (paused, auto-advancing) tokio time.
    async fn next(rx: &mut FiredReceiver) -> Option<Fired> {
        tokio::time::timeout(Duration::from_secs(3600), rx.recv()).await.ok().flatten()
    }

    fn save_on(debounce_ms: u64) -> Triggers {
        Triggers {
            file_change: Some(FileChangeTrigger {
                paths: vec!["src/**".into()],
                ignore: vec![],
                events: vec![],
                debounce: Duration::from_millis(debounce_ms),
            }),
            ..Triggers::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_saves_starts_one_run() {
        let (handle, mut rx, cancel) = start(vec![workflow("review", save_on(500))], Clock::System);
        let save = || vec![("src/a.py".to_owned(), FileEventKind::Modified)];
        let started = Instant::now();
        for _ in 0..5 {
            handle.files(save());
            // Let the task take the save before the clock moves on.
            tokio::task::yield_now().await;
            tokio::time::advance(Duration::from_millis(200)).await;
        }
        handle.files(vec![("docs/x.md".to_owned(), FileEventKind::Modified)]);
        let fired = next(&mut rx).await.unwrap();
        assert_eq!(fired.workflow, "review");
        assert_eq!(
            fired.trigger.to_value(),
            json!({"kind": "file_change", "path": "src/a.py", "event": "modified"})
        );
        // The last save was at 800 ms: the run starts when 500 ms have passed since.
        assert_eq!(Instant::now() - started, Duration::from_millis(1300));
        assert_eq!(next(&mut rx).await, None);
        cancel.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn schedules_fire_on_the_anchored_clock_and_follow_reloads() {
        let utc = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
        let scheduled = |name: &str, cron: &str, tz: Option<&str>| {
            let schedule = vec![ScheduleTrigger { cron: cron.into(), timezone: tz.map(str::to_owned) }];
            workflow(name, Triggers { schedule, ..Triggers::default() })
        };
        // Monday 2026-01-05, 08:59:50 in Berlin.
        let clock = Clock::anchored(utc("2026-01-05T07:59:50Z"));
        let (handle, mut rx, _cancel) =
            start(vec![scheduled("standup", "0 9 * * 1-5", Some("Europe/Berlin"))], clock);
        let fired = next(&mut rx).await.unwrap();
        assert_eq!(
            fired.trigger.to_value(),
            json!({"kind": "schedule", "cron": "0 9 * * 1-5", "timezone": "Europe/Berlin",
                   "scheduled_at": "2026-01-05T09:00:00+01:00"})
        );
        assert_eq!(clock.now(), utc("2026-01-05T08:00:00Z"));

        handle.reload(vec![scheduled("tick", "*/30 * * * * *", None)]);
        let fired = next(&mut rx).await.unwrap();
        assert_eq!(fired.workflow, "tick");
        assert_eq!(fired.trigger.to_value()["scheduled_at"], "2026-01-05T08:00:30+00:00");
        // A schedule that names no zone says UTC, so `trigger.timezone` is always there.
        assert_eq!(fired.trigger.to_value()["timezone"], "UTC");
    }

    #[tokio::test(start_paused = true)]
    async fn diagnostics_and_escalations_go_through_the_task() {
        let on = Triggers {
            diagnostic: Some(crate::workflow::definition::DiagnosticTrigger {
                category: Some("type".into()),
                severity: None,
                paths: vec![],
                persists: Duration::from_secs(30),
            }),
            escalation: Some(EscalationTrigger { outcome: EscalationOutcome::Failed }),
            ..Triggers::default()
        };
        let (handle, mut rx, _cancel) = start(vec![workflow("fixer", on)], Clock::System);
        let diagnostic = OpenDiagnostic {
            path: "src/a.py".into(),
            category: "type".into(),
            severity: "error".into(),
            fingerprint: "F1".into(),
            message: "expected int".into(),
            line: 3,
        };
        let started = Instant::now();
        handle.diagnostics("src/a.py".into(), vec![diagnostic]);
        let fired = next(&mut rx).await.unwrap();
        assert_eq!(fired.trigger.to_value()["kind"], "diagnostic");
        assert_eq!(Instant::now() - started, Duration::from_secs(30));

        handle.escalation(EscalationEvent {
            outcome: EscalationOutcome::Failed,
            path: "src/a.py".into(),
            fingerprint: "F1".into(),
            provider: None,
            message: "no provider answered".into(),
        });
        assert_eq!(next(&mut rx).await.unwrap().trigger.to_value()["kind"], "escalation");
        assert_eq!(next(&mut rx).await, None);
    }
}
