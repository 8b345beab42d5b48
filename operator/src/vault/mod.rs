//! The secrets backend (OpenBao or Vault): what a tenant gets there, built by
//! pure functions (`tenant.rs`), and a trait the controller talks to, with one vaultrs
//! implementation.
//!
//! The operator writes no policy text. The platform installs, once, the
//! templated policy `publicdata-workload` (`charts/publicdata-operator/files/
//! openbao-workload-policy.hcl`) and the Kubernetes auth mount workloads log
//! in at (`auth/publicdata-workloads`, configured by the platform). The
//! policy names everything from the login itself: the ServiceAccount
//! namespace OpenBao's TokenReview vouched for (the KV area
//! `areas/<namespace>`, database users of role `<namespace>`), and the
//! catalog paths the operator lists in the identity's metadata (only under
//! the catalog mount).
//!
//! Per tenant environment the operator makes: the KV v2 mount
//! `areas/<namespace>`; the login alias `<namespace>/workload` in the
//! workload mount, written on its own so OpenBao makes its entity, which the
//! operator names `publicdata-<namespace>` (its metadata: the owner mark and
//! the catalog grants; the operator can never attach a login to another
//! entity, so a token's namespace is always its own login's); the role `<namespace>` there, bound to the
//! `workload` ServiceAccount, whose only policy is `publicdata-workload`
//! (the operator's own policy refuses any other); with a data plane, the
//! database role `<namespace>`. Nothing exists for environments the
//! authorization does not list.
//!
//! A freeze disables the identities: OpenBao refuses every token of a
//! disabled identity and every login to it at once. A resume deletes the
//! disabled identity and makes a new one, so tokens from before the freeze
//! stay refused for good.

mod backend;
mod database;
pub mod fingerprint;
mod identity;
pub mod login;
#[cfg(test)]
pub mod memory;
mod openbao;
mod resync;
mod signer;
mod tenant;

pub use openbao::OpenBao;
pub use resync::{Applied, Pass, apply_one, digest, parts};
pub use tenant::*;

use async_trait::async_trait;

