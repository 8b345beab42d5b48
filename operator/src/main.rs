//! The publicdata operator: wires the client, the secrets backend and the
//! controllers together.
#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Parser;
use kube::api::{Api, ListParams};
use kube::runtime::events::Reporter;
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::controllers::authorization::{self, Context, Settings};
use publicdata_operator::controllers::tenant::Egress;
use publicdata_operator::telemetry::{self, Health, Metrics};
use publicdata_operator::vault::{KubernetesAuthConfig, OpenBao};

/// Kubernetes operator for public data authorized operation.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Args,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
enum AuditCommand {
    /// Verify the hash chain; report the first record edited, removed or reordered.
    Verify {
        /// The audit log file.
        file: std::path::PathBuf,
    },
}

/// Run the operator (the default command).
#[derive(clap::Args, Debug)]
struct Args {
    /// OpenBao/Vault address.
    #[arg(long, env = "VAULT_ADDR", required = false, default_value = "")]
    vault_addr: String,
    /// OpenBao/Vault token of the operator (its policy: charts/publicdata-operator/files/openbao-operator-policy.hcl).
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true, default_value = "")]
    vault_token: String,
    /// The Kubernetes API server URL as OpenBao reaches it (tenant auth mounts review tokens there).
    #[arg(
        long,
        env = "VAULT_K8S_HOST",
        default_value = "https://kubernetes.default.svc"
    )]
    vault_k8s_host: String,
    /// CA bundle of that API server.
    #[arg(
        long,
        env = "VAULT_K8S_CA_FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    vault_k8s_ca_file: std::path::PathBuf,
    /// A token OpenBao uses to call TokenReview (ServiceAccount bound to system:auth-delegator).
    #[arg(long, env = "VAULT_K8S_REVIEWER_JWT_FILE")]
    vault_k8s_reviewer_jwt_file: Option<std::path::PathBuf>,
    /// Audience workload tokens must carry to log in to OpenBao.
    #[arg(long, env = "VAULT_AUDIENCE", default_value = "openbao")]
    vault_audience: String,
    /// CIDRs (comma-separated) where tenant workloads reach OpenBao: the
    /// addresses behind its Service, as a NetworkPolicy sees them. Empty: no
    /// workload can reach OpenBao.
    #[arg(
        long,
        env = "WORKLOAD_OPENBAO_CIDRS",
        value_delimiter = ',',
        default_value = ""
    )]
    workload_openbao_cidrs: Vec<String>,
    /// The port OpenBao listens on at those addresses.
    #[arg(long, env = "WORKLOAD_OPENBAO_PORT", default_value_t = 8200)]
    workload_openbao_port: u16,
    /// The audit log (JSON lines, hash-chained, append-only). Put it on a volume.
    #[arg(
        long,
        env = "AUDIT_LOG",
        default_value = "/var/lib/publicdata-operator/audit.log"
    )]
    audit_log: std::path::PathBuf,
    /// Address of the admin server: /metrics, /livez, /readyz.
    #[arg(long, env = "ADMIN_ADDR", default_value = "127.0.0.1:8080")]
    admin_addr: std::net::SocketAddr,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    log_format: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Audit {
            command: AuditCommand::Verify { file },
        }) => match publicdata_operator::audit::verify_file(&file) {
            Ok(n) => {
                println!("{}: {n} records, chain intact", file.display());
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(cli.run)),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.vault_addr.is_empty() || args.vault_token.is_empty() {
        bail!("--vault-addr and --vault-token (or VAULT_ADDR and VAULT_TOKEN) are required");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube=warn,vaultrs=off,rustify=off")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if args.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }

    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    // The operator does not install its own CRDs: check they are there.
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    if let Err(e) = api.list(&ListParams::default().limit(1)).await {
        bail!(
            "cannot list OperatorAuthorizations ({e}); are the CRDs installed? kubectl apply --server-side -f crds/"
        );
    }
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let reviewer = args
        .vault_k8s_reviewer_jwt_file
        .as_deref()
        .context("--vault-k8s-reviewer-jwt-file (VAULT_K8S_REVIEWER_JWT_FILE) is required")?;
    let kubernetes = KubernetesAuthConfig {
        host: args.vault_k8s_host.clone(),
        ca_cert: read(&args.vault_k8s_ca_file)?,
        reviewer_jwt: read(reviewer)?.trim().to_string(),
    };
    let vault = OpenBao::new(&args.vault_addr, &args.vault_token, kubernetes)?;
    let audit = publicdata_operator::audit::FileSink::open(&args.audit_log)
        .with_context(|| format!("opening the audit log {}", args.audit_log.display()))?;
    let ctx = Arc::new(Context {
        client,
        vault: Arc::new(vault),
        settings: Settings {
            vault_audience: args.vault_audience,
            egress: Egress {
                openbao_cidrs: args
                    .workload_openbao_cidrs
                    .into_iter()
                    .filter(|c| !c.trim().is_empty())
                    .collect(),
                openbao_port: args.workload_openbao_port,
            },
        },
        reporter: Reporter {
            controller: "publicdata-operator".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
        metrics: Arc::new(Metrics::default()),
        health: Arc::new(Health::default()),
        failures: Default::default(),
        audit: Arc::new(audit),
    });
    let admin = tokio::spawn(telemetry::serve(
        args.admin_addr,
        ctx.metrics.clone(),
        ctx.health.clone(),
    ));
    tracing::info!("publicdata-operator {} starting", env!("CARGO_PKG_VERSION"));
    tokio::select! {
        _ = futures::future::join3(
            authorization::run(ctx.clone()),
            publicdata_operator::controllers::scenario::run(ctx.clone()),
            publicdata_operator::controllers::export::run(ctx),
        ) => Ok(()),
        served = admin => match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("admin server on {}: {e}", args.admin_addr)),
            Err(e) => Err(anyhow::anyhow!("admin server task: {e}")),
        },
    }
}
