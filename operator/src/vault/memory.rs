//! An in-memory [`SecretsBackend`] for unit tests: the same ownership rules
//! as OpenBao (marks on mounts and policies), no server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Change, DatabaseRole, Error, Existing, Identity, KubernetesRole, OWNER_KEY, SecretsBackend,
    mount_description, owned,
};

/// What the backend holds.
#[derive(Debug, Default)]
pub struct State {
    /// KV mounts by path, with their description.
    pub mounts: BTreeMap<String, String>,
    /// Policies by name, with their text.
    pub policies: BTreeMap<String, String>,
    /// Tenants' own Kubernetes auth mounts from before the shared one.
    pub auth: BTreeSet<String>,
    /// Identities by name.
    pub identities: BTreeMap<String, MemoryIdentity>,
    /// Workload roles by (mount, name).
    pub roles: BTreeSet<(String, String)>,
    /// Lease prefixes revoked, in order.
    pub revoked: Vec<String>,
    /// Identities made so far (for fresh ids).
    pub made: u64,
    /// Secrets by (mount, path).
    pub secrets: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Database roles by (mount, name), with their creation statements.
    pub database_roles: BTreeMap<(String, String), String>,
    /// KV v2 versions by (mount, path), of secrets written with check-and-set.
    pub versions: BTreeMap<(String, String), u64>,
}

/// An identity as the backend holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryIdentity {
    pub id: String,
    pub disabled: bool,
    pub metadata: BTreeMap<String, String>,
    /// Its alias (mount, name), if any.
    pub alias: Option<(String, String)>,
}

/// An in-memory secrets backend.
#[derive(Debug, Default)]
pub struct Memory {
    pub state: Mutex<State>,
}

impl Memory {
    /// Runs `f` on the state (to arrange a test or look at the outcome).
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.with(f)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }
}

#[async_trait]
impl SecretsBackend for Memory {
    async fn ensure_kv2_mount(&self, path: &str, owner: &str) -> Result<Change, Error> {
        self.with(|s| match s.mounts.get(path) {
            Some(d) => owned(|| format!("mount {path}"), d, owner).map(|()| Change::Unchanged),
            None => {
                s.mounts.insert(path.into(), mount_description(owner));
                Ok(Change::Written)
            }
        })
    }

    /// The platform's workload mount is taken to be there.
    async fn ensure_kubernetes_auth(&self, _mount: &str) -> Result<Change, Error> {
        Ok(Change::Unchanged)
    }

    async fn ensure_kubernetes_role(&self, role: &KubernetesRole) -> Result<Change, Error> {
        Ok(
            if self.with(|s| s.roles.insert((role.mount.clone(), role.name.clone()))) {
                Change::Written
            } else {
                Change::Unchanged
            },
        )
    }

    async fn delete_kubernetes_role(&self, mount: &str, name: &str) -> Result<Change, Error> {
        Ok(
            if self.with(|s| s.roles.remove(&(mount.to_string(), name.to_string()))) {
                Change::Written
            } else {
                Change::Unchanged
            },
        )
    }

    async fn ensure_identity(&self, identity: &Identity) -> Result<Change, Error> {
        let owner = identity
            .metadata
            .get(OWNER_KEY)
            .cloned()
            .unwrap_or_default();
        let alias = Some((identity.auth_mount.clone(), identity.alias.clone()));
        self.with(|s| {
            if let Some(found) = s.identities.get(&identity.name) {
                let mark = found.metadata.get(OWNER_KEY).cloned().unwrap_or_default();
                owned(|| format!("identity {}", identity.name), &mark, &owner)?;
                if !found.disabled && found.metadata == identity.metadata && found.alias == alias {
                    return Ok(Change::Unchanged);
                }
                if !found.disabled {
                    let id = found.id.clone();
                    s.identities.insert(
                        identity.name.clone(),
                        MemoryIdentity {
                            id,
                            disabled: false,
                            metadata: identity.metadata.clone(),
                            alias,
                        },
                    );
                    return Ok(Change::Written);
                }
            }
            s.made += 1;
            let id = format!("entity-{}", s.made);
            s.identities.insert(
                identity.name.clone(),
                MemoryIdentity {
                    id,
                    disabled: false,
                    metadata: identity.metadata.clone(),
                    alias,
                },
            );
            Ok(Change::Written)
        })
    }

