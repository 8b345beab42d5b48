//! What a tenant gets in the secrets backend, built by pure functions: the
//! workload areas, identities (their catalog grants) and roles, the data
//! plane's database roles, and the owner marks on what the operator makes.

use std::collections::BTreeMap;

use super::Error;
use crate::api::authorization::Environment;
use crate::naming::{
    WORKLOAD_SERVICE_ACCOUNT, area_mount, identity_alias, identity_name, workload_role,
};
/// Token lifetimes of workload logins, and of the database credentials they
/// read (a lease ends with its token). Always set: the server default is 32
/// days. As short as a working job allows: a login lasts 15 minutes and is
/// renewed to at most an hour, then the workload logs in again with its
/// projected ServiceAccount token (which the kubelet refreshes); a token or
/// credential that leaks is useless within the hour.
pub const TOKEN_TTL: &str = "15m";
pub const TOKEN_MAX_TTL: &str = "1h";

/// The platform's policy every workload role carries: the only one the
/// operator's own policy lets it name.
pub const WORKLOAD_POLICY: &str = "publicdata-workload";
/// How many catalog paths an environment may be granted: the platform's
/// policy has templated paths for each slot (`catalog-00` ... `catalog-31`
/// in the identity's metadata).
pub const CATALOG_SLOTS: usize = 32;
/// How many segments a granted catalog path may have. OpenBao refuses a
/// `/` in what a template puts into a path (and then every request of the
/// token), so each segment is a metadata value of its own
/// (`catalog-NN-<depth>-<i>`), and the platform's policy has, per slot, one
/// path of each depth: only the one whose every segment is set names a
/// path, never a shorter one above it.
pub const CATALOG_DEPTH: usize = 6;
/// The metadata key of the owner mark on an identity.
pub const OWNER_KEY: &str = "owner";

/// What the platform set up in OpenBao for tenant workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workloads {
    /// The Kubernetes auth mount workloads log in at (enabled by the platform).
    pub auth_mount: String,
    /// The audience their ServiceAccount tokens must carry.
    pub audience: String,
    /// The KV v2 mount of the catalog: grants name paths in it only.
    pub catalog_mount: String,
}

impl Default for Workloads {
    fn default() -> Self {
        Self {
            auth_mount: "publicdata-workloads".into(),
            audience: "openbao".into(),
            catalog_mount: "catalog".into(),
        }
    }
}

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
    /// The platform's workload auth mount.
    pub mount: String,
    /// The namespace's name.
    pub name: String,
    pub service_account: String,
    pub namespace: String,
    pub audience: String,
    pub ttl: String,
    pub max_ttl: String,
}

/// The identity the workloads of one environment log in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `publicdata-<namespace>`.
    pub name: String,
    /// The auth mount its alias is in.
    pub auth_mount: String,
    /// `<namespace>/workload`.
    pub alias: String,
    /// The owner mark ([`OWNER_KEY`]) and the catalog grants (`catalog-NN`:
    /// a path under the catalog mount's `data/`).
    pub metadata: BTreeMap<String, String>,
}

/// Where OpenBao makes database users: its database secrets engine's mount,
/// and the connections configured there by the platform: to the raw
/// database (prod's users) and to the samples database (dev's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlane {
    pub mount: String,
    pub connection: String,
    pub sample_connection: String,
}

impl DataPlane {
    /// The connection an environment's users are made through.
    pub fn connection_of(&self, env: Environment) -> &str {
        match env {
            Environment::Dev => &self.sample_connection,
            Environment::Prod => &self.connection,
        }
    }
}

/// A role of OpenBao's database secrets engine: each read of
/// `<mount>/creds/<name>` makes a PostgreSQL user that is a member of the
/// tenant environment's role (and nothing else) and lives as long as its
/// lease. Revoking the lease ends the user's sessions and drops it.
///
/// Its statements are the same for every role ([`DATABASE_CREATION`],
/// [`DATABASE_REVOCATION`]), so the operator's OpenBao policy admits no
/// other: a stolen token runs no SQL of its own as OpenBao's database user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseRole {
    pub mount: String,
    /// Also the PostgreSQL role its users are members of.
    pub name: String,
    pub connection: String,
    pub ttl: String,
    pub max_ttl: String,
    /// The authorization's mark: a role an older operator wrote carries it
    /// in its statements (see [`database_role_ours`]).
    pub owner: String,
}

