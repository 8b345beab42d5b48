//! The publicdata operator: wires the client, the secrets backend and the
//! controllers together.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context as _, bail};
use clap::Parser;
use kube::api::{Api, ListParams};
use kube::runtime::events::Reporter;
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::audit;
use publicdata_operator::audit::checkpointer;
use publicdata_operator::audit::{FileSink, Sink};
use publicdata_operator::context::{Context, Settings};
use publicdata_operator::controllers::authorization;
use publicdata_operator::controllers::tenant::Platform;
use publicdata_operator::leader;
use publicdata_operator::oplog;
use publicdata_operator::telemetry::{self, Health, Metrics};
use publicdata_operator::vault::login::{self, Login, Reviewer};
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
    /// Scan data products as the export review will, before filing an export
    /// request: personal data and unreadable parts, by kind and place, never
    /// the values. Exits 1 if anything is found. (The review also looks for
    /// the catalog's sensitive values, which only the operator can read.)
    Scan {
        /// The files to scan.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
}

#[derive(clap::Subcommand, Debug)]
enum AuditCommand {
    /// Verify the hash chain; report the first record edited, removed or
    /// reordered; with an anchor, also records cut off the end and a rewrite
    /// re-hashed to the end.
    Verify {
        /// The audit log file (default: the operator's own, AUDIT_LOG).
        #[arg(env = "AUDIT_LOG", default_value = DEFAULT_AUDIT_LOG)]
        file: std::path::PathBuf,
        /// The anchor to check it against (JSON, as `audit anchor` prints it).
        #[arg(long)]
        anchor: Option<std::path::PathBuf>,
    },
    /// Print the audit log's latest signed checkpoint and the public keys to
    /// check it with (JSON), as OpenBao holds them, read with the operator's
    /// own login: what the log is verified against.
    Anchor {
        #[command(flatten)]
        openbao: OpenBaoArgs,
    },
    /// Print the operator's own audit log (AUDIT_LOG) as it is, for
    /// `kubectl publicdata audit` to verify and read where it runs. Takes no
    /// path: run in the operator's container, it reads that log and nothing else.
    Cat,
}

/// Where the audit log is, in the operator's image and chart.
const DEFAULT_AUDIT_LOG: &str = "/var/lib/publicdata-operator/audit.log";

/// How the operator reaches and logs in to OpenBao.
#[derive(clap::Args, Debug)]
struct OpenBaoArgs {
    /// OpenBao/Vault address.
    #[arg(long, env = "VAULT_ADDR", required = false, default_value = "")]
    vault_addr: String,
    /// OpenBao/Vault token of the operator, for local runs (its policy:
    /// charts/publicdata-operator/files/openbao-operator-policy.hcl). In a
    /// cluster, log in with the ServiceAccount instead (--vault-login-role).
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true, default_value = "")]
    vault_token: String,
    /// Log in through this Kubernetes auth mount of OpenBao...
    #[arg(long, env = "VAULT_LOGIN_MOUNT", default_value = "kubernetes")]
    vault_login_mount: String,
    /// ...as this role (bound to the operator's ServiceAccount)...
    #[arg(long, env = "VAULT_LOGIN_ROLE")]
    vault_login_role: Option<String>,
    /// ...with the ServiceAccount token in this file (projected, refreshed by the kubelet).
    #[arg(
        long,
        env = "VAULT_LOGIN_JWT_FILE",
        default_value = "/var/run/secrets/openbao/token"
    )]
    vault_login_jwt_file: std::path::PathBuf,
    /// PEM file of the CA that signed OpenBao's TLS certificate (default: the system's CAs).
    #[arg(long, env = "VAULT_CACERT")]
    vault_cacert: Option<std::path::PathBuf>,
}