    async fn freeze_identity(
        &self,
        name: &str,
        _auth_mount: &str,
        _alias: &str,
    ) -> Result<Change, Error> {
        Ok(self.with(|s| match s.identities.get_mut(name) {
            Some(i) if !i.disabled => {
                i.disabled = true;
                Change::Written
            }
            _ => Change::Unchanged,
        }))
    }

    async fn delete_identity(&self, name: &str, owner: &str) -> Result<Change, Error> {
        self.with(|s| match s.identities.get(name) {
            None => Ok(Change::Unchanged),
            Some(i) => {
                let mark = i.metadata.get(OWNER_KEY).cloned().unwrap_or_default();
                owned(|| format!("identity {name}"), &mark, owner)?;
                s.identities.remove(name);
                Ok(Change::Written)
            }
        })
    }

    async fn revoke_leases(&self, prefix: &str) -> Result<(), Error> {
        self.with(|s| s.revoked.push(prefix.to_string()));
        Ok(())
    }

    async fn ensure_database_role(&self, role: &DatabaseRole) -> Result<Change, Error> {
        let key = (role.mount.clone(), role.name.clone());
        let want = super::DATABASE_CREATION.to_string();
        self.with(|s| match s.database_roles.get(&key) {
            Some(found) => {
                if !super::database_role_ours(found, &role.owner) {
                    return Err(Error::NotOurs {
                        what: format!("{}/roles/{}", key.0, key.1),
                        owner: role.owner.clone(),
                        found: found.clone(),
                    });
                }
                if *found == want {
                    return Ok(Change::Unchanged);
                }
                s.database_roles.insert(key, want);
                Ok(Change::Written)
            }
            None => {
                s.database_roles.insert(key, want);
                Ok(Change::Written)
            }
        })
    }

    async fn delete_database_role(
        &self,
        mount: &str,
        name: &str,
        owner: &str,
    ) -> Result<Change, Error> {
        let key = (mount.to_string(), name.to_string());
        self.with(|s| match s.database_roles.get(&key).cloned() {
            None => Ok(Change::Unchanged),
            Some(found) => {
                if !super::database_role_ours(&found, owner) {
                    return Err(Error::NotOurs {
                        what: format!("{mount}/roles/{name}"),
                        owner: owner.into(),
                        found,
                    });
                }
                s.database_roles.remove(&key);
                Ok(Change::Written)
            }
        })
    }

    async fn disable_kubernetes_auth(&self, mount: &str) -> Result<Change, Error> {
        Ok(if self.with(|s| s.auth.remove(mount)) {
            Change::Written
        } else {
            Change::Unchanged
        })
    }

    async fn disable_kv2_mount(&self, path: &str, owner: &str) -> Result<Change, Error> {
        self.with(|s| match s.mounts.get(path).cloned() {
            None => Ok(Change::Unchanged),
            Some(d) => {
                owned(|| format!("mount {path}"), &d, owner)?;
                s.mounts.remove(path);
                s.secrets.retain(|(m, _), _| m != path);
                Ok(Change::Written)
            }
        })
    }

    async fn delete_policy(&self, name: &str, owner: &str) -> Result<Change, Error> {
        self.with(|s| match s.policies.get(name).cloned() {
            None => Ok(Change::Unchanged),
            Some(text) => {
                owned(|| format!("policy {name}"), &text, owner)?;
                s.policies.remove(name);
                Ok(Change::Written)
            }
        })
    }

