//! Command `acas.escalate`: escalates one diagnostic, reporting the providers' progress with
//! `$/progress` (cancellable), and answers with the explanation and the id of its quick fix.
//! The escalation itself is the workspace's ([`crate::workspace::Handle::escalate`]).

use std::sync::atomic::{AtomicU64, Ordering};

use acas_protocol::ext;
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{LSPAny, NumberOrString};

use crate::escalate::StreamEvent;
use crate::lsp::{Backend, Registered, argument, convert, errors, file_path_of, invalid_params, stopped};
use crate::workspace::{Answer, EscalateRequest, EscalationError};

/// Numbers the escalations' progress tokens.
static ESCALATIONS: AtomicU64 = AtomicU64::new(1);

/// Characters streamed between two progress reports.
const REPORT_EVERY: usize = 400;

pub(crate) async fn handle(backend: &Backend, arguments: Vec<LSPAny>) -> Result<Option<LSPAny>> {
    if arguments.is_empty() {
        return Err(invalid_params("acas.escalate needs {uri, range} or {uri, position}"));
    }
    let args: ext::EscalateArgs = argument(ext::ESCALATE_COMMAND, arguments)?;
    let result = escalate(backend, args).await?;
    Ok(Some(serde_json::to_value(result).expect("results serialise")))
}

async fn escalate(backend: &Backend, args: ext::EscalateArgs) -> Result<ext::EscalateResult> {
    let handle = backend.handle()?;
    let path = file_path_of(&args.uri)?;
    let range = convert::escalate_range(&args)
        .ok_or_else(|| invalid_params("acas.escalate needs a range or a position"))?;
    let request = EscalateRequest {
        path,
        range,
        choose: args.range.is_none(),
        diagnostic: args.diagnostic.map(convert::external_diagnostic),
        provider: args.provider,
    };
    let cancel = CancellationToken::new();
    // A request the client cancels ($/cancelRequest) is dropped: that cancels the work too.
    let _cancel_on_drop = cancel.clone().drop_guard();
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let progress = backend.progress.load(Ordering::SeqCst).then(|| backend.client.clone());
    let token = format!("acas/escalate/{}", ESCALATIONS.fetch_add(1, Ordering::SeqCst));
    // Closing the progress (window/workDoneProgress/cancel) cancels the escalation.
    let _registered = progress.is_some().then(|| Registered::new(&backend.cancellable, &token, &cancel));
    let reporter = tokio::spawn(async move {
        let Some(client) = progress else {
            while received.recv().await.is_some() {}
            return;
        };
        let token = NumberOrString::String(token);
        if client.create_work_done_progress(token.clone()).await.is_err() {
            while received.recv().await.is_some() {}
            return;
        }
        let ongoing = client
            .progress(token, "ACAS: asking AI")
            .with_message("building the context")
            .with_cancel_button()
            .begin()
            .await;
        while let Some(message) = received.recv().await {
            ongoing.report_with_message(message, None).await;
        }
        ongoing.finish().await;
    });
    let mut chars = 0usize;
    let mut reported_at = 0usize;
    let mut on_event = |provider: &str, event: StreamEvent| match event {
        StreamEvent::Started => {
            let _ = events.send(format!("asking {provider}"));
        }
        StreamEvent::Text(text) => {
            chars += text.len();
            if reported_at == 0 || chars - reported_at >= REPORT_EVERY {
                reported_at = chars.max(1);
                let _ = events.send(format!("{provider}: {chars} characters received"));
            }
        }
        StreamEvent::Usage(_) => {}
    };
    let result = handle.escalate(request, &mut on_event, &cancel).await;
    drop(events);
    let _ = reporter.await;
    let Answer { explained, fix_id } = result.map_err(|e| match e {
        EscalationError::Refused(refused) => errors::refused(refused),
        EscalationError::Escalate(error) => errors::escalate(&error),
        EscalationError::Stopped => stopped(),
    })?;
    Ok(ext::EscalateResult {
        explanation: explained.explanation,
        fix_id,
        fix_rejected: explained.fix_rejected,
        provider: explained.provider,
        model: explained.model,
        cost_usd: crate::escalate::cost::usd(explained.cost_micros),
        cached: explained.cached,
    })
}
