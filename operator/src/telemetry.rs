//! Metrics (prometheus-client) and the admin HTTP server: `/metrics`,
//! `/livez`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of a failure: a low-cardinality error category, never an object name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: &'static str,
}

/// Label of a write: which API it went to.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub target: &'static str,
}

/// The operator's metrics.
pub struct Metrics {
    pub reconciles: Counter,
    pub failures: Family<ErrorLabels, Counter>,
    pub duration: Histogram,
    pub writes: Family<WriteLabels, Counter>,
    /// 1 while this replica holds the Lease (or runs without election).
    pub leader: Gauge,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("publicdata");
        let reconciles = Counter::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciliations failed, by error",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a reconciliation",
            duration.clone(),
        );
        registry.register(
            "api_writes",
            "Write requests sent (server-side applies and status patches to Kubernetes; writes to OpenBao)",
            writes.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads (holds the Lease) and reconciles",
            leader.clone(),
        );
        Self {
            reconciles,
            failures,
            duration,
            writes,
            leader,
            registry,
        }
    }
}

impl Metrics {
    pub fn observe(&self, took: Duration, error: Option<&'static str>) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
        if let Some(error) = error {
            self.failures.get_or_create(&ErrorLabels { error }).inc();
        }
    }

    pub fn wrote(&self, target: &'static str, n: u64) {
        self.writes.get_or_create(&WriteLabels { target }).inc_by(n);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Whether the operator is ready: its watches are running, or it is a
/// standby replica waiting for the Lease (ready to take over; a rollout must
/// not wait for it to lead).
#[derive(Default)]
pub struct Health {
    pub ready: AtomicBool,
    pub standby: AtomicBool,
}

struct AdminState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Serves `/metrics`, `/livez` and `/readyz` on `addr` until the process ends.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<()> {
    let state = Arc::new(AdminState { metrics, health });
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<AdminState>>| async move { s.metrics.encode() }),
        )
        .route("/livez", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(s): State<Arc<AdminState>>| async move {
                if s.health.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok")
                } else if s.health.standby.load(Ordering::Relaxed) {
                    (StatusCode::OK, "standby")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting")
                }
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}
