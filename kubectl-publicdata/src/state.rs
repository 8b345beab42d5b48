//! Changing an authorization's state or validity: say what will change,
//! confirm, patch (or server-side dry run).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use kube::Api;
use kube::api::{Patch, PatchParams};
use publicdata_operator::api::OperatorAuthorization;
use serde_json::json;

/// A change of state, under the bureau's decision.
#[derive(clap::Args, Debug)]
pub struct Change {
    /// The authorization (tenant id).
    pub name: String,
    /// Why (the breach found, the request granted...).
    #[arg(long)]
    pub reason: String,
    /// The reference of the bureau's decision.
    #[arg(long)]
    pub decision: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Ask the API server to check the change without making it.
    #[arg(long)]
    pub dry_run: bool,
}

/// A new end of the validity, under the bureau's decision.
#[derive(clap::Args, Debug)]
pub struct Renewal {
    /// The authorization (tenant id).
    pub name: String,
    /// The new last day in force (YYYY-MM-DD), within the current term: at
    /// most 5 years after its start. A unit's renewal application starts a new
    /// term: `decide renewal`.
    #[arg(long)]
    pub not_after: jiff::civil::Date,
    /// The reference of the bureau's decision.
    #[arg(long)]
    pub decision: String,
    /// Why.
    #[arg(long, default_value = "renewal approved by the bureau")]
    pub reason: String,
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[arg(long)]
    pub dry_run: bool,
}

/// What a new state does, in the words of the rules.
fn effect(oa: &OperatorAuthorization, target: &str) -> String {
    let name = oa.metadata.name.clone().unwrap_or_default();
    let namespaces = oa
        .status
        .as_ref()
        .map(|s| s.namespaces.join(", "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{name}-dev, {name}-prod"));
    match target {
        "Suspended" => "the domain freezes at once: member access and network paths removed, \
             workloads stopped, OpenBao logins and tokens revoked. Nothing is deleted; resume \
             restores it."
            .into(),
        "Active" => {
            "member access, network paths, workloads and OpenBao logins are restored.".into()
        }
        _ => format!(
            "FINAL, it cannot be undone.\n  will be wiped: namespaces {namespaces} (workloads, \
             data volumes, secrets), the OpenBao area tenants/{name} with its policies and logins\n  \
             will be kept: the audit log, the key records and operation logs locked in the \
             records store for 20 years, the archive in publicdata-archive, log volumes for at \
             least 6 months, this authorization with its disposal certificate"
        ),
    }
}

/// Asks on the terminal; a final change needs the name typed back.
pub(crate) fn confirm(prompt: &str, expect: Option<&str>) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("not confirmed: there is no terminal to ask on; add --yes to proceed");
    }
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let answer = line.trim();
    let ok = match expect {
        Some(name) => answer == name,
        None => matches!(answer, "y" | "Y" | "yes"),
    };
    if !ok {
        bail!("not confirmed: nothing changed");
    }
    Ok(())
}

/// The field manager of the bureau's changes: GitOps tools can ignore its
/// fields by name (docs/gitops.md).
pub const FIELD_MANAGER: &str = "kubectl-publicdata";

pub(crate) fn params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// Sets the state, with reason and decision.
pub async fn change(client: &kube::Client, c: &Change, target: &str) -> Result<()> {
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let oa = api.get(&c.name).await?;
    let current = format!("{:?}", oa.spec.state);
    if current == target {
        println!("{}: already {target}; nothing to change", c.name);
        return Ok(());
    }
    let unit = &oa.spec.unit.name;
    println!(
        "authorization {} ({unit}): state {current} -> {target}",
        c.name
    );
    println!("  reason: {}\n  decision: {}", c.reason, c.decision);
    println!("  effect: {}", effect(&oa, target));
    if !c.yes && !c.dry_run {
        let final_ = matches!(target, "Revoked" | "Terminated");
        if final_ {
            confirm(
                &format!("Type the authorization's name ({}) to confirm: ", c.name),
                Some(&c.name),
            )?;
        } else {
            confirm("Proceed? [y/N] ", None)?;
        }
    }
    let patch = json!({"spec": {"state": target, "stateChange": {"reason": c.reason, "decision": c.decision}}});
    api.patch(&c.name, &params(c.dry_run), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("setting {} to {target}", c.name))?;
    done(
        &c.name,
        c.dry_run,
        &format!("state {target} (decision {})", c.decision),
    );
    Ok(())
}

/// Sets a new end of the validity, with reason and decision.
pub async fn renew(client: &kube::Client, r: &Renewal) -> Result<()> {
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    let oa = api.get(&r.name).await?;
    let v = &oa.spec.validity;
    println!(
        "authorization {} ({}): validity {} .. {} -> {} .. {}",
        r.name, oa.spec.unit.name, v.not_before, v.not_after, v.not_before, r.not_after
    );
    println!("  reason: {}\n  decision: {}", r.reason, r.decision);
    if !r.yes && !r.dry_run {
        confirm("Proceed? [y/N] ", None)?;
    }
    let patch = json!({"spec": {"validity": {"notAfter": r.not_after.to_string()},
        "validityChange": {"reason": r.reason, "decision": r.decision}}});
    api.patch(&r.name, &params(r.dry_run), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("renewing {}", r.name))?;
    done(
        &r.name,
        r.dry_run,
        &format!("in force until {} (decision {})", r.not_after, r.decision),
    );
    Ok(())
}

fn done(name: &str, dry_run: bool, what: &str) {
    if dry_run {
        println!("server-side dry run: the API server accepts it; nothing changed");
    } else {
        println!("done: {name} {what}; follow it with `kubectl publicdata status {name}`");
    }
}
