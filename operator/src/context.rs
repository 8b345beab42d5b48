//! What every reconciler shares: the client, the secrets backend, the audit
//! sink, metrics, health and the settings. Built once in `main.rs`.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;

use crate::audit;
use crate::controllers::tenant;
use crate::telemetry::{Health, Metrics};
use crate::vault::SecretsBackend;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = "publicdata-operator";

/// Settings of the reconcilers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// What the platform set up in OpenBao for workloads: their auth mount,
    /// the audience of their tokens, the catalog mount.
    pub workloads: crate::vault::Workloads,
    /// Where tenant workloads may connect beyond their namespace (OpenBao),
    /// and who the operator is.
    pub platform: tenant::Platform,
    /// How long an expired domain stays frozen before it is offboarded.
    pub expiry_grace: Duration,
    /// How many authorizations the work queue reconciles at once (the
    /// freeze lane is not counted).
    pub concurrency: u16,
    /// How often an unchanged authorization is looked at again: drift in
    /// OpenBao is found then (the Kubernetes side is watched).
    pub resync: Duration,
    /// OpenBao's database secrets engine, when the platform has a data plane:
    /// each tenant environment gets a role there.
    pub data_plane: Option<crate::vault::DataPlane>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// The last verdict on the cluster DNS's Corefile.
    pub dns: Arc<crate::dns::DnsCheck>,
    pub vault: Arc<dyn SecretsBackend>,
    pub settings: Settings,
    /// The one event recorder: kube aggregates an event repeated by the same
    /// recorder into a series, where a recorder per event would post each.
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The audit log: every decision and action, hash-chained.
    pub audit: Arc<dyn audit::Sink>,
    /// Where key records go, locked, at offboarding (None: not configured,
    /// and offboardings wait before the wipe).
    pub records: Option<Arc<dyn crate::records::Store>>,
    /// The export scan: child processes with a memory budget, one at a
    /// time, and the verdicts kept by digest.
    pub scan: Arc<crate::scan::worker::Worker>,
    /// Consecutive failures per authorization, for the backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// What the operator last applied to tenant namespaces, kept current by
    /// metadata watches: unchanged objects are not applied again.
    pub applied: Arc<crate::controllers::applied::Applied>,
    /// What the operator last applied in full to each tenant's OpenBao: a
    /// resync of an unchanged tenant checks one object, not all.
    pub vault_applied: crate::vault::Applied,
    /// One lock per authorization: the work queue and the freeze lane never
    /// reconcile the same authorization at the same time.
    pub locks: crate::controllers::authorization::lane::Locks,
    /// The queue's Kubernetes writes in flight (see `lane::WRITES_IN_FLIGHT`).
    pub writes: tokio::sync::Semaphore,
    /// The platform's PostgreSQL, its raw and its samples database (None:
    /// no data plane).
    pub database: Option<Arc<crate::database::Plane>>,
}
