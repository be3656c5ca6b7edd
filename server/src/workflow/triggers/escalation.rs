//! `on.escalation`: run a workflow when an AI escalation ends with a given outcome.
//!
//! [`EscalationTriggers::fire`] takes one finished escalation and returns a run for every
//! workflow whose `outcome` is that outcome or `any`. It keeps no state.

use super::{Fired, Trigger, default_inputs};
use crate::workflow::definition::{EscalationOutcome, Workflow};

/// How one escalation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationEvent {
    /// `Fixed`, `Explained` or `Failed`; an event is never `Any`.
    pub outcome: EscalationOutcome,
    /// Workspace-relative, `/`-separated.
    pub path: String,
    pub fingerprint: String,
    /// The provider that answered (or the last one tried), if any was.
    pub provider: Option<String>,
    /// The explanation, or why it failed.
    pub message: String,
}

pub fn outcome_name(outcome: EscalationOutcome) -> &'static str {
    match outcome {
        EscalationOutcome::Fixed => "fixed",
        EscalationOutcome::Explained => "explained",
        EscalationOutcome::Failed => "failed",
        EscalationOutcome::Any => "any",
    }
}

/// The `escalation` triggers of a set of workflows.
#[derive(Default)]
pub struct EscalationTriggers {
    workflows: Vec<(Workflow, EscalationOutcome)>,
}

impl EscalationTriggers {
    pub fn new(workflows: &[Workflow]) -> EscalationTriggers {
        let workflows =
            workflows.iter().filter_map(|w| Some((w.clone(), w.on.escalation.as_ref()?.outcome))).collect();
        EscalationTriggers { workflows }
    }

    pub fn fire(&self, event: &EscalationEvent) -> Vec<Fired> {
        self.workflows
            .iter()
            .filter(|(_, want)| *want == EscalationOutcome::Any || *want == event.outcome)
            .map(|(workflow, _)| Fired {
                workflow: workflow.name.clone(),
                trigger: Trigger::Escalation {
                    outcome: outcome_name(event.outcome).to_owned(),
                    path: event.path.clone(),
                    fingerprint: event.fingerprint.clone(),
                    provider: event.provider.clone(),
                    message: event.message.clone(),
                },
                inputs: default_inputs(workflow),
                inbox: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::definition::{EscalationTrigger, Triggers};
    use crate::workflow::triggers::testing::workflow;
    use EscalationOutcome::*;
    use serde_json::json;

    fn on(outcome: EscalationOutcome) -> Triggers {
        Triggers { escalation: Some(EscalationTrigger { outcome }), ..Triggers::default() }
    }

    #[test]
    fn outcomes_select_workflows() {
        let triggers = EscalationTriggers::new(&[
            workflow("on-failure", on(Failed)),
            workflow("on-fix", on(Fixed)),
            workflow("always", on(Any)),
            workflow("untriggered", Triggers::default()),
        ]);
        let event = |outcome| EscalationEvent {
            outcome,
            path: "src/a.py".into(),
            fingerprint: "F1".into(),
            provider: Some("primary".into()),
            message: "budget exhausted".into(),
        };
        let check = |outcome, expected: &[&str]| {
            let fired: Vec<String> = triggers.fire(&event(outcome)).into_iter().map(|f| f.workflow).collect();
            assert_eq!(fired, expected, "{outcome:?}");
        };
        check(Failed, &["on-failure", "always"]);
        check(Fixed, &["on-fix", "always"]);
        check(Explained, &["always"]);

        assert_eq!(
            triggers.fire(&event(Failed))[0].trigger.to_value(),
            json!({"kind": "escalation", "outcome": "failed", "path": "src/a.py", "fingerprint": "F1",
                   "provider": "primary", "message": "budget exhausted"})
        );
    }
}
