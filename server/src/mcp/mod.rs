//! `acas mcp`: the Model Context Protocol server, for AI coding agents.
//!
//! A front end beside `lsp`: it runs the same workspace loop as `acas serve` on the same
//! `.acas/state.db` (the workspace lease decides which process runs the shared work; this one
//! answers reads and tool calls either way) and turns tool calls, resource reads and
//! subscriptions into the workspace's requests and the domain modules' plain APIs. It knows
//! nothing of LSP, and no domain module knows it.
//!
//! `tools/` holds one file per group of tools and the one table that lists them
//! (`tools/mod.rs`); `resources.rs` the resources and their subscriptions; `http.rs` the
//! streamable HTTP transport behind a bearer token. Every tool call is recorded in the
//! activity log under the client's name.

mod agents;
mod http;
mod policy;
mod resources;
mod stdio;
mod tools;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode, ErrorData,
    Implementation, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, ServiceExt};
use serde_json::Value;

use crate::agents::tasks::MAX_NAME_CHARS;
use crate::store::{AgentEvent, Record, Store};
use crate::workspace::{self, Handle};

pub use http::{ENDPOINT, MAX_CONNECTIONS, TOKEN_FILE, token, token_path};

/// How an agent reaches the server.
pub enum Transport {
    Stdio,
    /// Streamable HTTP on 127.0.0.1:`port` (0: any free port).
    Http {
        port: u16,
    },
}

/// What every connection shares: the workspace, its store, the subscriptions.
pub(crate) struct Shared {
    pub root: PathBuf,
    pub handle: Handle,
    /// `None` when nothing can be recorded (the workspace gave no store).
    pub store: Option<Store>,
    pub subscriptions: resources::Subscriptions,
    /// The task queue's connections and the audit log of tool calls.
    pub agents: Arc<agents::AgentState>,
    /// Set when a workflow step started this server: every client is that run's agent, in the
    /// run's session, whatever name it gives.
    pub acting_for: Option<crate::process_tree::Acting>,
    next_connection: AtomicU64,
}

/// One client's connection.
#[derive(Clone)]
pub(crate) struct Server {
    shared: Arc<Shared>,
    connection: u64,
    /// Keeps two clients of one name apart as task holders (see `agents`).
    session: String,
}

/// What a tool answers: a few lines for the model and the same as structured content.
pub(crate) struct Answer {
    pub text: String,
    pub data: Value,
    /// The workspace-relative path the call was about, for the activity log.
    pub path: Option<String>,
}

/// The answer with every secret removed from its text and from every string of its data. What
/// the server hands to an agent reaches the agent's model, and so its provider: diagnostics
/// quote source tokens, commit subjects name passwords. A value removed from one string is
/// removed from every other (the same rule as an escalation's request); `context` is redacted
/// already, and its markers stay as they are.
pub(crate) fn redacted(mut answer: Answer) -> Answer {
    redact_all(&mut answer.text, &mut answer.data);
    answer
}

