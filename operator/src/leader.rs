//! Leader election: one active replica at a time, by a Lease in the
//! operator's namespace (kube-lease-manager, which locks with server-side
//! apply). Only the leader opens the audit log and runs the controllers, so
//! the log has one writer; a replica that loses the Lease exits, and its
//! restart waits as a standby.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("setting up the Lease {namespace}/{name}: {source}")]
    Setup {
        namespace: String,
        name: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    #[error("the Lease manager stopped before this replica led")]
    Stopped,
}

/// Where the Lease is and how long a lock lasts.
#[derive(Debug, Clone)]
pub struct Params {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// Seconds a lock is valid after its last renewal.
    pub duration: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace: u64,
}

/// The Lease, held.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

/// Waits until this replica holds the Lease. `on_standby` runs once while
/// another replica leads.
pub async fn acquire(
    client: Client,
    params: &Params,
    on_standby: impl FnOnce(),
) -> Result<Leadership, Error> {
    let manager = LeaseManagerBuilder::new(client, &params.name)
        .with_namespace(&params.namespace)
        .with_identity(&params.identity)
        .with_duration(params.duration)
        .with_grace(params.grace)
        .with_field_manager(format!("publicdata-operator-lease-{}", params.identity))
        .build()
        .await
        .map_err(|source| Error::Setup {
            namespace: params.namespace.clone(),
            name: params.name.clone(),
            source,
        })?;
    let (mut state, task) = manager.watch().await;
    let mut on_standby = Some(on_standby);
    loop {
        if *state.borrow_and_update() {
            return Ok(Leadership { state, task });
        }
        if let Some(f) = on_standby.take() {
            f();
        }
        if state.changed().await.is_err() {
            return Err(Error::Stopped);
        }
    }
}

impl Leadership {
    /// Resolves when the Lease is lost (or its manager stopped).
    pub async fn lost(&mut self) {
        loop {
            if !*self.state.borrow_and_update() {
                return;
            }
            if self.state.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the Lease up, so that a standby takes over at once instead of
    /// waiting for the lock to expire. Best effort, bounded in time.
    pub async fn release(self) {
        let Leadership { state, task } = self;
        drop(state);
        let released = async {
            if let Ok(Ok(manager)) = task.await {
                let _ = manager.release().await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), released).await;
    }
}
