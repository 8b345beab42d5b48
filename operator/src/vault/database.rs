//! OpenBao's database secrets engine: the roles that make a tenant
//! environment's short-lived PostgreSQL users. Raw requests: the operator's
//! policy admits the statements only as the one string each it pins, which
//! vaultrs's request types send as arrays.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::openbao::{OpenBao, ttl_seconds};
use super::{
    Change, DATABASE_CREATION, DATABASE_REVOCATION, DatabaseRole, Error, database_role_ours,
};

/// The fields of a role as the operator writes them.
fn role_body(role: &DatabaseRole) -> Value {
    json!({
        "db_name": role.connection,
        "creation_statements": DATABASE_CREATION,
        "revocation_statements": DATABASE_REVOCATION,
        "default_ttl": role.ttl,
        "max_ttl": role.max_ttl,
    })
}

/// The statements of a role as read back, one line each.
fn statements(found: &Value, key: &str) -> Vec<String> {
    super::openbao::strings(&found["data"][key])
}

/// Whether a role read back is the one wanted.
fn role_matches(found: &Value, role: &DatabaseRole) -> bool {
    let data = &found["data"];
    statements(found, "creation_statements") == [DATABASE_CREATION]
        && statements(found, "revocation_statements") == [DATABASE_REVOCATION]
        && statements(found, "rollback_statements").is_empty()
        && statements(found, "renew_statements").is_empty()
        && data["db_name"].as_str() == Some(role.connection.as_str())
        && data["default_ttl"].as_u64() == Some(ttl_seconds(&role.ttl))
        && data["max_ttl"].as_u64() == Some(ttl_seconds(&role.max_ttl))
}

impl OpenBao {
    fn database_error(name: &str, message: impl Into<String>) -> Error {
        Error::DatabaseRole {
            name: name.into(),
            message: message.into(),
        }
    }

    /// The role at `path`, if there is one.
    async fn database_role(&self, path: &str) -> Result<Option<Value>, Error> {
        self.get_opt(path)
            .await
            .map_err(|e| Self::database_error(path, e))
    }

    /// A role's creation statements (which an older operator's carried its
    /// owner's mark in); None when there is no such role.
    pub(super) async fn database_role_mark(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        let path = format!("{mount}/roles/{name}");
        Ok(self
            .database_role(&path)
            .await?
            .map(|r| statements(&r, "creation_statements").join("\n")))
    }

    pub(super) async fn put_database_role(&self, role: &DatabaseRole) -> Result<Change, Error> {
        let path = format!("{}/roles/{}", role.mount, role.name);
        if let Some(found) = self.database_role(&path).await? {
            let mark = statements(&found, "creation_statements").join("\n");
            if !database_role_ours(&mark, &role.owner) {
                return Err(Error::NotOurs {
                    what: path,
                    owner: role.owner.clone(),
                    found: mark.lines().next().unwrap_or_default().to_string(),
                });
            }
            if role_matches(&found, role) {
                return Ok(Change::Unchanged);
            }
        }
        let (status, body) = self
            .call(Method::POST, &path, Some(&role_body(role)))
            .await
            .map_err(|e| Self::database_error(&path, e))?;
        if !status.is_success() {
            return Err(Self::database_error(
                &path,
                format!("writing: {status}: {body}"),
            ));
        }
        Ok(Change::Written)
    }

