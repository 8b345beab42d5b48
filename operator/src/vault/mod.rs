//! The secrets backend (OpenBao or Vault): what a tenant gets there, built by
//! pure functions, and a trait the controller talks to, with one vaultrs
//! implementation.
//!
//! Per tenant: one KV v2 mount `tenants/<tenant>`, one Kubernetes auth mount
//! `auth/k8s-<tenant>`, and per environment one ACL policy
//! `tenant-<tenant>-<env>` (read/write under `<env>/` of the KV mount only) and
//! one role `<env>` in the tenant's auth mount, bound to the `workload`
//! ServiceAccount of that environment's namespace. Nothing exists for
//! environments the authorization does not list.
//!
//! The auth mount is per tenant so that every token a tenant's workloads hold
//! is revocable at once: disabling the mount (freeze, offboarding) revokes all
//! its tokens and leases, and no login is possible until it is enabled again.

mod database;
pub mod fingerprint;
pub mod login;
#[cfg(test)]
pub mod memory;
mod openbao;
mod resync;
mod signer;

pub use openbao::OpenBao;
pub use resync::{Applied, Pass, apply_one, digest, parts};

use async_trait::async_trait;

use crate::api::authorization::Environment;
use crate::naming::{WORKLOAD_SERVICE_ACCOUNT, namespace_name};
pub use crate::naming::{auth_mount, env_name, grants_name, mount_path};

/// Token lifetimes of workload logins. Always set: the server default is 32 days.
pub const TOKEN_TTL: &str = "1h";
pub const TOKEN_MAX_TTL: &str = "4h";

/// How OpenBao reaches the Kubernetes API to review workload tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesAuthConfig {
    /// The API server URL as OpenBao reaches it.
    pub host: String,
    /// PEM CA bundle of the API server.
    pub ca_cert: String,
    /// A token allowed to call TokenReview (`system:auth-delegator`).
    pub reviewer_jwt: String,
}

/// A Kubernetes-auth role as the operator wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesRole {
    /// The tenant's auth mount.
    pub mount: String,
    /// The environment: `dev` or `prod`.
    pub name: String,
    pub service_account: String,
    pub namespace: String,
    pub audience: String,
    pub policies: Vec<String>,
    pub ttl: String,
    pub max_ttl: String,
}

/// Where OpenBao makes database users: its database secrets engine's mount,
/// and the connection (to the platform's PostgreSQL) configured there by the
/// platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlane {
    pub mount: String,
    pub connection: String,
}

/// A role of OpenBao's database secrets engine: each read of
/// `<mount>/creds/<name>` makes a PostgreSQL user that is a member of the
/// tenant environment's role (and nothing else) and lives as long as its
/// lease. Revoking the lease ends the user's sessions and drops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRole {
    pub mount: String,
    /// Also the PostgreSQL role its users are members of.
    pub name: String,
    pub connection: String,
    pub ttl: String,
    pub max_ttl: String,
    /// Written into the creation statement as an SQL comment: a role of that
    /// name without it is someone else's.
    pub owner: String,
}

impl DatabaseRole {
    /// The statements OpenBao runs to make a user.
    pub fn creation_statements(&self) -> Vec<String> {
        vec![format!(
            "-- {}\nCREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}' IN ROLE {}",
            self.owner,
            crate::database::sql::ident(&self.name)
        )]
    }

    /// The statements OpenBao runs when the lease ends or is revoked: the
    /// user's sessions ended, then the user dropped.
    pub fn revocation_statements(&self) -> Vec<String> {
        vec![
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'"
                .into(),
            "DROP ROLE IF EXISTS \"{{name}}\"".into(),
        ]
    }
}

/// An ACL policy as the operator wants it. Its HCL starts with a comment
/// naming `owner`: a policy of that name without it is someone else's, and is
/// neither overwritten nor deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub hcl: String,
    pub owner: String,
}

/// How the operator marked its mounts and policies before owner marks
/// (accepted as its own, so an upgrade adopts what it made).
pub const LEGACY_MOUNT_DESCRIPTION: &str = "publicdata-operator: tenant KV area";
/// See [`LEGACY_MOUNT_DESCRIPTION`].
pub const LEGACY_POLICY_HEADER: &str = "# Managed by publicdata-operator: ";

