//! Operation logs: what each tenant's members and
//! workloads actually did, kept with the tenant's key records.
//!
//! The platform's API server (its audit webhook backend) and OpenBao (its
//! `http` audit device) send their audit events to every replica's intake.
//! The intake keeps a tenant's share of them — requests in its namespaces,
//! by its members (impersonated or not) and its workloads' ServiceAccounts,
//! and OpenBao calls on its mounts or with its policies — and drops the
//! rest, the operator's own requests included (those are in its own audit
//! chain). Every [`flush`](Intake::flush) writes each tenant's share as one
//! object under `<tenant>/<uid>/operation-logs/<source>/`, locked in
//! compliance mode like the key records. An object's name carries the number
//! of entries and the SHA-256 of its content, so a listing is enough to
//! account for them and any object read back proves itself.
//!
//! The intake is a relay, not the record of last resort: entries buffered
//! when a replica dies are lost here; the API server's and OpenBao's own
//! file logs on the platform keep everything.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use kube::ResourceExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::authorization::{KeptItem, OperatorAuthorization};
use crate::records::{self, Store};

mod directory;
pub use directory::{Directory, Operator};

/// Where a log comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The API server's audit events (`audit.k8s.io/v1` `Event`).
    Kubernetes,
    /// OpenBao's audit entries (responses, each with its request).
    OpenBao,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::Kubernetes, Source::OpenBao];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kubernetes => "kubernetes",
            Source::OpenBao => "openbao",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Source::Kubernetes => "Kubernetes API requests",
            Source::OpenBao => "OpenBao calls",
        }
    }
}

/// The folder of a tenant's operation logs from one source.
pub fn prefix(tenant: &str, uid: &str, source: Source) -> String {
    format!(
        "{}operation-logs/{}/",
        records::prefix(tenant, uid),
        source.as_str()
    )
}

