//! Command `acas.escalate`: escalates one diagnostic without holding the request open. What
//! can be decided locally (the arguments, the file, the diagnostic, the providers named) is
//! decided before answering, and a refusal is the command's error; then the command answers at
//! once with `{ escalationId }`, and the escalation reports itself ([`work::Work`]: `$/progress`
//! or messages, cancellable) and ends with `acas/escalationDone`, next to the `acas-ai`
//! diagnostic and its quick fix. The escalation itself is the workspace's
//! ([`crate::workspace::Handle::prepare_escalation`], [`crate::workspace::Handle::run_escalation`]).

use std::sync::atomic::Ordering;

use acas_protocol::ext;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::{LSPAny, MessageType};

use crate::escalate::StreamEvent;
use crate::lsp::work::{self, Kind, Work};
use crate::lsp::{Backend, argument, convert, errors, file_path_of, invalid_params, stopped};
use crate::workspace::{Answer, EscalateRequest, EscalationError};

/// Characters streamed between two progress reports.
const REPORT_EVERY: usize = 400;

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    if arguments.is_empty() {
        return Err(invalid_params("acas.escalate needs {uri, range} or {uri, position}"));
    }
    let args: ext::EscalateArgs = argument(ext::ESCALATE_COMMAND, arguments)?;
    let handle = backend.handle()?.clone();
    let path = file_path_of(&args.uri)?;
    let range = convert::escalate_range(&args)
        .ok_or_else(|| invalid_params("acas.escalate needs a range or a position"))?;
    let ext::EscalateArgs { uri, range: sent_range, diagnostic, provider, fingerprint, .. } = args;
    let request = EscalateRequest {
        path: path.clone(),
        range,
        choose: sent_range.is_none(),
        diagnostic: diagnostic.map(convert::external_diagnostic),
        provider,
        fingerprint,
    };
    let prepared = handle.prepare_escalation(request).await.map_err(|e| error_of(&e))?;
    let cancel = CancellationToken::new();
    let ticket = work::register(Kind::Escalation, &backend.cancellable, &cancel);
    let escalation_id = ticket.id;
    let (client, progress) = (backend.client.clone(), backend.progress.load(Ordering::SeqCst));
    let shown = match &backend.root() {
        Some(root) => crate::files::relative(root, &path),
        None => path.display().to_string(),
    };
    let about = format!("{shown}:{}", prepared.range.start.line + 1);
    let claim = ticket.claim.clone();
    tokio::spawn(async move {
        // The escalation starts at once; its reports wait until the editor was told it began.
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
        let started = format!("about {about}");
        let reporter = async move {
            let work = Work::begin(client, progress, ticket, "ACAS: asking AI", started).await;
            while let Some(message) = received.recv().await {
                work.report(message).await;
            }
            work
        };
        let escalation = async {
            let mut chars = 0usize;
            let mut reported_at = 0usize;
            let mut on_event = |provider: &str, event: StreamEvent| match event {
                StreamEvent::Started => {
                    let _ = events.send(format!("asking {provider}"));
                }
                StreamEvent::Text(text) => {
                    chars += text.chars().count();
                    if reported_at == 0 || chars - reported_at >= REPORT_EVERY {
                        reported_at = chars.max(1);
                        let _ = events.send(format!("{provider}: {chars} characters received"));
                    }
                }
                StreamEvent::Usage(_) => {}
            };
            let result = handle.run_escalation(prepared, &mut on_event, &cancel, &|| claim.claim()).await;
            drop(events);
            result
        };
        let (result, work) = tokio::join!(escalation, reporter);
        let (params, level, message) = match result {
            Ok(answer) => {
                let result = result_of(answer);
                let message = ended(&about, &result);
                (
                    ext::EscalationDoneParams { escalation_id, uri, result: Some(result), error: None },
                    MessageType::INFO,
                    message,
                )
            }
            Err(error) => {
                let failure = failure_of(&error);
                let level = match failure.kind {
                    ext::ErrorKind::Cancelled => MessageType::INFO,
                    _ => MessageType::ERROR,
                };
                let message = format!("no answer about {about}: {}", failure.message);
                (
                    ext::EscalationDoneParams { escalation_id, uri, result: None, error: Some(failure) },
                    level,
                    message,
                )
            }
        };
        let client = work.client().clone();
        work.end(level, message).await;
        client.send_notification::<ext::EscalationDone>(params).await;
    });
    let started = ext::EscalationStarted { escalation_id };
    Ok(Some(serde_json::to_value(started).expect("results serialise")))
}

/// What the end of an escalation says: the explanation's first line, and whether a fix is
/// offered.
fn ended(about: &str, result: &ext::EscalateResult) -> String {
    let first = result.explanation.trim().lines().next().unwrap_or_default();
    let fix = match (&result.fix_id, &result.fix_rejected) {
        (Some(_), _) => " A verified fix is offered as a quick fix.".to_owned(),
        (None, Some(why)) => format!(" No fix is offered: {why}"),
        (None, None) => String::new(),
    };
    format!("{about}: {first}{fix}")
}

fn result_of(Answer { explained, fix_id }: Answer) -> ext::EscalateResult {
    ext::EscalateResult {
        explanation: explained.explanation,
        fix_id,
        fix_rejected: explained.fix_rejected,
        provider: explained.provider,
        model: explained.model,
        cost_usd: crate::escalate::cost::usd(explained.cost_micros),
        cached: explained.cached,
    }
}

fn error_of(error: &EscalationError) -> Error {
    match error {
        EscalationError::Refused(refused) => errors::refused(refused.clone()),
        EscalationError::Escalate(error) => errors::escalate(error),
        EscalationError::Stopped => stopped(),
    }
}

/// An error as `acas/escalationDone` carries it: the kind an error answer would have.
fn failure_of(error: &EscalationError) -> ext::Failure {
    errors::failure(&error_of(error))
}
