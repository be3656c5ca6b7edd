//! Who an MCP client is to the task queue, the connections the task tools use, and the audit
//! record of every tool call.
//!
//! An agent is named by its client's `clientInfo.name` followed by `/` and a session id of 8
//! hex characters drawn when the client connects (`claude-code/3f9a0c12`), so two clients that
//! give one name never hold each other's tasks. The id lives as long as the connection: a client
//! that reconnects is a new holder, and the tasks of the old one return to the queue when their
//! leases end.
//!
//! Each tool call is appended to the workspace's hash-chained audit log (`store::audit`) as an
//! `mcp_tool_call` record before its answer leaves: the tool, the agent, a summary of the
//! arguments and the outcome. The summary keeps identifiers (paths, ids, fingerprints, labels,
//! numbers, flags), redacted and cut short, and only the length of free text (titles,
//! descriptions, errors, workflow inputs), so that no file content or secret reaches the log.
//! It does not decide what a tool may do (the tools and the policy do).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::model::{ErrorData, JsonObject};
use serde_json::{Map, Value, json};

use crate::agents::{SystemClock, TaskError, Tasks};
use crate::store::audit::{AuditEvent, AuditKind, AuditLog};

/// The longest client name kept in an agent's name (the session id comes after it).
const MAX_CLIENT_NAME: usize = 100;
/// Arguments whose values the audit record keeps: identifiers, never free text.
const KEPT: &[&str] = &[
    "agent",
    "all",
    "category",
    "checker_names",
    "checkers",
    "column",
    "dry_run",
    "fingerprint",
    "from_problem",
    "globs",
    "id",
    "labels",
    "limit",
    "line",
    "max_attempts",
    "max_tokens",
    "mine",
    "needs",
    "path",
    "paths",
    "priority",
    "provider",
    "run",
    "since",
    "state",
    "task",
    "ttl",
    "type",
    "workflow",
];
/// The longest string the summary keeps, and the most items of a list.
const MAX_KEPT_CHARS: usize = 200;
const MAX_KEPT_ITEMS: usize = 20;
/// The most argument names a summary lists.
const MAX_KEYS: usize = 32;

/// A session's agent name: `name/session`.
pub(crate) fn agent_name(client: &str, session: &str) -> String {
    let cleaned: String = client
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .chars()
        .take(MAX_CLIENT_NAME)
        .collect();
    let cleaned = cleaned.trim();
    let name = if cleaned.is_empty() { "agent" } else { cleaned };
    format!("{name}/{session}")
}

/// A new session id: 8 hex characters from the system's random source.
pub(crate) fn session_id() -> String {
    let mut bytes = [0u8; 4];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !random {
        // Unlikely; the process id and the time still keep two processes apart.
        let mix = std::process::id() ^ (crate::time::now_ms() as u32).rotate_left(16);
        bytes = mix.to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The task queue's connections and the audit log's, opened on first use and kept.
pub(crate) struct AgentState {
    root: PathBuf,
    /// Idle queue connections: a call takes one (or opens one) and puts it back. They are the
    /// team's queue when the workspace uses a shared store (`agents::open`).
    queues: Mutex<Vec<Box<dyn Tasks>>>,
    audit: Mutex<Option<AuditLog>>,
}

/// Queue connections kept idle at most.
const MAX_IDLE_QUEUES: usize = 8;

impl AgentState {
    pub fn new(root: &Path) -> AgentState {
        AgentState { root: root.to_owned(), queues: Mutex::new(Vec::new()), audit: Mutex::new(None) }
    }

    /// Runs `f` on a queue connection of this workspace (the team's with a shared store), on a
    /// blocking thread.
    pub async fn with_queue<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&mut dyn Tasks) -> Result<T, TaskError> + Send + 'static,
    ) -> Result<T, TaskError> {
        let state = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let idle = state.queues.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let mut queue = match idle {
                Some(queue) => queue,
                None => crate::agents::open(&state.root, std::sync::Arc::new(SystemClock))?,
            };
            let result = f(&mut *queue);
            let mut idle = state.queues.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_IDLE_QUEUES {
                idle.push(queue);
            }
            result
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(TaskError {
                kind: crate::agents::TaskErrorKind::Store,
                message: format!("the task queue's call stopped: {e}; see ACAS's log"),
            })
        })
    }

    /// Appends the record of one tool call; a failure is logged, never the caller's.
    pub async fn record_call(
        self: &std::sync::Arc<Self>,
        agent: &str,
        tool: &str,
        arguments: Value,
        outcome: Result<(), &ErrorData>,
        took: Duration,
    ) {
        let outcome = match outcome {
            Ok(()) => json!({ "ok": true }),
            Err(error) => json!({
                "ok": false,
                "code": error.code.0,
                "kind": error.data.as_ref().and_then(|d| d.get("kind")).cloned(),
                "message": clip(&redacted(&error.message), 300),
            }),
        };
        let detail = json!({
            "tool": clip(tool, 100),
            "arguments": arguments,
            "outcome": outcome,
            "ms": took.as_millis() as u64,
        });
        let (state, agent, subject) = (self.clone(), agent.to_owned(), format!("tool {}", clip(tool, 100)));
        let appended = tokio::task::spawn_blocking(move || {
            let mut audit = state.audit.lock().unwrap_or_else(|p| p.into_inner());
            if audit.is_none() {
                *audit = Some(AuditLog::open(&state.root, Duration::from_secs(10))?);
            }
            let log = audit.as_mut().expect("opened above");
            log.append(&AuditEvent {
                at_ms: crate::time::now_ms(),
                kind: AuditKind::McpToolCall,
                actor: &agent,
                subject: &subject,
                detail,
            })
            .map(|_| ())
        })
        .await;
        match appended {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, tool, "could not record an MCP tool call in the audit log")
            }
            Err(error) => tracing::error!(%error, tool, "recording an MCP tool call stopped"),
        }
    }
}

