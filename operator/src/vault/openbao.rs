//! The client of an OpenBao or Vault server: its session (a token replaced
//! while the operator runs), the workload auth mount's configuration, raw
//! requests, and how its errors read. What the operator does with it, the
//! [`super::SecretsBackend`], is in `backend.rs`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use sha2::{Digest, Sha256};

use super::{Error, KubernetesAuthConfig};

/// An OpenBao/Vault server reached with a token that can be replaced while
/// the operator runs (a fresh login before the old token expires).
pub struct OpenBao {
    session: RwLock<Arc<Session>>,
    address: String,
    ca_cert: Option<PathBuf>,
    http: reqwest::Client,
    pub(super) kubernetes: KubernetesAuthConfig,
    /// The token OpenBao calls TokenReview with for the workload auth
    /// mount; replaced when it rotates.
    reviewer_jwt: RwLock<String>,
    /// Auth mount accessors by mount, read once (an accessor changes only
    /// when the platform enables the mount anew, which a restart follows).
    pub(super) accessors: RwLock<HashMap<String, String>>,
}

/// What the operator reads of an auth mount.
pub(super) struct AuthMount {
    pub(super) kind: String,
    pub(super) description: String,
    pub(super) accessor: String,
}

/// A client with its token.
pub(super) struct Session {
    pub(super) client: VaultClient,
    token: String,
}

/// The first characters of a SHA-256, which identify a reviewer token in an
/// auth mount's description without revealing it.
fn fingerprint(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))[..16].to_string()
}

/// The description of a tenant auth mount: names the reviewer token it was
/// configured with, so a rotated token is seen without reading any secret.
pub(super) fn mount_description(reviewer_jwt: &str) -> String {
    format!(
        "publicdata-operator tenant auth; reviewer {}",
        fingerprint(reviewer_jwt)
    )
}

impl OpenBao {
    /// A client for `address` with `token`; tenant auth mounts review tokens
    /// against the API server described by `kubernetes`. `ca_cert` is a PEM
    /// file to verify OpenBao's TLS certificate with (else the system's).
    pub fn new(
        address: &str,
        token: &str,
        kubernetes: KubernetesAuthConfig,
        ca_cert: Option<PathBuf>,
    ) -> Result<Self, Error> {
        let mut http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10));
        if let Some(path) = &ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| Error::Settings(format!("reading {}: {e}", path.display())))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| Error::Settings(format!("{}: {e}", path.display())))?;
            http = http.add_root_certificate(cert);
        }
        let http = http.build().map_err(|e| Error::Settings(e.to_string()))?;
        let reviewer_jwt = RwLock::new(kubernetes.reviewer_jwt.clone());
        let address = address.trim_end_matches('/').to_string();
        let session = Session::new(&address, token, ca_cert.as_deref())?;
        Ok(Self {
            session: RwLock::new(Arc::new(session)),
            address,
            ca_cert,
            http,
            kubernetes,
            reviewer_jwt,
            accessors: RwLock::default(),
        })
    }

    /// The address of the server.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A client without a token, for logging in.
    pub fn anonymous(&self) -> Result<VaultClient, Error> {
        Ok(Session::new(&self.address, "", self.ca_cert.as_deref())?.client)
    }

    /// From now on, every request carries `token`.
    pub fn set_token(&self, token: &str) -> Result<(), Error> {
        let session = Arc::new(Session::new(&self.address, token, self.ca_cert.as_deref())?);
        match self.session.write() {
            Ok(mut s) => *s = session,
            Err(poisoned) => *poisoned.into_inner() = session,
        }
        Ok(())
    }

    /// From now on, tenant auth mounts are configured with this reviewer
    /// token; mounts configured with another are rewritten on their next
    /// reconcile.
    pub fn set_reviewer_jwt(&self, jwt: &str) {
        let jwt = jwt.trim().to_string();
        match self.reviewer_jwt.write() {
            Ok(mut r) => *r = jwt,
            Err(poisoned) => *poisoned.into_inner() = jwt,
        }
    }

    /// The reviewer token in use.
    pub fn current_reviewer_jwt(&self) -> String {
        self.reviewer_jwt()
    }

    pub(super) fn reviewer_jwt(&self) -> String {
        match self.reviewer_jwt.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn session(&self) -> Arc<Session> {
        match self.session.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Writes `auth/<mount>/config` with the token reviewer JWT, which the
    /// vaultrs request type does not carry, and names that reviewer in the
    /// mount's description.
    pub(super) async fn configure_auth(&self, mount: &str) -> Result<(), Error> {
        let reviewer = self.reviewer_jwt();
        let body = serde_json::json!({
            "kubernetes_host": self.kubernetes.host,
            // Trimmed: the operator's policy pins the CA to the exact text the
            // platform rendered into it (files/openbao-setup.sh trims too).
            "kubernetes_ca_cert": self.kubernetes.ca_cert.trim_end(),
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": true,
        });
        self.post(mount, &format!("auth/{mount}/config"), &body)
            .await?;
        let tune = serde_json::json!({"description": mount_description(&reviewer)});
        self.post(mount, &format!("sys/auth/{mount}/tune"), &tune)
            .await
    }

    /// The auth mount at `sys/auth/<mount>`, if there is one: one small read,
    /// where listing every mount would grow with the number of tenants.
    pub(super) async fn auth_mount(&self, mount: &str) -> Result<Option<AuthMount>, Error> {
        let fail = |message: String| Error::ReadAuth {
            path: mount.into(),
            message,
        };
        let response = self
            .http
            .get(format!("{}/v1/sys/auth/{mount}", self.address))
            .header("X-Vault-Token", &self.session().token)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| fail(e.to_string()))?;
        // No mount there: 400 "No auth engine at <mount>/" (404 on some versions).
        if status == reqwest::StatusCode::NOT_FOUND
            || (status == reqwest::StatusCode::BAD_REQUEST
                && text.to_ascii_lowercase().contains("no auth engine at"))
        {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(fail(format!("{status}: {text}")));
        }
        let body: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let field = |k: &str| {
            body.get("data")
                .unwrap_or(&body)
                .get(k)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Some(AuthMount {
            kind: field("type"),
            description: field("description"),
            accessor: field("accessor"),
        }))
    }

    /// One request with the current token: the status and the JSON body
    /// (`null` when empty), or what went wrong on the way.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(reqwest::StatusCode, serde_json::Value), String> {
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", &self.session().token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if text.trim().is_empty() {
            return Ok((status, serde_json::Value::Null));
        }
        let body = serde_json::from_str(&text).map_err(|e| format!("{status}: {e}: {text}"))?;
        Ok((status, body))
    }

    /// A GET of `path`: its body, None on 404 (and only then), or what went
    /// wrong.
    pub(super) async fn get_opt(&self, path: &str) -> Result<Option<serde_json::Value>, String> {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await?;
        match status {
            reqwest::StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(body)),
            s => Err(format!("reading: {s}: {body}")),
        }
    }

    async fn post(&self, mount: &str, path: &str, body: &serde_json::Value) -> Result<(), Error> {
        let response = self
            .http
            .post(format!("{}/v1/{path}", self.address))
            .header("X-Vault-Token", &self.session().token)
            .json(body)
            .send()
            .await
            .map_err(|e| Error::ConfigureAuth {
                path: mount.into(),
                message: e.to_string(),
            })?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(Error::ConfigureAuth {
                path: mount.into(),
                message: format!("{path}: {status}: {text}"),
            });
        }
        Ok(())
    }
}

