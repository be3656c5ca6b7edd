//! The work one process per workspace does for all: it runs triggers (file changes, schedules,
//! diagnostics, escalations), the outbox, the webhook server, resumes interrupted runs and
//! records file events in the store. Whichever process holds the workspace lease
//! ([`store::Lease`]) does it; every other process still serves its own editor (diagnostics,
//! explanations, runs the user starts there).
//!
//! A heartbeat task renews the lease, or tries to take it, every `[lease] heartbeat_ms`; when
//! that changes whether this process holds it, the loop hears [`Event::Lease`] and starts or
//! stops the shared work. The lease is taken once synchronously at start, so a lone process does
//! not wait a heartbeat, and released at a clean shutdown, so a waiting process takes over at its
//! next heartbeat.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio_util::sync::CancellationToken;

use super::{Event, Handle, Workspace, now_ms};
use crate::config::LeaseTimes;
use crate::store::{Fence, Holder, Lease};

/// The fencing token of this process's tenure of the lease, as the last try left it; shared
/// with the watcher's thread.
pub(super) type FenceCell = Arc<Mutex<Option<Fence>>>;

/// The token in `cell`.
pub(super) fn current(cell: &FenceCell) -> Option<Fence> {
    cell.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

fn set(cell: &FenceCell, lease: &Lease) {
    *cell.lock().unwrap_or_else(PoisonError::into_inner) = lease.fence();
}

/// This process's side of the workspace lease.
pub(super) struct Shared {
    lease: Arc<Mutex<Lease>>,
    fence: FenceCell,
    /// Whether this process holds the lease; read by the watcher's thread, which records file
    /// events only then.
    held: Arc<AtomicBool>,
    stop: CancellationToken,
}

impl Shared {
    /// Opens the lease of the store at `db_path` and tries to take it once.
    pub(super) fn open(
        db_path: &Path,
        times: LeaseTimes,
        held: Arc<AtomicBool>,
        fence: FenceCell,
    ) -> Result<Shared, crate::store::StoreError> {
        let mut lease = Lease::open(db_path, Holder::this_process(), times.expiry)?;
        let taken = lease.try_take(now_ms()).unwrap_or_else(|error| {
            tracing::warn!("{error}");
            false
        });
        set(&fence, &lease);
        held.store(taken, Ordering::SeqCst);
        Ok(Shared { lease: Arc::new(Mutex::new(lease)), fence, held, stop: CancellationToken::new() })
    }

    pub(super) fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    /// Renews or tries to take the lease every heartbeat; tells the loop when holding it changes.
    pub(super) fn spawn_heartbeat(&self, times: LeaseTimes, handle: Handle) {
        let (lease, held, stop) = (self.lease.clone(), self.held.clone(), self.stop.clone());
        let fence = self.fence.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(times.heartbeat);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            // When the lease was last known held (before the try that renewed it), on this
            // process's monotonic clock.
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = interval.tick() => {}
                }
                let (lease, stopped, fence) = (lease.clone(), stop.clone(), fence.clone());
                let started = tokio::time::Instant::now();
                let attempt = tokio::task::spawn_blocking(move || {
                    let mut lease = lease.lock().unwrap_or_else(PoisonError::into_inner);
                    // Released meanwhile (under the same lock): not to be taken again.
                    if stopped.is_cancelled() {
                        return Ok(false);
                    }
                    let taken = lease.try_take(now_ms());
                    set(&fence, &lease);
                    taken
                });
                tokio::pin!(attempt);
                // A holder that cannot renew within the expiry stops the shared work itself,
                // before another process may take the lease over (a store locked or slow for
                // that long): never two processes doing it at once.
                let taken = loop {
                    tokio::select! {
                        taken = &mut attempt => break taken,
                        () = tokio::time::sleep_until(renewed + times.expiry), if held.load(Ordering::SeqCst) => {
                            if held.swap(false, Ordering::SeqCst) {
                                tracing::warn!(
                                    "could not renew the workspace lease within [lease] expiry_ms; stopped \
                                     the triggers, webhooks and outbox until it is renewed"
                                );
                                handle.send(Event::Lease { held: false });
                            }
                        }
                    }
                };
                let taken = match taken {
                    Ok(Ok(taken)) => taken,
                    Ok(Err(error)) => {
                        // A busy or failing store: keep the current state and try again.
                        tracing::warn!("{error}");
                        continue;
                    }
                    Err(_) => continue,
                };
                if stop.is_cancelled() {
                    break;
                }
                if taken {
                    renewed = started;
                }
                if taken != held.swap(taken, Ordering::SeqCst) {
                    handle.send(Event::Lease { held: taken });
                }
            }
        });
    }

    /// Stops the heartbeat and gives the lease up, so that another process takes over.
    pub(super) fn release(&self) {
        self.stop.cancel();
        self.held.store(false, Ordering::SeqCst);
        let mut lease = self.lease.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = lease.release() {
            tracing::warn!("{error}");
        }
        set(&self.fence, &lease);
    }
}

impl Workspace {
    /// Opens the workspace lease and starts its heartbeat; starts the shared work when this
    /// process holds the lease.
    pub(super) fn start_shared(&mut self) {
        let Some(store) = &self.store else { return };
        let times = self.config.lease;
        match Shared::open(store.path(), times, self.records_files.clone(), self.fence.clone()) {
            Ok(shared) => {
                shared.spawn_heartbeat(times, self.handle.clone());
                let held = shared.held();
                self.shared = Some(shared);
                if held {
                    self.lease_changed(true);
                } else {
                    tracing::info!(
                        "another ACAS process runs this workspace's triggers, webhooks and outbox; \
                         this one takes over if that one stops"
                    );
                }
            }
            Err(error) => {
                self.message(
                    super::MessageLevel::Error,
                    format!("ACAS cannot run triggers, webhooks or record file events: {error}"),
                );
            }
        }
    }

    /// This process took the lease (`held`) or lost it: start or stop the shared work.
    pub(super) fn lease_changed(&mut self, held: bool) {
        self.runs_lease_changed();
        if held {
            tracing::info!("this process runs the workspace's triggers, webhooks and outbox");
            self.start_shared_runs();
        } else {
            tracing::warn!(
                "this process stopped the workspace's triggers, webhooks and outbox: another ACAS \
                 process holds the workspace lease, or this one could not renew it (see above)"
            );
            self.stop_shared_runs();
        }
    }

    /// Gives the lease up at shutdown.
    pub(super) fn release_lease(&mut self) {
        self.stop_shared_runs();
        if let Some(shared) = self.shared.take() {
            shared.release();
        }
    }
}
