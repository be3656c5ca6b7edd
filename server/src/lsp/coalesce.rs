//! Keeps a slow editor from falling behind on workflow runs. Between the loop's outputs and the
//! writer of notifications, a run's state that the writer has not taken yet is replaced by the
//! run's newer state, in place: a run of many steps sends as many states as the editor reads,
//! not one per step change, and answers to requests do not queue behind them. Every other
//! output passes through in order, and the last state of a run always arrives.

use std::collections::{HashMap, VecDeque};

use tokio::sync::mpsc;

use crate::workflow::state::RunId;
use crate::workspace::Output;

/// Starts the coalescing task; the writer reads the returned receiver.
pub fn coalesce(mut input: mpsc::UnboundedReceiver<Output>) -> mpsc::Receiver<Output> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut pending = Pending::default();
        let mut open = true;
        loop {
            if pending.is_empty() {
                match input.recv().await {
                    Some(output) => pending.push(output),
                    None => break,
                }
                continue;
            }
            tokio::select! {
                // Take in everything that is ready before handing one on: that is what lets a
                // newer state replace an older one.
                biased;
                received = input.recv(), if open => match received {
                    Some(output) => pending.push(output),
                    None => open = false,
                },
                permit = tx.reserve() => match permit {
                    Ok(permit) => {
                        if let Some(output) = pending.pop() {
                            permit.send(output);
                        }
                    }
                    Err(_) => break,
                },
            }
        }
    });
    rx
}

/// Outputs not yet handed on, in order, with where each run's state sits.
#[derive(Default)]
struct Pending {
    queue: VecDeque<Output>,
    /// The number of outputs handed on so far: the position of `queue[0]` in the whole stream.
    taken: u64,
    /// The stream position of each run's pending state.
    runs: HashMap<RunId, u64>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn push(&mut self, output: Output) {
        if let Output::WorkflowRun(state) = &output {
            if let Some(&at) = self.runs.get(&state.run) {
                let index = usize::try_from(at - self.taken).expect("a pending position");
                self.queue[index] = output;
                return;
            }
            self.runs.insert(state.run, self.taken + self.queue.len() as u64);
        }
        self.queue.push_back(output);
    }

    fn pop(&mut self) -> Option<Output> {
        let output = self.queue.pop_front()?;
        if let Output::WorkflowRun(state) = &output {
            self.runs.remove(&state.run);
        }
        self.taken += 1;
        Some(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::definition::RunStatus;
    use crate::workspace::{MessageLevel, RunState};

    fn run(run: RunId, status: RunStatus) -> Output {
        Output::WorkflowRun(RunState {
            run,
            workflow: "w".into(),
            status,
            steps: Vec::new(),
            error: None,
            created_ms: 0,
            finished_ms: None,
            seq: 0,
        })
    }

    fn message(text: &str) -> Output {
        Output::Message { level: MessageLevel::Info, text: text.into() }
    }

    fn shown(output: &Output) -> String {
        match output {
            Output::WorkflowRun(state) => format!("run {} {:?}", state.run, state.status),
            Output::Message { text, .. } => text.clone(),
            other => format!("{other:?}"),
        }
    }

    /// Outputs that piled up before the writer took any: each run keeps its place and shows its
    /// newest state; messages keep their order.
    #[tokio::test]
    async fn pending_run_states_are_replaced_by_the_newest_in_place() {
        let (tx, rx) = mpsc::unbounded_channel();
        for output in [
            message("a"),
            run(1, RunStatus::Queued),
            run(2, RunStatus::Running),
            message("b"),
            run(1, RunStatus::Running),
            run(1, RunStatus::Succeeded),
            run(2, RunStatus::Failed),
        ] {
            tx.send(output).unwrap();
        }
        drop(tx);
        let mut out = coalesce(rx);
        let mut seen = Vec::new();
        while let Some(output) = out.recv().await {
            seen.push(shown(&output));
        }
        assert_eq!(seen, ["a", "run 1 Succeeded", "run 2 Failed", "b"]);
    }

    /// A run's state taken by the writer is not replaced; a newer one follows it.
    #[test]
    fn a_state_handed_on_is_followed_by_the_next() {
        let mut pending = Pending::default();
        pending.push(run(7, RunStatus::Running));
        assert!(matches!(pending.pop(), Some(Output::WorkflowRun(s)) if s.status == RunStatus::Running));
        pending.push(message("m"));
        pending.push(run(7, RunStatus::Succeeded));
        pending.push(run(7, RunStatus::Failed));
        let rest: Vec<String> = std::iter::from_fn(|| pending.pop()).map(|o| shown(&o)).collect();
        assert_eq!(rest, ["m", "run 7 Failed"]);
    }
}