impl OpenBaoArgs {
    fn login(&self) -> anyhow::Result<Login> {
        Ok(
            match (&self.vault_login_role, self.vault_token.is_empty()) {
                (Some(role), _) => Login::Kubernetes {
                    mount: self.vault_login_mount.clone(),
                    role: role.clone(),
                    jwt_file: self.vault_login_jwt_file.clone(),
                },
                (None, false) => Login::Token(self.vault_token.clone()),
                (None, true) => bail!(
                    "no way to log in to OpenBao: set --vault-login-role (VAULT_LOGIN_ROLE) to log \
                 in with the ServiceAccount, or --vault-token (VAULT_TOKEN) for a local run"
                ),
            },
        )
    }
}

/// Run the operator (the default command).
#[derive(clap::Args, Debug)]
struct Args {
    /// How long a domain whose validity passed stays frozen before it is
    /// offboarded, unless the bureau renews it first, e.g. `30d`, `12h`.
    /// Only an end the bureau itself set is ever acted on.
    #[arg(long, env = "EXPIRY_GRACE", default_value = "30d", value_parser = parse_duration)]
    expiry_grace: std::time::Duration,
    /// How many authorizations the work queue reconciles at once. A burst of
    /// new tenants waits in the queue, not in the API server; a suspension
    /// or revocation never waits (it has its own lane).
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// How often an unchanged authorization is looked at again (OpenBao
    /// drift is found then; Kubernetes objects are watched), e.g. `5m`.
    #[arg(long, env = "RESYNC", default_value = "5m", value_parser = parse_duration)]
    resync: std::time::Duration,
    /// How long a member's security training counts, in days (R-16: trained
    /// before the job and again periodically). From the day after, the member
    /// has no access until the bureau records a newer training.
    #[arg(long, env = "TRAINING_VALID_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    training_valid_days: u32,
    #[command(flatten)]
    openbao: OpenBaoArgs,
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
    /// A token OpenBao uses to call TokenReview for tenant logins (a
    /// ServiceAccount bound to system:auth-delegator), in a file re-read as it rotates...
    #[arg(long, env = "VAULT_K8S_REVIEWER_JWT_FILE")]
    vault_k8s_reviewer_jwt_file: Option<std::path::PathBuf>,
    /// ...or requested for this ServiceAccount of the operator's namespace
    /// (TokenRequest API) and renewed before it expires.
    #[arg(long, env = "VAULT_K8S_REVIEWER_SERVICE_ACCOUNT")]
    vault_k8s_reviewer_service_account: Option<String>,
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
    #[arg(long, env = "AUDIT_LOG", default_value = DEFAULT_AUDIT_LOG)]
    audit_log: std::path::PathBuf,
    /// How often the checkpointer looks whether the audit log moved; it signs
    /// and stores a checkpoint of the head only when it did.
    #[arg(long, env = "AUDIT_CHECKPOINT_EVERY", default_value = "2s", value_parser = parse_duration)]
    audit_checkpoint_every: std::time::Duration,
    /// The records store: an S3 endpoint with Object Lock, where key records
    /// of offboarded authorizations are written, locked in compliance mode for
    /// 20 years. Unset: offboardings stop before the wipe and say so.
    #[arg(long, env = "RECORDS_S3_ENDPOINT")]
    records_s3_endpoint: Option<String>,
    /// Its bucket (created with Object Lock enabled).
    #[arg(long, env = "RECORDS_S3_BUCKET", default_value = "publicdata-records")]
    records_s3_bucket: String,
    /// Its region.
    #[arg(long, env = "RECORDS_S3_REGION", default_value = "us-east-1")]
    records_s3_region: String,
    /// The access key...
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true,
        default_value = ""
    )]
    records_s3_access_key: String,
    /// ...and its secret.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    records_s3_secret_key: String,
    /// Address of the public register of authorized units (HTML at `/`,
    /// JSON at `/register.json`); unset: not served.
    #[arg(long, env = "REGISTER_ADDR")]
    register_addr: Option<std::net::SocketAddr>,
    /// Address of the intake of operation logs: the API server's audit
    /// webhook posts to `/v1/kubernetes`, OpenBao's `http` audit device to
    /// `/v1/openbao`. Each tenant's share goes to the records store. Unset:
    /// not served.
    #[arg(long, env = "OPLOG_ADDR")]
    oplog_addr: Option<std::net::SocketAddr>,
    /// The intake's serving certificate and key (PEM). Without them it
    /// serves plain HTTP, over which the API server sends no token.
    #[arg(long, env = "OPLOG_TLS_CERT", requires = "oplog_tls_key")]
    oplog_tls_cert: Option<std::path::PathBuf>,
    #[arg(long, env = "OPLOG_TLS_KEY", requires = "oplog_tls_cert")]
    oplog_tls_key: Option<std::path::PathBuf>,
    /// The bearer token both senders present.
    #[arg(long, env = "OPLOG_TOKEN", hide_env_values = true, default_value = "")]
    oplog_token: String,
    /// How often each tenant's share of the operation logs is written to
    /// the records store (one object per tenant and source).
    #[arg(long, env = "OPLOG_FLUSH_EVERY", default_value = "10s", value_parser = parse_duration)]
    oplog_flush_every: std::time::Duration,
    /// Address of the admin server: /metrics, /livez, /readyz.
    #[arg(long, env = "ADMIN_ADDR", default_value = "127.0.0.1:8080")]
    admin_addr: std::net::SocketAddr,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Run only while holding the Lease (one active replica of several).
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "publicdata-operator")]
    lease_name: String,
    /// Seconds a leader's lock is valid after its last renewal.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration: u64,
    /// Seconds before expiry at which the leader renews.
    #[arg(long, env = "LEASE_RENEW_GRACE_SECONDS", default_value_t = 5)]
    lease_renew_grace: u64,
    /// The operator's namespace (the Lease and the reviewer ServiceAccount live there).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// This replica's name (its identity in the Lease).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// The operator's ServiceAccount, when it runs in the cluster: bound in
    /// each tenant namespace to read its Secrets for the offboarding inventory.
    #[arg(long, env = "OPERATOR_SERVICE_ACCOUNT")]
    service_account: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Audit {
            command: AuditCommand::Verify { file, anchor },
        }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let anchor = anchor
                .map(|path| {
                    audit::anchor::Anchor::from_file(&path)
                        .with_context(|| format!("reading the anchor {}", path.display()))
                })
                .transpose()?;
            let checked = audit::anchor::verify(&bytes, anchor.as_ref());
            match checked {
                Ok(anchored) => {
                    println!("{}: {}", file.display(), audit::anchor::summary(&anchored));
                    Ok(())
                }
                Err(problem) => {
                    eprintln!("{}: {problem}", file.display());
                    std::process::exit(1);
                }
            }
        }
        Some(Command::Audit {
            command: AuditCommand::Anchor { openbao },
        }) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(print_anchor(openbao)),
        Some(Command::Audit {
            command: AuditCommand::Cat,
        }) => {
            let path = std::env::var_os("AUDIT_LOG").unwrap_or(DEFAULT_AUDIT_LOG.into());
            let mut file = std::fs::File::open(&path)
                .with_context(|| format!("opening the audit log {}", path.display()))?;
            std::io::copy(&mut file, &mut std::io::stdout().lock())
                .with_context(|| format!("reading the audit log {}", path.display()))?;
            Ok(())
        }
        Some(Command::Scan { files }) => {
            let mut found = false;
            for file in &files {
                let bytes =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let findings = publicdata_operator::scan::scan_artifact(
                    &name,
                    &bytes,
                    &[],
                    &publicdata_operator::scan::Limits::default(),
                );
                if findings.is_empty() {
                    println!("{}: clean, every part read", file.display());
                }
                for f in &findings {
                    println!("{}: {} at {}", file.display(), f.kind, f.location);
                }
                found |= !findings.is_empty();
            }
            if found {
                std::process::exit(1);
            }
            Ok(())
        }
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(cli.run)),
    }
}

