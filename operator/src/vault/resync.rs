//! A resync of a tenant whose desired OpenBao state did not change: one
//! object checked in turns, not all of them; a full pass when anything may
//! have changed.

use std::collections::HashMap;

use super::{Change, Error, SecretsBackend, TenantVault};

/// How many objects of a tenant [`apply_one`] takes turns over: the
/// workload auth mount and its configuration, each KV area, each identity,
/// each role, each database role.
pub fn parts(desired: &TenantVault) -> usize {
    2 + desired.areas.len()
        + desired.identities.len()
        + desired.roles.len()
        + desired.database_roles.len()
}

/// Checks one object of the tenant (number `turn`, modulo [`parts`]) and
/// puts it right if it drifted: one read, and a write only on drift. A
/// resync of a tenant whose desired state did not change takes one such turn
/// instead of a full [`apply`].
pub async fn apply_one(
    backend: &dyn SecretsBackend,
    desired: &TenantVault,
    turn: usize,
) -> Result<Change, Error> {
    let n = parts(desired);
    let mut i = turn % n.max(1);
    if i < 2 {
        return backend
            .check_kubernetes_auth(&desired.auth_mount, i == 1)
            .await;
    }
    i -= 2;
    if let Some(area) = desired.areas.get(i) {
        return backend.ensure_kv2_mount(area, &desired.owner).await;
    }
    i -= desired.areas.len();
    if let Some(identity) = desired.identities.get(i) {
        return backend.ensure_identity(identity).await;
    }
    i -= desired.identities.len();
    if let Some(role) = desired.roles.get(i) {
        return backend.ensure_kubernetes_role(role).await;
    }
    i -= desired.roles.len();
    match desired.database_roles.get(i) {
        Some(role) => backend.ensure_database_role(role).await,
        None => Ok(Change::Unchanged),
    }
}

/// What the operator knows it made in OpenBao, per tenant: the digest of the
/// desired state it last applied in full, when that began, and whose turn it
/// is for the next single check. Forgotten whenever the operator itself
/// changes the tenant's OpenBao otherwise (a freeze, an offboarding), and
/// lost at restart: then the next reconcile applies in full.
#[derive(Debug, Default)]
pub struct Applied(std::sync::Mutex<HashMap<String, AppliedState>>);

#[derive(Debug, Clone)]
struct AppliedState {
    digest: String,
    began: jiff::Timestamp,
    turn: usize,
}

/// How a reconcile brings a tenant's OpenBao to its desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Read (and repair) everything.
    Full,
    /// The desired state is the one last applied in full, and nothing said
    /// OpenBao changed since: check one object, this one.
    One(usize),
}

/// The digest of a desired state (its debug form: the memory of one run).
pub fn digest(desired: &TenantVault) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(format!("{desired:?}").as_bytes()))
}

impl Applied {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, AppliedState>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pass for `tenant`: full unless its desired state was applied in
    /// full since the last change someone else made (`changed_at`, from the
    /// OpenBao audit device, if any).
    pub fn pass(
        &self,
        tenant: &str,
        desired: &TenantVault,
        changed_at: Option<jiff::Timestamp>,
    ) -> Pass {
        match self.map().get(tenant) {
            Some(s) if s.digest == digest(desired) && changed_at.is_none_or(|at| at < s.began) => {
                Pass::One(s.turn)
            }
            _ => Pass::Full,
        }
    }

    /// A full apply that began at `began` succeeded.
    pub fn applied(&self, tenant: &str, desired: &TenantVault, began: jiff::Timestamp) {
        self.map().insert(
            tenant.to_string(),
            AppliedState {
                digest: digest(desired),
                began,
                turn: 0,
            },
        );
    }

    /// A single check passed: the next one looks at the next object.
    pub fn checked(&self, tenant: &str) {
        if let Some(s) = self.map().get_mut(tenant) {
            s.turn = s.turn.wrapping_add(1);
        }
    }

    /// The operator changed the tenant's OpenBao otherwise, or a check found
    /// drift: the next reconcile applies in full.
    pub fn forget(&self, tenant: &str) {
        self.map().remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::authorization::Environment;
    use crate::vault::{apply, build, memory};

    fn acme() -> TenantVault {
        build(
            "acme",
            "publicdata-operator tenant=acme unit=X",
            &[Environment::Dev, Environment::Prod],
            &crate::vault::Workloads::default(),
        )
    }

    #[tokio::test]
    async fn an_unchanged_tenant_is_checked_one_object_a_pass_and_drift_is_put_right() {
        let bao = memory::Memory::default();
        let memo = Applied::default();
        let desired = acme();
        let t0 = jiff::Timestamp::now();
        assert_eq!(memo.pass("acme", &desired, None), Pass::Full);
        apply(&bao, &desired).await.expect("apply");
        memo.applied("acme", &desired, t0);
        // Passes take turns over every object: the auth mount and its
        // configuration, the areas, the identities, the roles.
        let n = parts(&desired);
        assert_eq!(n, 2 + 2 + 2 + 2);
        let mut turns = Vec::new();
        for _ in 0..n {
            let Pass::One(turn) = memo.pass("acme", &desired, None) else {
                panic!("an unchanged tenant gets a single check");
            };
            assert_eq!(
                apply_one(&bao, &desired, turn).await.expect("check"),
                Change::Unchanged
            );
            memo.checked("acme");
            turns.push(turn % n);
        }
        turns.sort();
        assert_eq!(turns, (0..n).collect::<Vec<_>>());
        // An identity's grants widened by hand: its turn puts them right
        // (a write), and the next pass is a full one.
        let name = desired.identities[1].name.clone();
        bao.with_state(|s| {
            let i = s.identities.get_mut(&name).expect("made");
            i.metadata.insert("catalog-00-1-1".into(), "*".into());
        });
        let turn = 5; // 0, 1 the auth mount; 2, 3 the areas; 4, 5 the identities
        assert_eq!(
            apply_one(&bao, &desired, turn).await.expect("repair"),
            Change::Written
        );
        assert_eq!(
            bao.with_state(|s| s.identities[&name].metadata.clone()),
            desired.identities[1].metadata
        );
        memo.forget("acme");
        assert_eq!(memo.pass("acme", &desired, None), Pass::Full);
    }

    #[test]
    fn a_new_desired_state_or_a_reported_change_means_a_full_pass() {
        let memo = Applied::default();
        let desired = acme();
        let t0 = jiff::Timestamp::now();
        memo.applied("acme", &desired, t0);
        assert_eq!(memo.pass("acme", &desired, None), Pass::One(0));
        // Someone changed OpenBao after the full apply began.
        let later = t0 + jiff::SignedDuration::from_secs(1);
        assert_eq!(memo.pass("acme", &desired, Some(later)), Pass::Full);
        let earlier = t0 - jiff::SignedDuration::from_secs(1);
        assert_eq!(memo.pass("acme", &desired, Some(earlier)), Pass::One(0));
        // A new grant changes the desired state.
        let mut wider = desired.clone();
        wider.identities[1]
            .metadata
            .insert("catalog-00-2-1".into(), "x".into());
        assert_eq!(memo.pass("acme", &wider, None), Pass::Full);
    }
}
