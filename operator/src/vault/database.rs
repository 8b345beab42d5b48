//! OpenBao's database secrets engine: the roles that make a tenant
//! environment's short-lived PostgreSQL users.

use vaultrs::api::database::requests::SetRoleRequest;

use super::openbao::{OpenBao, not_found};
use super::{Change, DatabaseRole, Error, owned};

/// Seconds of a duration like `1h`, as OpenBao reports TTLs.
fn seconds(text: &str) -> u64 {
    super::openbao::ttl_seconds(text)
}

impl OpenBao {
    /// A role's creation statements, which carry its owner's mark; None when
    /// there is no such role.
    pub(super) async fn database_role_mark(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        match vaultrs::database::role::read(&self.session().client, mount, name).await {
            Ok(r) => Ok(Some(r.creation_statements.join("\n"))),
            Err(e) if not_found(&e) => Ok(None),
            Err(source) => Err(Error::ReadRole {
                name: format!("{mount}/roles/{name}"),
                source,
            }),
        }
    }

    pub(super) async fn put_database_role(&self, role: &DatabaseRole) -> Result<Change, Error> {
        let path = format!("{}/roles/{}", role.mount, role.name);
        match vaultrs::database::role::read(&self.session().client, &role.mount, &role.name).await {
            Ok(r) => {
                owned(
                    || path.clone(),
                    &r.creation_statements.join("\n"),
                    &role.owner,
                )?;
                if r.creation_statements == role.creation_statements()
                    && r.revocation_statements == role.revocation_statements()
                    && r.db_name == role.connection
                    && r.default_ttl == seconds(&role.ttl)
                    && r.max_ttl == seconds(&role.max_ttl)
                {
                    return Ok(Change::Unchanged);
                }
            }
            Err(e) if not_found(&e) => {}
            Err(source) => return Err(Error::ReadRole { name: path, source }),
        }
        let mut opts = SetRoleRequest::builder();
        opts.db_name(role.connection.clone())
            .creation_statements(role.creation_statements())
            .revocation_statements(role.revocation_statements())
            .default_ttl(role.ttl.clone())
            .max_ttl(role.max_ttl.clone());
        vaultrs::database::role::set(
            &self.session().client,
            &role.mount,
            &role.name,
            Some(&mut opts),
        )
        .await
        .map_err(|source| Error::WriteRole {
            name: path.clone(),
            source,
        })?;
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
        owned(|| path.clone(), &mark, owner)?;
        vaultrs::database::role::delete(&self.session().client, mount, name)
            .await
            .map_err(|source| Error::WriteRole { name: path, source })?;
        Ok(Change::Written)
    }
}
