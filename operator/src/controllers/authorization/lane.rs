//! The freeze lane: a bureau's suspension, revocation or termination of a
//! domain that is still open never waits behind the work queue.
//!
//! The controller's queue runs a bounded number of reconciles at a time, so
//! a burst of new tenants lines up there. The authorizations' watch hands
//! every authorization whose state asks for a freeze that has not happened
//! yet to this lane too, which reconciles it at once. A lock per
//! authorization keeps the lane and the queue from reconciling the same one
//! at the same time; whichever comes second finds the work done.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::api::authorization::{OperatorAuthorization, Phase, State};
use crate::context::Context;

tokio::task_local! {
    /// Set while the freeze lane reconciles: its writes skip the queue's
    /// bound on writes in flight.
    static IN_LANE: ();
}

/// Whether the current task is the freeze lane's.
pub fn in_lane() -> bool {
    IN_LANE.try_with(|_| ()).is_ok()
}

/// The queue's bound on Kubernetes writes in flight at once (the freeze
/// lane's writes are not counted and never wait for it): the API server
/// then has few of the operator's requests ahead of a freeze.
pub const WRITES_IN_FLIGHT: usize = 32;

/// One lock per authorization name.
#[derive(Debug, Default)]
pub struct Locks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl Locks {
    /// The lock of authorization `name`.
    pub fn of(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string()).or_default().clone()
    }

    /// Drops the lock of an authorization that is gone.
    pub fn forget(&self, name: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(name).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(name);
        }
    }
}

/// Whether the bureau (or the unit) ended or paused an authorization whose
/// domain is still open: its state is no longer Active, and its phase says
/// no freeze happened yet.
pub fn urgent(oa: &OperatorAuthorization) -> bool {
    let phase = oa.status.as_ref().and_then(|s| s.phase);
    oa.spec.state != State::Active
        && matches!(phase, None | Some(Phase::Pending | Phase::Active))
        && oa.metadata.deletion_timestamp.is_none()
}

/// Runs the lane: reconciles each authorization sent on `urgent` at once,
/// one task each, skipping one already under way.
pub async fn run(
    ctx: Arc<Context>,
    mut urgent: mpsc::UnboundedReceiver<Arc<OperatorAuthorization>>,
) {
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    while let Some(oa) = urgent.recv().await {
        let name = oa.name_any();
        {
            let mut running = running.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(name.clone()) {
                continue;
            }
        }
        let (ctx, running) = (ctx.clone(), running.clone());
        tokio::spawn(async move {
            debug!(authorization = %name, "freeze lane");
            if let Err(e) = IN_LANE.scope((), super::reconcile(oa, ctx)).await {
                // The queue has the same change and retries with backoff.
                warn!(authorization = %name, error = %e, "freeze lane: reconcile failed; the queue retries");
            }
            running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        });
    }
}

/// Sends `oa` to the lane if it is urgent.
pub fn offer(lane: &mpsc::UnboundedSender<Arc<OperatorAuthorization>>, oa: &OperatorAuthorization) {
    if urgent(oa) {
        let _ = lane.send(Arc::new(oa.clone()));
    }
}
