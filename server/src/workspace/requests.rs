//! The typed requests front ends send to the loop, and how each is answered.
//!
//! A request carries its own reply channel. The loop answers it with what it holds, after
//! every event that arrived before it and the background work those started; reads of the
//! store or the disk that an answer needs are done by the [`Handle`] method, off the loop. A
//! request whose handling panics drops its reply channel: the front end sees `None` and
//! answers with an internal error.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::documents::Mark;
use super::escalations::{EscalateRequest, QuickFix, Then};
use super::runs::RunState;
use super::status::Status;
use super::{Event, Handle, Refused, RefusedKind, Workspace};
use crate::assist::Job;
use crate::escalate::cost::Budget;
use crate::store::postgres::runs::SharedRun;
use crate::store::{self, Store};
use crate::text::{LineIndex, Position, PositionEncoding, TextRange};
use crate::workflow::actions::Ai;
use crate::workflow::definition::Workflow;
use crate::workflow::engine::Engine;
use crate::workflow::planner::Plan;
use crate::workflow::state::RunId;
use crate::workflow::triggers::Trigger;

type Reply<T> = oneshot::Sender<T>;

/// A hover's range and markdown, if any, or the path of a closed workflow file to read it from.
type HoverAnswer = Result<Option<(TextRange, String)>, PathBuf>;

/// Why no plan was made.
#[derive(Debug)]
pub enum PlanError {
    /// No AI provider can be asked.
    NoProvider(Refused),
    /// The providers were asked and gave no usable plan.
    Failed(crate::workflow::planner::PlanError),
}

/// What a front end can ask the loop.
pub enum Request {
    Status(Reply<(Status, Option<Store>)>),
    Spend(Reply<SpendSetup>),
    /// The store and the root, to list recorded problems.
    Problems(Reply<(Option<Store>, PathBuf)>),
    FixFeedback {
        fix_id: String,
        outcome: store::Outcome,
        reply: Reply<Result<(), Refused>>,
    },
    /// A snapshot of what to escalate, ready to run.
    Escalation {
        request: Box<EscalateRequest>,
        reply: Reply<Result<(Job, Option<Mark>), Refused>>,
    },
    QuickFixes {
        path: PathBuf,
        range: TextRange,
        reply: Reply<(Vec<QuickFix>, PathBuf, u64, PositionEncoding)>,
    },
    /// The hover at a position, or the path of a closed workflow file to read it from (with
    /// the encoding of positions).
    Hover {
        path: PathBuf,
        position: Position,
        reply: Reply<(HoverAnswer, PositionEncoding)>,
    },
    /// A run of the workflow named `workflow`, checked and ready to start (off the loop).
    StartRun {
        workflow: String,
        inputs: Map<String, Value>,
        reply: Reply<Result<super::runs::RunStart, Refused>>,
    },
    /// The workflow engine, to cancel or re-run a run, and the root plans are written under.
    Engine(Reply<Result<(Engine, PathBuf), Refused>>),
    /// The AI providers as workflow actions and the planner use them.
    WorkflowAi(Reply<Result<Arc<dyn Ai>, Refused>>),
    /// The valid workflows, and what to list recent runs from.
    Workflows(Reply<super::runs::WorkflowsSnapshot>),
    /// Answered once no background work is in flight and every analysis the loop queued is
    /// back: a point where the state is stable, for tests and tools.
    Settled(Reply<()>),
    /// Runs the checkers named (every enabled one when empty); answers the names started.
    RunCheckers {
        names: Vec<String>,
        reply: Reply<Result<Vec<String>, Refused>>,
    },
    /// Panics on the loop, to prove that a panic costs only its request (test builds of the
    /// editor protocol enable it).
    Panic(Reply<()>),
}

impl Request {
    /// Whether the answer reads other tools' diagnostics, and so waits for the reports being
    /// located when it arrived (the others do not: a flood of reports cannot hold them up).
    pub(super) fn reads_external(&self) -> bool {
        matches!(
            self,
            Request::Problems(_)
                | Request::FixFeedback { .. }
                | Request::Escalation { .. }
                | Request::QuickFixes { .. }
                | Request::Settled(_)
        )
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Request::Status(_) => "status request",
            Request::Spend(_) => "spend request",
            Request::Problems(_) => "problems request",
            Request::FixFeedback { .. } => "fix feedback",
            Request::Escalation { .. } => "escalation request",
            Request::QuickFixes { .. } => "code action request",
            Request::Hover { .. } => "hover request",
            Request::StartRun { .. } => "workflow run request",
            Request::Engine(_) => "workflow engine request",
            Request::WorkflowAi(_) => "plan request",
            Request::Workflows(_) => "workflows request",
            Request::Settled(_) => "settle request",
            Request::RunCheckers { .. } => "run checkers request",
            Request::Panic(_) => "test panic",
        }
    }
}