/// When a call started, to time it.
pub(crate) fn started() -> Instant {
    Instant::now()
}

/// What the audit record keeps of a call's arguments: see the module's doc.
pub(crate) fn summarise(arguments: &JsonObject) -> Value {
    let mut kept = Map::new();
    for (key, value) in arguments.iter().take(MAX_KEYS) {
        let key = clip(key, 64);
        let value = if KEPT.contains(&key.as_str()) { keep(value, 0) } else { shape(value) };
        kept.insert(key, value);
    }
    if arguments.len() > MAX_KEYS {
        kept.insert("…".to_owned(), json!({ "more_arguments": arguments.len() - MAX_KEYS }));
    }
    Value::Object(kept)
}

/// An identifier's value: strings redacted and cut, lists cut, objects by their shape.
fn keep(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(s) => Value::String(clip(&redacted(s), MAX_KEPT_CHARS)),
        Value::Array(items) if depth == 0 => {
            let mut list: Vec<Value> = items.iter().take(MAX_KEPT_ITEMS).map(|v| keep(v, 1)).collect();
            if items.len() > MAX_KEPT_ITEMS {
                list.push(json!({ "more_items": items.len() - MAX_KEPT_ITEMS }));
            }
            Value::Array(list)
        }
        Value::Array(_) | Value::Object(_) => shape(value),
        other => other.clone(),
    }
}

/// Free text or a nested value: only its type and size.
fn shape(value: &Value) -> Value {
    match value {
        Value::String(s) => json!({ "string_chars": s.chars().count() }),
        Value::Array(items) => json!({ "list_items": items.len() }),
        Value::Object(map) => json!({ "object_keys": map.len() }),
        other => other.clone(),
    }
}

fn redacted(text: &str) -> String {
    crate::escalate::redact::redact_text(text, false).0
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_two_clients_of_one_name_apart() {
        let (a, b) = (session_id(), session_id());
        assert_eq!(a.len(), 8);
        assert_ne!(a, b);
        assert_eq!(agent_name("claude-code", &a), format!("claude-code/{a}"));
        assert_eq!(agent_name(" \u{7}\n ", "00000000"), "agent/00000000");
        let long = "x".repeat(5000);
        assert_eq!(agent_name(&long, "00000000").chars().count(), MAX_CLIENT_NAME + 9);
        assert_eq!(agent_name("a\nb", "00000000"), "a b/00000000");
    }

    #[test]
    fn summaries_keep_identifiers_and_only_the_size_of_text() {
        let secret = "sk-ant-api03-PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA_2O76UMFxFkM";
        let arguments: JsonObject = serde_json::from_value(json!({
            "paths": ["src/a.py", format!("key={secret}")],
            "title": "Fix it",
            "description": format!("the file holds {secret}"),
            "inputs": { "token": secret },
            "priority": 3,
            "ttl": "30s",
            "globs": (0..50).map(|i| format!("g{i}")).collect::<Vec<_>>(),
            "path": "p".repeat(1000),
        }))
        .unwrap();
        let summary = summarise(&arguments);
        let text = summary.to_string();
        assert!(!text.contains(secret), "{text}");
        assert_eq!(summary["paths"][0], "src/a.py");
        assert_eq!(summary["title"], json!({ "string_chars": 6 }));
        assert_eq!(summary["inputs"], json!({ "object_keys": 1 }));
        assert_eq!(summary["priority"], 3);
        assert_eq!(summary["ttl"], "30s");
        assert_eq!(summary["globs"].as_array().unwrap().len(), MAX_KEPT_ITEMS + 1);
        assert_eq!(summary["path"].as_str().unwrap().chars().count(), MAX_KEPT_CHARS + 1);
        let many: JsonObject = (0..100).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(summarise(&many).as_object().unwrap().len(), MAX_KEYS + 1);
    }
}
