//! [`SecretsBackend`] for OpenBao and Vault: each operation on the client of
//! `openbao.rs` (KV areas, auth mounts, the records' KV writes, what exists);
//! identities and roles in `identity.rs`, database roles in `database.rs`.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use vaultrs::error::ClientError;

use super::openbao::{OpenBao, mount_description, no_mount, not_found};
use super::{
    Change, DatabaseRole, Error, Existing, Identity, KubernetesRole, SecretsBackend, owned,
};

#[async_trait]
impl SecretsBackend for OpenBao {
    async fn ensure_kv2_mount(&self, path: &str, owner: &str) -> Result<Change, Error> {
        match vaultrs::sys::mount::get_configuration_of_a_secret_engine(
            &self.session().client,
            path,
        )
        .await
        {
            Ok(m) => {
                owned(|| format!("mount {path}"), &m.description, owner)?;
                let version = m
                    .options
                    .as_ref()
                    .and_then(|o| o.get("version"))
                    .map(String::as_str);
                if m.mount_type == "kv" && version == Some("2") {
                    Ok(Change::Unchanged)
                } else {
                    Err(Error::WrongMountType {
                        path: path.into(),
                        found: format!("{} {:?}", m.mount_type, version),
                    })
                }
            }
            Err(e) if no_mount(&e) => {
                // Exactly these three fields: the operator's policy admits a
                // KV mount under areas/ with nothing else set.
                let body = serde_json::json!({
                    "type": "kv",
                    "options": {"version": "2"},
                    "description": super::mount_description(owner),
                });
                let fail = |message: String| Error::EnableMount {
                    path: path.into(),
                    source: ClientError::APIError {
                        code: 0,
                        errors: vec![message],
                    },
                };
                let (status, found) = self
                    .call(
                        reqwest::Method::POST,
                        &format!("sys/mounts/{path}"),
                        Some(&body),
                    )
                    .await
                    .map_err(fail)?;
                if !status.is_success() {
                    return Err(Error::EnableMount {
                        path: path.into(),
                        source: ClientError::APIError {
                            code: status.as_u16(),
                            errors: vec![found.to_string()],
                        },
                    });
                }
                Ok(Change::Written)
            }
            Err(source) => Err(Error::ReadMount {
                path: path.into(),
                source,
            }),
        }
    }

    async fn ensure_kubernetes_auth(&self, mount: &str) -> Result<Change, Error> {
        match self.auth_mount(mount).await? {
            Some(m) if m.kind == "kubernetes" => {
                // Configured when it was enabled; re-written when the reviewer
                // token rotated (the description names it) or the host moved.
                if m.description != mount_description(&self.reviewer_jwt()) {
                    self.configure_auth(mount).await?;
                    return Ok(Change::Written);
                }
                match vaultrs::auth::kubernetes::read_config(&self.session().client, mount).await {
                    Ok(c) if c.kubernetes_host == self.kubernetes.host => Ok(Change::Unchanged),
                    _ => {
                        self.configure_auth(mount).await?;
                        Ok(Change::Written)
                    }
                }
            }
            Some(m) => Err(Error::WrongMountType {
                path: format!("auth/{mount}"),
                found: m.kind,
            }),
            // The platform enables it (the operator may not enable auth
            // mounts), once, as it installs the policies naming its accessor.
            None => Err(Error::MissingAuth { path: mount.into() }),
        }
    }

    async fn check_kubernetes_auth(&self, mount: &str, config: bool) -> Result<Change, Error> {
        let fine = if config {
            matches!(
                vaultrs::auth::kubernetes::read_config(&self.session().client, mount).await,
                Ok(c) if c.kubernetes_host == self.kubernetes.host
            )
        } else {
            self.auth_mount(mount).await?.is_some_and(|m| {
                m.kind == "kubernetes" && m.description == mount_description(&self.reviewer_jwt())
            })
        };
        if fine {
            Ok(Change::Unchanged)
        } else {
            self.ensure_kubernetes_auth(mount).await
        }
    }

