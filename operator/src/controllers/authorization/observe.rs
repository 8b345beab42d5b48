//! Observe: the facts a decision needs, read from the API server as it is
//! now. Nothing here writes.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::Error;
use super::decide::{Ownership, integrity, ownership};
use crate::api::authorization::{Environment, OperatorAuthorization, OperatorAuthorizationStatus};
use k8s_openapi::NamespaceResourceScope;
use kube::core::object::HasSpec;
use serde::de::DeserializeOwned;

use crate::api::Filed;
use crate::api::exit::ExitRequest;
use crate::api::renewal::RenewalRequest;
use crate::api::report::{AnnualReport, AnnualReportSpec};
use crate::context::Context;
use crate::early_exit;
use crate::naming::namespace_name;

/// What the reconciler saw.
#[derive(Debug, Clone)]
pub struct Observed {
    pub oa: OperatorAuthorization,
    pub status: OperatorAuthorizationStatus,
    pub today: Date,
    pub now: Timestamp,
    /// Each environment's namespace and whose it is.
    pub namespaces: Vec<(String, Ownership)>,
    /// The unit's annual reports (in its dev namespace), by name.
    pub reports: Vec<(String, AnnualReportSpec)>,
    /// The unit's early exit requests (in its dev namespace).
    pub exits: Vec<early_exit::Filed>,
    /// The unit's renewal applications (in its dev namespace).
    pub renewals: Vec<super::decide::RenewalFiled>,
    /// The early exit the bureau accepted: from the requests, or, once its
    /// offboarding took the namespaces, from the status.
    pub exit: Option<early_exit::Accepted>,
    /// What the status claimed that this authorization's audit chain does not
    /// back (`status` has those claims taken back): someone else wrote it.
    pub forged: Vec<String>,
}

/// Reads the facts about one authorization.
pub async fn observe(ctx: &Context, oa: &OperatorAuthorization) -> Result<Observed, Error> {
    let (today, now) = crate::clock::of(oa);
    let tenant = oa.name_any();
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let mut envs = oa.spec.environments.clone();
    envs.sort();
    envs.dedup();
    // Every read at once: a freeze is decided on them, and waits for the slowest only.
    let tenant_ref = &tenant;
    let namespaces = futures::future::try_join_all(envs.into_iter().map(|env| {
        let (api, name) = (api.clone(), namespace_name(tenant_ref, env));
        async move {
            let found = api.get_opt(&name).await.map_err(|source| Error::Apply {
                kind: "Namespace",
                name: name.clone(),
                source,
            })?;
            let owner = ownership(found.as_ref(), tenant_ref, &oa.spec.unit.credit_code);
            Ok::<_, Error>((name, owner))
        }
    }));
    let dev = namespace_name(&tenant, Environment::Dev);
    let (namespaces, reports, exits, renewals) = futures::try_join!(
        namespaces,
        filed::<AnnualReport>(ctx, &dev, "AnnualReport", today),
        filed::<ExitRequest>(ctx, &dev, "ExitRequest", today),
        filed::<RenewalRequest>(ctx, &dev, "RenewalRequest", today),
    )?;
    let reports = reports.into_iter().map(|f| (f.name, f.spec)).collect();
    // Irreversible steps are taken from the spec and the audit chain, never
    // from a status someone else could have written.
    let read = oa.status.clone().unwrap_or_default();
    let (status, forged) = if integrity::must_check(&read, &oa.spec.validity, today) {
        let chain = integrity::Chain::from_trail(&super::report::trail_of(ctx, oa).await?);
        integrity::verify(&read, &oa.spec.validity, &chain)
    } else {
        (read, Vec::new())
    };
    let exit = early_exit::accepted(&exits).or_else(|| status.early_exit.clone());
    Ok(Observed {
        oa: oa.clone(),
        reports,
        exits,
        renewals,
        exit,
        status,
        today,
        now,
        namespaces,
        forged,
    })
}

/// What the unit filed of kind `K` in namespace `ns`, with the day each was
/// filed (its creation, in UTC).
async fn filed<K>(
    ctx: &Context,
    ns: &str,
    kind: &'static str,
    today: Date,
) -> Result<Vec<Filed<K::Spec>>, Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + HasSpec
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::Spec: Clone,
{
    let list = Api::<K>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Apply {
            kind,
            name: ns.into(),
            source,
        })?;
    Ok(list
        .into_iter()
        .map(|r| Filed {
            name: r.name_any(),
            filed: r
                .meta()
                .creation_timestamp
                .as_ref()
                .map_or(today, |t| t.0.to_zoned(TimeZone::UTC).date()),
            spec: r.spec().clone(),
        })
        .collect())
}
