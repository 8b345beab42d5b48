//! The operator's connection to the platform's PostgreSQL, and the few things
//! it does there: make the schemas of the masked views, read a table's
//! columns, (re)make a dataset's views, make a tenant environment's role,
//! read and change its grants, end its sessions, and drop it.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::sql::{self, Column, Held, Relation, ident, literal, qualified};
use super::{KEYS_SCHEMA, MASKED_SCHEMA, ROLE_MARK, SAMPLE_SCHEMA};

/// Where and as whom the operator connects.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What PostgreSQL said (its message and SQLSTATE), or the connection's error.
    #[error("PostgreSQL: {0}")]
    Sql(String),
    #[error("PostgreSQL: no connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("PostgreSQL: {0}")]
    Build(#[from] deadpool_postgres::BuildError),
    /// PostgreSQL took the grants without error and still holds otherwise
    /// (a GRANT the operator's role has no grant option for only warns).
    #[error("the PostgreSQL role {role} does not hold what was granted: {detail}")]
    NotGranted { role: String, detail: String },
    /// A role of that name exists and is not the operator's for this tenant.
    #[error(
        "the PostgreSQL role {role} exists and is not this tenant's (its comment: {found:?}); the operator will not take it over"
    )]
    NotOurs { role: String, found: String },
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Sql(match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        })
    }
}

impl Error {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql",
            Self::Pool(_) => "pool",
            Self::Build(_) => "build",
            Self::NotOurs { .. } => "not_ours",
            Self::NotGranted { .. } => "not_granted",
        }
    }
}

