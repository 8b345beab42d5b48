//! The public register of authorized units (R-9): who may operate public
//! data, in which domains, for how long, in which state now, and since when.
//!
//! Served on its own port as JSON (`/register.json`) and as a plain HTML page
//! (`/`), from the authorizations as the API server has them. Only what the
//! rules make public goes in: the unit's name and credit code, its domains,
//! its validity, its state and the dates (and decision references) of its
//! changes. No person's name, contact, member or agreement detail ever does:
//! an [`Entry`] has no field that could carry one.
//!
//! Every replica serves it (a Service spreads requests over them, a standby
//! included), so it reads the API server rather than the leader's cache,
//! at most once per [`FRESH`] whatever the number of requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use kube::api::{Api, ListParams};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::api::authorization::{OperatorAuthorization, Phase};

/// How long a listing is served before the API server is asked again.
pub const FRESH: Duration = Duration::from_secs(5);

/// One authorized unit, as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The authorization's name (its id on the platform).
    pub id: String,
    /// The unit's registered name.
    pub unit: String,
    /// Its unified social credit code.
    pub credit_code: String,
    /// The data domains it is authorized for.
    pub domains: Vec<String>,
    /// The first and the last day of the authorization.
    pub valid_from: String,
    pub valid_until: String,
    /// Its state now (the phase; `Pending` before it is in force).
    pub state: String,
    /// Since when (RFC 3339), where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Each change of state, oldest first.
    pub changes: Vec<Change>,
}

/// A change of state, as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub state: String,
    pub since: String,
    /// The reference of the bureau's decision, where one caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
}

/// The register as JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Register {
    /// When this listing was read (RFC 3339).
    pub as_of: String,
    pub units: Vec<Entry>,
}

/// What the register says of one authorization.
pub fn entry(oa: &OperatorAuthorization) -> Entry {
    let status = oa.status.clone().unwrap_or_default();
    let changes: Vec<Change> = status
        .history
        .iter()
        .map(|c| Change {
            state: c.phase.as_str().into(),
            since: c.since.clone(),
            decision: c.decision.clone(),
        })
        .collect();
    Entry {
        id: oa.metadata.name.clone().unwrap_or_default(),
        unit: oa.spec.unit.name.clone(),
        credit_code: oa.spec.unit.credit_code.clone(),
        domains: oa
            .spec
            .domains
            .iter()
            .map(|d| {
                serde_json::to_value(d)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect(),
        valid_from: oa.spec.validity.not_before.to_string(),
        valid_until: oa.spec.validity.not_after.to_string(),
        state: status.phase.unwrap_or(Phase::Pending).as_str().into(),
        since: changes.last().map(|c| c.since.clone()),
        changes,
    }
}

/// The register of `oas`, by unit name (then credit code, then id).
pub fn register(oas: &[OperatorAuthorization], as_of: String) -> Register {
    let mut units: Vec<Entry> = oas.iter().map(entry).collect();
    units.sort_by(|a, b| (&a.unit, &a.credit_code, &a.id).cmp(&(&b.unit, &b.credit_code, &b.id)));
    Register { as_of, units }
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// The register as a plain page a person reads (and a screen reader).
pub fn html(register: &Register) -> String {
    let mut rows = String::new();
    for u in &register.units {
        let changes: Vec<String> = u
            .changes
            .iter()
            .map(|c| {
                let day = c.since.get(..10).unwrap_or(&c.since);
                let change = match &c.decision {
                    Some(d) => format!("{day} {} ({})", escape(&c.state), escape(d)),
                    None => format!("{day} {}", escape(&c.state)),
                };
                format!("<span class=\"date\">{change}</span>")
            })
            .collect();
        rows.push_str(&format!(
            "<tr id=\"{}\"><td>{}<br><small>{}</small></td><td><code>{}</code></td><td>{}</td>\
             <td class=\"date\">{} to {}</td><td class=\"state {}\">{}</td><td>{}</td></tr>\n",
            escape(&u.id),
            escape(&u.unit),
            escape(&u.id),
            escape(&u.credit_code),
            escape(&u.domains.join(", ")),
            escape(&u.valid_from),
            escape(&u.valid_until),
            escape(&u.state.to_lowercase()),
            escape(&u.state),
            changes.join("<br>"),
        ));
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Register of units authorized to operate public data</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1b1b1b; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .5rem; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }}
.state {{ font-weight: bold; }}
.date {{ white-space: nowrap; }}
small {{ color: #555; }}
.active {{ color: #1a7f37; }}
.suspended, .expiring {{ color: #9a6700; }}
.revoked, .terminated, .expired, .offboarding {{ color: #cf222e; }}
footer {{ margin-top: 1rem; color: #555; font-size: .9rem; }}
</style>
</head>
<body>
<h1>Register of units authorized to operate public data</h1>
<p>{count} unit(s). The same register as JSON: <a href="register.json">register.json</a>.</p>
<table>
<thead><tr><th scope="col">Unit</th><th scope="col">Credit code</th><th scope="col">Domains</th><th scope="col">Valid</th><th scope="col">State</th><th scope="col">Changes</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<footer>As of {as_of}.</footer>
</body>
</html>
"#,
        count = register.units.len(),
        as_of = escape(&register.as_of),
    )
}

/// The listing served, read at most once per [`FRESH`].
struct Cache {
    client: kube::Client,
    last: Mutex<Option<(Instant, Arc<Register>)>>,
}

impl Cache {
    async fn get(&self) -> Result<Arc<Register>, kube::Error> {
        let mut last = self.last.lock().await;
        if let Some((at, register)) = last.as_ref()
            && at.elapsed() < FRESH
        {
            return Ok(register.clone());
        }
        let oas = Api::<OperatorAuthorization>::all(self.client.clone())
            .list(&ListParams::default())
            .await?;
        let register = Arc::new(register(&oas.items, jiff::Timestamp::now().to_string()));
        *last = Some((Instant::now(), register.clone()));
        Ok(register)
    }
}

fn unavailable(e: kube::Error) -> Response {
    tracing::warn!("the register could not read the authorizations: {e}");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the register is unavailable for a moment; try again\n",
    )
        .into_response()
}

/// Serves the register on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, client: kube::Client) -> std::io::Result<()> {
    let cache = Arc::new(Cache {
        client,
        last: Mutex::new(None),
    });
    let app = Router::new()
        .route(
            "/",
            get(|State(c): State<Arc<Cache>>| async move {
                match c.get().await {
                    Ok(r) => Html(html(&r)).into_response(),
                    Err(e) => unavailable(e),
                }
            }),
        )
        .route(
            "/register.json",
            get(|State(c): State<Arc<Cache>>| async move {
                match c.get().await {
                    Ok(r) => (
                        [(header::CONTENT_TYPE, "application/json")],
                        serde_json::to_string_pretty(r.as_ref()).unwrap_or_default(),
                    )
                        .into_response(),
                    Err(e) => unavailable(e),
                }
            }),
        )
        .with_state(cache);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests;