/// What OpenBao runs to make a user, for every tenant environment alike:
/// the user, then the platform's `publicdata_platform.enroll`
/// (`files/postgres-setup.sql`), which makes it a member of the tenant role
/// its name begins with. The connection's username template is
/// `{{.RoleName}}.{{random 17}}` and a role's credentials are read only by
/// the workloads of the namespace it is named after. One string with no
/// comma (OpenBao would split a string there), so the policy can pin it.
pub const DATABASE_CREATION: &str = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; SELECT publicdata_platform.enroll('{{name}}')";

/// What OpenBao runs when a lease ends or is revoked: the platform's
/// `publicdata_platform.retire` (`files/postgres-setup.sql`) ends the user's
/// sessions, drops whatever it owns (a large object it made and granted to
/// PUBLIC would outlive it) and then the user. OpenBao runs a role's
/// statements as they are at revocation, so these are pinned too.
pub const DATABASE_REVOCATION: &str = "SELECT publicdata_platform.retire('{{name}}')";

/// The username template the platform sets on the database connection:
/// the role's name, then a random part (at most 45 + 1 + 17 = 63
/// characters, PostgreSQL's limit, for a tenant id of at most 40).
pub const DATABASE_USERNAME_TEMPLATE: &str = "{{.RoleName}}.{{random 17}}";

/// Whether a database role's creation statements, as found, are one this
/// operator may rewrite or remove for `owner`: the pinned statements (the
/// same for every tenant; the role's name is the tenant's namespace), or an
/// older operator's, which carried the owner's mark.
pub fn database_role_ours(found: &str, owner: &str) -> bool {
    found == DATABASE_CREATION || found.contains(owner)
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
    /// The mark on its mounts, identities and database roles (see
    /// `naming::owner_mark`).
    pub owner: String,
    /// The KV v2 mounts, one per environment.
    pub areas: Vec<String>,
    /// The platform's workload auth mount.
    pub auth_mount: String,
    pub identities: Vec<Identity>,
    pub roles: Vec<KubernetesRole>,
    /// With a data plane: one per environment.
    pub database_roles: Vec<DatabaseRole>,
    /// Grants the platform's policy cannot carry (outside the catalog mount,
    /// a wildcard, more than [`CATALOG_SLOTS`]): withheld, and the apply
    /// fails naming them.
    pub refused: Vec<String>,
}

/// The catalog grants of one environment as identity metadata: each
/// `<catalog>/data/<a>/<b>/<c>` becomes, in slot NN, `catalog-NN-3-1 = a`,
/// `catalog-NN-3-2 = b`, `catalog-NN-3-3 = c` (see [`CATALOG_DEPTH`]). A
/// path the platform's policy cannot carry is returned as refused, with why.
pub fn catalog_metadata(
    env: Environment,
    grants: &[(String, String)],
    catalog_mount: &str,
) -> (BTreeMap<String, String>, Vec<String>) {
    let prefix = format!("{catalog_mount}/data/");
    let mut out = BTreeMap::new();
    let mut refused = Vec::new();
    let mut slot = 0;
    for (_, path) in grants.iter().filter(|(e, _)| e == env.as_str()) {
        let Some(rest) = path.strip_prefix(&prefix) else {
            refused.push(format!(
                "{path} ({}): not in the catalog mount {catalog_mount}",
                env.as_str()
            ));
            continue;
        };
        if rest.is_empty()
            || rest.contains(['*', '+', '{', '}'])
            || rest
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            refused.push(format!("{path} ({}): not a plain path", env.as_str()));
            continue;
        }
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() > CATALOG_DEPTH {
            refused.push(format!(
                "{path} ({}): deeper than {CATALOG_DEPTH} segments under the catalog mount",
                env.as_str()
            ));
            continue;
        }
        if slot == CATALOG_SLOTS {
            refused.push(format!(
                "{path} ({}): more than {CATALOG_SLOTS} catalog paths for one environment",
                env.as_str()
            ));
            continue;
        }
        for (i, segment) in segments.iter().enumerate() {
            out.insert(
                catalog_key(slot, segments.len(), i + 1),
                (*segment).to_string(),
            );
        }
        slot += 1;
    }
    (out, refused)
}

/// The metadata key of segment `i` (from 1) of the path of `depth`
/// segments in catalog slot `slot`; `files/openbao-setup.sh` names the same.
pub fn catalog_key(slot: usize, depth: usize, i: usize) -> String {
    format!("catalog-{slot:02}-{depth}-{i}")
}

