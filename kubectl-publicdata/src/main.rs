//! `kubectl publicdata`: the bureau's tool. It changes an authorization's
//! state or validity with the bureau's decision, says first what will change
//! (and for a revocation or termination what will be wiped and what kept),
//! and shows a tenant on one screen. It acts with the caller's own kubeconfig
//! identity and never escalates; admission refusals are explained in plain
//! words with what to do next.
#![forbid(unsafe_code)]

mod audit;
mod decide;
mod explain;
mod state;
mod status;
mod trace;
mod workloads;

use std::io::Write;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

/// The bureau's kubectl plugin for public data authorized operation.
#[derive(Parser, Debug)]
#[command(name = "kubectl-publicdata", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Act as this user (as `kubectl --as`); the cluster must allow you to.
    #[arg(long = "as", global = true)]
    as_user: Option<String>,
    /// Act with these groups (as `kubectl --as-group`).
    #[arg(long = "as-group", global = true)]
    as_groups: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Suspend a unit: its domain is frozen at once.
    Suspend(state::Change),
    /// Resume a suspended unit.
    Resume(state::Change),
    /// Revoke an authorization: the domain is wiped, the records kept. Final.
    Revoke(state::Change),
    /// Terminate an authorization (the unit's exit): wiped, records kept. Final.
    Terminate(state::Change),
    /// Set a new end of the validity, under a decision (a renewal).
    Renew(state::Renewal),
    /// Record your party's approval of a scenario's list, after seeing it
    /// and its digest (`approve scenario NS/NAME --party bureau|agency:ID`).
    Approve(decide::Approval),
    /// Record the bureau's decision on an export or on a unit's early exit,
    /// after seeing what it decides on.
    Decide {
        #[command(subcommand)]
        what: decide::Decision,
    },
    /// Record the bureau's evaluation of a unit's annual report, after
    /// seeing it (`evaluate report NS/NAME passed|rectification|failed`, R-19).
    Evaluate(decide::ReportEvaluation),
    /// One screen for a tenant: phase, conditions, namespaces, members,
    /// scenarios, exports, what is frozen, days until expiry.
    Status {
        /// The authorization (tenant id).
        name: String,
        /// Output: a readable tree (default), json or yaml.
        #[arg(short = 'o', long, default_value = "tree", value_parser = ["tree", "json", "yaml"])]
        output: String,
    },
    /// A tenant's prod workloads as members see them: kind, name, ready and
    /// desired replicas, phase, restarts and reason codes, from the
    /// operator's summary (members read no pod, event or log in prod).
    Workloads {
        /// The authorization (tenant id).
        name: String,
        /// Output: a table (default) or json.
        #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "json"])]
        output: String,
    },
    /// The operator's audit log: verify its chain, read a tenant's records,
    /// or keep a copy.
    Audit {
        #[command(subcommand)]
        command: audit::Audit,
    },
    /// Name the delivery a file found outside came from: its export,
    /// recipient and date, from the fingerprint every delivered table
    /// carries, or say why it cannot. Exits 3 when no delivery is named.
    Trace(trace::Args),
    /// Shell completion.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

async fn client(cli: &Cli) -> Result<kube::Client> {
    let mut config = kube::Config::infer().await?;
    if let Some(user) = &cli.as_user {
        config.auth_info.impersonate = Some(user.clone());
        config.auth_info.impersonate_groups = Some(cli.as_groups.clone());
    }
    Ok(kube::Client::try_from(config)?)
}

/// Who the caller is, as they asked to act (for plain-words refusals).
fn caller(cli: &Cli) -> String {
    cli.as_user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "you".into())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Command::Completion { shell } = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "kubectl-publicdata",
            &mut std::io::stdout(),
        );
        return;
    }
    let result = run(&cli).await;
    let _ = std::io::stdout().flush();
    if let Err(e) = result {
        if let Some(not_traced) = e.downcast_ref::<trace::NotTraced>() {
            eprintln!("{not_traced}");
            std::process::exit(3);
        }
        eprintln!("{}", explain::error(&e, &caller(&cli)));
        std::process::exit(1);
    }
}

async fn run(cli: &Cli) -> Result<()> {
    if let Command::Audit { command, .. } = &cli.command
        && let Some(done) = audit::local(command)
    {
        return done;
    }
    let client = client(cli).await?;
    match &cli.command {
        Command::Suspend(c) => state::change(&client, c, "Suspended").await,
        Command::Resume(c) => state::change(&client, c, "Active").await,
        Command::Revoke(c) => state::change(&client, c, "Revoked").await,
        Command::Terminate(c) => state::change(&client, c, "Terminated").await,
        Command::Renew(r) => state::renew(&client, r).await,
        Command::Approve(a) => decide::approve(&client, a).await,
        Command::Decide {
            what: decide::Decision::Export(d),
        } => decide::decide_export(&client, d).await,
        Command::Decide {
            what: decide::Decision::Exit(d),
        } => decide::decide_exit(&client, d).await,
        Command::Decide {
            what: decide::Decision::Renewal(d),
        } => decide::decide_renewal(&client, d).await,
        Command::Evaluate(e) => decide::evaluate_report(&client, e).await,
        Command::Status { name, output } => status::show(&client, name, output).await,
        Command::Workloads { name, output } => workloads::show(&client, name, output).await,
        Command::Audit { command } => audit::run(&client, command).await,
        Command::Trace(t) => trace::run(&client, t).await,
        Command::Completion { .. } => Ok(()),
    }
}
