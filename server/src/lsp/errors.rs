//! The errors ACAS answers requests and commands with: a JSON-RPC code, a message for people,
//! and `data: { "kind": ... }` (the protocol's [`ext::ErrorKind`]) for clients to decide on.
//! Every error a handler returns is built here.

use acas_protocol::ext::{self, ErrorKind};
use tower_lsp_server::jsonrpc::{Error, ErrorCode};

use crate::workspace::Refused;

/// LSP's `ServerNotInitialized`.
const NOT_INITIALIZED: i64 = -32002;
/// A request ACAS understood and could not do (no provider, a budget, no such run...).
const REFUSED: i64 = -32001;

/// An error of `kind` with `message`.
pub fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    with_data(kind, message.into(), ext::ErrorData { kind, input: None, reason: None })
}

fn with_data(kind: ErrorKind, message: String, data: ext::ErrorData) -> Error {
    let code = match kind {
        ErrorKind::NotInitialized => ErrorCode::ServerError(NOT_INITIALIZED),
        ErrorKind::InvalidParams => ErrorCode::InvalidParams,
        ErrorKind::InvalidRequest => ErrorCode::InvalidRequest,
        ErrorKind::Internal => ErrorCode::InternalError,
        ErrorKind::Cancelled => ErrorCode::RequestCancelled,
        _ => ErrorCode::ServerError(REFUSED),
    };
    Error {
        code,
        message: message.into(),
        data: Some(serde_json::to_value(data).expect("error data serialises")),
    }
}

pub fn invalid_params(message: impl Into<String>) -> Error {
    error(ErrorKind::InvalidParams, message)
}

pub fn internal(message: impl Into<String>) -> Error {
    error(ErrorKind::Internal, message)
}

pub fn not_initialized() -> Error {
    error(ErrorKind::NotInitialized, "the server is not initialized")
}

/// The loop stopped (the server is shutting down, or a handler panicked on it).
pub fn stopped() -> Error {
    internal("the workspace has stopped")
}

/// What the workspace refused, with the input at fault for `invalidInputs`.
pub fn refused(refused: Refused) -> Error {
    let kind = super::convert::error_kind(refused.kind);
    let reason = refused.input.is_some().then(|| refused.message.clone());
    with_data(kind, refused.message, ext::ErrorData { kind, input: refused.input, reason })
}

/// A failed escalation or planning, by what its domain error says.
pub fn escalate(e: &crate::escalate::engine::EscalateError) -> Error {
    refused(Refused::from(e))
}

pub fn plan(e: crate::workflow::planner::PlanError) -> Error {
    refused(Refused::from(e))
}

/// An error answer as a notification carries it, for work that answered with a handle first.
pub fn failure(error: &Error) -> ext::Failure {
    let kind = error
        .data
        .as_ref()
        .and_then(|d| serde_json::from_value::<ext::ErrorData>(d.clone()).ok())
        .map_or(ErrorKind::Internal, |d| d.kind);
    ext::Failure { kind, message: error.message.to_string() }
}