impl Workspace {
    pub(super) fn answer(&mut self, request: Request) {
        match request {
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Spend(reply) => {
                let _ = reply.send(self.spend_setup());
            }
            Request::Problems(reply) => {
                let _ = reply.send((self.store.clone(), self.root.clone()));
            }
            Request::FixFeedback { fix_id, outcome, reply } => {
                let _ = reply.send(self.fix_feedback(&fix_id, outcome));
            }
            Request::Escalation { request, reply } => self.escalation_request(*request, Then::Reply(reply)),
            Request::QuickFixes { path, range, reply } => {
                let _ = reply.send((
                    self.quick_fixes(&path, range),
                    self.root.clone(),
                    self.config.max_file_size,
                    self.encoding,
                ));
            }
            Request::Hover { path, position, reply } => {
                let _ = reply.send((self.hover(&path, position), self.encoding));
            }
            Request::StartRun { workflow, inputs, reply } => {
                let _ = reply.send(self.run_start(&workflow, &inputs));
            }
            Request::Engine(reply) => {
                let engine = self.workflow_engine().ok_or_else(|| self.no_engine());
                let _ = reply.send(engine.map(|engine| (engine, self.root.clone())));
            }
            Request::WorkflowAi(reply) => {
                let _ = reply.send(self.workflow_ai());
            }
            Request::Workflows(reply) => {
                let _ = reply.send(self.workflows());
            }
            Request::RunCheckers { names, reply } => {
                let _ = reply.send(self.run_checkers(names));
            }
            Request::Settled(reply) => self.settle_waiters.push(reply),
            Request::Panic(_reply) => panic!("test panic requested"),
        }
    }
}