    async fn inventory_kv2(&self, mount: &str) -> Result<Vec<(String, String)>, Error> {
        Ok(self.with(|s| {
            s.secrets
                .keys()
                .filter(|(m, _)| m == mount)
                .map(|(m, p)| (format!("{m}/{p}"), String::new()))
                .collect()
        }))
    }

    async fn write_kv2_once(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<Change, Error> {
        self.ensure_kv2_mount(mount, owner).await?;
        Ok(self.with(|s| {
            let key = (mount.to_string(), path.to_string());
            if s.secrets.get(&key) == Some(data) {
                Change::Unchanged
            } else {
                s.secrets.insert(key, data.clone());
                Change::Written
            }
        }))
    }

    async fn kv2_version(&self, mount: &str, path: &str) -> Result<u64, Error> {
        Ok(self.with(|s| {
            s.versions
                .get(&(mount.to_string(), path.to_string()))
                .copied()
                .unwrap_or(0)
        }))
    }

    async fn write_kv2_cas(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        data: &BTreeMap<String, String>,
        version: u64,
    ) -> Result<u64, Error> {
        self.ensure_kv2_mount(mount, owner).await?;
        self.with(|s| {
            let key = (mount.to_string(), path.to_string());
            let current = s.versions.get(&key).copied().unwrap_or(0);
            if current != version {
                return Err(Error::Settings(format!(
                    "check-and-set parameter did not match the current version ({current}, not {version})"
                )));
            }
            s.secrets.insert(key.clone(), data.clone());
            s.versions.insert(key, current + 1);
            Ok(current + 1)
        })
    }

    async fn read_kv2(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        Ok(self.with(|s| s.secrets.get(&(mount.into(), path.into())).cloned()))
    }

    async fn delivery_key(
        &self,
        export_uid: &str,
        version: Option<u64>,
    ) -> Result<(u64, crate::fingerprint::Key), Error> {
        use sha2::{Digest, Sha256};
        let input = super::fingerprint::delivery_input(export_uid);
        let key = Sha256::digest([b"memory backend key\0".as_slice(), &input].concat());
        Ok((version.unwrap_or(1), crate::fingerprint::Key(key.into())))
    }

    async fn find(&self, what: Existing<'_>) -> Result<Option<String>, Error> {
        Ok(self.with(|s| match what {
            Existing::SecretsMount(p) => s.mounts.get(p).cloned(),
            Existing::AuthMount(m) => s.auth.contains(m).then(String::new),
            Existing::Policy(n) => s.policies.get(n).cloned(),
            Existing::Identity(n) => s
                .identities
                .get(n)
                .map(|i| i.metadata.get(OWNER_KEY).cloned().unwrap_or_default()),
            Existing::Role(m, n) => s
                .roles
                .contains(&(m.to_string(), n.to_string()))
                .then(String::new),
            Existing::DatabaseRole(m, n) => s
                .database_roles
                .get(&(m.to_string(), n.to_string()))
                .cloned(),
        }))
    }
}

/// An in-memory [`crate::audit::checkpointer::Signer`]: one ed25519 key
/// (version 1) from a fixed seed, as OpenBao's transit engine would sign.
pub struct MemorySigner {
    key: ed25519_dalek::SigningKey,
}

impl Default for MemorySigner {
    fn default() -> Self {
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        }
    }
}

#[async_trait]
impl crate::audit::checkpointer::Signer for MemorySigner {
    async fn ensure_key(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn sign(&self, message: &[u8]) -> Result<String, Error> {
        use base64::Engine as _;
        use ed25519_dalek::Signer as _;
        let signature = self.key.sign(message).to_bytes();
        Ok(format!(
            "vault:v1:{}",
            base64::engine::general_purpose::STANDARD.encode(signature)
        ))
    }

    async fn public_keys(&self) -> Result<crate::audit::anchor::PublicKeys, Error> {
        use base64::Engine as _;
        Ok(BTreeMap::from([(
            1,
            base64::engine::general_purpose::STANDARD.encode(self.key.verifying_key().to_bytes()),
        )]))
    }
}