/// Whether a mount description or policy text carries `owner`'s mark (or the
/// operator's mark from before owner marks).
pub fn marked_by(found: &str, owner: &str) -> bool {
    found.contains(owner)
        || (found.starts_with(LEGACY_MOUNT_DESCRIPTION) || found.starts_with(LEGACY_POLICY_HEADER))
            && !found.contains("publicdata-operator tenant=")
}

/// `Ok` when `found` (a mount's description, a policy's text) carries
/// `owner`'s mark; otherwise [`Error::NotOurs`] naming `what` and the first
/// line found.
pub fn owned(what: impl FnOnce() -> String, found: &str, owner: &str) -> Result<(), Error> {
    if marked_by(found, owner) {
        return Ok(());
    }
    Err(Error::NotOurs {
        what: what(),
        owner: owner.into(),
        found: found.lines().next().unwrap_or_default().to_string(),
    })
}

/// The description of a KV mount the operator made for `owner`.
pub fn mount_description(owner: &str) -> String {
    format!("{owner}: KV area")
}

/// Everything of a tenant in the secrets backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantVault {
    /// The mark on its mount and policies (see `naming::owner_mark`).
    pub owner: String,
    pub mount: String,
    pub auth_mount: String,
    pub policies: Vec<Policy>,
    pub roles: Vec<KubernetesRole>,
    /// With a data plane: one per environment.
    pub database_roles: Vec<DatabaseRole>,
}

/// The policy of one environment: its own half of the tenant's KV area, and
/// nothing else (the other environment's half, other tenants, the catalog);
/// with a data plane, also database users of its own role.
pub fn env_policy(
    tenant: &str,
    env: Environment,
    owner: &str,
    data_plane: Option<&DataPlane>,
) -> Policy {
    let mount = mount_path(tenant);
    let e = env.as_str();
    let mut hcl = format!(
        "# {owner}: environment {e}.\n\
         path \"{mount}/data/{e}/*\" {{\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n}}\n\
         path \"{mount}/metadata/{e}/*\" {{\n  capabilities = [\"read\", \"list\", \"delete\"]\n}}\n"
    );
    if let Some(plane) = data_plane {
        hcl.push_str(&format!(
            "path \"{}/creds/{}\" {{\n  capabilities = [\"read\"]\n}}\n",
            plane.mount,
            crate::database::tenant_role(tenant, env)
        ));
    }
    Policy {
        name: env_name(tenant, env),
        hcl,
        owner: owner.into(),
    }
}

/// The grants policy of an environment, from `(env, policy path)` pairs.
pub fn grants_policy(
    tenant: &str,
    env: Environment,
    owner: &str,
    grants: &[(String, String)],
) -> Policy {
    let mut hcl = format!(
        "# {owner}: catalog data granted to environment {} by its active scenarios.\n",
        env.as_str()
    );
    let mut any = false;
    for (e, path) in grants.iter().filter(|(e, _)| e == env.as_str()) {
        let _ = e;
        hcl.push_str(&format!(
            "path \"{path}\" {{\n  capabilities = [\"read\"]\n}}\n"
        ));
        any = true;
    }
    if !any {
        // A policy cannot be empty: deny a path nobody uses.
        hcl.push_str(&format!(
            "path \"{}/data/{}/.no-grants\" {{\n  capabilities = [\"deny\"]\n}}\n",
            mount_path(tenant),
            env.as_str()
        ));
    }
    Policy {
        name: grants_name(tenant, env),
        hcl,
        owner: owner.into(),
    }
}

/// Builds what the tenant gets in the secrets backend, with no scenario
/// grants and no data plane.
pub fn build(tenant: &str, owner: &str, envs: &[Environment], audience: &str) -> TenantVault {
    build_with_grants(tenant, owner, envs, audience, &[], None)
}

