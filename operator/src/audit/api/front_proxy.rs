//! The front proxy: how the audit API knows a request came through the API
//! server (its client certificate, from the request-header CA and names the
//! API server publishes) and whom it names (the request headers).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::{GROUP, VERSION};
/// Where the API server says how it proxies.
pub const AUTHENTICATION_CONFIG_MAP: (&str, &str) =
    ("kube-system", "extension-apiserver-authentication");

/// How the API server's front proxy is recognised and what its headers mean
/// (the request-header part of `extension-apiserver-authentication`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontProxy {
    /// PEM: the CA that signs the front proxy's client certificate.
    pub ca: String,
    /// The certificate's common names allowed; empty: any the CA signed.
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_prefixes: Vec<String>,
    pub uid_headers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "ConfigMap kube-system/extension-apiserver-authentication has no {0}: the API server \
         runs without --requestheader-client-ca-file, so it cannot proxy to the audit API"
    )]
    Missing(&'static str),
    #[error(
        "ConfigMap kube-system/extension-apiserver-authentication: {key} is not a JSON list of strings: {source}"
    )]
    List {
        key: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading ConfigMap kube-system/extension-apiserver-authentication: {0}")]
    Read(#[source] kube::Error),
    #[error("the audit API's TLS set-up: {0}")]
    Tls(String),
}

impl FrontProxy {
    /// From the ConfigMap's data.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, Error> {
        let list = |key: &'static str| -> Result<Vec<String>, Error> {
            match data.get(key).map(|s| s.trim()) {
                None | Some("") => Ok(Vec::new()),
                Some(json) => {
                    serde_json::from_str(json).map_err(|source| Error::List { key, source })
                }
            }
        };
        let ca = data
            .get("requestheader-client-ca-file")
            .filter(|ca| !ca.trim().is_empty())
            .ok_or(Error::Missing("requestheader-client-ca-file"))?
            .clone();
        let proxy = FrontProxy {
            ca,
            allowed_names: list("requestheader-allowed-names")?,
            username_headers: list("requestheader-username-headers")?,
            group_headers: list("requestheader-group-headers")?,
            extra_prefixes: list("requestheader-extra-headers-prefix")?,
            uid_headers: list("requestheader-uid-headers")?,
        };
        if proxy.username_headers.is_empty() {
            return Err(Error::Missing("requestheader-username-headers"));
        }
        Ok(proxy)
    }

    /// Read from the cluster.
    pub async fn load(client: &kube::Client) -> Result<Self, Error> {
        let (ns, name) = AUTHENTICATION_CONFIG_MAP;
        let cm = kube::Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .map_err(Error::Read)?;
        Self::from_data(&cm.data.unwrap_or_default())
    }

    /// The caller the API server names in `headers`; `None` without a user.
    ///
    /// Only the first header name of each list is read: it is the one the
    /// aggregation layer sets (and clears of what the client sent). Another
    /// name a cluster lists could come from the client through the proxy.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let values = |name: Option<&String>| {
            name.map(|name| {
                headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        };
        let user = values(self.username_headers.first())
            .into_iter()
            .find(|v| !v.is_empty())?;
        let groups = values(self.group_headers.first());
        let uid = values(self.uid_headers.first())
            .into_iter()
            .find(|v| !v.is_empty());
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(prefix) = self.extra_prefixes.first() {
            let prefix = prefix.to_ascii_lowercase();
            for (name, value) in headers {
                let Some(key) = name.as_str().strip_prefix(prefix.as_str()) else {
                    continue;
                };
                if let Ok(value) = value.to_str() {
                    let key = percent_encoding::percent_decode_str(key)
                        .decode_utf8_lossy()
                        .into_owned();
                    extra.entry(key).or_default().push(value.to_string());
                }
            }
        }
        Some(Caller {
            user,
            uid,
            groups,
            extra,
        })
    }
}

/// Who asked, as the API server authenticated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Caller {
    /// The review asking whether this caller may `verb` the `resource`.
    pub fn review(&self, verb: &str, resource: &str, name: Option<&str>) -> SubjectAccessReview {
        SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(self.user.clone()),
                uid: self.uid.clone(),
                groups: Some(self.groups.clone()),
                extra: (!self.extra.is_empty()).then(|| self.extra.clone()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GROUP.into()),
                    version: Some(VERSION.into()),
                    resource: Some(resource.into()),
                    name: name.map(str::to_string),
                    verb: Some(verb.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// The common name of a certificate's subject.
fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_cert::der::{Decode, Tagged, asn1};
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    let cn = x509_cert::der::oid::db::rfc4519::CN;
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == cn)
        .and_then(|atv| match atv.value.tag() {
            x509_cert::der::Tag::Utf8String => atv
                .value
                .decode_as::<asn1::Utf8StringRef<'_>>()
                .ok()
                .map(|s| s.as_str().to_string()),
            x509_cert::der::Tag::PrintableString => atv
                .value
                .decode_as::<asn1::PrintableStringRef<'_>>()
                .ok()
                .map(|s| s.as_str().to_string()),
            _ => None,
        })
}

