//! The audit API, `audit.publicdata.io/v1alpha1`: how a person reads the
//! audit log, its anchor and a leak's trace without exec into the operator.
//!
//! The operator serves it behind the API server's aggregation layer (an
//! APIService the chart makes), the way metrics-server does: the API server
//! authenticates the caller, checks RBAC on the resource, and forwards the
//! request over TLS with its front-proxy client certificate and the caller's
//! name and groups in headers. Here the certificate is verified against the
//! request-header CA the API server publishes (ConfigMap
//! `kube-system/extension-apiserver-authentication`, with the names it
//! allows), and the caller is authorized again with a SubjectAccessReview, so
//! a request that did not come through the API server, or a caller RBAC does
//! not name, gets nothing.
//!
//! | request                                   | RBAC (group `audit.publicdata.io`) |
//! |-------------------------------------------|-------------------------------------|
//! | `GET  .../v1alpha1/logs/audit`            | `get logs`                          |
//! | `GET  .../v1alpha1/anchors/audit`         | `get anchors`                       |
//! | `POST .../v1alpha1/traces` (the file)     | `create traces`                     |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;

use crate::vault::OpenBao;
use crate::vault::login::Login;

pub const GROUP: &str = "audit.publicdata.io";
pub const VERSION: &str = "v1alpha1";
/// The one object of `logs` and of `anchors`.
pub const NAME: &str = "audit";

mod front_proxy;

pub use front_proxy::{AUTHENTICATION_CONFIG_MAP, Caller, Error, FrontProxy, tls_config};

/// How the audit API is set up.
pub struct Settings {
    pub addr: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub audit_log: PathBuf,
    /// Where the checkpoints' locked copies are (the anchor names the latest).
    pub records: Option<Arc<dyn crate::records::Store>>,
    /// How the anchor and the trace log in to OpenBao (as the operator):
    /// every replica serves the API, a standby too, so each request logs in.
    pub openbao: OpenBaoAccess,
}

/// What a request needs to log in to OpenBao.
#[derive(Clone)]
pub struct OpenBaoAccess {
    pub address: String,
    pub ca_cert: Option<PathBuf>,
    pub login: Login,
}

impl OpenBaoAccess {
    /// A fresh login, and how long it may be used.
    async fn session(&self) -> anyhow::Result<(OpenBao, std::time::Duration)> {
        let vault = OpenBao::new(
            &self.address,
            "",
            crate::vault::KubernetesAuthConfig {
                host: String::new(),
                ca_cert: String::new(),
                reviewer_jwt: String::new(),
            },
            self.ca_cert.clone(),
        )?;
        let (token, again) = self.login.token(&vault).await?;
        vault.set_token(&token)?;
        // At most a minute, and well inside the token's life.
        let again = again.map_or(SESSION_REUSE, |d| (d / 2).min(SESSION_REUSE));
        Ok((vault, again))
    }
}

/// How long one OpenBao login serves the API's requests: readers asking
/// again and again make one token a minute, not one each.
const SESSION_REUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// The largest file the API traces (the plugin checks it before sending):
/// well under the operator's memory limit, with one trace at a time.
pub const TRACE_LIMIT: usize = 16 << 20;

struct Shared {
    client: kube::Client,
    proxy: FrontProxy,
    audit_log: PathBuf,
    records: Option<Arc<dyn crate::records::Store>>,
    openbao: OpenBaoAccess,
    /// One trace at a time: each holds a file of up to [`TRACE_LIMIT`].
    tracing: tokio::sync::Semaphore,
    /// The OpenBao login in use, and until when.
    session: tokio::sync::Mutex<Option<(Arc<OpenBao>, std::time::Instant)>>,
}

/// A `metav1.Status` failure, as every Kubernetes API answers one.
fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            e.to_string(),
        ),
    }
}

/// The group version's resources (discovery).
pub fn resources() -> serde_json::Value {
    let resource = |name: &str, kind: &str, verbs: &[&str]| {
        serde_json::json!({
            "name": name, "singularName": "", "namespaced": false, "kind": kind, "verbs": verbs,
        })
    };
    serde_json::json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [
            resource("logs", "AuditLog", &["get"]),
            resource("anchors", "AuditAnchor", &["get"]),
            resource("traces", "Trace", &["create"]),
        ],
    })
}

impl Shared {
    /// A logged-in OpenBao client, made again once its time is up.
    async fn vault(&self) -> anyhow::Result<Arc<OpenBao>> {
        let mut session = self.session.lock().await;
        if let Some((vault, until)) = session.as_ref()
            && std::time::Instant::now() < *until
        {
            return Ok(vault.clone());
        }
        let (vault, reuse) = self.openbao.session().await?;
        let vault = Arc::new(vault);
        *session = Some((vault.clone(), std::time::Instant::now() + reuse));
        Ok(vault)
    }

    /// `Ok` when the API server named a caller who may `verb` the resource.
    async fn authorize(
        &self,
        headers: &HeaderMap,
        verb: &str,
        resource: &str,
        name: Option<&str>,
    ) -> Result<Caller, Response> {
        let Some(caller) = self.proxy.caller(headers) else {
            return Err(status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "no user named: the audit API answers requests the API server forwards",
            ));
        };
        let review = caller.review(verb, resource, name);
        let api = kube::Api::<SubjectAccessReview>::all(self.client.clone());
        match api.create(&Default::default(), &review).await {
            Ok(SubjectAccessReview {
                status: Some(s), ..
            }) if s.allowed => Ok(caller),
            Ok(_) => {
                tracing::info!(user = %caller.user, verb, resource, "audit API: refused");
                Err(status(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    format!(
                        "{} may not {verb} {resource}.{GROUP}: the chart's audit-reader role grants it",
                        caller.user
                    ),
                ))
            }
            Err(e) => Err(status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!("the authorization check could not be made: {e}"),
            )),
        }
    }
}