    async fn disable_kubernetes_auth(&self, mount: &str) -> Result<Change, Error> {
        if self.auth_mount(mount).await?.is_none() {
            return Ok(Change::Unchanged);
        }
        vaultrs::sys::auth::disable(&self.session().client, mount)
            .await
            .map_err(|source| Error::DisableAuth {
                path: mount.into(),
                source,
            })?;
        Ok(Change::Written)
    }

    async fn disable_kv2_mount(&self, path: &str, owner: &str) -> Result<Change, Error> {
        let mount = match vaultrs::sys::mount::get_configuration_of_a_secret_engine(
            &self.session().client,
            path,
        )
        .await
        {
            Ok(m) => m,
            Err(e) if no_mount(&e) => return Ok(Change::Unchanged),
            Err(source) => {
                return Err(Error::ReadMount {
                    path: path.into(),
                    source,
                });
            }
        };
        owned(|| format!("mount {path}"), &mount.description, owner)?;
        vaultrs::sys::mount::disable(&self.session().client, path)
            .await
            .map_err(|source| Error::DisableMount {
                path: path.into(),
                source,
            })?;
        Ok(Change::Written)
    }

    async fn delete_policy(&self, name: &str, owner: &str) -> Result<Change, Error> {
        let current = match vaultrs::sys::policy::read(&self.session().client, name).await {
            Ok(p) => p,
            Err(e) if not_found(&e) => return Ok(Change::Unchanged),
            Err(source) => {
                return Err(Error::ReadPolicy {
                    name: name.into(),
                    source,
                });
            }
        };
        owned(|| format!("policy {name}"), &current.rules, owner)?;
        vaultrs::sys::policy::delete(&self.session().client, name)
            .await
            .map_err(|source| Error::DeletePolicy {
                name: name.into(),
                source,
            })?;
        Ok(Change::Written)
    }

