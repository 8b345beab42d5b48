//! The publicdata operator: wires the client, the secrets backend and the
//! controllers together.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context as _, bail};
use kube::api::{Api, ListParams};
use kube::runtime::events::Reporter;
use publicdata_operator::api::OperatorAuthorization;
use publicdata_operator::audit;
use publicdata_operator::audit::checkpointer;
use publicdata_operator::audit::{FileSink, Sink};
use publicdata_operator::context::{Context, Settings};
use publicdata_operator::controllers::authorization;
use publicdata_operator::controllers::tenant::Platform;
use publicdata_operator::fingerprint::MAX_TRACE_BYTES;
use publicdata_operator::flags::{
    Args, AuditCommand, Cli, Command, DEFAULT_AUDIT_LOG, OpenBaoArgs,
};
use publicdata_operator::leader;
use publicdata_operator::oplog;
use publicdata_operator::telemetry::{self, Health, Metrics};
use publicdata_operator::vault::login::{self, Reviewer};
use publicdata_operator::vault::{KubernetesAuthConfig, OpenBao};

fn main() -> anyhow::Result<()> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    if std::env::var_os(publicdata_operator::flags::IN_IMAGE).is_some() {
        let refused = publicdata_operator::flags::refused_in_image(&matches);
        if !refused.is_empty() {
            bail!(
                "in the operator's image, {} may not be given on the command line: the operator's \
                 OpenBao address and credentials come from its container's environment only",
                refused.join(", ")
            );
        }
    }
    let cli = Cli::from_arg_matches(&matches)?;
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
                let publicdata_operator::scan::Review { findings, marks } =
                    publicdata_operator::scan::review(
                        &name,
                        &bytes,
                        &[],
                        &publicdata_operator::scan::Limits::default(),
                    );
                if let (true, Some(marks)) = (findings.is_empty(), marks) {
                    println!(
                        "{}: clean, every part read; {marks} distinct values will carry its delivery's fingerprint",
                        file.display(),
                    );
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
        Some(Command::ScanWorker { memory_budget }) => publicdata_operator::scan::worker::serve(
            memory_budget,
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        )
        .context("the scan worker"),
        Some(Command::Trace { length, openbao }) => {
            let file = read_stdin(length)?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(print_trace(openbao, file))
        }
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(cli.run)),
    }
}

/// `trace`'s input: `length` bytes of stdin, or all of it.
fn read_stdin(length: Option<u64>) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let limit = length.unwrap_or(MAX_TRACE_BYTES + 1);
    if length.is_some_and(|n| n > MAX_TRACE_BYTES) {
        bail!("the trace reads at most {MAX_TRACE_BYTES} bytes");
    }
    let mut file = Vec::new();
    std::io::stdin()
        .lock()
        .take(limit)
        .read_to_end(&mut file)
        .context("reading the file from stdin")?;
    match length {
        Some(n) if file.len() as u64 != n => {
            bail!("stdin ended after {} of {n} bytes", file.len())
        }
        None if file.len() as u64 > MAX_TRACE_BYTES => {
            bail!("the trace reads at most {MAX_TRACE_BYTES} bytes")
        }
        _ => Ok(file),
    }
}

/// `trace`: the deliveries on record a file came from, as JSON.
async fn print_trace(openbao: OpenBaoArgs, file: Vec<u8>) -> anyhow::Result<()> {
    let path = std::env::var_os("AUDIT_LOG").unwrap_or(DEFAULT_AUDIT_LOG.into());
    let log = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the audit log {}", path.display()))?;
    let vault = openbao_session(&openbao).await?;
    let found = publicdata_operator::fingerprint::trace_on_record(&log, &file, &vault).await?;
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(())
}

/// A client logged in to OpenBao as the operator, for a one-off subcommand.
async fn openbao_session(openbao: &OpenBaoArgs) -> anyhow::Result<OpenBao> {
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
    Ok(vault)
}