impl Handle {
    /// Sends the request `make` builds around a reply channel; `None` when the loop stopped or
    /// the request failed inside it.
    pub async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Request(make(tx)));
        rx.await.ok()
    }

    /// Problems recorded in the store (everything recorded before is committed first), with the
    /// root their paths are relative to; no store gives none.
    pub async fn problems(
        &self,
        category: Option<String>,
        path: Option<PathBuf>,
    ) -> Option<Result<(PathBuf, Vec<store::ProblemRow>), Refused>> {
        let (store, root) = self.request(Request::Problems).await?;
        let Some(store) = store else { return Some(Ok((root, Vec::new()))) };
        let query = store::ProblemQuery {
            category,
            path: path.map(|p| super::relative(&root, &p)),
            include_resolved: false,
        };
        let rows = tokio::task::spawn_blocking(move || store.flush().and_then(|()| store.problems(&query)))
            .await
            .ok()?;
        Some(
            rows.map(|rows| (root, rows))
                .map_err(|e| Refused::new(RefusedKind::StoreFailed, format!("reading problems failed: {e}"))),
        )
    }

    /// Verified AI fixes at `range` of `path` whose edits still find the text they replace.
    pub async fn quick_fixes(&self, path: PathBuf, range: TextRange) -> Vec<QuickFix> {
        let Some((fixes, root, max_size, encoding)) =
            self.request(|reply| Request::QuickFixes { path, range, reply }).await
        else {
            return Vec::new();
        };
        if fixes.iter().all(|f| f.on_disk.is_empty()) {
            return fixes;
        }
        tokio::task::spawn_blocking(move || {
            fixes
                .into_iter()
                .filter(|fix| {
                    fix.on_disk.iter().all(|e| {
                        text_on_disk(&root, &e.path, e.range, max_size, encoding).is_some_and(|t| t == e.old)
                    })
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }

    /// Runs the checkers `names` (every enabled one when empty) now; the names started.
    pub async fn run_checkers(&self, names: Vec<String>) -> Option<Result<Vec<String>, Refused>> {
        self.request(|reply| Request::RunCheckers { names, reply }).await
    }

    /// The valid workflows, the `limit` most recent runs with their steps, and the `seq` of the
    /// latest run state given out before the answer.
    pub async fn workflows(&self, limit: usize) -> Option<(Vec<Workflow>, Vec<RunState>, u64)> {
        let snapshot = self.request(Request::Workflows).await?;
        let seq = snapshot.seq;
        let (definitions, runs) = tokio::task::spawn_blocking(move || {
            let runs = snapshot.recent_runs(limit);
            (snapshot.definitions, runs)
        })
        .await
        .ok()?;
        Some((definitions, runs, seq))
    }

    /// [`Self::workflows`], with the team's recent runs of every clone when the workspace has a
    /// shared store (`None` without one, or when it cannot be read: said in the log).
    pub async fn workflows_and_team_runs(
        &self,
        limit: usize,
    ) -> Option<(Vec<Workflow>, Vec<RunState>, u64, Option<Vec<SharedRun>>)> {
        let snapshot = self.request(Request::Workflows).await?;
        let seq = snapshot.seq;
        tokio::task::spawn_blocking(move || {
            let runs = snapshot.recent_runs(limit);
            let team = snapshot.engine.as_ref().and_then(|e| e.team()).and_then(|team| {
                team.recent(limit)
                    .map_err(|e| tracing::warn!("the editor lists this workspace's runs only: {e}"))
                    .ok()
            });
            (snapshot.definitions, runs, seq, team)
        })
        .await
        .ok()
    }

    /// The state of run `run` (`None` inside when no such run is known): as the store has it,
    /// or as the editor was last told while it has not ended.
    pub async fn run_state(&self, run: RunId) -> Option<Option<RunState>> {
        let snapshot = self.request(Request::Workflows).await?;
        tokio::task::spawn_blocking(move || {
            let live = snapshot.live.iter().find(|r| r.run == run).cloned();
            let recorded = snapshot.engine.as_ref().and_then(|engine| {
                let record = engine.db().run(run).map_err(|e| tracing::warn!("{e}")).ok().flatten()?;
                let steps = engine.db().steps(run).unwrap_or_default();
                Some(RunState::recorded(&record, &steps, snapshot.seq))
            });
            match (recorded, live) {
                (Some(recorded), Some(live)) if !recorded.status.is_final() => {
                    Some(RunState { created_ms: recorded.created_ms, ..live })
                }
                (Some(recorded), _) => Some(recorded),
                (None, live) => live,
            }
        })
        .await
        .ok()
    }

    /// What the developer did with an AI fix.
    pub async fn fix_feedback(&self, fix_id: String, outcome: store::Outcome) -> Option<Result<(), Refused>> {
        self.request(|reply| Request::FixFeedback { fix_id, outcome, reply }).await
    }

    /// The hover text at `position` of `path`.
    pub async fn hover(&self, path: PathBuf, position: Position) -> Option<(TextRange, String)> {
        let (found, encoding) = self.request(|reply| Request::Hover { path, position, reply }).await?;
        match found {
            Ok(found) => found,
            // A closed workflow file: read from disk here, off the loop.
            Err(path) => tokio::task::spawn_blocking(move || {
                let text = std::fs::read_to_string(&path).ok()?;
                super::workflows::cron_hover(&text, position, encoding)
            })
            .await
            .ok()
            .flatten(),
        }
    }

    /// Starts a run of the workflow named `workflow`: checked on the loop, committed to the
    /// store off it.
    pub async fn start_run(
        &self,
        workflow: String,
        trigger: Trigger,
        inputs: Map<String, Value>,
    ) -> Option<Result<RunId, Refused>> {
        let start = match self.request(|reply| Request::StartRun { workflow, inputs, reply }).await? {
            Ok(start) => start,
            Err(error) => return Some(Err(error)),
        };
        off_loop(move || start.commit(&trigger, None, None).map_err(|(_, error)| error)).await
    }

    pub async fn cancel_run(&self, run: RunId) -> Option<Result<(), Refused>> {
        self.with_engine(move |engine, _| engine.cancel(run).map_err(Refused::from)).await
    }

    pub async fn rerun(&self, run: RunId) -> Option<Result<RunId, Refused>> {
        self.with_engine(move |engine, _| engine.rerun(run).map(|h| h.id).map_err(Refused::from)).await
    }

    /// Runs `work` with the workflow engine and the root, off the loop.
    async fn with_engine<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Engine, &std::path::Path) -> Result<T, Refused> + Send + 'static,
    ) -> Option<Result<T, Refused>> {
        let (engine, root) = match self.request(Request::Engine).await? {
            Ok(found) => found,
            Err(error) => return Some(Err(error)),
        };
        off_loop(move || work(&engine, &root)).await
    }

    /// Asks the AI providers for a plan of tasks for `prompt` (off the loop).
    pub async fn plan(
        &self,
        prompt: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<Result<Plan, PlanError>> {
        let ai = match self.request(Request::WorkflowAi).await? {
            Ok(ai) => ai,
            Err(error) => return Some(Err(PlanError::NoProvider(error))),
        };
        let plan = crate::workflow::planner::generate(ai.as_ref(), prompt, cancel).await;
        Some(plan.map_err(PlanError::Failed))
    }

    /// Writes an approved plan to `.acas/plans/` and starts it (off the loop).
    pub async fn start_plan(&self, plan: Plan) -> Option<Result<RunId, Refused>> {
        self.with_engine(move |engine, root| super::runs::start_plan(engine, root, &plan)).await
    }

    /// Waits until no background work is in flight and every queued analysis is back.
    pub async fn settled(&self) -> Option<()> {
        self.request(Request::Settled).await
    }
}

/// Runs `work` on a blocking thread: store writes a request needs, kept off the loop. `None`
/// when it panicked.
async fn off_loop<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

/// The text at `range` of a file on disk.
fn text_on_disk(
    root: &std::path::Path,
    path: &std::path::Path,
    range: TextRange,
    max_size: u64,
    encoding: PositionEncoding,
) -> Option<String> {
    let text = crate::files::read_beneath(root, path, max_size).ok()?;
    let index = LineIndex::new(&text);
    let start = index.offset(&text, range.start, encoding);
    let end = index.offset(&text, range.end, encoding);
    text.get(start..end).map(str::to_owned)
}

/// What a spend report needs from the loop: the store, the budgets, the providers' names and
/// the shared store.
pub(super) type SpendSetup = (Option<Store>, Budget, Vec<String>, Option<crate::store::SharedStore>);
