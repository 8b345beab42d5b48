use super::*;
use crate::api::authorization::Environment;
use crate::api::dataset::Sensitivity;

fn field(name: &str, masking: Masking) -> Field {
    Field {
        name: name.into(),
        sensitivity: if masking == Masking::None {
            Sensitivity::Public
        } else {
            Sensitivity::Sensitive
        },
        masking,
    }
}

fn column(name: &str, data_type: &str) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
    }
}

fn table() -> DatasetTable {
    DatasetTable {
        schema: "market".into(),
        name: "enterprise_registry".into(),
        sample_percent: 10,
    }
}

fn columns() -> Vec<Column> {
    vec![
        column("credit_code", "text"),
        column("registered_capital", "numeric"),
        column("legal_representative_id", "text"),
        column("legal_representative_phone", "text"),
        column("founded", "date"),
        column("not_in_the_catalog", "text"),
    ]
}

#[test]
fn identifiers_and_literals_are_quoted_whatever_they_hold() {
    assert_eq!(ident("enterprise-registry"), "\"enterprise-registry\"");
    assert_eq!(
        ident("a\"; DROP TABLE x; --"),
        "\"a\"\"; DROP TABLE x; --\""
    );
    assert_eq!(literal("it's"), "'it''s'");
    assert_eq!(qualified("s", "t"), "\"s\".\"t\"");
}

#[test]
fn each_field_is_shown_by_its_rule_and_the_sample_is_a_fixed_share() {
    let fields = [
        field("credit_code", Masking::None),
        field("registered_capital", Masking::Generalize),
        field("legal_representative_id", Masking::Partial),
        field("legal_representative_phone", Masking::Hash),
        field("founded", Masking::Generalize),
    ];
    let sql = views("enterprise-registry", &table(), &fields, &columns()).unwrap();
    assert_eq!(sql.len(), 4);
    assert!(
        sql[0].starts_with("DROP VIEW IF EXISTS \"publicdata_sample\".\"enterprise-registry\"")
    );
    let masked = &sql[2];
    assert!(masked.starts_with("CREATE VIEW \"publicdata_masked\".\"enterprise-registry\" WITH (security_barrier) AS SELECT t.\"credit_code\" AS \"credit_code\", "));
    assert!(
        masked.contains("power(10::numeric, floor(log(abs(t.\"registered_capital\"::numeric))))")
    );
    assert!(masked.contains("left(t.\"legal_representative_id\"::text, 6) || repeat('*', length(t.\"legal_representative_id\"::text) - 10)"));
    assert!(masked.contains(
        "FROM \"publicdata_keys\".\"hash_key\" k WHERE k.dataset = 'enterprise-registry'"
    ));
    assert!(masked.contains("date_trunc('month', t.\"founded\")::date AS \"founded\""));
    assert!(masked.ends_with("FROM \"market\".\"enterprise_registry\" AS t"));
    // A column the catalog does not list is in no view.
    assert!(sql.iter().all(|s| !s.contains("not_in_the_catalog")));
    // The sample: the same expressions, a fixed share of the rows.
    let sample = &sql[3];
    assert!(sample.starts_with(
        "CREATE VIEW \"publicdata_sample\".\"enterprise-registry\" WITH (security_barrier) AS SELECT t.\"credit_code\""
    ));
    assert!(sample.ends_with("% 100 < 10"));
    assert_eq!(
        sample.split(" FROM \"market\"").next(),
        masked
            .split(" FROM \"market\"")
            .next()
            .map(|m| m.replace("publicdata_masked", "publicdata_sample"))
            .as_deref()
    );
}

#[test]
fn a_field_the_table_lacks_or_cannot_generalize_is_named() {
    let missing = views(
        "enterprise-registry",
        &table(),
        &[field("industry", Masking::None)],
        &columns(),
    );
    assert_eq!(
        missing.unwrap_err().to_string(),
        "field industry is not a column of market.enterprise_registry"
    );
    let text = views(
        "enterprise-registry",
        &table(),
        &[field("credit_code", Masking::Generalize)],
        &columns(),
    );
    assert_eq!(
        text.unwrap_err().to_string(),
        "field credit_code is masked by Generalize, which needs a number, a date or a time, and market.enterprise_registry.credit_code is text"
    );
}

fn set(cols: &[&str]) -> BTreeSet<String> {
    cols.iter().map(|c| c.to_string()).collect()
}

fn rel(schema: &str, name: &str) -> Relation {
    (schema.into(), name.into())
}

#[test]
fn a_role_is_brought_to_exactly_the_wanted_columns() {
    let wanted = BTreeMap::from([(
        rel("market", "enterprise_registry"),
        set(&["credit_code", "industry"]),
    )]);
    // Nothing held yet: the columns and the schema granted.
    assert_eq!(
        grant_changes("t-prod", &wanted, &Held::default()),
        [
            "GRANT SELECT (\"credit_code\", \"industry\") ON \"market\".\"enterprise_registry\" TO \"t-prod\"",
            "GRANT USAGE ON SCHEMA \"market\" TO \"t-prod\"",
        ]
    );
    // Exactly what is wanted: nothing to do.
    let exact = Held {
        columns: wanted.clone(),
        whole_tables: BTreeSet::new(),
        schemas: set(&["market"]),
    };
    assert!(grant_changes("t-prod", &wanted, &exact).is_empty());
    // An extra column, a whole-table grant someone added, another dataset no
    // longer approved: all taken back; the missing column granted.
    let held = Held {
        columns: BTreeMap::from([
            (
                rel("market", "enterprise_registry"),
                set(&["credit_code", "legal_representative_id"]),
            ),
            (rel("transport", "bus_ridership"), set(&["boardings"])),
        ]),
        whole_tables: BTreeSet::from([rel("water", "water_network")]),
        schemas: set(&["market", "transport"]),
    };
    assert_eq!(
        grant_changes("t-prod", &wanted, &held),
        [
            "REVOKE ALL ON \"water\".\"water_network\" FROM \"t-prod\"",
            "REVOKE SELECT (\"legal_representative_id\") ON \"market\".\"enterprise_registry\" FROM \"t-prod\"",
            "GRANT SELECT (\"industry\") ON \"market\".\"enterprise_registry\" TO \"t-prod\"",
            "REVOKE SELECT (\"boardings\") ON \"transport\".\"bus_ridership\" FROM \"t-prod\"",
            "REVOKE USAGE ON SCHEMA \"transport\" FROM \"t-prod\"",
        ]
    );
    // Nothing wanted any more: everything goes.
    let none = grant_changes("t-prod", &BTreeMap::new(), &exact);
    assert_eq!(
        none,
        [
            "REVOKE SELECT (\"credit_code\", \"industry\") ON \"market\".\"enterprise_registry\" FROM \"t-prod\"",
            "REVOKE USAGE ON SCHEMA \"market\" FROM \"t-prod\"",
        ]
    );
}

#[test]
fn dev_is_granted_the_sample_and_prod_the_table() {
    assert_eq!(
        relation(Environment::Dev, "enterprise-registry", &table()),
        rel("publicdata_sample", "enterprise-registry")
    );
    assert_eq!(
        relation(Environment::Prod, "enterprise-registry", &table()),
        rel("market", "enterprise_registry")
    );
}
