//! SQL for the data plane, built from the catalog: quoting, the masked and
//! sampled views of a dataset, and the column grants of tenant roles.

use std::collections::{BTreeMap, BTreeSet};

use super::{KEYS_SCHEMA, MASKED_SCHEMA, SAMPLE_SCHEMA};
use crate::api::dataset::{DatasetTable, Field, Masking};

/// An identifier, quoted: `a"b` becomes `"a""b"`.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal: `it's` becomes `'it''s'`.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `schema.name`, both quoted.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A column of the table as PostgreSQL reports it
/// (`information_schema.columns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `data_type`: `text`, `integer`, `numeric`, `date`, ...
    pub data_type: String,
}

/// What a column holds, as far as masking cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Number,
    Date,
    Timestamp,
    Other,
}

fn class(data_type: &str) -> Class {
    match data_type {
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" => {
            Class::Number
        }
        "date" => Class::Date,
        t if t.starts_with("timestamp") => Class::Timestamp,
        _ => Class::Other,
    }
}

/// Why a dataset's views cannot be made as the catalog says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("field {field} is not a column of {table}")]
    NoSuchColumn { field: String, table: String },
    #[error(
        "field {field} is masked by Generalize, which needs a number, a date or a time, and {table}.{field} is {data_type}"
    )]
    CannotGeneralize {
        field: String,
        table: String,
        data_type: String,
    },
}

/// The expression that shows field `f` (column `c`, of table alias `t`) by
/// its masking rule, named as the field.
fn masked(f: &Field, column: &Column, dataset: &str, table: &str) -> Result<String, Problem> {
    let c = format!("t.{}", ident(&f.name));
    let text = format!("{c}::text");
    let expr = match f.masking {
        Masking::None => c,
        Masking::Redact => format!("CASE WHEN {c} IS NULL THEN NULL ELSE '****' END"),
        // The key is read by the view, as its owner; a tenant role can read
        // neither the key's table nor, through the view, anything but hashes.
        Masking::Hash => format!(
            "encode(sha256(convert_to((SELECT k.key FROM {} k WHERE k.dataset = {}) || {text}, 'UTF8')), 'hex')",
            qualified(KEYS_SCHEMA, "hash_key"),
            literal(dataset)
        ),
        Masking::Truncate => format!("left({text}, 3)"),
        Masking::Partial => format!(
            "CASE WHEN length({text}) <= 10 THEN repeat('*', length({text})) \
             ELSE left({text}, 6) || repeat('*', length({text}) - 10) || right({text}, 4) END"
        ),
        Masking::Generalize => match class(&column.data_type) {
            Class::Number => format!(
                "CASE WHEN {c} IS NULL OR {c} = 0 THEN {c}::numeric \
                 ELSE trim_scale(sign({c}::numeric) * power(10::numeric, floor(log(abs({c}::numeric))))) END"
            ),
            Class::Date => format!("date_trunc('month', {c})::date"),
            Class::Timestamp => format!("date_trunc('month', {c})"),
            Class::Other => {
                return Err(Problem::CannotGeneralize {
                    field: f.name.clone(),
                    table: table.into(),
                    data_type: column.data_type.clone(),
                });
            }
        },
    };
    Ok(format!("{expr} AS {}", ident(&f.name)))
}