async fn discovery() -> Response {
    json(&resources())
}

/// `/apis`: the group, in the legacy form. The API server asks first for
/// aggregated discovery; "not acceptable" tells it to fall back to this.
async fn groups(headers: HeaderMap) -> Response {
    let accepted: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let legacy = accepted.is_empty()
        || accepted
            .iter()
            .any(|a| matches!(*a, "application/json" | "*/*" | "application/*"));
    if !legacy {
        return status(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            "only legacy discovery is served",
        );
    }
    let version =
        serde_json::json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
    json(&serde_json::json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [{"name": GROUP, "versions": [version], "preferredVersion": version}],
    }))
}

async fn log(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let caller = match shared.authorize(&headers, "get", "logs", Some(NAME)).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    match tokio::fs::File::open(&shared.audit_log).await {
        Ok(file) => {
            tracing::info!(user = %caller.user, "audit API: the log read");
            (
                [(header::CONTENT_TYPE, "application/jsonl")],
                Body::from_stream(tokio_util::io::ReaderStream::new(file)),
            )
                .into_response()
        }
        Err(e) => status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("opening the audit log {}: {e}", shared.audit_log.display()),
        ),
    }
}

async fn anchor(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(refused) = shared
        .authorize(&headers, "get", "anchors", Some(NAME))
        .await
    {
        return refused;
    }
    let loaded = async {
        let vault = shared.vault().await?;
        Ok::<_, anyhow::Error>(
            super::checkpointer::load(vault.as_ref(), vault.as_ref(), shared.records.as_deref())
                .await?,
        )
    };
    match loaded.await {
        Ok(anchor) => json(&anchor),
        Err(e) => status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("reading the anchor from OpenBao: {e:#}"),
        ),
    }
}

async fn trace(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    // Who asks, and whether a trace can run now, before a byte is read.
    let caller = match shared.authorize(&headers, "create", "traces", None).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let Ok(_one) = shared.tracing.try_acquire() else {
        return status(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "another trace is running; try again in a moment",
        );
    };
    let file = match axum::body::to_bytes(body, TRACE_LIMIT).await {
        Ok(file) => file,
        Err(e) => {
            return status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("the trace reads at most {TRACE_LIMIT} bytes: {e}"),
            );
        }
    };
    let traced = async {
        let log = tokio::fs::read_to_string(&shared.audit_log).await?;
        let vault = shared.vault().await?;
        Ok::<_, anyhow::Error>(
            crate::fingerprint::trace_on_record(&log, &file, vault.as_ref()).await?,
        )
    };
    match traced.await {
        Ok(found) => {
            tracing::info!(user = %caller.user, bytes = file.len(), "audit API: a file traced");
            json(&found)
        }
        Err(e) => status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            format!("tracing: {e:#}"),
        ),
    }
}

/// The routes, for [`serve`] and for tests.
fn router(shared: Arc<Shared>) -> Router {
    let base = format!("/apis/{GROUP}/{VERSION}");
    Router::new()
        .route("/apis", get(groups))
        .route(&base, get(discovery))
        .route(&format!("{base}/logs/{NAME}"), get(log))
        .route(&format!("{base}/anchors/{NAME}"), get(anchor))
        .route(&format!("{base}/traces"), post(trace))
        .layer(axum::extract::DefaultBodyLimit::max(TRACE_LIMIT))
        .with_state(shared)
}

/// Serves the audit API until the process ends.
pub async fn serve(settings: Settings, client: kube::Client) -> anyhow::Result<()> {
    // Without a front proxy the API cannot be served; the operator's own work
    // goes on meanwhile, and the set-up is tried again.
    let (proxy, tls) = loop {
        match FrontProxy::load(&client)
            .await
            .and_then(|proxy| Ok((tls_config(&proxy, &settings.cert, &settings.key)?, proxy)))
        {
            Ok((tls, proxy)) => break (proxy, tls),
            Err(e) => {
                tracing::error!("the audit API is not served: {e}; trying again in 30 s");
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
        }
    };
    let shared = Arc::new(Shared {
        client,
        proxy,
        audit_log: settings.audit_log,
        records: settings.records,
        openbao: settings.openbao,
        tracing: tokio::sync::Semaphore::new(1),
        session: Default::default(),
    });
    tracing::info!(addr = %settings.addr, "audit API serving ({GROUP}/{VERSION}, front proxy only)");
    let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
    // A renewed serving certificate (the Secret's volume follows it) and a
    // rotated front-proxy CA are served without a restart.
    let reloading = {
        let (config, client) = (config.clone(), shared.client.clone());
        let (cert, key) = (settings.cert.clone(), settings.key.clone());
        async move {
            loop {
                tokio::time::sleep(TLS_RELOAD_EVERY).await;
                match FrontProxy::load(&client)
                    .await
                    .and_then(|proxy| tls_config(&proxy, &cert, &key))
                {
                    Ok(tls) => config.reload_from_config(Arc::new(tls)),
                    Err(e) => tracing::warn!("the audit API's TLS set-up is kept as it was: {e}"),
                }
            }
        }
    };
    tokio::select! {
        served = axum_server::bind_rustls(settings.addr, config)
            .serve(router(shared).into_make_service()) => served?,
        () = reloading => {}
    }
    Ok(())
}

/// How often the TLS set-up is read again.
const TLS_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_names_each_resource_with_its_verbs() {
        let list = resources();
        let names: Vec<_> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].as_str().unwrap(), r["verbs"][0].as_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            [("logs", "get"), ("anchors", "get"), ("traces", "create")]
        );
    }
}