    pub(super) async fn remove_database_role(
        &self,
        mount: &str,
        name: &str,
        owner: &str,
    ) -> Result<Change, Error> {
        let path = format!("{mount}/roles/{name}");
        let Some(mark) = self.database_role_mark(mount, name).await? else {
            return Ok(Change::Unchanged);
        };
        if !database_role_ours(&mark, owner) {
            return Err(Error::NotOurs {
                what: path,
                owner: owner.into(),
                found: mark.lines().next().unwrap_or_default().to_string(),
            });
        }
        let (status, body) = self
            .call(Method::DELETE, &path, None)
            .await
            .map_err(|e| Self::database_error(&path, e))?;
        if !status.is_success() && status != StatusCode::NOT_FOUND {
            return Err(Self::database_error(
                &path,
                format!("deleting: {status}: {body}"),
            ));
        }
        Ok(Change::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> DatabaseRole {
        DatabaseRole {
            mount: "database".into(),
            name: "acme-prod".into(),
            connection: "publicdata".into(),
            ttl: "1h".into(),
            max_ttl: "4h".into(),
            owner: "publicdata-operator tenant=acme unit=X".into(),
        }
    }

    #[test]
    fn the_statements_are_one_string_each_with_no_comma_and_no_tenant_in_them() {
        // OpenBao splits a string sent for a list at commas; the policy pins
        // the one string, the same for every tenant.
        for s in [DATABASE_CREATION, DATABASE_REVOCATION] {
            assert!(!s.contains(','), "{s}");
            assert!(!s.starts_with('*') && !s.ends_with('*'), "{s}");
        }
        let body = role_body(&role());
        assert_eq!(body["creation_statements"], DATABASE_CREATION);
        assert_eq!(body["revocation_statements"], DATABASE_REVOCATION);
        assert!(!body.to_string().contains("acme"));
    }

    #[test]
    fn the_operators_policy_pins_exactly_these_statements() {
        let policy =
            include_str!("../../../charts/publicdata-operator/files/openbao-operator-policy.hcl");
        for s in [DATABASE_CREATION, DATABASE_REVOCATION] {
            let hcl = format!("[\"{}\"]", s.replace('"', "\\\""));
            assert!(policy.contains(&hcl), "{hcl}");
        }
        // And the lifetimes the operator writes (a role with others is refused).
        for (key, ttl) in [
            ("default_ttl", crate::vault::TOKEN_TTL),
            ("max_ttl", crate::vault::TOKEN_MAX_TTL),
        ] {
            let hcl = format!("\"{key}\" = [\"{ttl}\"]");
            assert!(policy.contains(&hcl), "{hcl}");
        }
        let setup = include_str!("../../../charts/publicdata-operator/files/postgres-setup.sql");
        assert!(setup.contains("FUNCTION publicdata_platform.enroll(username text)"));
    }

    #[test]
    fn a_user_name_fits_postgresqls_limit_for_the_longest_tenant() {
        // CEL caps a tenant id at 40 characters; PostgreSQL cuts a name
        // beyond 63 (and the revocation's `usename = '{{name}}'` would then
        // match nothing).
        let random: usize = crate::vault::DATABASE_USERNAME_TEMPLATE
            .split("random ")
            .nth(1)
            .and_then(|r| r.trim_end_matches('}').parse().ok())
            .expect("a random part");
        let longest = crate::naming::namespace_name(
            &"t".repeat(40),
            crate::api::authorization::Environment::Prod,
        );
        assert!(longest.len() + 1 + random <= 63, "{longest}");
    }

    #[test]
    fn a_role_with_any_other_statement_is_written_again() {
        let found = |creation: &str, rollback: &[&str]| {
            json!({"data": {
                "db_name": "publicdata",
                "creation_statements": [creation],
                "revocation_statements": [DATABASE_REVOCATION],
                "rollback_statements": rollback,
                "renew_statements": [],
                "default_ttl": 3600,
                "max_ttl": 14400,
            }})
        };
        assert!(role_matches(&found(DATABASE_CREATION, &[]), &role()));
        assert!(!role_matches(
            &found("CREATE ROLE x SUPERUSER", &[]),
            &role()
        ));
        assert!(!role_matches(
            &found(DATABASE_CREATION, &["GRANT pg_read_server_files TO x"]),
            &role()
        ));
    }

    #[test]
    fn a_role_is_ours_with_the_pinned_statements_or_an_older_one_with_our_mark() {
        let owner = &role().owner;
        assert!(database_role_ours(DATABASE_CREATION, owner));
        assert!(database_role_ours(
            &format!("-- {owner}\nCREATE ROLE \"{{{{name}}}}\" IN ROLE \"acme-prod\""),
            owner
        ));
        assert!(!database_role_ours("CREATE ROLE \"{{name}}\"", owner));
    }
}