use crate::api::authorization::Environment;
pub use crate::naming::{
    area_mount, identity_alias, identity_name, legacy_auth_mount, legacy_mount_path, workload_role,
};

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
    #[error(
        "auth/{path} is not a Kubernetes auth mount: the platform enables and configures it once (docs/install.md, OpenBao)"
    )]
    MissingAuth { path: String },
    #[error("identity {name}: {message}")]
    Identity { name: String, message: String },
    #[error("database role {name}: {message}")]
    DatabaseRole { name: String, message: String },
    #[error("deleting Kubernetes-auth role {name}: {source}")]
    DeleteRole {
        name: String,
        #[source]
        source: vaultrs::error::ClientError,
    },
    #[error("revoking the leases under {prefix}: {message}")]
    RevokeLeases { prefix: String, message: String },
    #[error("catalog grants the platform's policy cannot carry, withheld: {}", .0.join("; "))]
    Grants(Vec<String>),
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
            Self::MissingAuth { .. } => "missing_auth",
            Self::Identity { .. } => "identity",
            Self::DatabaseRole { .. } => "database_role",
            Self::DeleteRole { .. } => "delete_role",
            Self::RevokeLeases { .. } => "revoke_leases",
            Self::Grants(_) => "grants",
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
    /// Checks the platform's workload auth mount (a Kubernetes mount the
    /// platform enabled; [`Error::MissingAuth`] otherwise) and keeps its
    /// configuration current (the API server, the rotating reviewer token).
    async fn ensure_kubernetes_auth(&self, mount: &str) -> Result<Change, Error>;
    /// One read of the auth mount (`config: false`: that it is there, a
    /// Kubernetes mount, configured with the current reviewer) or of its
    /// configuration (`config: true`: the API server it reviews against);
    /// repaired in full when it is not as it should be.
    async fn check_kubernetes_auth(&self, mount: &str, config: bool) -> Result<Change, Error> {
        let _ = config;
        self.ensure_kubernetes_auth(mount).await
    }
    /// Writes a workload role: bound to its namespace's `workload`
    /// ServiceAccount, with [`WORKLOAD_POLICY`] as its only policy.
    async fn ensure_kubernetes_role(&self, role: &KubernetesRole) -> Result<Change, Error>;
    /// Deletes a workload role (no login there any more). Idempotent.
    async fn delete_kubernetes_role(&self, mount: &str, name: &str) -> Result<Change, Error>;
    /// Makes the identity as wanted: the entity with its metadata, enabled,
    /// and its alias in the workload mount. A disabled one (a freeze) is
    /// deleted and made anew, so no token from before the freeze works
    /// again. One of that name without the owner mark is refused.
    async fn ensure_identity(&self, identity: &Identity) -> Result<Change, Error>;
    /// Disables the identity: every token of it and every login to it is
    /// refused at once. Not found by `name` (a pass cut off between writing
    /// the login's alias and naming its entity): the entity of `alias` in
    /// `auth_mount`. Absent: nothing to do.
    async fn freeze_identity(
        &self,
        name: &str,
        auth_mount: &str,
        alias: &str,
    ) -> Result<Change, Error>;
    /// Deletes the identity with `owner`'s mark (its tokens refused for good).
    async fn delete_identity(&self, name: &str, owner: &str) -> Result<Change, Error>;
    /// Revokes every lease under `prefix` (a database role's credentials:
    /// the users are dropped and their sessions ended).
    async fn revoke_leases(&self, prefix: &str) -> Result<(), Error>;
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
    /// Disables a tenant's own auth mount from before the shared workload
    /// mount: every token and lease issued through it is revoked. Idempotent.
    async fn disable_kubernetes_auth(&self, mount: &str) -> Result<Change, Error>;
    /// Disables a KV mount: every version of every secret in it is destroyed.
    /// Only a mount with `owner`'s mark ([`Error::NotOurs`] otherwise).
    async fn disable_kv2_mount(&self, path: &str, owner: &str) -> Result<Change, Error>;
    /// Deletes a policy the operator wrote before the platform's templated
    /// policies; only one with `owner`'s mark.
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
    /// An identity (entity) by name; its mark is its owner metadata.
    Identity(&'a str),
    /// A Kubernetes-auth role (mount, name); no mark.
    Role(&'a str, &'a str),
    /// A database role (mount, name); its mark is its creation statements.
    DatabaseRole(&'a str, &'a str),
}

/// Applies a tenant's desired state; returns how many writes it took. The
/// identities come before the roles: no login can land on an identity the
/// operator did not make. Grants the platform's policy cannot carry are
/// withheld and reported as [`Error::Grants`] after the rest is applied.
pub async fn apply(backend: &dyn SecretsBackend, desired: &TenantVault) -> Result<usize, Error> {
    let mut writes = 0;
    let mut count = |c: Change| {
        if c == Change::Written {
            writes += 1;
        }
    };
    count(backend.ensure_kubernetes_auth(&desired.auth_mount).await?);
    for area in &desired.areas {
        count(backend.ensure_kv2_mount(area, &desired.owner).await?);
    }
    for i in &desired.identities {
        count(backend.ensure_identity(i).await?);
    }
    for r in &desired.roles {
        count(backend.ensure_kubernetes_role(r).await?);
    }
    for r in &desired.database_roles {
        count(backend.ensure_database_role(r).await?);
    }
    if !desired.refused.is_empty() {
        return Err(Error::Grants(desired.refused.clone()));
    }
    Ok(writes)
}

