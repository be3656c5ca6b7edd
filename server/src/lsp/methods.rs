//! The one table of what the server serves beyond the standard LSP methods: the `acas/`
//! requests and notifications, the standard methods ACAS registers itself, and every
//! `workspace/executeCommand` command.
//!
//! The dispatch (registration with the service, the command switch), the `initialize`
//! capabilities (`executeCommandProvider.commands` and `experimental.acas`) and the test that
//! `protocol/README.md` documents each entry are all built from [`METHODS`] and the macro that
//! defines it: adding a method or a command is one line here and a handler file.

use acas_protocol::ext;
use tower_lsp_server::LspServiceBuilder;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::LSPAny;
use tower_lsp_server::ls_types::notification::Notification as _;
use tower_lsp_server::ls_types::request::Request as _;

use super::{Backend, invalid_params, notifications, requests, test_commands_enabled};

/// How a method is reached, and so how it is advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An `acas/` request the client sends; listed in `experimental.acas.methods`.
    Request,
    /// An `acas/` notification the client sends; listed in `experimental.acas.methods`.
    Notification,
    /// A standard notification the service does not route itself; not advertised.
    Standard,
    /// An `acas/` notification the server sends; listed in `experimental.acas.notifications`.
    ServerNotification,
    /// A `workspace/executeCommand` command: listed in `executeCommandProvider.commands`, and in
    /// `experimental.acas.commands` when `public`. A `test_only` one exists only when
    /// `ACAS_ENABLE_TEST_COMMANDS=1`.
    Command { public: bool, test_only: bool },
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Method {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
}

/// Sent by the client after it applied an AI quick fix (attached to the code action).
pub(super) const FIX_APPLIED_COMMAND: &str = "acas.fixApplied";
/// Exists only when `ACAS_ENABLE_TEST_COMMANDS=1`, to prove failure handling.
pub(super) const TEST_PANIC_COMMAND: &str = "acas.test.panic";
const WORK_DONE_PROGRESS_CANCEL: &str = "window/workDoneProgress/cancel";

macro_rules! table {
    (
        acas: [$($method:expr => $method_handler:path, $kind:expr);* $(;)?],
        standard: [$($standard:expr => $standard_handler:path),* $(,)?],
        server_notifications: [$($sent:expr),* $(,)?],
        commands: [$($command:expr => $command_handler:path, public: $public:expr, test_only: $test_only:expr);* $(;)?],
    ) => {
        /// Every method and command, in the order of the protocol's documentation.
        pub(super) const METHODS: &[Method] = &[
            $(Method { name: $method, kind: $kind },)*
            $(Method { name: $standard, kind: Kind::Standard },)*
            $(Method { name: $sent, kind: Kind::ServerNotification },)*
            $(Method { name: $command, kind: Kind::Command { public: $public, test_only: $test_only } },)*
        ];

        /// Registers every method the service does not route itself.
        pub(super) fn register(builder: LspServiceBuilder<Backend>) -> LspServiceBuilder<Backend> {
            builder
                $(.custom_method($method, $method_handler))*
                $(.custom_method($standard, $standard_handler))*
        }

        /// Runs the command `name` with its arguments.
        pub(super) async fn run_command(
            backend: &Backend,
            name: &str,
            arguments: Vec<LSPAny>,
        ) -> Result<Option<LSPAny>> {
            $(
                if name == $command && (!$test_only || test_commands_enabled()) {
                    return $command_handler(backend, arguments).await;
                }
            )*
            Err(invalid_params(format!("unknown command `{name}`")))
        }
    };
}

table! {
    acas: [
        ext::ExternalDiagnostics::METHOD => notifications::external_diagnostics::handle, Kind::Notification;
        ext::Problems::METHOD => requests::problems::handle, Kind::Request;
        ext::Status::METHOD => requests::status::handle, Kind::Request;
        ext::Spend::METHOD => requests::spend::handle, Kind::Request;
        ext::FixFeedback::METHOD => notifications::fix_feedback::handle, Kind::Notification;
        ext::Workflows::METHOD => requests::workflows::handle, Kind::Request;
        ext::Tasks::METHOD => requests::tasks::handle, Kind::Request;
    ],
    standard: [
        WORK_DONE_PROGRESS_CANCEL => notifications::progress_cancel::handle,
    ],
    server_notifications: [
        ext::WorkflowRun::METHOD,
        ext::EscalationDone::METHOD,
        ext::PlanReady::METHOD,
        ext::TasksChanged::METHOD,
        ext::StoreStatus::METHOD,
        ext::SpendChanged::METHOD,
    ],
    commands: [
        ext::ESCALATE_COMMAND => requests::escalate::handle, public: true, test_only: false;
        FIX_APPLIED_COMMAND => requests::fix_applied::handle, public: false, test_only: false;
        ext::WORKFLOW_RUN_COMMAND => requests::workflow_run::handle, public: true, test_only: false;
        ext::WORKFLOW_CANCEL_COMMAND => requests::workflow_cancel::handle, public: true, test_only: false;
        ext::WORKFLOW_RERUN_COMMAND => requests::workflow_rerun::handle, public: true, test_only: false;
        ext::PLAN_COMMAND => requests::plan::handle, public: true, test_only: false;
        ext::CANCEL_COMMAND => requests::cancel::handle, public: true, test_only: false;
        ext::RUN_CHECKERS_COMMAND => requests::run_checkers::handle, public: true, test_only: false;
        ext::TASK_FROM_PROBLEM_COMMAND => requests::task_from_problem::handle, public: true, test_only: false;
        TEST_PANIC_COMMAND => requests::test_panic::handle, public: false, test_only: true;
    ],
}

/// The names of the methods of `kind`.
fn names(kind: impl Fn(Kind) -> bool) -> Vec<&'static str> {
    METHODS.iter().filter(|m| kind(m.kind)).map(|m| m.name).collect()
}

/// `executeCommandProvider.commands`: every command this process runs.
pub(super) fn commands() -> Vec<String> {
    let enabled = test_commands_enabled();
    names(|k| matches!(k, Kind::Command { test_only, .. } if !test_only || enabled))
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// `experimental.acas`: the version, and the `acas/` methods, notifications and commands.
pub(super) fn experimental() -> serde_json::Value {
    serde_json::json!({ "acas": {
        "version": env!("CARGO_PKG_VERSION"),
        "methods": names(|k| matches!(k, Kind::Request | Kind::Notification)),
        "notifications": names(|k| k == Kind::ServerNotification),
        "commands": names(|k| matches!(k, Kind::Command { public: true, .. })),
    } })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method and command of the table a client can use has its entry in the protocol's
    /// documentation.
    #[test]
    fn the_protocol_documentation_lists_every_method_and_command() {
        let readme = include_str!("../../../protocol/README.md");
        let missing: Vec<&str> = METHODS
            .iter()
            .filter(|m| !matches!(m.kind, Kind::Standard | Kind::Command { test_only: true, .. }))
            .map(|m| m.name)
            .filter(|name| !readme.contains(&format!("`{name}`")))
            .collect();
        assert!(missing.is_empty(), "protocol/README.md does not document {missing:?}");
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a method or command is listed twice");
    }
}
