//! GitOps that cannot fight the bureau, played as a GitOps controller does
//! it: server-side apply of the unit's terms from Git under its own field
//! manager. The bureau's state survives every re-sync; Git cannot set one.

use anyhow::{Result, bail, ensure};
use e2e::{TestBed, authorization, unique};
use kube::Api;
use kube::api::{Patch, PatchParams};
use publicdata_operator::api::OperatorAuthorization;

const GITOPS: &str = "argocd-controller";

async fn sync(
    api: &Api<OperatorAuthorization>,
    name: &str,
    manifest: &serde_json::Value,
    force: bool,
) -> Result<(), kube::Error> {
    let mut params = PatchParams::apply(GITOPS);
    params.force = force;
    api.patch(name, &params, &Patch::Apply(manifest))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_git_sync_keeps_the_terms_never_reverts_the_bureaus_state_and_cannot_set_one()
-> Result<()> {
    let bed = TestBed::from_env()?;
    bed.require_operator()?;
    // The GitOps controller: a cluster admin's rights, outside the bureau.
    let gitops = bed
        .client_as(
            "system:serviceaccount:argocd:argocd-application-controller",
            &["system:masters"],
        )
        .await?;
    let api: Api<OperatorAuthorization> = Api::all(gitops);
    let t = unique("git");
    let manifest = authorization(&t, &[("fay", true)])?;
    sync(&api, &t, &manifest, false).await?;
    bed.wait_ready(&t).await?;

    // The bureau suspends.
    bed.set_state(&t, "Suspended").await?;
    let admin: Api<OperatorAuthorization> = Api::all(bed.client().await?);
    e2e::wait_phase(&admin, &t, "Suspended").await?;

    // The same Git content again, and a Git change of the terms: no conflict,
    // and the state stays the bureau's.
    sync(&api, &t, &manifest, false).await?;
    let mut edited = manifest.clone();
    edited["spec"]["securityOfficer"]["contact"] = "security@harbor-analytics.example".into();
    sync(&api, &t, &edited, false).await?;
    let oa = admin.get(&t).await?;
    ensure!(
        format!("{:?}", oa.spec.state) == "Suspended",
        "a Git sync reverted the bureau's state"
    );
    ensure!(
        oa.spec.security_officer.contact.as_deref() == Some("security@harbor-analytics.example"),
        "the terms follow Git"
    );

    // Git trying to set the state: without force, a conflict with the
    // bureau's field manager; with force, refused by admission, saying why.
    let mut resume = edited.clone();
    resume["spec"]["state"] = "Active".into();
    match sync(&api, &t, &resume, false).await {
        Err(kube::Error::Api(s)) if s.code == 409 && s.message.contains("spec.state") => {}
        other => bail!("a Git state change without force must conflict: {other:?}"),
    }
    match sync(&api, &t, &resume, true).await {
        Err(kube::Error::Api(s))
            if s.message
                .contains("a change of spec.state needs spec.stateChange") => {}
        other => bail!("a forced Git state change without a decision must be refused: {other:?}"),
    }
    // Even with a decision written into Git: only the bureau changes the state.
    resume["spec"]["stateChange"] = serde_json::json!({"reason": "from Git", "decision": "GIT-1"});
    match sync(&api, &t, &resume, true).await {
        Err(kube::Error::Api(s))
            if s.message
                .contains("only the bureau (group publicdata:bureau) changes spec.state") => {}
        other => bail!("a forced Git state change must be refused by admission: {other:?}"),
    }
    let oa = admin.get(&t).await?;
    ensure!(format!("{:?}", oa.spec.state) == "Suspended");
    bed.set_state(&t, "Revoked").await?;
    Ok(())
}