/// What an earlier version made for a tenant and a workload could still log
/// in through: its own auth mount (disabled: every token of it revoked) and
/// the policies it wrote (deleted, when they carry `owner`'s mark). Its KV
/// mount `tenants/<tenant>` stays until offboarding: no workload reaches it
/// any more, and the platform may copy what it holds to the new areas.
/// Returns how many writes it took.
pub async fn retire_legacy(
    backend: &dyn SecretsBackend,
    tenant: &str,
    owner: &str,
) -> Result<usize, Error> {
    let mut writes = usize::from(
        backend
            .disable_kubernetes_auth(&legacy_auth_mount(tenant))
            .await?
            == Change::Written,
    );
    for policy in crate::naming::legacy_policies(tenant) {
        match backend.delete_policy(&policy, owner).await {
            Ok(c) => writes += usize::from(c == Change::Written),
            Err(Error::NotOurs { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(writes)
}

/// The freeze of a tenant's environments in OpenBao: each identity disabled
/// first (the cut: its tokens and logins refused), then its role deleted and,
/// with a data plane, its database leases revoked (the users dropped).
/// Returns how many writes it took.
pub async fn freeze(
    backend: &dyn SecretsBackend,
    tenant: &str,
    workloads: &Workloads,
    data_plane: Option<&DataPlane>,
) -> Result<usize, Error> {
    let envs = [Environment::Dev, Environment::Prod];
    let logins = envs.map(|e| (identity_name(tenant, e), identity_alias(tenant, e)));
    let cuts = futures::future::join_all(
        logins
            .iter()
            .map(|(name, alias)| backend.freeze_identity(name, &workloads.auth_mount, alias)),
    )
    .await;
    let mut writes = 0;
    for cut in cuts {
        writes += usize::from(cut? == Change::Written);
    }
    let rest = futures::future::join_all(envs.iter().map(|e| async move {
        let role = backend
            .delete_kubernetes_role(&workloads.auth_mount, &workload_role(tenant, *e))
            .await?;
        if let Some(plane) = data_plane {
            let prefix = format!(
                "{}/creds/{}",
                plane.mount,
                crate::database::tenant_role(tenant, *e)
            );
            backend.revoke_leases(&prefix).await?;
        }
        Ok::<_, Error>(usize::from(role == Change::Written))
    }))
    .await;
    for r in rest {
        writes += r?;
    }
    Ok(writes)
}

#[cfg(test)]
mod grant_tests {
    use super::*;

    fn grants(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(e, p)| (e.to_string(), p.to_string()))
            .collect()
    }

    #[test]
    fn grants_go_to_their_environments_identity_only() {
        let g = grants(&[
            ("dev", "catalog/data/x/masked"),
            ("prod", "catalog/data/x/raw"),
        ]);
        let v = build_with_grants(
            "acme",
            "m",
            &[Environment::Dev, Environment::Prod],
            &Workloads::default(),
            &g,
            None,
        );
        assert_eq!(v.identities[0].metadata["catalog-00-2-1"], "x");
        assert_eq!(v.identities[0].metadata["catalog-00-2-2"], "masked");
        assert_eq!(v.identities[1].metadata["catalog-00-2-2"], "raw");
        assert_eq!(
            v.identities[0].metadata.len(),
            3,
            "owner and one grant of two segments"
        );
    }

    #[test]
    fn the_platforms_policy_names_the_catalog_keys_the_operator_writes() {
        let setup = include_str!("../../../charts/publicdata-operator/files/openbao-setup.sh");
        assert!(setup.contains(&format!("slot < {CATALOG_SLOTS}")));
        assert!(setup.contains(&format!("depth <= {CATALOG_DEPTH}")));
        assert!(setup.contains("metadata.catalog-$nn-$depth-$i}}"));
        assert_eq!(catalog_key(3, 4, 2), "catalog-03-4-2");
        let policy =
            include_str!("../../../charts/publicdata-operator/files/openbao-workload-policy.hcl");
        assert!(policy.contains("@CATALOG_PATHS@"));
    }

    #[test]
    fn a_grant_the_platform_policy_cannot_carry_is_withheld_and_named() {
        let mut pairs: Vec<(String, String)> = grants(&[
            ("prod", "tenants/other/data/x"),
            ("prod", "catalog/data/x/*"),
            ("prod", "catalog/data/x/../../y"),
            ("prod", "catalog/data/a/b/c/d/e/f/g"),
        ]);
        for i in 0..=CATALOG_SLOTS {
            pairs.push(("prod".into(), format!("catalog/data/d/{i}")));
        }
        let (meta, refused) = catalog_metadata(Environment::Prod, &pairs, "catalog");
        assert_eq!(meta.len(), 2 * CATALOG_SLOTS, "two segments a slot");
        assert_eq!(meta[&catalog_key(31, 2, 2)], "31");
        assert!(meta.values().all(|v| !v.contains('/')), "{meta:?}");
        assert!(
            refused
                .iter()
                .any(|r| r.contains("a/b/c/d/e/f/g") && r.contains("deeper than 6")),
            "{refused:?}"
        );
        let refused: Vec<String> = refused
            .into_iter()
            .filter(|r| !r.contains("deeper than 6"))
            .collect();
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(
            refused[0].contains("not in the catalog mount"),
            "{refused:?}"
        );
        assert!(refused[1].contains("not a plain path"), "{refused:?}");
        assert!(refused[2].contains("not a plain path"), "{refused:?}");
        assert!(refused[3].contains("more than 32"), "{refused:?}");
    }

    #[tokio::test]
    async fn apply_makes_identities_before_roles_and_fails_on_withheld_grants() {
        let backend = memory::Memory::default();
        let mut v = build("acme", "m", &[Environment::Dev], &Workloads::default());
        assert_eq!(apply(&backend, &v).await.unwrap(), 3);
        assert_eq!(apply(&backend, &v).await.unwrap(), 0, "idempotent");
        v.refused
            .push("catalog/data/* (dev): not a plain path".into());
        assert!(matches!(apply(&backend, &v).await, Err(Error::Grants(_))));
    }

    #[tokio::test]
    async fn a_freeze_disables_the_identity_and_a_resume_makes_a_new_one() {
        let backend = memory::Memory::default();
        let w = Workloads::default();
        let v = build("acme", "m", &[Environment::Dev], &w);
        apply(&backend, &v).await.unwrap();
        let before = backend.with_state(|s| s.identities["publicdata-acme-dev"].id.clone());
        assert_eq!(freeze(&backend, "acme", &w, None).await.unwrap(), 2);
        assert!(backend.with_state(|s| s.identities["publicdata-acme-dev"].disabled));
        assert!(backend.with_state(|s| s.roles.is_empty()));
        assert_eq!(freeze(&backend, "acme", &w, None).await.unwrap(), 0);
        apply(&backend, &v).await.unwrap();
        let after = backend.with_state(|s| s.identities["publicdata-acme-dev"].clone());
        assert!(!after.disabled);
        assert_ne!(after.id, before, "a new identity: old tokens stay refused");
    }
}

#[cfg(test)]
mod legacy_tests {
    use super::*;

    #[tokio::test]
    async fn what_an_earlier_version_made_is_retired_and_someone_elses_policy_stays() {
        let backend = memory::Memory::default();
        let owner = "publicdata-operator tenant=acme unit=X";
        backend.with_state(|s| {
            s.auth.insert("k8s-acme".into());
            s.policies.insert(
                "tenant-acme-dev".into(),
                format!("# {owner}: environment dev."),
            );
            s.policies
                .insert("tenant-acme-prod".into(), "# the finance team".into());
        });
        assert_eq!(retire_legacy(&backend, "acme", owner).await.unwrap(), 2);
        backend.with_state(|s| {
            assert!(s.auth.is_empty());
            assert_eq!(s.policies.keys().collect::<Vec<_>>(), ["tenant-acme-prod"]);
        });
        assert_eq!(retire_legacy(&backend, "acme", owner).await.unwrap(), 0);
    }
}