    async fn inventory_kv2(&self, mount: &str) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        let mut pending = vec![String::new()];
        while let Some(dir) = pending.pop() {
            let keys = match vaultrs::kv2::list(&self.session().client, mount, &dir).await {
                Ok(keys) => keys,
                Err(e) if not_found(&e) => continue,
                Err(source) => {
                    return Err(Error::List {
                        path: format!("{mount}/{dir}"),
                        source,
                    });
                }
            };
            for key in keys {
                let path = format!("{dir}{key}");
                if key.ends_with('/') {
                    pending.push(path);
                    continue;
                }
                let digest =
                    match vaultrs::kv2::read_metadata(&self.session().client, mount, &path).await {
                        Ok(meta) => hex::encode(Sha256::digest(format!("{meta:?}"))),
                        Err(e) if not_found(&e) => continue,
                        Err(source) => {
                            return Err(Error::List {
                                path: format!("{mount}/{path}"),
                                source,
                            });
                        }
                    };
                out.push((format!("{mount}/{path}"), digest));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn write_kv2_once(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<Change, Error> {
        self.ensure_kv2_mount(mount, owner).await?;
        match vaultrs::kv2::read::<std::collections::BTreeMap<String, String>>(
            &self.session().client,
            mount,
            path,
        )
        .await
        {
            Ok(current) if &current == data => return Ok(Change::Unchanged),
            Ok(_) => {}
            Err(e) if not_found(&e) => {}
            Err(source) => {
                return Err(Error::WriteSecret {
                    path: format!("{mount}/{path}"),
                    source,
                });
            }
        }
        vaultrs::kv2::set(&self.session().client, mount, path, data)
            .await
            .map_err(|source| Error::WriteSecret {
                path: format!("{mount}/{path}"),
                source,
            })?;
        Ok(Change::Written)
    }

    async fn kv2_version(&self, mount: &str, path: &str) -> Result<u64, Error> {
        match vaultrs::kv2::read_metadata(&self.session().client, mount, path).await {
            Ok(metadata) => Ok(metadata.current_version),
            Err(e) if not_found(&e) || no_mount(&e) => Ok(0),
            Err(source) => Err(Error::WriteSecret {
                path: format!("{mount}/metadata/{path}"),
                source,
            }),
        }
    }

    async fn write_kv2_cas(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        data: &std::collections::BTreeMap<String, String>,
        version: u64,
    ) -> Result<u64, Error> {
        self.ensure_kv2_mount(mount, owner).await?;
        let cas = u32::try_from(version).map_err(|_| {
            Error::Settings(format!("{mount}/{path}: version {version} out of range"))
        })?;
        let written = vaultrs::kv2::set_with_options(
            &self.session().client,
            mount,
            path,
            data,
            vaultrs::api::kv2::requests::SetSecretRequestOptions { cas },
        )
        .await
        .map_err(|source| Error::WriteSecret {
            path: format!("{mount}/{path}"),
            source,
        })?;
        Ok(written.version)
    }

    async fn read_kv2(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, Error> {
        match vaultrs::kv2::read(&self.session().client, mount, path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if not_found(&e) => Ok(None),
            Err(source) => Err(Error::List {
                path: format!("{mount}/{path}"),
                source,
            }),
        }
    }

    async fn delivery_key(
        &self,
        export_uid: &str,
        version: Option<u64>,
    ) -> Result<(u64, crate::fingerprint::Key), Error> {
        self.derive_delivery_key(export_uid, version).await
    }

    async fn find(&self, what: Existing<'_>) -> Result<Option<String>, Error> {
        match what {
            Existing::SecretsMount(path) => {
                match vaultrs::sys::mount::get_configuration_of_a_secret_engine(
                    &self.session().client,
                    path,
                )
                .await
                {
                    Ok(m) => Ok(Some(m.description)),
                    Err(e) if no_mount(&e) => Ok(None),
                    Err(source) => Err(Error::ReadMount {
                        path: path.into(),
                        source,
                    }),
                }
            }
            Existing::AuthMount(mount) => Ok(self.auth_mount(mount).await?.map(|m| m.description)),
            Existing::DatabaseRole(mount, name) => self.database_role_mark(mount, name).await,
            Existing::Identity(name) => self.identity_mark(name).await,
            Existing::Role(mount, name) => self.workload_role_exists(mount, name).await,
            Existing::Policy(name) => {
                match vaultrs::sys::policy::read(&self.session().client, name).await {
                    Ok(p) => Ok(Some(p.rules)),
                    Err(e) if not_found(&e) => Ok(None),
                    Err(source) => Err(Error::ReadPolicy {
                        name: name.into(),
                        source,
                    }),
                }
            }
        }
    }

    async fn ensure_database_role(&self, role: &DatabaseRole) -> Result<Change, Error> {
        self.put_database_role(role).await
    }

    async fn delete_database_role(
        &self,
        mount: &str,
        name: &str,
        owner: &str,
    ) -> Result<Change, Error> {
        self.remove_database_role(mount, name, owner).await
    }

    async fn ensure_kubernetes_role(&self, role: &KubernetesRole) -> Result<Change, Error> {
        self.put_workload_role(role).await
    }

    async fn delete_kubernetes_role(&self, mount: &str, name: &str) -> Result<Change, Error> {
        self.remove_workload_role(mount, name).await
    }

    async fn ensure_identity(&self, identity: &Identity) -> Result<Change, Error> {
        self.put_identity(identity).await
    }

    async fn freeze_identity(
        &self,
        name: &str,
        auth_mount: &str,
        alias: &str,
    ) -> Result<Change, Error> {
        self.disable_identity(name, auth_mount, alias).await
    }

    async fn delete_identity(&self, name: &str, owner: &str) -> Result<Change, Error> {
        self.remove_identity(name, owner).await
    }

    async fn revoke_leases(&self, prefix: &str) -> Result<(), Error> {
        self.revoke_prefix(prefix).await
    }
}
