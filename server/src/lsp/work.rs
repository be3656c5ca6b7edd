//! Work that outlives the command that started it (an escalation, a planning): the command
//! answers at once with a handle, and the work reports to the editor on its own.
//!
//! [`register`] numbers it and registers its cancellation (under its progress token, for
//! `window/workDoneProgress/cancel`, and so under its handle, for `acas.cancel`);
//! [`Work::begin`] tells the editor it started: a cancellable `$/progress` when the client
//! announced `window.workDoneProgress` and answers the token's creation within
//! [`CREATE_WAIT`], else a `window/showMessage`. [`Work::report`] and [`Work::end`] follow the
//! same way; the result itself is the caller's notification. The work does not wait for any of
//! this: it starts at once, and what it reports meanwhile is held until the editor was told.
//!
//! A cancel is exact: it succeeds (`cancel` returns true) only while the work has not claimed
//! its result ([`Claim::claim`]); work cancelled that way shows no result and ends as
//! cancelled, and once the result is claimed a cancel answers false. Nothing here knows what
//! the work is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tower_lsp_server::Client;
use tower_lsp_server::ls_types::{
    MessageType, NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport, notification,
};

/// Work the client can cancel, by progress token.
pub(super) type Cancellable = Arc<Mutex<HashMap<String, Entry>>>;

/// How long the editor has to answer `window/workDoneProgress/create` before the work is
/// reported through messages instead.
pub(super) const CREATE_WAIT: Duration = Duration::from_secs(5);

/// A piece of work as the registry holds it: how to cancel it and whether it still may be.
#[derive(Clone)]
pub(super) struct Entry {
    cancel: CancellationToken,
    state: Arc<AtomicU8>,
}

const RUNNING: u8 = 0;
const CANCELLED: u8 = 1;
const CLAIMED: u8 = 2;

/// The right of work to show its result, which a cancel takes away first.
#[derive(Clone)]
pub(super) struct Claim(Arc<AtomicU8>);

impl Claim {
    /// Takes the result for showing: false when the work was cancelled first.
    pub(super) fn claim(&self) -> bool {
        match self.0.compare_exchange(RUNNING, CLAIMED, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => true,
            Err(state) => state == CLAIMED,
        }
    }
}

/// Numbers every piece of work of this process: escalation and plan handles never repeat.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// What kind of work, which names its progress token (`acas/escalate/N`, `acas/plan/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Escalation,
    Plan,
}

impl Kind {
    pub(super) fn token(self, id: u64) -> String {
        match self {
            Kind::Escalation => format!("acas/escalate/{id}"),
            Kind::Plan => format!("acas/plan/{id}"),
        }
    }
}

/// A running piece of work and how the editor hears of it. Dropping it ends its registration.
pub(super) struct Work {
    client: Client,
    title: String,
    /// The progress token, when the client shows `$/progress` and accepted it.
    progress: Option<NumberOrString>,
    registered: Registered,
}

/// The numbered handle of work about to start, registered as cancellable under its token
/// until the [`Work`] it becomes ends (or it is dropped).
pub(super) struct Ticket {
    pub(super) id: u64,
    pub(super) claim: Claim,
    registered: Registered,
}

pub(super) fn register(kind: Kind, cancellable: &Cancellable, cancel: &CancellationToken) -> Ticket {
    let id = NEXT.fetch_add(1, Ordering::SeqCst);
    let token = kind.token(id);
    let state = Arc::new(AtomicU8::new(RUNNING));
    let entry = Entry { cancel: cancel.clone(), state: state.clone() };
    cancellable.lock().unwrap_or_else(PoisonError::into_inner).insert(token.clone(), entry);
    Ticket { id, claim: Claim(state), registered: Registered { map: cancellable.clone(), token } }
}

impl Work {
    /// Tells the editor that the work `id` (registered with [`register`]) started.
    pub(super) async fn begin(
        client: Client,
        progress: bool,
        ticket: Ticket,
        title: &str,
        message: String,
    ) -> Work {
        let Ticket { registered, .. } = ticket;
        let token = NumberOrString::String(registered.token.clone());
        let progress = match progress {
            true => match tokio::time::timeout(CREATE_WAIT, client.create_work_done_progress(token.clone()))
                .await
            {
                Ok(created) => created.is_ok().then_some(token),
                Err(_) => {
                    let message = format!(
                        "the editor did not answer window/workDoneProgress/create within {}s: {title} is reported through messages",
                        CREATE_WAIT.as_secs()
                    );
                    tracing::warn!("{message}");
                    client.log_message(MessageType::WARNING, format!("ACAS: {message}")).await;
                    None
                }
            },
            false => None,
        };
        let work = Work { client, title: title.to_owned(), progress, registered };
        match &work.progress {
            Some(token) => {
                let begin = WorkDoneProgressBegin {
                    title: work.title.clone(),
                    cancellable: Some(true),
                    message: Some(message),
                    percentage: None,
                };
                work.send(token.clone(), WorkDoneProgress::Begin(begin)).await;
            }
            None => work.client.show_message(MessageType::INFO, format!("{}: {message}", work.title)).await,
        }
        work
    }

    /// A step of the work: a progress report, or a log line for a client without progress.
    pub(super) async fn report(&self, message: String) {
        match &self.progress {
            Some(token) => {
                let report =
                    WorkDoneProgressReport { message: Some(message), cancellable: None, percentage: None };
                self.send(token.clone(), WorkDoneProgress::Report(report)).await;
            }
            None => self.client.log_message(MessageType::LOG, format!("{}: {message}", self.title)).await,
        }
    }

    /// The work ended: the progress ends with `message`, or it is shown at `level`.
    pub(super) async fn end(self, level: MessageType, message: String) {
        match &self.progress {
            Some(token) => {
                let end = WorkDoneProgressEnd { message: Some(message) };
                self.send(token.clone(), WorkDoneProgress::End(end)).await;
            }
            None => self.client.show_message(level, format!("{}: {message}", self.title)).await,
        }
        drop(self.registered);
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    async fn send(&self, token: NumberOrString, value: WorkDoneProgress) {
        self.client
            .send_notification::<notification::Progress>(ProgressParams {
                token,
                value: ProgressParamsValue::WorkDone(value),
            })
            .await;
    }
}

/// A cancellation registered under a progress token for as long as the work lives.
struct Registered {
    map: Cancellable,
    token: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.token);
    }
}

/// Cancels the work registered under `token`; false when none is running or its result is
/// already claimed.
pub(super) fn cancel(cancellable: &Cancellable, token: &str) -> bool {
    let entry = cancellable.lock().unwrap_or_else(PoisonError::into_inner).get(token).cloned();
    let Some(entry) = entry else { return false };
    let cancelled = match entry.state.compare_exchange(RUNNING, CANCELLED, Ordering::SeqCst, Ordering::SeqCst)
    {
        Ok(_) => true,
        Err(state) => state == CANCELLED,
    };
    if cancelled {
        entry.cancel.cancel();
    }
    cancelled
}