/// Builds what the tenant gets in the secrets backend, with the grants of its
/// active scenarios as `(env, policy path)` pairs.
pub fn build_with_grants(
    tenant: &str,
    owner: &str,
    envs: &[Environment],
    audience: &str,
    grants: &[(String, String)],
    data_plane: Option<&DataPlane>,
) -> TenantVault {
    let mut envs = envs.to_vec();
    envs.sort();
    envs.dedup();
    TenantVault {
        owner: owner.into(),
        mount: mount_path(tenant),
        auth_mount: auth_mount(tenant),
        policies: envs
            .iter()
            .flat_map(|e| {
                [
                    env_policy(tenant, *e, owner, data_plane),
                    grants_policy(tenant, *e, owner, grants),
                ]
            })
            .collect(),
        roles: envs
            .iter()
            .map(|e| KubernetesRole {
                mount: auth_mount(tenant),
                name: e.as_str().to_string(),
                service_account: WORKLOAD_SERVICE_ACCOUNT.into(),
                namespace: namespace_name(tenant, *e),
                audience: audience.into(),
                policies: vec![env_name(tenant, *e), grants_name(tenant, *e)],
                ttl: TOKEN_TTL.into(),
                max_ttl: TOKEN_MAX_TTL.into(),
            })
            .collect(),
        database_roles: data_plane
            .map(|plane| {
                envs.iter()
                    .map(|e| DatabaseRole {
                        mount: plane.mount.clone(),
                        name: crate::database::tenant_role(tenant, *e),
                        connection: plane.connection.clone(),
                        ttl: TOKEN_TTL.into(),
                        max_ttl: TOKEN_MAX_TTL.into(),
                        owner: owner.into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Whether a call changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    Written,
}

/// Errors of the secrets backend, named after the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading mount {path}: {source}")]
    ReadMount {
        path: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("enabling KV v2 mount {path}: {source}")]
    EnableMount {
        path: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("mount {path} exists but is {found}, not KV v2")]
    WrongMountType { path: String, found: String },
    #[error(
        "{what} exists but was not made by the operator for {owner:?} (found {found:?}): it is neither adopted nor deleted"
    )]
    NotOurs {
        what: String,
        owner: String,
        found: String,
    },
    #[error("reading policy {name}: {source}")]
    ReadPolicy {
        name: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("writing policy {name}: {source}")]
    WritePolicy {
        name: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("reading Kubernetes-auth role {name}: {source}")]
    ReadRole {
        name: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("enabling Kubernetes auth at {path}: {source}")]
    EnableAuth {
        path: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("reading auth mount {path}: {message}")]
    ReadAuth { path: String, message: String },
    #[error("configuring Kubernetes auth at {path}: {message}")]
    ConfigureAuth { path: String, message: String },
    #[error("disabling auth mount {path} (revokes its tokens): {source}")]
    DisableAuth {
        path: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("writing Kubernetes-auth role {name}: {source}")]
    WriteRole {
        name: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("disabling mount {path}: {source}")]
    DisableMount {
        path: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("deleting policy {name}: {source}")]
    DeletePolicy {
        name: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("listing {path}: {source}")]
    List {
        path: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("writing {path}: {source}")]
    WriteSecret {
        path: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("building the client: {0}")]
    Client(#[source] vaultrs::error::ClientError),
    #[error("client settings: {0}")]
    Settings(String),
}

impl Error {
    /// A low-cardinality label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ReadMount { .. } => "read_mount",
            Self::EnableMount { .. } => "enable_mount",
            Self::WrongMountType { .. } => "wrong_mount_type",
            Self::NotOurs { .. } => "not_ours",
            Self::ReadPolicy { .. } => "read_policy",
            Self::WritePolicy { .. } => "write_policy",
            Self::ReadRole { .. } => "read_role",
            Self::WriteRole { .. } => "write_role",
            Self::EnableAuth { .. } => "enable_auth",
            Self::ReadAuth { .. } => "read_auth",
            Self::ConfigureAuth { .. } => "configure_auth",
            Self::DisableAuth { .. } => "disable_auth",
            Self::Client(_) | Self::Settings(_) => "client",
            Self::DisableMount { .. } => "disable_mount",
            Self::DeletePolicy { .. } => "delete_policy",
            Self::List { .. } => "list",
            Self::WriteSecret { .. } => "write_secret",
        }
    }
}

/// What the controller needs from a secrets backend. Every call is
/// idempotent and writes only when the backend differs from what is asked.
#[async_trait]
pub trait SecretsBackend: Send + Sync {
    /// Enables a KV v2 mount described as `owner`'s; an existing mount
    /// without that mark is refused ([`Error::NotOurs`]).
    async fn ensure_kv2_mount(&self, path: &str, owner: &str) -> Result<Change, Error>;
    async fn ensure_policy(&self, policy: &Policy) -> Result<Change, Error>;
    async fn ensure_kubernetes_auth(&self, mount: &str) -> Result<Change, Error>;
    /// One read of the auth mount (`config: false`: that it is there, a
    /// Kubernetes mount, configured with the current reviewer) or of its
    /// configuration (`config: true`: the API server it reviews against);
    /// repaired in full when it is not as it should be.
    async fn check_kubernetes_auth(&self, mount: &str, config: bool) -> Result<Change, Error> {
        let _ = config;
        self.ensure_kubernetes_auth(mount).await
    }
    async fn ensure_kubernetes_role(&self, role: &KubernetesRole) -> Result<Change, Error>;
    /// Writes a database role unless it is as wanted; a role of that name
    /// without `role.owner`'s mark is refused ([`Error::NotOurs`]).
    async fn ensure_database_role(&self, role: &DatabaseRole) -> Result<Change, Error>;
    /// Deletes a database role with `owner`'s mark (new users can no longer
    /// be made; those made live until their leases end or are revoked).
    async fn delete_database_role(
        &self,
        mount: &str,
        name: &str,
        owner: &str,
    ) -> Result<Change, Error>;
    /// Disables the tenant's auth mount: every token and lease issued through
    /// it is revoked, and no login succeeds. Idempotent.
    async fn disable_kubernetes_auth(&self, mount: &str) -> Result<Change, Error>;
    /// Disables a KV mount: every version of every secret in it is destroyed.
    /// Only a mount with `owner`'s mark ([`Error::NotOurs`] otherwise).
    async fn disable_kv2_mount(&self, path: &str, owner: &str) -> Result<Change, Error>;
    /// Deletes a policy; only one with `owner`'s mark.
    async fn delete_policy(&self, name: &str, owner: &str) -> Result<Change, Error>;
    /// Every secret path under a KV v2 mount, with a digest of its metadata
    /// (versions, times; never the data).
    async fn inventory_kv2(&self, mount: &str) -> Result<Vec<(String, String)>, Error>;
    /// Writes a KV v2 secret unless it already holds exactly `data` (delivery
    /// is idempotent). Enables the KV v2 mount first if needed, as `owner`'s.
    async fn write_kv2_once(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<Change, Error>;
    /// The current version of a KV v2 secret (0: none).
    async fn kv2_version(&self, mount: &str, path: &str) -> Result<u64, Error>;
    /// Writes a new version of a KV v2 secret with check-and-set: only when
    /// its current version is `version` (0: none yet). Enables the KV v2
    /// mount first if needed, as `owner`'s. Returns the version written.
    async fn write_kv2_cas(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        data: &std::collections::BTreeMap<String, String>,
        version: u64,
    ) -> Result<u64, Error>;
    /// Reads a KV v2 secret (None when absent).
    async fn read_kv2(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, Error>;
    /// The key of a delivery's fingerprint, derived from the export's uid
    /// by a key that never leaves the backend, with its `version` (the
    /// latest when none); returns the version used.
    async fn delivery_key(
        &self,
        export_uid: &str,
        version: Option<u64>,
    ) -> Result<(u64, crate::fingerprint::Key), Error>;
    /// Whether a secrets mount, an auth mount or a policy exists (the exit
    /// review), and if so its mark: a mount's description, a policy's text.
    /// Only a clear "not there" is `None`; a refusal is an error.
    async fn find(&self, what: Existing<'_>) -> Result<Option<String>, Error>;
}

/// What [`SecretsBackend::find`] looks for.
#[derive(Debug, Clone, Copy)]
pub enum Existing<'a> {
    SecretsMount(&'a str),
    AuthMount(&'a str),
    Policy(&'a str),
    /// A database role (mount, name); its mark is its creation statements.
    DatabaseRole(&'a str, &'a str),
}

/// Applies a tenant's desired state; returns how many writes it took.
pub async fn apply(backend: &dyn SecretsBackend, desired: &TenantVault) -> Result<usize, Error> {
    let mut writes = 0;
    let mut count = |c: Change| {
        if c == Change::Written {
            writes += 1;
        }
    };
    count(
        backend
            .ensure_kv2_mount(&desired.mount, &desired.owner)
            .await?,
    );
    count(backend.ensure_kubernetes_auth(&desired.auth_mount).await?);
    for p in &desired.policies {
        count(backend.ensure_policy(p).await?);
    }
    for r in &desired.roles {
        count(backend.ensure_kubernetes_role(r).await?);
    }
    for r in &desired.database_roles {
        count(backend.ensure_database_role(r).await?);
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_environment_gets_its_own_half_of_the_tenant_area() {
        let v = build(
            "acme",
            "publicdata-operator tenant=acme unit=X",
            &[Environment::Prod, Environment::Dev],
            "openbao",
        );
        assert_eq!(v.mount, "tenants/acme");
        assert_eq!(
            v.policies
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            [
                "tenant-acme-dev",
                "tenant-acme-dev-grants",
                "tenant-acme-prod",
                "tenant-acme-prod-grants"
            ]
        );
        let dev = &v.policies[0].hcl;
        assert!(dev.contains("\"tenants/acme/data/dev/*\""));
        assert!(
            !dev.contains("prod"),
            "dev's policy must not reach prod: {dev}"
        );
        let role = &v.roles[0];
        assert_eq!(
            (role.mount.as_str(), role.name.as_str()),
            ("k8s-acme", "dev")
        );
        assert_eq!(v.auth_mount, "k8s-acme");
        assert_eq!(role.namespace, "acme-dev");
        assert_eq!(role.service_account, "workload");
        assert_eq!(role.policies, ["tenant-acme-dev", "tenant-acme-dev-grants"]);
        assert_eq!(role.audience, "openbao");
        assert!(dev.starts_with("# publicdata-operator tenant=acme unit=X: "));
        assert!(marked_by(dev, &v.owner));
    }

    #[test]
    fn only_marked_mounts_and_policies_are_the_operators() {
        let owner = "publicdata-operator tenant=acme unit=X";
        assert!(marked_by(&mount_description(owner), owner));
        assert!(!marked_by(
            &mount_description("publicdata-operator tenant=acme unit=Y"),
            owner
        ));
        assert!(!marked_by("kv for the finance team", owner));
        assert!(!marked_by("", owner));
        // What the operator made before owner marks is still its own.
        assert!(marked_by(LEGACY_MOUNT_DESCRIPTION, owner));
        assert!(marked_by(
            "# Managed by publicdata-operator: tenant acme, environment dev.",
            owner
        ));
    }

    #[test]
    fn nothing_for_environments_not_listed() {
        let v = build("acme", "m", &[Environment::Prod], "openbao");
        assert_eq!(v.roles.len(), 1);
        assert_eq!(v.policies.len(), 2);
        assert_eq!(v.roles[0].name, "prod");
    }
}

#[cfg(test)]
mod grant_tests {
    use super::*;

    #[test]
    fn grants_go_to_their_environment_only() {
        let grants = vec![
            ("dev".to_string(), "catalog/data/x/masked".to_string()),
            ("prod".to_string(), "catalog/data/x/raw".to_string()),
        ];
        let dev = grants_policy("acme", Environment::Dev, "m", &grants);
        assert!(dev.hcl.contains("catalog/data/x/masked") && !dev.hcl.contains("/raw"));
        let none = grants_policy("acme", Environment::Prod, "m", &[]);
        assert!(
            none.hcl.contains("deny"),
            "an empty grants policy denies a dummy path"
        );
    }
}
