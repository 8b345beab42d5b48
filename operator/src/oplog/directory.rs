//! Who belongs to which tenant: the directory the intake attributes the
//! API server's and OpenBao's audit events by.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use serde_json::Value;

use crate::api::authorization::{Environment, OperatorAuthorization};
use crate::naming;

/// The operator's own identity, whose requests are not a tenant's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operator {
    pub namespace: String,
    pub service_account: String,
}

impl Operator {
    fn username(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }
}

/// Who belongs to which tenant, from the authorizations.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    uids: BTreeMap<String, String>,
    namespaces: BTreeMap<String, String>,
    members: BTreeMap<String, BTreeSet<String>>,
    operator: Operator,
}

impl Directory {
    pub fn new<'a>(
        oas: impl IntoIterator<Item = &'a OperatorAuthorization>,
        operator: Operator,
    ) -> Self {
        let mut d = Directory {
            operator,
            ..Directory::default()
        };
        for oa in oas {
            let (tenant, Some(uid)) = (oa.name_any(), oa.uid()) else {
                continue;
            };
            for env in [Environment::Dev, Environment::Prod] {
                d.namespaces
                    .insert(naming::namespace_name(&tenant, env), tenant.clone());
            }
            for m in &oa.spec.members {
                d.members
                    .entry(m.user.clone())
                    .or_default()
                    .insert(tenant.clone());
            }
            d.uids.insert(tenant, uid);
        }
        d
    }

    /// The uid of a tenant's authorization, if there is one.
    pub fn uid(&self, tenant: &str) -> Option<&str> {
        self.uids.get(tenant).map(String::as_str)
    }

    fn known(&self, tenant: &str) -> Option<String> {
        self.uids.contains_key(tenant).then(|| tenant.to_string())
    }

    fn of_namespace(&self, ns: &str) -> Option<String> {
        self.namespaces.get(ns).cloned()
    }

    /// The tenants an API server audit event belongs to: the one whose
    /// namespace it touched, else the one whose ServiceAccount made it,
    /// else every tenant whose member made it (impersonation counts as the
    /// impersonated user). None for the operator's own requests.
    pub fn kubernetes(&self, event: &Value) -> BTreeSet<String> {
        let actor = event
            .pointer("/impersonatedUser/username")
            .or_else(|| event.pointer("/user/username"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if actor == self.operator.username()
            || event.get("stage").and_then(Value::as_str) == Some("RequestReceived")
        {
            return BTreeSet::new();
        }
        let by_namespace = event
            .pointer("/objectRef/namespace")
            .and_then(Value::as_str)
            .and_then(|ns| self.of_namespace(ns));
        let by_account = actor
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split(':').next())
            .and_then(|ns| self.of_namespace(ns));
        match by_namespace.or(by_account) {
            Some(tenant) => BTreeSet::from([tenant]),
            None => self.members.get(actor).cloned().unwrap_or_default(),
        }
    }

    /// The tenants an OpenBao audit entry belongs to: by the mount it
    /// touched (the tenant's Kubernetes auth or KV mount), the tenant
    /// policies of the token, or the namespace of the ServiceAccount that
    /// logged in. Only responses count (each carries its request); none of
    /// the operator's own calls.
    pub fn openbao(&self, entry: &Value) -> BTreeSet<String> {
        let meta = |k: &str| {
            entry
                .pointer(&format!("/auth/metadata/{k}"))
                .and_then(Value::as_str)
        };
        if entry.get("type").and_then(Value::as_str) != Some("response")
            || (meta("service_account_namespace") == Some(&self.operator.namespace)
                && meta("service_account_name") == Some(&self.operator.service_account))
        {
            return BTreeSet::new();
        }
        let mut tenants = BTreeSet::new();
        let path = entry
            .pointer("/request/path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let by_path = path
            .strip_prefix("auth/k8s-")
            .or_else(|| path.strip_prefix("tenants/"))
            .and_then(|rest| rest.split('/').next())
            .and_then(|t| self.known(t));
        tenants.extend(by_path);
        // An environment's area, its database credentials.
        let by_namespace = path
            .strip_prefix("areas/")
            .or_else(|| path.split_once("/creds/").map(|(_, rest)| rest))
            .and_then(|rest| rest.split('/').next())
            .and_then(|ns| self.of_namespace(ns));
        tenants.extend(by_namespace);
        let policies = entry
            .pointer("/auth/policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for policy in policies {
            let Some(rest) = policy.strip_prefix("tenant-") else {
                continue;
            };
            let rest = rest.strip_suffix("-grants").unwrap_or(rest);
            let tenant = rest
                .strip_suffix("-dev")
                .or_else(|| rest.strip_suffix("-prod"));
            tenants.extend(tenant.and_then(|t| self.known(t)));
        }
        tenants.extend(meta("service_account_namespace").and_then(|ns| self.of_namespace(ns)));
        tenants
    }
}

impl Directory {
    /// The tenant whose OpenBao configuration (its KV or auth mount, the auth
    /// mount's config and roles, its policies) an audit entry says someone
    /// other than the operator changed, if any.
    pub fn openbao_change(&self, entry: &Value) -> Option<String> {
        let text = |p: &str| entry.pointer(p).and_then(Value::as_str);
        let meta = |k: &str| text(&format!("/auth/metadata/{k}"));
        let by_operator = meta("service_account_namespace") == Some(&self.operator.namespace)
            && meta("service_account_name") == Some(&self.operator.service_account);
        if text("/type") != Some("response")
            || !matches!(
                text("/request/operation"),
                Some("create" | "update" | "delete")
            )
            || text("/error").is_some_and(|e| !e.is_empty())
            || by_operator
        {
            return None;
        }
        let path = text("/request/path")?;
        let policy = path
            .strip_prefix("sys/policy/tenant-")
            .or_else(|| path.strip_prefix("sys/policies/acl/tenant-"))
            .map(|rest| {
                let rest = rest.strip_suffix("-grants").unwrap_or(rest);
                rest.strip_suffix("-dev")
                    .or_else(|| rest.strip_suffix("-prod"))
                    .unwrap_or(rest)
            });
        let auth = path.strip_prefix("sys/auth/k8s-").or_else(|| {
            let (t, what) = path.strip_prefix("auth/k8s-")?.split_once('/')?;
            (what == "config" || what.starts_with("role/")).then_some(t)
        });
        let mount = path.strip_prefix("sys/mounts/tenants/");
        let by_tenant = policy
            .or(auth)
            .or(mount)
            .map(|t| t.split('/').next().unwrap_or(t))
            .and_then(|t| self.known(t));
        // What the operator makes per environment: the area, the identity
        // and its alias, the role in the workload mount.
        let namespace = path
            .strip_prefix("sys/mounts/areas/")
            .or_else(|| path.strip_prefix("identity/entity/name/publicdata-"))
            .or_else(|| {
                let (_, rest) = path.strip_prefix("auth/")?.split_once("/role/")?;
                Some(rest)
            })
            .map(|ns| ns.split('/').next().unwrap_or(ns))
            .and_then(|ns| self.of_namespace(ns));
        by_tenant.or(namespace)
    }
}
