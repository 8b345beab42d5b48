//! The data plane in PostgreSQL: datasets that live in a table are masked and
//! sampled there for dev, and each tenant environment has a role that may
//! select exactly the columns its approved scenarios list.
//!
//! What is here is pure: from the catalog and the approved scenarios to the
//! SQL that makes it so, and from what PostgreSQL reports to what must change.
//! The controller runs the statements.

mod client;
pub mod sql;

pub use client::{Database, Error, Sample, Settings};

use std::collections::{BTreeMap, BTreeSet};

use crate::api::authorization::Environment;
use crate::api::scenario::ColumnGrant;
use sql::Relation;

/// The schema of the masked views: every row, every field by its rule.
pub const MASKED_SCHEMA: &str = "publicdata_masked";
/// The schema of dev's samples: the masked view's fields, a fixed share of
/// the rows. Dev is granted columns here and nowhere else.
pub const SAMPLE_SCHEMA: &str = "publicdata_sample";
/// The schema of the operator's own tables (the hash keys); no tenant role
/// has any privilege on it.
pub const KEYS_SCHEMA: &str = "publicdata_keys";
/// The comment on every role the operator makes, followed by its tenant: a
/// role without it is never touched, whatever its name.
pub const ROLE_MARK: &str = "publicdata-operator tenant ";

/// The data plane's two databases: the catalog's raw tables,
/// where prod's roles are granted columns; and dev's samples, a database of
/// its own where the operator keeps each dataset's masked sample as a table.
/// A dev user cannot connect to the raw database, a prod user cannot
/// connect to the samples', so nothing one makes (a large object, a table,
/// a notification) is seen by the other.
pub struct Plane {
    pub raw: Database,
    pub samples: Database,
}

impl Plane {
    /// Where an environment's role is granted and its users connect.
    pub fn of(&self, env: Environment) -> &Database {
        match env {
            Environment::Dev => &self.samples,
            Environment::Prod => &self.raw,
        }
    }

    /// The database an environment's users must not reach.
    pub fn not_of(&self, env: Environment) -> &Database {
        match env {
            Environment::Dev => &self.raw,
            Environment::Prod => &self.samples,
        }
    }

    /// Copies a dataset's masked sample from its view in the raw database
    /// to its table in the samples database, when what the table holds is
    /// not the view's rows made with the views of `digest`. True when it
    /// copied.
    pub async fn sync_sample(&self, dataset: &str, digest: &str) -> Result<bool, Error> {
        use sha2::Digest;
        self.samples.prepare_samples().await?;
        let sample = self.raw.sample_rows(dataset).await?;
        let content = hex::encode(sha2::Sha256::digest(
            format!("{:?}\n{}", sample.columns, sample.rows).as_bytes(),
        ));
        let mark = format!("views {digest}; rows {content}");
        if self.samples.sample_mark(dataset).await?.as_deref() == Some(mark.as_str()) {
            return Ok(false);
        }
        self.samples.fill_sample(dataset, &sample, &mark).await?;
        Ok(true)
    }

    /// The roles of `tenant` left, and their members' sessions: both
    /// databases are on one server, whose roles and sessions are the
    /// server's, so the raw database's view of them is the whole of it.
    pub async fn left_of(&self, tenant: &str) -> Result<(Vec<String>, i64), Error> {
        self.raw.left_of(tenant).await
    }
}

/// The PostgreSQL role of one environment of a tenant: the namespace's name.
/// It cannot log in; the short-lived users OpenBao makes are its members.
pub fn tenant_role(tenant: &str, env: Environment) -> String {
    crate::naming::namespace_name(tenant, env)
}

/// The columns `env`'s role may select, from the column grants of the
/// tenant's active scenarios (two scenarios granting the same relation add
/// up).
pub fn wanted(env: Environment, grants: &[ColumnGrant]) -> BTreeMap<Relation, BTreeSet<String>> {
    let mut out: BTreeMap<Relation, BTreeSet<String>> = BTreeMap::new();
    for g in grants.iter().filter(|g| g.environment == env.as_str()) {
        out.entry((g.schema.clone(), g.relation.clone()))
            .or_default()
            .extend(g.columns.iter().cloned());
    }
    out
}

/// Makes each environment's role of the tenant and brings its grants to
/// exactly what its active scenarios grant. Returns what each may select,
/// in words, for the status.
pub async fn provision(
    plane: &Plane,
    tenant: &str,
    envs: &[Environment],
    grants: &[ColumnGrant],
) -> Result<Vec<String>, Error> {
    let mut granted = Vec::new();
    for env in envs {
        let role = tenant_role(tenant, *env);
        let db = plane.of(*env);
        db.ensure_role(&role, tenant).await?;
        // Nothing in the other environment's database, whatever an earlier
        // version granted there.
        plane.not_of(*env).forget(&role).await?;
        let want = wanted(*env, grants);
        let held = db.held(&role).await?;
        let changes = sql::grant_changes(&role, &want, &held);
        if !changes.is_empty() {
            db.run(&changes).await?;
            // PostgreSQL only warns about a grant it did not make: check.
            let now = db.held(&role).await?;
            let left = sql::grant_changes(&role, &want, &now);
            if !left.is_empty() {
                return Err(Error::NotGranted {
                    role,
                    detail: format!("still to do: {}", left.join("; ")),
                });
            }
        }
        for ((schema, relation), columns) in &want {
            granted.push(format!(
                "{role}: SELECT ({}) ON {schema}.{relation}",
                columns.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(env: &str, relation: &str, columns: &[&str]) -> ColumnGrant {
        ColumnGrant {
            environment: env.into(),
            schema: "s".into(),
            relation: relation.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn an_environment_wants_the_union_of_its_own_grants_only() {
        let grants = [
            grant("dev", "a", &["x"]),
            grant("dev", "a", &["y", "x"]),
            grant("prod", "a", &["z"]),
            grant("dev", "b", &["w"]),
        ];
        let dev = wanted(Environment::Dev, &grants);
        assert_eq!(
            dev,
            BTreeMap::from([
                (
                    ("s".into(), "a".into()),
                    BTreeSet::from(["x".into(), "y".into()])
                ),
                (("s".into(), "b".into()), BTreeSet::from(["w".into()])),
            ])
        );
        assert_eq!(wanted(Environment::Prod, &grants).len(), 1);
        assert!(wanted(Environment::Prod, &[]).is_empty());
    }
}