/// Redacts `text` and every string inside `data` as parts of one request.
pub(crate) fn redact_all(text: &mut String, data: &mut Value) {
    fn strings<'v>(value: &'v mut Value, out: &mut Vec<&'v mut String>) {
        match value {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter_mut().for_each(|v| strings(v, out)),
            Value::Object(map) => map.values_mut().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut parts: Vec<&mut String> = vec![text];
    strings(data, &mut parts);
    let views: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
    let (clean, found) =
        crate::escalate::redact::redact_parts(&views, &mut crate::escalate::redact::Secrets::default());
    if found.total() == 0 {
        return;
    }
    for (part, clean) in parts.into_iter().zip(clean) {
        if *part != clean {
            *part = clean;
        }
    }
}

/// An MCP error for arguments a model can fix: what is wrong and what to send instead.
pub(crate) fn invalid(message: impl Into<String>) -> ErrorData {
    ErrorData::invalid_params(message.into(), None)
}

/// An MCP error for a request that cannot be served as asked (not the arguments' shape).
pub(crate) fn refused(kind: &str, message: impl Into<String>) -> ErrorData {
    ErrorData::new(ErrorCode::INVALID_REQUEST, message.into(), Some(serde_json::json!({ "kind": kind })))
}

/// An MCP error for a failure inside ACAS.
pub(crate) fn internal(message: impl Into<String>) -> ErrorData {
    ErrorData::internal_error(message.into(), None)
}

impl Shared {
    /// `path` (workspace-relative or absolute) as an absolute path inside the workspace; see
    /// [`confine`].
    pub fn inside(&self, path: &str) -> Result<PathBuf, ErrorData> {
        confine(&self.root, path)
    }

    /// The agent a client is judged as: the enclosing run's when a step started this server,
    /// else its name as [`crate::policy::agent_from_client`] makes it.
    pub fn policy_agent(&self, client: &str) -> String {
        match &self.acting_for {
            Some(acting) => acting.agent.clone(),
            None => crate::policy::agent_from_client(client),
        }
    }

    pub fn relative(&self, path: &Path) -> String {
        crate::files::relative(&self.root, path)
    }
}

/// `path` (relative to `root`, the canonical workspace root, or absolute) as an absolute path
/// inside the workspace, refused when it leaves it (`..`, a link pointing out) or does not exist.
pub(crate) fn confine(root: &Path, path: &str) -> Result<PathBuf, ErrorData> {
    if path.trim().is_empty() {
        return Err(invalid("an empty path: give a file or directory relative to the workspace root"));
    }
    let joined = if Path::new(path).is_absolute() { PathBuf::from(path) } else { root.join(path) };
    // `..` is judged on the path as written, then links on the path as it resolves.
    let mut lexical = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let outside = || {
        invalid(format!(
            "`{path}` is outside the workspace {}; only its files can be checked or explained",
            root.display()
        ))
    };
    if !lexical.starts_with(root) {
        return Err(outside());
    }
    let resolved = std::fs::canonicalize(&lexical).map_err(|e| {
        invalid(format!(
            "cannot open `{path}`: {e}; give a path relative to the workspace root {}",
            root.display()
        ))
    })?;
    if !resolved.starts_with(root) {
        return Err(outside());
    }
    Ok(resolved)
}

/// A client's name as ACAS records it; see [`Server::agent`].
pub fn client_name(given: &str) -> String {
    let shown = crate::display::shown(given.trim());
    if shown.is_empty() {
        return "unknown agent".to_owned();
    }
    shown.chars().take(MAX_NAME_CHARS).collect()
}

impl Server {
    /// The client's name as it gave it in `initialize`, normalised: control, bidi and invisible
    /// characters written as escapes (`\u{1b}`), at most [`MAX_NAME_CHARS`] characters, and
    /// `unknown agent` when empty. It is recorded and shown, so it must not drive a terminal or
    /// pass for another agent's name. Under a workflow step, the run's agent instead.
    fn agent(&self, context: &RequestContext<RoleServer>) -> String {
        if let Some(acting) = &self.shared.acting_for {
            return acting.agent.clone();
        }
        context
            .peer
            .peer_info()
            .map_or_else(|| "unknown agent".to_owned(), |info| client_name(&info.client_info.name))
    }

    /// The client as the task queue and the audit log name it: `name/session`; under a
    /// workflow step, the run's agent in the run's session when it has one.
    fn holder(&self, agent: &str) -> String {
        match self.shared.acting_for.as_ref().and_then(|a| a.session.as_deref()) {
            Some(session) => format!("{agent}/{session}"),
            None => agents::agent_name(agent, &self.session),
        }
    }

    fn record(&self, agent: String, tool: &str, path: Option<String>, summary: String) {
        if let Some(store) = &self.shared.store {
            store.record(vec![Record::Agent(AgentEvent {
                at_ms: workspace::now_ms(),
                agent,
                tool: tool.to_owned(),
                path: path.unwrap_or_default(),
                summary,
            })]);
        }
    }
}

#[allow(deprecated)] // resources/subscribe: what clients before 2026-07-28 use, and all this server speaks
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("acas", env!("CARGO_PKG_VERSION")))
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_instructions(
                "ACAS watches this workspace. Call `check` after an edit to validate it in milliseconds, \
                 `problems` for what is open and how it was fixed before, `context` or `explain` for an error, \
                 `workflows`/`run_workflow`/`run_status` for the project's workflows, `activity` for recent changes.",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        // The handshake versions: what agents speak today, and where the client's name and
        // resources/subscribe come from.
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::list().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let agent = self.agent(&context);
        let holder = self.holder(&agent);
        let name = request.name.to_string();
        let arguments = request.arguments.unwrap_or_default();
        let (summary, started) = (agents::summarise(&arguments), agents::started());
        let result =
            tools::call(&self.shared, &agent, &holder, &name, arguments, &context.ct).await.map(redacted);
        let outcome = result.as_ref().map(|_| ());
        self.shared.agents.record_call(&holder, &name, summary, outcome, started.elapsed()).await;
        match result {
            Ok(answer) => {
                let summary = answer.text.lines().next().unwrap_or("").to_owned();
                self.record(agent, &name, answer.path.clone(), summary);
                let mut result = CallToolResult::success(vec![ContentBlock::text(answer.text)]);
                result.structured_content = Some(answer.data);
                Ok(result.into())
            }
            Err(mut error) => {
                error.message = crate::escalate::redact::redact_text(&error.message, false).0.into();
                self.record(agent, &name, None, format!("error: {}", error.message));
                Err(error)
            }
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list(&self.shared).await))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(resources::templates()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(&self.shared, &request.uri).await.map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        resources::check_uri(&request.uri)?;
        self.shared.subscriptions.add(self.connection, context.peer.clone(), request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.shared.subscriptions.remove(self.connection, &request.uri);
        Ok(())
    }
}

