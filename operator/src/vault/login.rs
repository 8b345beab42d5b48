//! How the operator stays logged in to OpenBao, and keeps the tenants'
//! reviewer token fresh.
//!
//! In a cluster the operator logs in through a Kubernetes auth mount of the
//! platform with its own ServiceAccount token (projected, audience of the
//! platform's role), and logs in again at two thirds of the token's TTL with
//! the token file as the kubelet last refreshed it. Nothing static: no root
//! token, no long-lived secret. A local developer run may use a token instead.
//!
//! The reviewer token (what OpenBao calls TokenReview with for tenant
//! logins) is re-read from its file, or requested anew for the reviewer
//! ServiceAccount through the TokenRequest API, before it expires.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use tracing::{info, warn};

use super::openbao::OpenBao;

/// Errors of logging in or fetching the reviewer token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("logging in to OpenBao at auth/{mount} as role {role}: {source}")]
    Login {
        mount: String,
        role: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("building an OpenBao client: {0}")]
    Client(#[source] super::Error),
    #[error("requesting a token for ServiceAccount {namespace}/{name}: {source}")]
    TokenRequest {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("the TokenRequest for {namespace}/{name} returned no token")]
    EmptyToken { namespace: String, name: String },
}

/// How the operator authenticates to OpenBao.
#[derive(Debug, Clone)]
pub enum Login {
    /// A token given at start (local runs).
    Token(String),
    /// Kubernetes auth with the operator's own ServiceAccount token.
    Kubernetes {
        mount: String,
        role: String,
        jwt_file: PathBuf,
    },
}

/// Where the reviewer token comes from.
#[derive(Clone)]
pub enum Reviewer {
    /// A file (re-read, since its owner may rotate it).
    File(PathBuf),
    /// Requested for this ServiceAccount with the TokenRequest API.
    ServiceAccount {
        client: kube::Client,
        namespace: String,
        name: String,
    },
}

/// "Not again": a static token is never replaced.
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long a requested reviewer token lives; it is requested anew at half.
const REVIEWER_TTL: Duration = Duration::from_secs(24 * 3600);

fn read(path: &PathBuf) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| Error::ReadFile {
            path: path.clone(),
            source,
        })
}

impl Login {
    /// Logs in (or takes the given token); returns the token and how long
    /// until it should be replaced (`None`: never).
    pub async fn token(&self, bao: &OpenBao) -> Result<(String, Option<Duration>), Error> {
        match self {
            Login::Token(token) => Ok((token.clone(), None)),
            Login::Kubernetes {
                mount,
                role,
                jwt_file,
            } => {
                let jwt = read(jwt_file)?;
                let client = bao.anonymous().map_err(Error::Client)?;
                let auth = vaultrs::auth::kubernetes::login(&client, mount, role, &jwt)
                    .await
                    .map_err(|source| Error::Login {
                        mount: mount.clone(),
                        role: role.clone(),
                        source,
                    })?;
                Ok((
                    auth.client_token,
                    Some(renew_after(Duration::from_secs(auth.lease_duration))),
                ))
            }
        }
    }
}

/// When to log in again: at two thirds of the TTL, never later than an
/// hour, never sooner than five seconds.
pub fn renew_after(ttl: Duration) -> Duration {
    (ttl * 2 / 3).clamp(Duration::from_secs(5), Duration::from_secs(3600))
}

impl Reviewer {
    /// The current reviewer token, and when to fetch it again.
    pub async fn token(&self) -> Result<(String, Duration), Error> {
        match self {
            Reviewer::File(path) => Ok((read(path)?, Duration::from_secs(60))),
            Reviewer::ServiceAccount {
                client,
                namespace,
                name,
            } => {
                let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
                let request = TokenRequest {
                    spec: Some(TokenRequestSpec {
                        // The API server's own audience: what TokenReview accepts.
                        audiences: None,
                        expiration_seconds: Some(REVIEWER_TTL.as_secs() as i64),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let answer = api
                    .create_token_request(name, &PostParams::default(), &request)
                    .await
                    .map_err(|source| Error::TokenRequest {
                        namespace: namespace.clone(),
                        name: name.clone(),
                        source,
                    })?;
                let token = answer
                    .status
                    .and_then(|s| s.token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Error::EmptyToken {
                        namespace: namespace.clone(),
                        name: name.clone(),
                    })?;
                Ok((token, REVIEWER_TTL / 2))
            }
        }
    }
}

/// Logs in and fetches the reviewer token once; fails if either fails.
pub async fn start(
    bao: &OpenBao,
    login: &Login,
    reviewer: &Reviewer,
) -> Result<(Duration, Duration), Error> {
    let (token, login_again) = login.token(bao).await?;
    bao.set_token(&token).map_err(Error::Client)?;
    let (jwt, fetch_again) = reviewer.token().await?;
    bao.set_reviewer_jwt(&jwt);
    Ok((login_again.unwrap_or(NEVER), fetch_again))
}

/// Keeps both fresh until the process ends: logs in again and fetches the
/// reviewer token again when due; on failure, retries every five seconds
/// (the current token stays in use until it expires).
pub async fn keep_fresh(
    bao: Arc<OpenBao>,
    login: Login,
    reviewer: Reviewer,
    (mut login_in, mut reviewer_in): (Duration, Duration),
) {
    let retry = Duration::from_secs(5);
    let mut last_reviewer = bao.current_reviewer_jwt();
    loop {
        let wait = login_in.min(reviewer_in);
        tokio::time::sleep(wait).await;
        login_in = login_in.saturating_sub(wait);
        reviewer_in = reviewer_in.saturating_sub(wait);
        if login_in.is_zero() {
            login_in = match login.token(&bao).await {
                Ok((token, again)) => match bao.set_token(&token) {
                    Ok(()) => {
                        info!("logged in to OpenBao again");
                        again.unwrap_or(NEVER)
                    }
                    Err(e) => {
                        warn!(error = %e, "could not use the new OpenBao token; retrying");
                        retry
                    }
                },
                Err(e) => {
                    warn!(error = %e, "could not log in to OpenBao again; retrying");
                    retry
                }
            };
        }
        if reviewer_in.is_zero() {
            reviewer_in = match reviewer.token().await {
                Ok((jwt, again)) => {
                    if jwt != last_reviewer {
                        info!(
                            "the reviewer token changed; tenant auth mounts follow on their next reconcile"
                        );
                        bao.set_reviewer_jwt(&jwt);
                        last_reviewer = jwt;
                    }
                    again
                }
                Err(e) => {
                    warn!(error = %e, "could not fetch the reviewer token; retrying");
                    retry
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_renewed_at_two_thirds_within_bounds() {
        assert_eq!(
            renew_after(Duration::from_secs(300)),
            Duration::from_secs(200)
        );
        assert_eq!(renew_after(Duration::from_secs(3)), Duration::from_secs(5));
        assert_eq!(
            renew_after(Duration::from_secs(24 * 3600)),
            Duration::from_secs(3600)
        );
    }
}