/// Accepts a client certificate only from the front proxy: signed by the
/// request-header CA and, where the API server names them, with an allowed
/// common name.
#[derive(Debug)]
struct FrontProxyVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed_names: Vec<String>,
}

impl ClientCertVerifier for FrontProxyVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.allowed_names.is_empty()
            || common_name(end_entity).is_some_and(|cn| self.allowed_names.contains(&cn))
        {
            return Ok(ClientCertVerified::assertion());
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS server configuration: the serving certificate and key (PEM files),
/// and client certificates from the front proxy only.
pub fn tls_config(
    proxy: &FrontProxy,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<rustls::ServerConfig, Error> {
    let tls = |what: &str, e: &dyn std::fmt::Display| Error::Tls(format!("{what}: {e}"));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(proxy.ca.as_bytes()) {
        let ca = ca.map_err(|e| tls("the request-header CA", &e))?;
        roots
            .add(ca)
            .map_err(|e| tls("the request-header CA", &e))?;
    }
    let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| tls("the request-header CA", &e))?;
    let verifier = Arc::new(FrontProxyVerifier {
        inner,
        allowed_names: proxy.allowed_names.clone(),
    });
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls(&cert.display().to_string(), &e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| tls(&key.display().to_string(), &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls("protocol versions", &e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls("the serving certificate", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, String> {
        [
            (
                "requestheader-client-ca-file",
                "-----BEGIN CERTIFICATE-----\n...",
            ),
            ("requestheader-allowed-names", r#"["front-proxy-client"]"#),
            ("requestheader-username-headers", r#"["X-Remote-User"]"#),
            (
                "requestheader-group-headers",
                r#"["X-Remote-Group", "X-Custom-Group"]"#,
            ),
            ("requestheader-uid-headers", r#"["X-Remote-Uid"]"#),
            (
                "requestheader-extra-headers-prefix",
                r#"["X-Remote-Extra-"]"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn the_front_proxy_is_read_from_the_api_servers_config_map() {
        let proxy = FrontProxy::from_data(&data()).unwrap();
        assert_eq!(proxy.allowed_names, ["front-proxy-client"]);
        assert_eq!(proxy.username_headers, ["X-Remote-User"]);
        let mut without = data();
        without.remove("requestheader-client-ca-file");
        let e = FrontProxy::from_data(&without).unwrap_err().to_string();
        assert!(e.contains("--requestheader-client-ca-file"), "{e}");
        let mut broken = data();
        broken.insert(
            "requestheader-group-headers".into(),
            "X-Remote-Group".into(),
        );
        assert!(matches!(
            FrontProxy::from_data(&broken),
            Err(Error::List {
                key: "requestheader-group-headers",
                ..
            })
        ));
    }

    #[test]
    fn the_caller_is_who_the_headers_name_with_every_group_and_extra() {
        let proxy = FrontProxy::from_data(&data()).unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(proxy.caller(&headers), None, "no user, no caller");
        headers.insert("x-remote-user", "li.auditor".parse().unwrap());
        headers.append("x-remote-group", "publicdata:auditors".parse().unwrap());
        headers.append("x-remote-group", "system:authenticated".parse().unwrap());
        headers.append("x-remote-extra-scopes%2Fa", "x".parse().unwrap());
        headers.insert("x-other", "ignored".parse().unwrap());
        // A second name the cluster lists is not one the proxy clears.
        headers.insert("x-custom-group", "system:masters".parse().unwrap());
        headers.insert("x-remote-uid", "u-1".parse().unwrap());
        let caller = proxy.caller(&headers).unwrap();
        assert_eq!(caller.user, "li.auditor");
        assert_eq!(caller.uid.as_deref(), Some("u-1"));
        assert_eq!(
            caller.groups,
            ["publicdata:auditors", "system:authenticated"]
        );
        assert_eq!(caller.extra["scopes/a"], ["x"]);
        let review = caller.review("get", "logs", Some(super::super::NAME));
        let attrs = review.spec.resource_attributes.unwrap();
        assert_eq!(
            (
                attrs.group.as_deref(),
                attrs.resource.as_deref(),
                attrs.verb.as_deref()
            ),
            (Some(GROUP), Some("logs"), Some("get"))
        );
        assert_eq!(review.spec.user.as_deref(), Some("li.auditor"));
        assert_eq!(review.spec.uid.as_deref(), Some("u-1"));
    }
}
