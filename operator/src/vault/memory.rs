//! An in-memory [`SecretsBackend`] for unit tests: the same ownership rules
//! as OpenBao (marks on mounts and policies), no server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Change, DatabaseRole, Error, Existing, KubernetesRole, Policy, SecretsBackend,
    mount_description, owned,
};

/// What the backend holds.
#[derive(Debug, Default)]
pub struct State {
    /// KV mounts by path, with their description.
    pub mounts: BTreeMap<String, String>,
    /// Policies by name, with their text.
    pub policies: BTreeMap<String, String>,
    /// Kubernetes auth mounts.
    pub auth: BTreeSet<String>,
    /// Secrets by (mount, path).
    pub secrets: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Database roles by (mount, name), with their creation statements.
    pub database_roles: BTreeMap<(String, String), String>,
    /// KV v2 versions by (mount, path), of secrets written with check-and-set.
    pub versions: BTreeMap<(String, String), u64>,
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

    async fn ensure_policy(&self, policy: &Policy) -> Result<Change, Error> {
        self.with(|s| match s.policies.get(&policy.name) {
            Some(text) if *text == policy.hcl => Ok(Change::Unchanged),
            Some(text) => {
                owned(|| format!("policy {}", policy.name), text, &policy.owner).map(|()| {
                    s.policies.insert(policy.name.clone(), policy.hcl.clone());
                    Change::Written
                })
            }
            None => {
                s.policies.insert(policy.name.clone(), policy.hcl.clone());
                Ok(Change::Written)
            }
        })
    }

    async fn ensure_kubernetes_auth(&self, mount: &str) -> Result<Change, Error> {
        Ok(if self.with(|s| s.auth.insert(mount.into())) {
            Change::Written
        } else {
            Change::Unchanged
        })
    }

    async fn ensure_kubernetes_role(&self, _role: &KubernetesRole) -> Result<Change, Error> {
        Ok(Change::Unchanged)
    }

    async fn ensure_database_role(&self, role: &DatabaseRole) -> Result<Change, Error> {
        let key = (role.mount.clone(), role.name.clone());
        let want = role.creation_statements().join("\n");
        self.with(|s| match s.database_roles.get(&key) {
            Some(found) => {
                owned(|| format!("{}/roles/{}", key.0, key.1), found, &role.owner)?;
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
                owned(|| format!("{mount}/roles/{name}"), &found, owner)?;
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