/// A pool of connections, as the operator's role.
pub struct Database {
    pool: Pool,
    database: String,
    /// The operator's schemas are made (once per process, by one caller).
    prepared: tokio::sync::Mutex<bool>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// A pool; connections are opened when first used, and checked before
    /// each reuse.
    pub fn new(settings: &Settings) -> Result<Self, Error> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&settings.host)
            .port(settings.port)
            .dbname(&settings.database)
            .user(&settings.user)
            .password(&settings.password)
            .application_name("publicdata-operator")
            .connect_timeout(std::time::Duration::from_secs(5));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager).max_size(4).build()?;
        Ok(Self {
            pool,
            database: settings.database.clone(),
            prepared: Default::default(),
        })
    }

    /// The operator's schemas and its table of hash keys, which no one else
    /// may use.
    pub async fn prepare(&self) -> Result<(), Error> {
        let mut prepared = self.prepared.lock().await;
        if *prepared {
            return Ok(());
        }
        let c = self.pool.get().await?;
        c.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {masked};
             CREATE SCHEMA IF NOT EXISTS {sample};
             CREATE SCHEMA IF NOT EXISTS {keys};
             REVOKE ALL ON SCHEMA {masked}, {sample}, {keys} FROM PUBLIC;
             CREATE TABLE IF NOT EXISTS {keys}.hash_key (dataset text PRIMARY KEY, key text NOT NULL);
             REVOKE ALL ON {keys}.hash_key FROM PUBLIC;",
            masked = ident(MASKED_SCHEMA),
            sample = ident(SAMPLE_SCHEMA),
            keys = ident(KEYS_SCHEMA),
        ))
        .await?;
        *prepared = true;
        Ok(())
    }

    /// The columns of a table, in order; empty when there is no such table
    /// (or the operator's role cannot see it).
    pub async fn columns(&self, schema: &str, table: &str) -> Result<Vec<Column>, Error> {
        let c = self.pool.get().await?;
        let rows = c
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema, &table],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                data_type: r.get(1),
            })
            .collect())
    }

    /// The distinct values of a column, as text, of 4 characters or more
    /// (shorter ones mean nothing to the export scan), at most `limit`;
    /// `None` when there are more.
    pub async fn distinct_values(
        &self,
        schema: &str,
        table: &str,
        column: &str,
        limit: i64,
    ) -> Result<Option<Vec<String>>, Error> {
        let c = self.pool.get().await?;
        let col = ident(column);
        let rows = c
            .query(
                &format!(
                    "SELECT DISTINCT {col}::text FROM {}.{} \
                     WHERE {col} IS NOT NULL AND length({col}::text) >= 4 LIMIT $1",
                    ident(schema),
                    ident(table)
                ),
                &[&(limit + 1)],
            )
            .await?;
        if rows.len() as i64 > limit {
            return Ok(None);
        }
        Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
    }

    /// The comment on a relation, if it exists (and has one).
    async fn comment_on(&self, schema: &str, name: &str) -> Result<Option<String>, Error> {
        let c = self.pool.get().await?;
        let row = c
            .query_opt(
                "SELECT obj_description(to_regclass($1), 'pg_class')",
                &[&qualified(schema, name)],
            )
            .await?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    /// The digest the views of `dataset` were last made for (the comment on
    /// its masked view), if they exist.
    pub async fn views_digest(&self, dataset: &str) -> Result<Option<String>, Error> {
        self.comment_on(MASKED_SCHEMA, dataset).await
    }

    /// Makes the views of a dataset again, in one transaction: its hash key
    /// (made once, kept), the statements of `sql::views`, and the digest as
    /// the masked view's comment. Nobody is granted these views: dev reads
    /// its sample's copy in the samples database ([`Database::fill_sample`]).
    pub async fn make_views(
        &self,
        dataset: &str,
        statements: &[String],
        digest: &str,
    ) -> Result<(), Error> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        tx.execute(
            &format!(
                "INSERT INTO {}.hash_key (dataset, key) VALUES ($1, encode(sha256(gen_random_uuid()::text::bytea), 'hex')) \
                 ON CONFLICT (dataset) DO NOTHING",
                ident(KEYS_SCHEMA)
            ),
            &[&dataset],
        )
        .await?;
        for s in statements {
            tx.batch_execute(s).await?;
        }
        tx.batch_execute(&format!(
            "COMMENT ON VIEW {} IS {}",
            qualified(MASKED_SCHEMA, dataset),
            literal(digest)
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes the role of a tenant environment, unless it is there: it cannot
    /// log in, may connect to the database, and carries the operator's mark
    /// for `tenant`. A role of that name without the mark is refused.
    pub async fn ensure_role(&self, role: &str, tenant: &str) -> Result<(), Error> {
        let mark = format!("{ROLE_MARK}{tenant}");
        let c = self.pool.get().await?;
        let found = c
            .query_opt(
                "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = $1",
                &[&role],
            )
            .await?;
        match found {
            Some(row) => {
                let comment: String = row.get(0);
                if comment != mark {
                    return Err(Error::NotOurs {
                        role: role.into(),
                        found: comment,
                    });
                }
            }
            None => {
                c.batch_execute(&format!(
                    "CREATE ROLE {r} NOLOGIN; COMMENT ON ROLE {r} IS {m};",
                    r = ident(role),
                    m = literal(&mark),
                ))
                .await?;
            }
        }
        // Its users connect through it: granted, and checked, since
        // PostgreSQL only warns about a grant it did not make.
        if !may_connect(&c, role).await? {
            c.batch_execute(&format!(
                "GRANT CONNECT ON DATABASE {} TO {}",
                ident(&self.database),
                ident(role)
            ))
            .await?;
            if !may_connect(&c, role).await? {
                return Err(Error::NotGranted {
                    role: role.into(),
                    detail: format!(
                        "CONNECT on database {}: the operator's role needs it with grant option",
                        self.database
                    ),
                });
            }
        }
        Ok(())
    }

    /// What `role` holds: column grants, whole-table SELECTs, schema USAGE
    /// (in this database).
    pub async fn held(&self, role: &str) -> Result<Held, Error> {
        let c = self.pool.get().await?;
        let mut held = Held::default();
        for r in c
            .query(
                "SELECT n.nspname::text, c.relname::text, a.attname::text \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, \
                 aclexplode(a.attacl) x \
                 WHERE x.grantee = to_regrole($1) AND x.privilege_type = 'SELECT'",
                &[&ident(role)],
            )
            .await?
        {
            held.columns
                .entry((r.get(0), r.get(1)))
                .or_default()
                .insert(r.get(2));
        }
        for r in c
            .query(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, \
                 aclexplode(c.relacl) x WHERE x.grantee = to_regrole($1)",
                &[&ident(role)],
            )
            .await?
        {
            held.whole_tables.insert((r.get(0), r.get(1)));
        }
        for r in c
            .query(
                "SELECT n.nspname::text FROM pg_namespace n, aclexplode(n.nspacl) x \
                 WHERE x.grantee = to_regrole($1) AND x.privilege_type = 'USAGE'",
                &[&ident(role)],
            )
            .await?
        {
            held.schemas.insert(r.get(0));
        }
        Ok(held)
    }

    /// Runs grant statements, in one transaction.
    pub async fn run(&self, statements: &[String]) -> Result<(), Error> {
        if statements.is_empty() {
            return Ok(());
        }
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        for s in statements {
            tx.batch_execute(s).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends every session of a member of `role` (the short-lived users
    /// OpenBao made), and stops them logging in again. Returns how many
    /// sessions it ended.
    pub async fn cut(&self, role: &str) -> Result<u64, Error> {
        let c = self.pool.get().await?;
        let members: Vec<String> = members(&c, role).await?;
        for m in &members {
            // OpenBao may drop it meanwhile (its lease revoked): fine.
            match c
                .batch_execute(&format!("ALTER ROLE {} NOLOGIN", ident(m)))
                .await
            {
                Ok(()) => {}
                Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let ended = c
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1)",
                &[&members],
            )
            .await?
            .len();
        Ok(ended as u64)
    }

    /// Drops the role of a tenant environment, and every member left of it:
    /// sessions ended, grants revoked, roles dropped. A role without the
    /// operator's mark for `tenant` is refused; a role that is gone is fine.
    pub async fn drop_role(&self, role: &str, tenant: &str) -> Result<(), Error> {
        let mark = format!("{ROLE_MARK}{tenant}");
        self.cut(role).await?;
        let c = self.pool.get().await?;
        let Some(row) = c
            .query_opt(
                "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = $1",
                &[&role],
            )
            .await?
        else {
            return Ok(());
        };
        let comment: String = row.get(0);
        if comment != mark {
            return Err(Error::NotOurs {
                role: role.into(),
                found: comment,
            });
        }
        for m in members(&c, role).await? {
            c.batch_execute(&format!("DROP ROLE IF EXISTS {}", ident(&m)))
                .await?;
        }

        drop(c);
        let held = self.held(role).await?;
        let mut statements = sql::grant_changes(role, &BTreeMap::new(), &held);
        statements.push(format!(
            "REVOKE ALL ON DATABASE {} FROM {}",
            ident(&self.database),
            ident(role)
        ));
        statements.push(format!("DROP ROLE {}", ident(role)));
        self.run(&statements).await
    }

    /// Takes from `role` everything it holds in this database (column and
    /// table grants, schema USAGE, CONNECT), without dropping it: a role of
    /// the other environment, which must reach nothing here. A role this
    /// instance does not know holds nothing.
    pub async fn forget(&self, role: &str) -> Result<(), Error> {
        let c = self.pool.get().await?;
        let exists = c
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await?
            .is_some();
        if !exists {
            return Ok(());
        }
        let connects = may_connect(&c, role).await?;
        drop(c);
        let held = self.held(role).await?;
        let mut statements = sql::grant_changes(role, &BTreeMap::new(), &held);
        if connects {
            statements.push(format!(
                "REVOKE ALL ON DATABASE {} FROM {}",
                ident(&self.database),
                ident(role)
            ));
        }
        self.run(&statements).await
    }

    /// Dev's sample schema in the samples database, which no one else may
    /// use.
    pub async fn prepare_samples(&self) -> Result<(), Error> {
        let mut prepared = self.prepared.lock().await;
        if *prepared {
            return Ok(());
        }
        let c = self.pool.get().await?;
        c.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {sample}; REVOKE ALL ON SCHEMA {sample} FROM PUBLIC;",
            sample = ident(SAMPLE_SCHEMA),
        ))
        .await?;
        *prepared = true;
        Ok(())
    }

    /// The rows of dataset's sample view (in the raw database), as one JSON
    /// array, with the view's columns and their types.
    pub async fn sample_rows(&self, dataset: &str) -> Result<Sample, Error> {
        let c = self.pool.get().await?;
        let view = qualified(SAMPLE_SCHEMA, dataset);
        let columns = c
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&view],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let rows: String = c
            .query_one(
                &format!("SELECT coalesce(json_agg(t), '[]')::text FROM {view} AS t"),
                &[],
            )
            .await?
            .get(0);
        Ok(Sample { columns, rows })
    }

    /// The mark on dataset's sample table here (what it was last filled
    /// from), if the table exists.
    pub async fn sample_mark(&self, dataset: &str) -> Result<Option<String>, Error> {
        self.comment_on(SAMPLE_SCHEMA, dataset).await
    }

    /// Fills dataset's sample table here with `sample`, in one transaction:
    /// the table made again with the sample's columns, its rows, `mark` as
    /// its comment, and the column grants it had, for the columns it still
    /// has.
    pub async fn fill_sample(
        &self,
        dataset: &str,
        sample: &Sample,
        mark: &str,
    ) -> Result<(), Error> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let relation = (SAMPLE_SCHEMA.to_string(), dataset.to_string());
        let table = qualified(SAMPLE_SCHEMA, dataset);
        // A dev session holding the table does not stall the copy for long:
        // it fails and is tried at the next resync.
        tx.batch_execute("SET LOCAL lock_timeout = '5s'").await?;
        let before = column_grants(&tx, &relation).await?;
        let columns = sample
            .columns
            .iter()
            .map(|(name, kind)| format!("{} {kind}", ident(name)))
            .collect::<Vec<_>>()
            .join(", ");
        tx.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({columns});"
        ))
        .await?;
        tx.execute(
            &format!("INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json)"),
            &[&sample.rows],
        )
        .await?;
        tx.batch_execute(&format!("COMMENT ON TABLE {table} IS {}", literal(mark)))
            .await?;
        let now: BTreeSet<String> = sample.columns.iter().map(|(n, _)| n.clone()).collect();
        for (role, columns) in before {
            let kept: BTreeSet<String> = columns.intersection(&now).cloned().collect();
            if kept.is_empty() {
                continue;
            }
            let wanted = BTreeMap::from([(relation.clone(), kept)]);
            for s in sql::grant_changes(&role, &wanted, &Held::default()) {
                if s.starts_with("GRANT SELECT") {
                    tx.batch_execute(&s).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The roles of `tenant` that exist, and how many sessions their members
    /// hold: for the exit review, which wants none of either.
    pub async fn left_of(&self, tenant: &str) -> Result<(Vec<String>, i64), Error> {
        let c = self.pool.get().await?;
        let mark = format!("{ROLE_MARK}{tenant}");
        let roles: Vec<String> = c
            .query(
                "SELECT rolname::text FROM pg_roles WHERE shobj_description(oid, 'pg_authid') = $1 ORDER BY 1",
                &[&mark],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut sessions = 0i64;
        for role in &roles {
            let m = members(&c, role).await?;
            let row = c
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)",
                    &[&m],
                )
                .await?;
            sessions += row.get::<_, i64>(0);
        }
        Ok((roles, sessions))
    }
}

/// A dataset's sample as read from its view: (column, type) in order, and
/// the rows as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub columns: Vec<(String, String)>,
    pub rows: String,
}

/// Whether `role` may connect to this database.
async fn may_connect(c: &tokio_postgres::Client, role: &str) -> Result<bool, Error> {
    Ok(c.query_one(
        "SELECT has_database_privilege($1, current_database(), 'CONNECT')",
        &[&role],
    )
    .await?
    .get(0))
}

/// The roles that are members of `role`.
async fn members(c: &tokio_postgres::Client, role: &str) -> Result<Vec<String>, Error> {
    Ok(c.query(
        "SELECT m.rolname::text FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member \
         JOIN pg_roles r ON r.oid = am.roleid WHERE r.rolname = $1",
        &[&role],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// The column grants on `relation`, by role.
async fn column_grants(
    c: &tokio_postgres::Transaction<'_>,
    relation: &Relation,
) -> Result<BTreeMap<String, BTreeSet<String>>, Error> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in c
        .query(
            "SELECT x.grantee::regrole::text, a.attname::text FROM pg_attribute a, aclexplode(a.attacl) x \
             WHERE a.attrelid = to_regclass($1) AND x.privilege_type = 'SELECT' AND x.grantee <> 0",
            &[&qualified(&relation.0, &relation.1)],
        )
        .await?
    {
        let role: String = r.get(0);
        out.entry(role.trim_matches('"').replace("\"\"", "\""))
            .or_default()
            .insert(r.get(1));
    }
    Ok(out)
}
