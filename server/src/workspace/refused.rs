//! Why the workspace refused a request from the editor: a kind the front end maps to the
//! protocol's error kinds, and a message for people. It does not know LSP or the protocol.

use crate::escalate::engine::EscalateError;
use crate::workflow::error::{WorkflowError, WorkflowErrorKind};
use crate::workflow::planner::{PlanError, PlanErrorKind};
use crate::workflow::triggers::manual::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedKind {
    /// ACAS failed inside.
    Internal,
    NoProvider,
    InvalidConfig,
    NoEgress,
    BudgetExceeded,
    ProviderFailed,
    Cancelled,
    UnsupportedFile,
    NoDiagnostic,
    FixNotFound,
    NoWorkspace,
    WorkflowNotFound,
    /// `input` names the input at fault.
    InvalidInputs,
    RunNotFound,
    RunState,
    InvalidWorkflow,
    InvalidPlan,
    StoreFailed,
    /// The workspace has no checker of that name.
    CheckerNotFound,
    /// The workspace is not trusted to run its checkers.
    Untrusted,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub kind: RefusedKind,
    pub message: String,
    /// The workflow input at fault, for [`RefusedKind::InvalidInputs`].
    pub input: Option<String>,
}

impl Refused {
    pub fn new(kind: RefusedKind, message: impl Into<String>) -> Refused {
        Refused { kind, message: message.into(), input: None }
    }

    pub fn no_workspace() -> Refused {
        Refused::new(RefusedKind::NoWorkspace, "workflows need a workspace folder and its store")
    }
}

impl From<&EscalateError> for Refused {
    fn from(e: &EscalateError) -> Refused {
        let kind = match e {
            EscalateError::NoProvider => RefusedKind::NoProvider,
            EscalateError::Config(_) => RefusedKind::InvalidConfig,
            EscalateError::NoEgress(_) => RefusedKind::NoEgress,
            EscalateError::OverBudget(_) | EscalateError::SpendDenied(_) => RefusedKind::BudgetExceeded,
            EscalateError::Exhausted(_) => RefusedKind::ProviderFailed,
            EscalateError::Cancelled => RefusedKind::Cancelled,
            EscalateError::Internal(_) => RefusedKind::Internal,
        };
        Refused::new(kind, e.to_string())
    }
}

impl From<WorkflowError> for Refused {
    fn from(e: WorkflowError) -> Refused {
        let kind = match e.kind {
            WorkflowErrorKind::Store | WorkflowErrorKind::Fenced => RefusedKind::StoreFailed,
            WorkflowErrorKind::NotFound => RefusedKind::RunNotFound,
            WorkflowErrorKind::Input => RefusedKind::InvalidInputs,
            WorkflowErrorKind::Definition => RefusedKind::InvalidWorkflow,
            WorkflowErrorKind::State | WorkflowErrorKind::Claimed => RefusedKind::RunState,
        };
        Refused::new(kind, e.message)
    }
}

impl From<InputError> for Refused {
    fn from(e: InputError) -> Refused {
        Refused { kind: RefusedKind::InvalidInputs, message: e.message, input: Some(e.input) }
    }
}

impl From<PlanError> for Refused {
    fn from(e: PlanError) -> Refused {
        let kind = match e.kind {
            PlanErrorKind::Provider => RefusedKind::ProviderFailed,
            PlanErrorKind::Invalid => RefusedKind::InvalidPlan,
            PlanErrorKind::Cancelled => RefusedKind::Cancelled,
        };
        Refused::new(kind, e.to_string())
    }
}