/// `audit anchor`: the stored checkpoint and the signing key's public halves.
async fn print_anchor(openbao: OpenBaoArgs) -> anyhow::Result<()> {
    let vault = openbao_session(&openbao).await?;
    let anchor = checkpointer::load(&vault, &vault, None).await?;
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

    // Every replica serves the audit API, a standby too: the log is on the
    // volume they share, and the anchor and a trace log in to OpenBao anew.
    let mut audit_api = tokio::spawn({
        let client = client.clone();
        let settings = match (
            args.audit_api_addr,
            &args.audit_api_tls_cert,
            &args.audit_api_tls_key,
        ) {
            (Some(addr), Some(cert), Some(key)) => Some(audit::api::Settings {
                addr,
                cert: cert.clone(),
                key: key.clone(),
                audit_log: args.audit_log.clone(),
                records: records.clone(),
                openbao: audit::api::OpenBaoAccess {
                    address: args.openbao.vault_addr.clone(),
                    ca_cert: args.openbao.vault_cacert.clone(),
                    login: login.clone(),
                },
            }),
            _ => None,
        };
        async move {
            match settings {
                Some(settings) => audit::api::serve(settings, client).await,
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
            served = &mut audit_api => return api_ended(served),
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
    let mut rolled_back = None;
    let (audit, start) =
        match checkpointer::prepare(vault.as_ref(), vault.as_ref(), records.as_deref()).await {
            Ok(anchor) => {
                let (anchor, rollback) = audit::anchor::trusted(&anchor);
                rolled_back = rollback;
                (
                    FileSink::open_anchored(&args.audit_log, &anchor),
                    checkpointer::Start::Checked(anchor),
                )
            }
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
    if let Some(problem) = rolled_back {
        checkpointer::record_rollback(&audit, &problem).await;
    }
    if let Err(problem) = audit.health() {
        tracing::error!(
            "the audit log {} is damaged ({problem}): records are held beside it; provisioning, \
             grants, deliveries and offboardings wait, suspensions and revocations go ahead; \
             repair the log and restart the operator",
            args.audit_log.display()
        );
    }
    let database = match args.database_host.as_str() {
        "" => None,
        host => {
            let password = match &args.database_password_file {
                Some(file) => read(file)?.trim().to_string(),
                None => bail!("DATABASE_HOST is set: set DATABASE_PASSWORD_FILE too"),
            };
            if args.database_sample_name.is_empty()
                || args.database_sample_name == args.database_name
            {
                bail!(
                    "DATABASE_SAMPLE_NAME {:?}: dev's samples need a database of their own, not {:?}",
                    args.database_sample_name,
                    args.database_name
                );
            }
            let settings = |database: &str| publicdata_operator::database::Settings {
                host: host.into(),
                port: args.database_port,
                database: database.into(),
                user: args.database_user.clone(),
                password: password.clone(),
            };
            let raw = publicdata_operator::database::Database::new(&settings(&args.database_name))?;
            let samples = publicdata_operator::database::Database::new(&settings(
                &args.database_sample_name,
            ))?;
            Some(Arc::new(publicdata_operator::database::Plane {
                raw,
                samples,
            }))
        }
    };
    let dns = Arc::new(publicdata_operator::dns::DnsCheck::default());
    let dns_check = match args.dns_corefile.split_once('/') {
        Some((namespace, name)) => Some(tokio::spawn(publicdata_operator::dns::keep_checking(
            client.clone(),
            namespace.to_string(),
            name.to_string(),
            dns.clone(),
            args.resync,
        ))),
        None if args.dns_corefile.is_empty() => None,
        None => anyhow::bail!(
            "--dns-corefile {:?}: expected NAMESPACE/NAME of the ConfigMap holding the Corefile, or empty",
            args.dns_corefile
        ),
    };
    let recorder = kube::runtime::events::Recorder::new(
        client.clone(),
        Reporter {
            controller: "publicdata-operator".into(),
            instance: args.pod_name.clone(),
        },
    );
    let ctx = Arc::new(Context {
        client,
        dns,
        vault: vault.clone(),
        settings: Settings {
            workloads: publicdata_operator::vault::Workloads {
                auth_mount: args.vault_workload_auth_mount,
                audience: args.vault_audience,
                catalog_mount: args.vault_catalog_mount,
            },
            expiry_grace: args.expiry_grace,
            concurrency: args.concurrency,
            resync: args.resync,
            data_plane: database
                .as_ref()
                .map(|_| publicdata_operator::vault::DataPlane {
                    mount: args.openbao_database_mount.clone(),
                    connection: args.openbao_database_connection.clone(),
                    sample_connection: args.openbao_database_sample_connection.clone(),
                }),
            platform: Platform {
                openbao_cidrs: args
                    .workload_openbao_cidrs
                    .into_iter()
                    .filter(|c| !c.trim().is_empty())
                    .collect(),
                openbao_port: args.workload_openbao_port,
                database_cidrs: args
                    .workload_database_cidrs
                    .into_iter()
                    .filter(|c| !c.trim().is_empty())
                    .collect(),
                database_port: args.workload_database_port,
                operator_service_account: args.namespace.clone().zip(args.service_account.clone()),
                training_valid_days: Some(args.training_valid_days),
                log_volume: match args.log_volume_size.trim() {
                    "" => None,
                    size => Some(publicdata_operator::controllers::tenant::LogVolume {
                        size: size.into(),
                        storage_class: args.log_volume_storage_class.trim().to_string(),
                    }),
                },
            },
        },
        recorder,
        metrics,
        health,
        scan: Arc::new(publicdata_operator::scan::worker::Worker::new(
            std::env::current_exe().context("the operator's own binary, for the scan worker")?,
            args.scan_memory_budget_mib * 1024 * 1024,
            publicdata_operator::scan::worker::DEFAULT_TIMEOUT,
        )),
        failures: Default::default(),
        applied: Default::default(),
        vault_applied: Default::default(),
        locks: Default::default(),
        writes: tokio::sync::Semaphore::new(
            publicdata_operator::controllers::authorization::lane::WRITES_IN_FLIGHT,
        ),
        audit: audit.clone(),
        records: records.clone(),
        database,
    });
    let anchoring = tokio::spawn(checkpointer::run(
        audit,
        vault.clone(),
        vault.clone(),
        records,
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
        _ = futures::future::join5(
            authorization::run(ctx.clone()),
            publicdata_operator::controllers::scenario::run(ctx.clone()),
            publicdata_operator::controllers::dataset::run(ctx.clone()),
            publicdata_operator::controllers::export::run(ctx.clone()),
            publicdata_operator::controllers::summary::run(ctx),
        ) => Ok(()),
        served = &mut admin => served_ended(&format!("admin server on {admin_addr}"), served),
        served = &mut register => served_ended("register server", served),
        served = &mut intake => served_ended("operation logs intake", served),
        served = &mut audit_api => api_ended(served),
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
    if let Some(check) = dns_check {
        check.abort();
    }
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

fn api_ended(served: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.context("the audit API")),
        Err(e) => Err(anyhow::anyhow!("the audit API (task): {e}")),
    }
}