/// The statements that (re)make a dataset's masked view and dev's sample of
/// it, in one transaction with whatever grants follow: each view is dropped
/// and made again, so a changed field list or rule takes effect whole.
/// Fields are the catalog's, in its order; a column of the table that the
/// catalog does not list is in neither view.
pub fn views(
    dataset: &str,
    table: &DatasetTable,
    fields: &[Field],
    columns: &[Column],
) -> Result<Vec<String>, Problem> {
    let source = format!("{}.{}", table.schema, table.name);
    let exprs =
        fields
            .iter()
            .map(|f| {
                let column = columns.iter().find(|c| c.name == f.name).ok_or_else(|| {
                    Problem::NoSuchColumn {
                        field: f.name.clone(),
                        table: source.clone(),
                    }
                })?;
                masked(f, column, dataset, &source)
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
    let from = format!("{} AS t", qualified(&table.schema, &table.name));
    // A row is in the sample when the first 32 bits of the MD5 of its whole
    // content, modulo 100, fall under the share: the same rows every time,
    // spread over the table, and no key column needed.
    let sampled = format!(
        "WHERE ('x' || substr(md5(t::text), 1, 8))::bit(32)::bigint % 100 < {}",
        table.sample_percent
    );
    let masked_view = qualified(MASKED_SCHEMA, dataset);
    let sample_view = qualified(SAMPLE_SCHEMA, dataset);
    Ok(vec![
        format!("DROP VIEW IF EXISTS {sample_view}"),
        format!("DROP VIEW IF EXISTS {masked_view}"),
        // security_barrier: no function in a query's own predicate runs on
        // a row before the view's (the sample's share) has filtered it.
        format!("CREATE VIEW {masked_view} WITH (security_barrier) AS SELECT {exprs} FROM {from}"),
        format!(
            "CREATE VIEW {sample_view} WITH (security_barrier) AS SELECT {exprs} FROM {from} {sampled}"
        ),
    ])
}

/// A relation a tenant role may select columns of: dev's sample view or a
/// raw table.
pub type Relation = (String, String);

/// Column grants, by role and relation.
pub type Grants = BTreeMap<String, BTreeMap<Relation, BTreeSet<String>>>;

/// What PostgreSQL reports for one role: its column grants, the relations on
/// which it holds SELECT for the whole table (never wanted), and the schemas
/// it may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub columns: BTreeMap<Relation, BTreeSet<String>>,
    pub whole_tables: BTreeSet<Relation>,
    pub schemas: BTreeSet<String>,
}

/// The statements that bring `role` from what it holds to exactly `wanted`:
/// a whole-table grant is revoked, every unwanted column revoked, every
/// missing one granted, and USAGE held on exactly the schemas of the wanted
/// relations (among the schemas it holds and those it needs).
pub fn grant_changes(
    role: &str,
    wanted: &BTreeMap<Relation, BTreeSet<String>>,
    held: &Held,
) -> Vec<String> {
    let r = ident(role);
    let cols = |set: &BTreeSet<String>| set.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    for (schema, name) in &held.whole_tables {
        out.push(format!(
            "REVOKE ALL ON {} FROM {r}",
            qualified(schema, name)
        ));
    }
    let empty = BTreeSet::new();
    let relations: BTreeSet<&Relation> = wanted.keys().chain(held.columns.keys()).collect();
    for rel in relations {
        let want = wanted.get(rel).unwrap_or(&empty);
        let have = held.columns.get(rel).unwrap_or(&empty);
        let on = qualified(&rel.0, &rel.1);
        let extra: BTreeSet<String> = have.difference(want).cloned().collect();
        let missing: BTreeSet<String> = want.difference(have).cloned().collect();
        if !extra.is_empty() {
            out.push(format!("REVOKE SELECT ({}) ON {on} FROM {r}", cols(&extra)));
        }
        if !missing.is_empty() {
            out.push(format!("GRANT SELECT ({}) ON {on} TO {r}", cols(&missing)));
        }
    }
    let schemas: BTreeSet<&String> = wanted.keys().map(|(s, _)| s).collect();
    for schema in schemas.iter().filter(|s| !held.schemas.contains(**s)) {
        out.push(format!("GRANT USAGE ON SCHEMA {} TO {r}", ident(schema)));
    }
    for schema in held.schemas.iter().filter(|s| !schemas.contains(s)) {
        out.push(format!("REVOKE USAGE ON SCHEMA {} FROM {r}", ident(schema)));
    }
    out
}

/// Where an environment is granted a dataset's columns: dev on the sample
/// view (masked, sampled), prod on the table itself.
pub fn relation(
    env: crate::api::authorization::Environment,
    dataset: &str,
    table: &DatasetTable,
) -> Relation {
    match env {
        crate::api::authorization::Environment::Dev => (SAMPLE_SCHEMA.into(), dataset.into()),
        crate::api::authorization::Environment::Prod => (table.schema.clone(), table.name.clone()),
    }
}

#[cfg(test)]
mod tests;