/// Builds what the tenant gets in the secrets backend, with no scenario
/// grants and no data plane.
pub fn build(
    tenant: &str,
    owner: &str,
    envs: &[Environment],
    workloads: &Workloads,
) -> TenantVault {
    build_with_grants(tenant, owner, envs, workloads, &[], None)
}

/// Builds what the tenant gets in the secrets backend, with the grants of its
/// active scenarios as `(env, policy path)` pairs.
pub fn build_with_grants(
    tenant: &str,
    owner: &str,
    envs: &[Environment],
    workloads: &Workloads,
    grants: &[(String, String)],
    data_plane: Option<&DataPlane>,
) -> TenantVault {
    let mut envs = envs.to_vec();
    envs.sort();
    envs.dedup();
    let mut refused = Vec::new();
    let identities = envs
        .iter()
        .map(|e| {
            let (mut metadata, mut no) = catalog_metadata(*e, grants, &workloads.catalog_mount);
            refused.append(&mut no);
            metadata.insert(OWNER_KEY.into(), owner.into());
            Identity {
                name: identity_name(tenant, *e),
                auth_mount: workloads.auth_mount.clone(),
                alias: identity_alias(tenant, *e),
                metadata,
            }
        })
        .collect();
    TenantVault {
        owner: owner.into(),
        areas: envs.iter().map(|e| area_mount(tenant, *e)).collect(),
        auth_mount: workloads.auth_mount.clone(),
        identities,
        roles: envs
            .iter()
            .map(|e| KubernetesRole {
                mount: workloads.auth_mount.clone(),
                name: workload_role(tenant, *e),
                service_account: WORKLOAD_SERVICE_ACCOUNT.into(),
                namespace: crate::naming::namespace_name(tenant, *e),
                audience: workloads.audience.clone(),
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
                        connection: plane.connection_of(*e).to_string(),
                        ttl: TOKEN_TTL.into(),
                        max_ttl: TOKEN_MAX_TTL.into(),
                        owner: owner.into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_environment_gets_its_own_area_identity_and_role_and_no_policy_text() {
        let v = build(
            "acme",
            "publicdata-operator tenant=acme unit=X",
            &[Environment::Prod, Environment::Dev],
            &Workloads::default(),
        );
        assert_eq!(v.areas, ["areas/acme-dev", "areas/acme-prod"]);
        assert_eq!(v.auth_mount, "publicdata-workloads");
        let dev = &v.identities[0];
        assert_eq!(dev.name, "publicdata-acme-dev");
        assert_eq!(dev.alias, "acme-dev/workload");
        assert_eq!(
            dev.metadata,
            BTreeMap::from([(OWNER_KEY.into(), v.owner.clone())])
        );
        let role = &v.roles[0];
        assert_eq!(
            (role.mount.as_str(), role.name.as_str()),
            ("publicdata-workloads", "acme-dev")
        );
        assert_eq!(role.namespace, "acme-dev");
        assert_eq!(role.service_account, "workload");
        assert_eq!(role.audience, "openbao");
        assert!(v.refused.is_empty());
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
        let v = build("acme", "m", &[Environment::Prod], &Workloads::default());
        assert_eq!(v.roles.len(), 1);
        assert_eq!(v.identities.len(), 1);
        assert_eq!(v.areas, ["areas/acme-prod"]);
        assert_eq!(v.roles[0].name, "acme-prod");
    }
}

#[cfg(test)]
mod data_plane_tests {
    use super::*;

    /// Dev's users are made through the samples database's connection,
    /// prod's through the raw one's: neither can log in to the other's.
    #[test]
    fn each_environment_gets_users_of_its_own_database() {
        let plane = DataPlane {
            mount: "database".into(),
            connection: "publicdata".into(),
            sample_connection: "publicdata-sample".into(),
        };
        let workloads = Workloads {
            auth_mount: "publicdata-workloads".into(),
            audience: "openbao".into(),
            catalog_mount: "catalog".into(),
        };
        let built = build_with_grants(
            "acme",
            "owner",
            &[Environment::Prod, Environment::Dev],
            &workloads,
            &[],
            Some(&plane),
        );
        let by_role: Vec<(&str, &str)> = built
            .database_roles
            .iter()
            .map(|r| (r.name.as_str(), r.connection.as_str()))
            .collect();
        assert_eq!(
            by_role,
            [
                ("acme-dev", "publicdata-sample"),
                ("acme-prod", "publicdata")
            ]
        );
    }
}