/// `audit anchor`: the stored checkpoint and the signing key's public halves.
async fn print_anchor(openbao: OpenBaoArgs) -> anyhow::Result<()> {
    let login = openbao.login()?;
    let vault = OpenBao::new(
        &openbao.vault_addr,
        "",
        KubernetesAuthConfig {
            host: String::new(),
            ca_cert: String::new(),
            reviewer_jwt: String::new(),
        },
        openbao.vault_cacert.clone(),
    )?;
    let (token, _) = login.token(&vault).await?;
    vault.set_token(&token)?;
    let anchor = checkpointer::load(&vault, &vault).await?;
    println!("{}", serde_json::to_string_pretty(&anchor)?);
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.openbao.vault_addr.is_empty() {
        bail!("--vault-addr (VAULT_ADDR) is required");
    }
    let login = args.openbao.login()?;
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
    publicdata_operator::failpoint::announce();
    // SIGTERM ends the process whatever it is doing: as PID 1 in its
    // container it would otherwise ignore it, and a replica on its way out
    // could still take the Lease and act until the kubelet kills it.
    let stop = terminated();
    tokio::pin!(stop);

    let mut config = kube::Config::infer()
        .await
        .context("finding the Kubernetes API (in-cluster or KUBECONFIG)")?;
    // The API server's audit log names the operator's requests by this.
    config.headers.push((
        reqwest::header::USER_AGENT,
        reqwest::header::HeaderValue::from_static(concat!(
            "publicdata-operator/",
            env!("CARGO_PKG_VERSION")
        )),
    ));
    let client = kube::Client::try_from(config).context("connecting to the Kubernetes API")?;
    // The operator does not install its own CRDs: check they are there.
    let api: Api<OperatorAuthorization> = Api::all(client.clone());
    if let Err(e) = api.list(&ListParams::default().limit(1)).await {
        bail!(
            "cannot list OperatorAuthorizations ({e}); are the CRDs installed? kubectl apply --server-side -f crds/"
        );
    }
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    let admin_addr = args.admin_addr;
    let mut admin = tokio::spawn(telemetry::serve(
        admin_addr,
        metrics.clone(),
        health.clone(),
    ));
    tracing::info!("publicdata-operator {} starting", env!("CARGO_PKG_VERSION"));
    // Every replica serves the register, a standby too.
    let mut register = tokio::spawn({
        let (addr, client) = (args.register_addr, client.clone());
        async move {
            match addr {
                Some(addr) => publicdata_operator::register::serve(addr, client).await,
                None => std::future::pending().await,
            }
        }
    });

    let records: Option<Arc<dyn publicdata_operator::records::Store>> =
        match &args.records_s3_endpoint {
            Some(endpoint) => {
                let settings = publicdata_operator::records::S3Settings {
                    endpoint: endpoint.clone(),
                    bucket: args.records_s3_bucket.clone(),
                    region: args.records_s3_region.clone(),
                    access_key: args.records_s3_access_key.clone(),
                    secret_key: args.records_s3_secret_key.clone(),
                };
                tracing::info!(
                    "key records go to s3://{} at {endpoint}, locked",
                    settings.bucket
                );
                Some(Arc::new(publicdata_operator::records::S3Store::new(
                    &settings,
                )))
            }
            None => {
                tracing::warn!(
                    "no records store (RECORDS_S3_ENDPOINT): offboardings stop before the wipe \
                     until one is configured"
                );
                None
            }
        };
    // Every replica takes operation logs in, a standby too.
    let mut intake = tokio::spawn({
        let (client, records) = (client.clone(), records.clone());
        let settings = match (args.oplog_addr, &records) {
            (None, _) => None,
            (Some(_), _) if args.oplog_token.trim().is_empty() => {
                bail!("OPLOG_ADDR needs OPLOG_TOKEN, the bearer token its senders present")
            }
            (Some(_), None) => {
                bail!("OPLOG_ADDR needs a records store (RECORDS_S3_ENDPOINT) to write to")
            }
            (Some(addr), Some(store)) => Some((
                oplog::Settings {
                    addr,
                    // A token read from a file often ends in a newline.
                    token: args.oplog_token.trim().to_string(),
                    flush_every: args.oplog_flush_every,
                    tls: args.oplog_tls_cert.clone().zip(args.oplog_tls_key.clone()),
                    operator: oplog::Operator {
                        namespace: args.namespace.clone().unwrap_or_default(),
                        service_account: args.service_account.clone().unwrap_or_default(),
                    },
                },
                Arc::new(oplog::Intake::new(
                    store.clone(),
                    args.pod_name.clone().unwrap_or_else(|| "operator".into()),
                )),
            )),
        };
        async move {
            match settings {
                Some((settings, intake)) => {
                    tracing::info!(
                        addr = %settings.addr,
                        tls = settings.tls.is_some(),
                        "operation logs intake serving"
                    );
                    oplog::serve(settings, client, intake).await
                }
                None => std::future::pending().await,
            }
        }
    });

    // One active replica: only the leader goes on (and so writes the audit log).
    let mut leadership = None;
    if args.leader_elect {
        let params = leader::Params {
            namespace: args
                .namespace
                .clone()
                .context("--leader-elect needs the operator's namespace (POD_NAMESPACE)")?,
            name: args.lease_name.clone(),
            identity: args
                .pod_name
                .clone()
                .context("--leader-elect needs this replica's name (POD_NAME)")?,
            duration: args.lease_duration,
            grace: args.lease_renew_grace,
        };
        let standby = health.clone();
        let lease = params.name.clone();
        let wait = leader::acquire(client.clone(), &params, move || {
            tracing::info!(%lease, "another replica leads; standing by");
            standby.standby.store(true, Ordering::Relaxed);
        });
        let held = tokio::select! {
            held = wait => held?,
            served = &mut admin => return served_ended(&format!("admin server on {admin_addr}"), served),
            served = &mut register => return served_ended("register server", served),
            served = &mut intake => return served_ended("operation logs intake", served),
            () = &mut stop => {
                tracing::info!("terminating while standing by");
                return Ok(());
            }
        };
        health.standby.store(false, Ordering::Relaxed);
        tracing::info!(lease = %args.lease_name, "this replica leads");
        leadership = Some(held);
    }
    metrics.leader.set(1);

    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let reviewer = match (
        &args.vault_k8s_reviewer_jwt_file,
        &args.vault_k8s_reviewer_service_account,
    ) {
        (Some(file), _) => Reviewer::File(file.clone()),
        (None, Some(name)) => Reviewer::ServiceAccount {
            client: client.clone(),
            namespace: args
                .namespace
                .clone()
                .context("--vault-k8s-reviewer-service-account needs POD_NAMESPACE")?,
            name: name.clone(),
        },
        (None, None) => bail!(
            "set --vault-k8s-reviewer-jwt-file or --vault-k8s-reviewer-service-account: \
             OpenBao needs a token to review tenant logins with"
        ),
    };
    let kubernetes = KubernetesAuthConfig {
        host: args.vault_k8s_host.clone(),
        ca_cert: read(&args.vault_k8s_ca_file)?,
        reviewer_jwt: String::new(),
    };
    let vault = Arc::new(OpenBao::new(
        &args.openbao.vault_addr,
        "",
        kubernetes,
        args.openbao.vault_cacert.clone(),
    )?);
    let due = login::start(&vault, &login, &reviewer)
        .await
        .context("logging in to OpenBao")?;
    let fresh = tokio::spawn(login::keep_fresh(vault.clone(), login, reviewer, due));
    // The log is checked against its latest signed checkpoint before anything
    // is appended; if OpenBao cannot say what that is now, the checkpointer
    // checks later and signs nothing until then.
    let (audit, start) = match checkpointer::prepare(vault.as_ref(), vault.as_ref()).await {
        Ok(anchor) => (
            FileSink::open_anchored(&args.audit_log, &anchor),
            checkpointer::Start::Checked(anchor),
        ),
        Err(e) => {
            tracing::warn!("loading the audit log's checkpoint (checked later): {e:#}");
            (
                FileSink::open(&args.audit_log),
                checkpointer::Start::Unchecked,
            )
        }
    };
    let audit =
        audit.with_context(|| format!("opening the audit log {}", args.audit_log.display()))?;
    let audit: Arc<dyn Sink> = Arc::new(audit);
    if let Err(problem) = audit.health() {
        tracing::error!(
            "the audit log {} is damaged ({problem}): records are held beside it; provisioning, \
             grants, deliveries and offboardings wait, suspensions and revocations go ahead; \
             repair the log and restart the operator",
            args.audit_log.display()
        );
    }
    let ctx = Arc::new(Context {
        client,
        vault: vault.clone(),
        settings: Settings {
            vault_audience: args.vault_audience,
            expiry_grace: args.expiry_grace,
            concurrency: args.concurrency,
            resync: args.resync,
            platform: Platform {
                openbao_cidrs: args
                    .workload_openbao_cidrs
                    .into_iter()
                    .filter(|c| !c.trim().is_empty())
                    .collect(),
                openbao_port: args.workload_openbao_port,
                operator_service_account: args.namespace.clone().zip(args.service_account.clone()),
                training_valid_days: Some(args.training_valid_days),
            },
        },
        reporter: Reporter {
            controller: "publicdata-operator".into(),
            instance: args.pod_name.clone(),
        },
        metrics,
        health,
        failures: Default::default(),
        applied: Default::default(),
        vault_applied: Default::default(),
        locks: Default::default(),
        writes: tokio::sync::Semaphore::new(
            publicdata_operator::controllers::authorization::lane::WRITES_IN_FLIGHT,
        ),
        audit: audit.clone(),
        records,
    });
    let anchoring = tokio::spawn(checkpointer::run(
        audit,
        vault.clone(),
        vault.clone(),
        start,
        args.audit_checkpoint_every,
    ));
    let lost = async {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = futures::future::join3(
            authorization::run(ctx.clone()),
            publicdata_operator::controllers::scenario::run(ctx.clone()),
            publicdata_operator::controllers::export::run(ctx),
        ) => Ok(()),
        served = &mut admin => served_ended(&format!("admin server on {admin_addr}"), served),
        served = &mut register => served_ended("register server", served),
        served = &mut intake => served_ended("operation logs intake", served),
        () = &mut stop => {
            tracing::info!("terminating: the Lease is released for another replica");
            Ok(())
        }
        () = lost => Err(anyhow::anyhow!(
            "lost the Lease {}; exiting so that another replica leads", args.lease_name
        )),
    };
    fresh.abort();
    anchoring.abort();
    if let Some(held) = leadership {
        held.release().await;
    }
    outcome
}

/// Resolves on SIGTERM (what the kubelet sends a pod going away) or Ctrl-C.
/// The handler is installed when this is called, so a signal that comes
/// before the future is first polled is not lost.
fn terminated() -> impl std::future::Future<Output = ()> {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!("SIGTERM cannot be handled ({e}); only Ctrl-C stops cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

fn served_ended(
    what: &str,
    served: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("{what}: {e}")),
        Err(e) => Err(anyhow::anyhow!("{what} (task): {e}")),
    }
}

/// A duration in the friendly format (`30d`, `12h`, `90s`); a day is 24 hours.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|e| format!("{text:?} is not a duration like 30d, 12h or 90s: {e}"))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?}: {e}"))?;
    std::time::Duration::try_from(signed).map_err(|_| format!("{text:?} must not be negative"))
}