/// The name of one object of operation logs: when its first entry arrived,
/// which replica wrote it and its sequence there, how many entries it
/// holds, and the SHA-256 of its content.
pub fn object_name(
    at: jiff::Timestamp,
    replica: &str,
    seq: u64,
    entries: usize,
    sha256: &str,
) -> String {
    format!(
        "{}-{replica}-{seq}-n{entries}-{sha256}.jsonl",
        at.strftime("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// What the name of an object of operation logs says: (entries, sha256).
pub fn parse_name(name: &str) -> Option<(usize, &str)> {
    let stem = name.rsplit('/').next()?.strip_suffix(".jsonl")?;
    let (rest, sha) = stem.rsplit_once('-')?;
    let (_, n) = rest.rsplit_once("-n")?;
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(())
        .and(n.parse().ok().map(|n| (n, sha)))
}

/// When the first entry of an object of operation logs arrived, from its
/// name. The object was written, and locked, after that.
pub fn written_after(name: &str) -> Option<jiff::Timestamp> {
    let (at, _) = name.rsplit('/').next()?.split_once('-')?;
    jiff::fmt::strtime::parse("%Y%m%dT%H%M%S%.fZ", at)
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// Entries waiting for the next flush, by tenant and source.
#[derive(Debug, Default)]
pub struct Buffer {
    entries: BTreeMap<(String, Source), (jiff::Timestamp, Vec<String>)>,
    held: usize,
    /// Entries dropped because the buffer was full (the store unreachable
    /// for long).
    pub dropped: u64,
}

/// At most this many entries wait for the store; beyond, new ones are
/// dropped (and counted) rather than let memory grow without bound.
pub const BUFFER_LIMIT: usize = 200_000;

impl Buffer {
    /// Adds `entry` to each tenant's share.
    pub fn add(&mut self, tenants: &BTreeSet<String>, source: Source, entry: &Value) {
        if tenants.is_empty() {
            return;
        }
        if self.held >= BUFFER_LIMIT {
            self.dropped += tenants.len() as u64;
            return;
        }
        let line = entry.to_string();
        for tenant in tenants {
            self.entries
                .entry((tenant.clone(), source))
                .or_insert_with(|| (jiff::Timestamp::now(), Vec::new()))
                .1
                .push(line.clone());
            self.held += 1;
        }
    }

    fn take(&mut self) -> BTreeMap<(String, Source), (jiff::Timestamp, Vec<String>)> {
        self.held = 0;
        std::mem::take(&mut self.entries)
    }

    fn put_back(&mut self, key: (String, Source), at: jiff::Timestamp, lines: Vec<String>) {
        self.held += lines.len();
        let slot = self.entries.entry(key).or_insert_with(|| (at, Vec::new()));
        slot.0 = slot.0.min(at);
        let newer = std::mem::take(&mut slot.1);
        slot.1 = lines;
        slot.1.extend(newer);
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The intake of one replica: its buffer, and where it writes.
pub struct Intake {
    pub store: Arc<dyn Store>,
    pub replica: String,
    pub buffer: Mutex<Buffer>,
    seq: std::sync::atomic::AtomicU64,
}

impl Intake {
    pub fn new(store: Arc<dyn Store>, replica: impl Into<String>) -> Self {
        Intake {
            store,
            replica: replica.into(),
            buffer: Mutex::new(Buffer::default()),
            seq: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes every tenant's buffered share as one locked object per
    /// source. What cannot be written (the store down, the tenant's
    /// authorization not known here) waits for the next flush. Returns how
    /// many objects were written.
    pub async fn flush(&self, directory: &Directory, now: jiff::Timestamp) -> usize {
        let (pending, dropped) = {
            let mut buffer = self.buffer();
            (buffer.take(), std::mem::take(&mut buffer.dropped))
        };
        if dropped > 0 {
            tracing::error!(
                dropped,
                "operation log entries dropped: {BUFFER_LIMIT} were waiting for the records store"
            );
        }
        let until = records::years_after(now, records::KEY_RECORD_YEARS);
        let mut written = 0;
        for ((tenant, source), (at, lines)) in pending {
            let Some(uid) = directory.uid(&tenant) else {
                // The authorization is gone (deleted after its records
                // were verified): nobody's share any more.
                tracing::debug!(%tenant, "operation logs of an unknown tenant dropped");
                continue;
            };
            let mut text = lines.join("\n");
            text.push('\n');
            let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = object_name(
                at,
                &self.replica,
                seq,
                lines.len(),
                &sha256(text.as_bytes()),
            );
            let key = format!("{}{name}", prefix(&tenant, uid, source));
            match self.store.put_locked(&key, text.as_bytes(), until).await {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::warn!(%tenant, source = source.as_str(), "operation logs wait: {e}");
                    self.buffer().put_back((tenant, source), at, lines);
                }
            }
        }
        written
    }
}

/// What a tenant's operation logs from one source hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub objects: usize,
    pub entries: usize,
    /// When the first entry of the oldest object arrived: every object is
    /// locked at least [`records::KEY_RECORD_YEARS`] from then.
    pub first: Option<jiff::Timestamp>,
}

/// Counts a tenant's operation logs from a listing (names carry the
/// number of entries).
pub async fn summary(
    store: &dyn Store,
    tenant: &str,
    uid: &str,
    source: Source,
) -> Result<Summary, records::Error> {
    let listed = store.list(&prefix(tenant, uid, source)).await?;
    let mut s = Summary::default();
    for l in listed {
        if let Some((n, _)) = parse_name(&l.key) {
            s.objects += 1;
            s.entries += n;
            s.first = s.first.into_iter().chain(written_after(&l.key)).min();
        }
    }
    Ok(s)
}

/// Reads every object of a tenant's operation logs back and checks it
/// against its name: its digest and its number of entries. Returns the
/// entries, oldest object first.
pub async fn read(
    store: &dyn Store,
    tenant: &str,
    uid: &str,
    source: Source,
) -> Result<Vec<Value>, records::Error> {
    let mut entries = Vec::new();
    for l in store.list(&prefix(tenant, uid, source)).await? {
        let Some((n, expected)) = parse_name(&l.key) else {
            continue;
        };
        let stored = store
            .get(&l.key)
            .await?
            .ok_or(records::Error::Missing { key: l.key.clone() })?;
        let found = sha256(&stored.bytes);
        if found != expected {
            return Err(records::Error::Digest {
                key: l.key.clone(),
                found,
                expected: expected.into(),
            });
        }
        let lines: Vec<Value> = stored
            .bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect();
        if lines.len() != n {
            return Err(records::Error::Manifest {
                key: l.key.clone(),
                message: format!("{} entries where its name says {n}", lines.len()),
            });
        }
        entries.extend(lines);
    }
    Ok(entries)
}

/// The operation logs of a tenant as the disposal certificate lists them:
/// one kept item per source, with its counts, kept at least until the lock
/// of its oldest object ends (each object was locked when it was written,
/// so the oldest ends first). A source with no object says `until`.
pub async fn kept(
    store: &dyn Store,
    tenant: &str,
    uid: &str,
    until: &str,
) -> Result<Vec<KeptItem>, records::Error> {
    let mut kept = Vec::new();
    for source in Source::ALL {
        let s = summary(store, tenant, uid, source).await?;
        let until = s.first.map_or_else(
            || until.to_string(),
            |first| {
                records::years_after(first, records::KEY_RECORD_YEARS)
                    .strftime("%Y-%m-%d")
                    .to_string()
            },
        );
        kept.push(KeptItem {
            what: format!(
                "operation logs: {}, {} entries in {} object(s)",
                source.what(),
                s.entries,
                s.objects
            ),
            location: format!("{}/{}", store.location(), prefix(tenant, uid, source)),
            until,
        });
    }
    Ok(kept)
}

/// Compares a bearer token in constant time.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(token.as_bytes()),
    );
    !token.is_empty()
        && a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

struct Shared {
    intake: Arc<Intake>,
    token: String,
    directory: reflector::Store<OperatorAuthorization>,
    operator: Operator,
    client: kube::Client,
    /// Bumped by every change the watch of authorizations sees.
    changes: Arc<std::sync::atomic::AtomicU64>,
    cached: std::sync::Mutex<Option<(u64, Arc<Directory>)>>,
}

impl Shared {
    /// Someone other than the operator changed `tenant`'s OpenBao
    /// configuration: say so on its authorization (an annotation with the
    /// time), which makes the leader check and repair all of it at once,
    /// whichever replica heard of it.
    async fn note_openbao_change(&self, tenant: &str) {
        let api = kube::Api::<OperatorAuthorization>::all(self.client.clone());
        let patch = serde_json::json!({"metadata": {"annotations": {
            crate::api::labels::OPENBAO_CHANGED_AT: jiff::Timestamp::now().to_string(),
        }}});
        match api
            .patch(
                tenant,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                tracing::warn!(%tenant, "OpenBao configuration of the tenant changed by someone else: the operator checks and repairs it")
            }
            Err(e) => {
                tracing::warn!(%tenant, error = %e, "could not note an OpenBao change on the authorization; the resync finds it in turn")
            }
        }
    }

    /// The directory, built again only when an authorization changed since.
    fn directory(&self) -> Arc<Directory> {
        let seen = self.changes.load(std::sync::atomic::Ordering::Acquire);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some((at, d)) if *at == seen => d.clone(),
            _ => {
                let d = Arc::new(Directory::new(
                    self.directory.state().iter().map(|oa| oa.as_ref()),
                    self.operator.clone(),
                ));
                *cached = Some((seen, d.clone()));
                d
            }
        }
    }
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// The API server's webhook: a JSON `EventList`.
async fn kubernetes(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &s.token) {
        return refused(StatusCode::UNAUTHORIZED, "a bearer token is required");
    }
    let list: Value = match serde_json::from_slice(&body) {
        Ok(list) => list,
        Err(e) => return refused(StatusCode::BAD_REQUEST, &format!("not JSON: {e}")),
    };
    let Some(items) = list.get("items").and_then(Value::as_array) else {
        return refused(StatusCode::BAD_REQUEST, "not an audit EventList (no items)");
    };
    let directory = s.directory();
    let mut buffer = s.intake.buffer();
    for event in items {
        buffer.add(&directory.kubernetes(event), Source::Kubernetes, event);
    }
    StatusCode::OK.into_response()
}

/// OpenBao's `http` audit device: one JSON entry per request (JSON lines
/// are taken too).
async fn openbao(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers, &s.token) {
        return refused(StatusCode::UNAUTHORIZED, "a bearer token is required");
    }
    let entries: Result<Vec<Value>, _> = serde_json::Deserializer::from_slice(&body)
        .into_iter()
        .collect();
    let entries = match entries {
        Ok(entries) => entries,
        Err(e) => return refused(StatusCode::BAD_REQUEST, &format!("not JSON: {e}")),
    };
    let directory = s.directory();
    let changed: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| directory.openbao_change(e))
        .collect();
    {
        let mut buffer = s.intake.buffer();
        for entry in &entries {
            buffer.add(&directory.openbao(entry), Source::OpenBao, entry);
        }
    }
    for tenant in changed {
        s.note_openbao_change(&tenant).await;
    }
    StatusCode::OK.into_response()
}

/// The largest request taken: an API server batch of 400 events at
/// metadata level is well under it.
pub const BODY_LIMIT: usize = 16 << 20;

/// How the intake is set up.
pub struct Settings {
    pub addr: SocketAddr,
    pub token: String,
    pub flush_every: Duration,
    pub operator: Operator,
    /// The serving certificate and key (PEM files). The API server sends
    /// its bearer token only over TLS.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// How often the serving certificate is read again (a renewed one is
/// served without a restart).
pub const TLS_RELOAD_EVERY: Duration = Duration::from_secs(60);

/// Serves the intake on `settings.addr` and flushes it every
/// `settings.flush_every`, until the process ends.
pub async fn serve(
    settings: Settings,
    client: kube::Client,
    intake: Arc<Intake>,
) -> std::io::Result<()> {
    let (reader, writer) = reflector::store();
    let oas = kube::Api::<OperatorAuthorization>::all(client.clone());
    let changes: Arc<std::sync::atomic::AtomicU64> = Arc::default();
    let watch = {
        let changes = changes.clone();
        reflector(
            writer,
            watcher(oas, watcher::Config::default())
                .default_backoff()
                .modify(|oa| oa.managed_fields_mut().clear()),
        )
        .for_each(move |_| {
            changes.fetch_add(1, std::sync::atomic::Ordering::Release);
            futures::future::ready(())
        })
    };
    let shared = Arc::new(Shared {
        intake: intake.clone(),
        token: settings.token,
        directory: reader,
        operator: settings.operator,
        client: client.clone(),
        changes,
        cached: Default::default(),
    });
    let flushing = {
        let shared = shared.clone();
        async move {
            let mut tick = tokio::time::interval(settings.flush_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let directory = shared.directory();
                shared
                    .intake
                    .flush(&directory, jiff::Timestamp::now())
                    .await;
            }
        }
    };
    let app = Router::new()
        .route("/v1/kubernetes", post(kubernetes))
        .route("/v1/openbao", post(openbao))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared);
    let served = async {
        match &settings.tls {
            Some((cert, key)) => {
                let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
                let reloading = {
                    let (tls, cert, key) = (tls.clone(), cert.clone(), key.clone());
                    async move {
                        loop {
                            tokio::time::sleep(TLS_RELOAD_EVERY).await;
                            if let Err(e) = tls.reload_from_pem_file(&cert, &key).await {
                                tracing::warn!(
                                    "the intake's certificate could not be read again: {e}"
                                );
                            }
                        }
                    }
                };
                tokio::select! {
                    served = axum_server::bind_rustls(settings.addr, tls)
                        .serve(app.into_make_service()) => served,
                    () = reloading => Ok(()),
                }
            }
            None => {
                let listener = tokio::net::TcpListener::bind(settings.addr).await?;
                axum::serve(listener, app).await
            }
        }
    };
    tokio::select! {
        served = served => served,
        () = watch => Ok(()),
        () = flushing => Ok(()),
    }
}

#[cfg(test)]
mod tests;