impl Shared {
    fn connect(self: &Arc<Shared>) -> Server {
        Server {
            shared: self.clone(),
            connection: self.next_connection.fetch_add(1, Ordering::Relaxed),
            session: agents::session_id(),
        }
    }
}

/// Serves the workspace at `root` (absolute, a directory whose state this process can write)
/// until the client goes away (stdio) or the process is interrupted (HTTP).
/// `listening` hears the HTTP server's address and the token's path once it is bound.
pub async fn serve(
    root: PathBuf,
    transport: Transport,
    listening: impl FnOnce(std::net::SocketAddr, &Path),
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let options = workspace::Options {
        root: root.clone(),
        encoding: crate::text::PositionEncoding::Utf16,
        settings: Default::default(),
        scan: true,
        watch: true,
        record: true,
        symbols: true,
        analysis_threads: 2,
        acting_for: crate::process_tree::acting_for(),
    };
    let (handle, outputs) = workspace::start(options);
    let store = handle.request(workspace::Request::Problems).await.and_then(|(store, _)| store);
    let agent_state = Arc::new(agents::AgentState::new(&root));
    let shared = Arc::new(Shared {
        root,
        handle: handle.clone(),
        store,
        subscriptions: resources::Subscriptions::default(),
        agents: agent_state,
        acting_for: crate::process_tree::acting_for(),
        next_connection: AtomicU64::new(0),
    });
    let pump = tokio::spawn(resources::pump(shared.clone(), outputs));
    let result = match transport {
        Transport::Stdio => {
            let server = shared.connect();
            match server.serve(stdio::LineTransport::new(tokio::io::stdin(), tokio::io::stdout())).await {
                Ok(running) => running.waiting().await.map(|_| ()).context("serving MCP over stdio"),
                Err(error) => Err(anyhow::anyhow!("the MCP client's initialize failed: {error}")),
            }
        }
        Transport::Http { port } => http::serve(shared.clone(), port, listening).await,
    };
    pump.abort();
    handle.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::confine;

    #[test]
    fn paths_stay_inside_the_workspace() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.py"), "x = 1\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("src/leak.txt")).unwrap();

        assert_eq!(confine(&root, "src/a.py").unwrap(), root.join("src/a.py"));
        assert_eq!(confine(&root, "./src/../src/a.py").unwrap(), root.join("src/a.py"));
        assert_eq!(confine(&root, &root.join("src/a.py").to_string_lossy()).unwrap(), root.join("src/a.py"));
        assert_eq!(confine(&root, ".").unwrap(), root);
        for escape in ["../x", "src/../../x", "/etc/passwd", "out/secret.txt", "src/leak.txt", "out"] {
            let error = confine(&root, escape).unwrap_err();
            assert!(error.message.contains("is outside the workspace"), "{escape}: {}", error.message);
        }
        let missing = confine(&root, "src/nope.py").unwrap_err();
        assert!(missing.message.contains("cannot open `src/nope.py`"), "{}", missing.message);
        assert!(confine(&root, " ").unwrap_err().message.contains("an empty path"));
    }
}
