//! The PublicDataset reconciler: for a dataset that lives in a PostgreSQL
//! table, the masked view of it and dev's sample, made again whenever
//! the catalog entry changes what they hold, and checked against the table
//! every resync. Its `DataReady` condition says whether they stand, or why
//! not (no such table, a field the table lacks, a rule the column's type
//! cannot take, no data plane).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use sha2::{Digest, Sha256};
use tracing::{instrument, warn};

use crate::api::condition::{self, Desired};
use crate::api::dataset::{PublicDataset, PublicDatasetStatus};
use crate::context::Context;
use crate::database::{self, sql};

const DATA_READY: &str = "DataReady";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing status: {0}")]
    WriteStatus(#[source] kube::Error),
    #[error("{0}")]
    Database(#[source] database::Error),
}

impl Error {
    pub fn label(&self) -> &'static str {
        match self {
            Self::WriteStatus(_) => "write_status",
            Self::Database(e) => e.label(),
        }
    }
}

/// What the views of a dataset should be, or why they cannot be.
enum Plan {
    /// Not in a table: nothing to do here.
    NotInATable,
    NoDataPlane,
    Refused {
        reason: &'static str,
        message: String,
    },
    Views {
        statements: Vec<String>,
        digest: String,
    },
}

async fn plan(ds: &PublicDataset, db: Option<&database::Database>) -> Result<Plan, Error> {
    let Some(table) = &ds.spec.table else {
        return Ok(Plan::NotInATable);
    };
    let Some(db) = db else {
        return Ok(Plan::NoDataPlane);
    };
    let columns = db
        .columns(&table.schema, &table.name)
        .await
        .map_err(Error::Database)?;
    if columns.is_empty() {
        return Ok(Plan::Refused {
            reason: "TableNotFound",
            message: format!(
                "no table {}.{} that the operator's role can read: check the name, and that the role may select it with grant option",
                table.schema, table.name
            ),
        });
    }
    Ok(
        match sql::views(&ds.name_any(), table, &ds.spec.fields, &columns) {
            Err(problem) => Plan::Refused {
                reason: "CatalogDoesNotFitTable",
                message: problem.to_string(),
            },
            Ok(statements) => {
                // The column types are part of the digest: a column retyped
                // in the table makes the views again.
                let mut hash = Sha256::new();
                for s in &statements {
                    hash.update(s.as_bytes());
                }
                for c in &columns {
                    hash.update(format!("{}:{}", c.name, c.data_type).as_bytes());
                }
                Plan::Views {
                    statements,
                    digest: format!("publicdata-operator views {}", hex::encode(hash.finalize())),
                }
            }
        },
    )
}

#[instrument(skip_all, fields(dataset = %ds.name_any()))]
pub async fn reconcile(ds: Arc<PublicDataset>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = ds.name_any();
    let plane = ctx.database.as_deref();
    let desired = match plan(&ds, plane.map(|p| &p.raw)).await? {
        Plan::NotInATable => return Ok(Action::await_change()),
        Plan::NoDataPlane => Desired::new(
            DATA_READY,
            false,
            "NoDataPlane",
            "the dataset lives in a PostgreSQL table, and the operator has no database configured (chart values database.*): no view, no grant",
        ),
        Plan::Refused { reason, message } => Desired::new(DATA_READY, false, reason, message),
        Plan::Views { statements, digest } => {
            let Some(plane) = plane else {
                return Ok(Action::await_change());
            };
            let db = &plane.raw;
            db.prepare().await.map_err(Error::Database)?;
            if db
                .views_digest(&name)
                .await
                .map_err(Error::Database)?
                .as_deref()
                != Some(&digest)
            {
                db.make_views(&name, &statements, &digest)
                    .await
                    .map_err(Error::Database)?;
                super::publish(
                    &ctx.recorder,
                    ds.as_ref(),
                    EventType::Normal,
                    "ViewsMade",
                    "Reconcile",
                    &format!(
                        "masked view {}.{name} and dev's sample {}.{name} made for the catalog entry",
                        database::MASKED_SCHEMA,
                        database::SAMPLE_SCHEMA
                    ),
                )
                .await;
            }
            // Dev's sample lives in a database of its own: copied there
            // from the view whenever the view's rows or shape changed.
            if plane
                .sync_sample(&name, &digest)
                .await
                .map_err(Error::Database)?
            {
                super::publish(
                    &ctx.recorder,
                    ds.as_ref(),
                    EventType::Normal,
                    "SampleCopied",
                    "Reconcile",
                    &format!(
                        "dev's sample {}.{name} copied to the samples database",
                        database::SAMPLE_SCHEMA
                    ),
                )
                .await;
            }
            let table = ds
                .spec
                .table
                .as_ref()
                .map(|t| (t.schema.as_str(), t.name.as_str(), t.sample_percent));
            let (schema, table, percent) = table.unwrap_or_default();
            Desired::new(
                DATA_READY,
                true,
                "ViewsMade",
                format!(
                    "{schema}.{table}: masked view {}.\"{name}\", dev's sample {}.\"{name}\" ({percent}% of the rows) in the samples database",
                    database::MASKED_SCHEMA,
                    database::SAMPLE_SCHEMA
                ),
            )
        }
    };
    let current = ds.status.clone().unwrap_or_default();
    let was = current
        .conditions
        .iter()
        .find(|c| c.type_ == DATA_READY)
        .map(|c| (c.status.clone(), c.message.clone()));
    if !desired.ok && was != Some(("False".into(), desired.message.clone())) {
        super::publish(
            &ctx.recorder,
            ds.as_ref(),
            EventType::Warning,
            desired.reason,
            "Reconcile",
            &desired.message,
        )
        .await;
    }
    let next = PublicDatasetStatus {
        observed_generation: ds.metadata.generation,
        conditions: condition::merge(
            &current.conditions,
            &[desired],
            ds.metadata.generation,
            &Time(jiff::Timestamp::now()),
        ),
    };
    if next != current {
        super::apply_status(&Api::<PublicDataset>::all(ctx.client.clone()), &name, &next)
            .await
            .map_err(Error::WriteStatus)?;
        ctx.metrics.wrote("kubernetes", 1);
    }
    // The table can change under the catalog (a column dropped or retyped):
    // look again every resync.
    Ok(Action::requeue(ctx.settings.resync))
}

fn error_policy(_ds: Arc<PublicDataset>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(error = %error, label = error.label(), "dataset reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the dataset controller until shutdown.
pub async fn run(ctx: Arc<Context>) {
    Controller::new(
        Api::<PublicDataset>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        if let Err(e) = result {
            warn!(error = %e, "dataset controller");
        }
    })
    .await;
}