impl Session {
    fn new(address: &str, token: &str, ca_cert: Option<&std::path::Path>) -> Result<Self, Error> {
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(address)
            .token(token)
            .timeout(Some(std::time::Duration::from_secs(10)));
        if let Some(path) = ca_cert {
            settings.ca_certs(vec![path.display().to_string()]);
        }
        let settings = settings
            .build()
            .map_err(|e| Error::Settings(e.to_string()))?;
        Ok(Self {
            client: VaultClient::new(settings).map_err(Error::Client)?,
            token: token.to_string(),
        })
    }
}

pub(super) fn not_found(e: &ClientError) -> bool {
    // Only a 404 means "not there". A 400 is a bad request and a 403 a
    // permission the operator lacks: both are errors, never "nothing to do".
    matches!(e, ClientError::APIError { code: 404, .. })
}

/// `GET sys/mounts/<path>` answers 400 with this text when no engine is
/// mounted there (and 400 for other bad requests, which stay errors).
pub(super) fn no_mount(e: &ClientError) -> bool {
    match e {
        ClientError::APIError { code: 400, errors } => errors
            .iter()
            .any(|m| m.to_ascii_lowercase().contains("no secret engine mount at")),
        other => not_found(other),
    }
}

/// The strings of a JSON array as OpenBao returns a list field (none for
/// anything else).
pub(super) fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn ttl_seconds(s: &str) -> u64 {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().unwrap_or(0);
    match unit {
        "h" => n * 3600,
        "m" => n * 60,
        _ => n,
    }
}

#[cfg(test)]
mod tests {

    fn api_error(code: u16, message: &str) -> ClientError {
        ClientError::APIError {
            code,
            errors: vec![message.into()],
        }
    }

    #[test]
    fn only_a_clear_no_is_not_found_and_a_refusal_is_an_error() {
        assert!(not_found(&api_error(404, "")));
        assert!(!not_found(&api_error(403, "permission denied")));
        assert!(!not_found(&api_error(400, "invalid path")));
        assert!(!not_found(&api_error(500, "internal error")));
        assert!(no_mount(&api_error(
            400,
            "No secret engine mount at tenants/acme/"
        )));
        assert!(!no_mount(&api_error(400, "invalid request")));
        assert!(!no_mount(&api_error(403, "permission denied")));
    }

    use super::{ClientError, no_mount, not_found, ttl_seconds};

    #[test]
    fn ttls_are_read_as_seconds() {
        assert_eq!(ttl_seconds("1h"), 3600);
        assert_eq!(ttl_seconds("4h"), 14400);
        assert_eq!(ttl_seconds("90m"), 5400);
        assert_eq!(ttl_seconds("30"), 30);
    }
}
