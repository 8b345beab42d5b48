//! Workload identities and roles in OpenBao: the entity each tenant
//! environment logs in as (made by OpenBao for its alias in the platform's
//! workload auth mount, never an alias attached to an entity by the operator),
//! the role there, and the freeze (the entity disabled, its database leases
//! revoked). Raw requests: the operator's policy admits a role's list
//! parameters only as the one string it names (`token_policies` exactly
//! `publicdata-workload`), which vaultrs's request types send as arrays.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::openbao::{OpenBao, ttl_seconds};
use super::{Change, Error, Identity, KubernetesRole, OWNER_KEY, WORKLOAD_POLICY, owned};

/// An entity as read back.
struct Entity {
    id: String,
    disabled: bool,
    metadata: std::collections::BTreeMap<String, String>,
    /// (mount accessor, name) of each alias.
    aliases: Vec<(String, String)>,
}

fn entity_from(body: &Value) -> Entity {
    let data = &body["data"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Entity {
        id: text(&data["id"]),
        disabled: data["disabled"].as_bool().unwrap_or(false),
        metadata: data["metadata"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default(),
        aliases: data["aliases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|a| (text(&a["mount_accessor"]), text(&a["name"])))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The fields of a workload role as the operator writes them.
fn role_body(role: &KubernetesRole) -> Value {
    json!({
        "bound_service_account_names": role.service_account,
        "bound_service_account_namespaces": role.namespace,
        "audience": role.audience,
        "alias_name_source": "serviceaccount_name",
        "token_policies": WORKLOAD_POLICY,
        // No `default` policy: it grants a cubbyhole and response wrapping
        // (`sys/wrapping/wrap`), places to put data that another token can
        // read back. Sent as the string the operator's policy admits.
        "token_no_default_policy": "true",
        "token_ttl": role.ttl,
        "token_max_ttl": role.max_ttl,
    })
}

/// Whether a role read back is the one wanted.
fn role_matches(found: &Value, role: &KubernetesRole) -> bool {
    let data = &found["data"];
    let list = |k: &str| super::openbao::strings(&data[k]);
    list("bound_service_account_names") == [role.service_account.clone()]
        && list("bound_service_account_namespaces") == [role.namespace.clone()]
        && list("token_policies") == [WORKLOAD_POLICY.to_string()]
        && data["token_no_default_policy"].as_bool() == Some(true)
        && data["audience"].as_str() == Some(role.audience.as_str())
        && data["alias_name_source"].as_str() == Some("serviceaccount_name")
        && data["token_ttl"].as_u64() == Some(ttl_seconds(&role.ttl))
        && data["token_max_ttl"].as_u64() == Some(ttl_seconds(&role.max_ttl))
}

impl OpenBao {
    fn identity_error(name: &str, message: impl Into<String>) -> Error {
        Error::Identity {
            name: name.into(),
            message: message.into(),
        }
    }

    /// The entity named `name`, if there is one.
    async fn entity(&self, name: &str) -> Result<Option<Entity>, Error> {
        let found = self
            .get_opt(&format!("identity/entity/name/{name}"))
            .await
            .map_err(|e| Self::identity_error(name, e))?;
        Ok(found.map(|body| entity_from(&body)))
    }

    async fn write(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let (status, found) = self
            .call(method, path, body)
            .await
            .map_err(|e| Self::identity_error(what, e))?;
        if status.is_success() {
            Ok(found)
        } else {
            Err(Self::identity_error(
                what,
                format!("{path}: {status}: {found}"),
            ))
        }
    }

    /// The accessor of an auth mount (read once).
    async fn accessor(&self, mount: &str) -> Result<String, Error> {
        let cached = match self.accessors.read() {
            Ok(a) => a.get(mount).cloned(),
            Err(p) => p.into_inner().get(mount).cloned(),
        };
        if let Some(a) = cached {
            return Ok(a);
        }
        let found = self
            .auth_mount(mount)
            .await?
            .filter(|m| m.kind == "kubernetes" && !m.accessor.is_empty())
            .ok_or_else(|| Error::MissingAuth { path: mount.into() })?;
        match self.accessors.write() {
            Ok(mut a) => a.insert(mount.into(), found.accessor.clone()),
            Err(p) => p.into_inner().insert(mount.into(), found.accessor.clone()),
        };
        Ok(found.accessor)
    }

    /// The entity a login alias belongs to, found by the alias.
    async fn entity_of_alias(&self, alias: &str, accessor: &str) -> Result<Option<Entity>, Error> {
        let body = json!({"alias_name": alias, "alias_mount_accessor": accessor});
        let found = self
            .write(alias, Method::POST, "identity/lookup/entity", Some(&body))
            .await?;
        Ok((!found.is_null() && found["data"]["id"].is_string()).then(|| entity_from(&found)))
    }

    /// Makes the identity as wanted. The operator never attaches a login to
    /// an entity: OpenBao's alias write that would (`canonical_id`) also
    /// moves an existing login to another entity, so the operator's policy
    /// refuses it. The login's alias is written on its own, which makes an
    /// entity of its own; the operator names that entity and sets its
    /// metadata. Whatever the operator's token writes, a login stays in the
    /// entity OpenBao made for it, and what the platform's policy gives a
    /// token comes from that login's own namespace.
    pub(super) async fn put_identity(&self, want: &Identity) -> Result<Change, Error> {
        let owner = want.metadata.get(OWNER_KEY).cloned().unwrap_or_default();
        let name = &want.name;
        let path = format!("identity/entity/name/{name}");
        let accessor = self.accessor(&want.auth_mount).await?;
        let mut change = Change::Unchanged;
        // At most: a frozen or broken entity deleted, the alias's entity
        // named, that one deleted too (frozen), a new one made and named,
        // then found as wanted.
        for _ in 0..6 {
            let Some(e) = self.entity(name).await? else {
                let body = json!({"name": want.alias, "mount_accessor": accessor});
                self.write(name, Method::POST, "identity/entity-alias", Some(&body))
                    .await?;
                // The entity of the alias: the one just made for it, or the
                // one it already had (a pass cut off before naming it), found
                // by the alias either way and checked before it is named.
                let found = self
                    .entity_of_alias(&want.alias, &accessor)
                    .await?
                    .ok_or_else(|| {
                        Self::identity_error(
                            name,
                            format!("the login {:?} was written but has no entity", want.alias),
                        )
                    })?;
                let mark = found.metadata.get(OWNER_KEY).cloned().unwrap_or_default();
                if !mark.is_empty() {
                    owned(
                        || format!("identity of the login {:?}", want.alias),
                        &mark,
                        &owner,
                    )?;
                }
                let id = found.id;
                let body = json!({"name": name});
                self.write(
                    name,
                    Method::POST,
                    &format!("identity/entity/id/{id}"),
                    Some(&body),
                )
                .await?;
                change = Change::Written;
                continue;
            };
            let mark = e.metadata.get(OWNER_KEY).cloned().unwrap_or_default();
            let ours = e
                .aliases
                .iter()
                .any(|(a, n)| *a == accessor && *n == want.alias);
            // Marked: ours only with our mark. Unmarked: ours once it holds
            // our login (just named), or when it holds no login at all
            // (nothing to lose: it is made again); with another login it is
            // someone else's.
            if !mark.is_empty() || (!ours && !e.aliases.is_empty()) {
                owned(|| format!("identity {name}"), &mark, &owner)?;
            }
            if let Some((_, other)) = e
                .aliases
                .iter()
                .find(|(a, n)| *a == accessor && *n != want.alias)
            {
                return Err(Self::identity_error(
                    name,
                    format!(
                        "its alias in auth/{} is {other:?}, not {:?}",
                        want.auth_mount, want.alias
                    ),
                ));
            }
            if e.disabled || !ours {
                // Frozen: its tokens are refused while it is disabled, and
                // would work again if it were enabled. Without its login (an
                // earlier version's pass cut off): the login cannot be
                // attached to it. A new one instead.
                self.write(name, Method::DELETE, &path, None).await?;
                change = Change::Written;
                continue;
            }
            if e.metadata != want.metadata {
                let body = json!({"metadata": want.metadata});
                self.write(name, Method::POST, &path, Some(&body)).await?;
                change = Change::Written;
            }
            return Ok(change);
        }
        Err(Self::identity_error(
            name,
            "did not settle: made again on each try",
        ))
    }

    pub(super) async fn disable_identity(
        &self,
        name: &str,
        auth_mount: &str,
        alias: &str,
    ) -> Result<Change, Error> {
        let mut found = self.entity(name).await?;
        if found.is_none() {
            // A pass cut off between writing the login's alias and naming
            // its entity: the entity is found by the login, named (the only
            // write by id the operator's policy admits), and then disabled.
            let accessor = self.accessor(auth_mount).await?;
            if let Some(e) = self.entity_of_alias(alias, &accessor).await? {
                let body = json!({"name": name});
                self.write(
                    name,
                    Method::POST,
                    &format!("identity/entity/id/{}", e.id),
                    Some(&body),
                )
                .await?;
                found = self.entity(name).await?;
            }
        }
        match found {
            Some(e) if !e.disabled => {
                let body = json!({"disabled": true});
                self.write(
                    name,
                    Method::POST,
                    &format!("identity/entity/name/{name}"),
                    Some(&body),
                )
                .await?;
                Ok(Change::Written)
            }
            _ => Ok(Change::Unchanged),
        }
    }

    pub(super) async fn remove_identity(&self, name: &str, owner: &str) -> Result<Change, Error> {
        let Some(e) = self.entity(name).await? else {
            return Ok(Change::Unchanged);
        };
        let mark = e.metadata.get(OWNER_KEY).cloned().unwrap_or_default();
        owned(|| format!("identity {name}"), &mark, owner)?;
        self.write(
            name,
            Method::DELETE,
            &format!("identity/entity/name/{name}"),
            None,
        )
        .await?;
        Ok(Change::Written)
    }

    pub(super) async fn identity_mark(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self
            .entity(name)
            .await?
            .map(|e| e.metadata.get(OWNER_KEY).cloned().unwrap_or_default()))
    }

    async fn role(&self, mount: &str, name: &str) -> Result<Option<Value>, Error> {
        let path = format!("auth/{mount}/role/{name}");
        self.get_opt(&path)
            .await
            .map_err(|message| Error::Identity {
                name: path.clone(),
                message,
            })
    }

    pub(super) async fn put_workload_role(&self, role: &KubernetesRole) -> Result<Change, Error> {
        if self
            .role(&role.mount, &role.name)
            .await?
            .is_some_and(|found| role_matches(&found, role))
        {
            return Ok(Change::Unchanged);
        }
        let path = format!("auth/{}/role/{}", role.mount, role.name);
        self.write(&path, Method::POST, &path, Some(&role_body(role)))
            .await?;
        Ok(Change::Written)
    }

    pub(super) async fn remove_workload_role(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Change, Error> {
        if self.role(mount, name).await?.is_none() {
            return Ok(Change::Unchanged);
        }
        let path = format!("auth/{mount}/role/{name}");
        self.write(&path, Method::DELETE, &path, None).await?;
        Ok(Change::Written)
    }

    pub(super) async fn workload_role_exists(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        Ok(self.role(mount, name).await?.map(|_| String::new()))
    }

    /// Revokes the leases under `prefix` when there are any (a list first:
    /// a frozen tenant's resync writes nothing).
    pub(super) async fn revoke_prefix(&self, prefix: &str) -> Result<(), Error> {
        let fail = |message: String| Error::RevokeLeases {
            prefix: prefix.into(),
            message,
        };
        let list = Method::from_bytes(b"LIST").map_err(|e| fail(e.to_string()))?;
        let (status, body) = self
            .call(list, &format!("sys/leases/lookup/{prefix}/"), None)
            .await
            .map_err(fail)?;
        let any = status.is_success()
            && body["data"]["keys"]
                .as_array()
                .is_some_and(|k| !k.is_empty());
        if status != StatusCode::NOT_FOUND && !status.is_success() {
            return Err(fail(format!("listing: {status}: {body}")));
        }
        if !any {
            return Ok(());
        }
        let (status, body) = self
            .call(
                Method::PUT,
                &format!("sys/leases/revoke-prefix/{prefix}"),
                None,
            )
            .await
            .map_err(fail)?;
        if !status.is_success() {
            return Err(fail(format!("{status}: {body}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> KubernetesRole {
        KubernetesRole {
            mount: "publicdata-workloads".into(),
            name: "acme-dev".into(),
            service_account: "workload".into(),
            namespace: "acme-dev".into(),
            audience: "openbao".into(),
            ttl: "1h".into(),
            max_ttl: "4h".into(),
        }
    }

    #[test]
    fn a_role_names_the_platform_policy_as_one_string() {
        let body = role_body(&role());
        // The operator's policy admits exactly this string; an array (or
        // "a,b") is refused by OpenBao's allowed_parameters.
        assert_eq!(body["token_policies"], "publicdata-workload");
        assert_eq!(body["token_no_default_policy"], "true");
        assert_eq!(body["bound_service_account_names"], "workload");
        assert_eq!(body["alias_name_source"], "serviceaccount_name");
    }

    #[test]
    fn a_role_read_back_with_another_policy_is_rewritten() {
        let mut found = json!({"data": {
            "bound_service_account_names": ["workload"],
            "bound_service_account_namespaces": ["acme-dev"],
            "token_policies": ["publicdata-workload"],
            "token_no_default_policy": true,
            "audience": "openbao",
            "alias_name_source": "serviceaccount_name",
            "token_ttl": 3600,
            "token_max_ttl": 14400,
        }});
        assert!(role_matches(&found, &role()));
        let mut with_default = found.clone();
        with_default["data"]["token_no_default_policy"] = json!(false);
        assert!(!role_matches(&with_default, &role()));
        found["data"]["token_policies"] = json!(["publicdata-workload", "admin"]);
        assert!(!role_matches(&found, &role()));
    }

    #[test]
    fn an_entity_is_read_with_its_aliases() {
        let e = entity_from(&json!({"data": {
            "id": "e1", "disabled": true,
            "metadata": {"owner": "m", "catalog-00": "x/raw"},
            "aliases": [{"mount_accessor": "auth_kubernetes_1", "name": "acme-dev/workload"}],
        }}));
        assert_eq!(e.id, "e1");
        assert!(e.disabled);
        assert_eq!(e.metadata["catalog-00"], "x/raw");
        assert_eq!(
            e.aliases,
            [("auth_kubernetes_1".into(), "acme-dev/workload".into())]
        );
    }
}
