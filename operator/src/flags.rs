//! The operator's command line: its subcommands and the flags of a run,
//! each also read from the environment (the chart sets those).

use anyhow::bail;
use clap::Parser;

use crate::vault::login::Login;

/// Kubernetes operator for public data authorized operation.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: Args,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Scan data products as the export review will, before filing an export
    /// request: personal data and unreadable parts, by kind and place, never
    /// the values, and a product that cannot carry its delivery's
    /// fingerprint. Exits 1 if anything is found. (The review also looks for
    /// the catalog's sensitive values, which only the operator can read.)
    Scan {
        /// The files to scan.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
    },
    /// The export scan's worker, run by the operator itself in a child
    /// process for each scan: caps its heap at the budget, reads a job line
    /// and the product from stdin, writes the review to stdout (JSON).
    #[command(hide = true)]
    ScanWorker {
        /// Bytes its heap may take.
        #[arg(long)]
        memory_budget: u64,
    },
    /// Trace a file found outside to the delivery it came from: reads the
    /// file from stdin, the fingerprinted deliveries on record in the
    /// operator's audit log (AUDIT_LOG), derives each delivery's key in
    /// OpenBao with the operator's own login, and prints what it found
    /// (JSON). Run in the operator's container by `kubectl publicdata trace`.
    Trace {
        /// Read exactly this many bytes of stdin (a stream that cannot be
        /// closed from the other end); all of it when not given.
        #[arg(long)]
        length: Option<u64>,
        #[command(flatten)]
        openbao: OpenBaoArgs,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
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

/// Set in the operator's image (hack/image.sh, Dockerfile): the binary runs
/// in the operator's container, where `kubectl exec` could hand it a
/// command line.
pub const IN_IMAGE: &str = "PUBLICDATA_IMAGE";

/// The arguments that say where the operator's credentials go (OpenBao's
/// address and CA, the login, the token files): in the image they come from
/// the container's environment only, never from a command line.
const PINNED: [&str; 6] = [
    "vault_addr",
    "vault_token",
    "vault_login_mount",
    "vault_login_role",
    "vault_login_jwt_file",
    "vault_cacert",
];

/// What a command line given in the operator's image may not say: the
/// operator itself takes no argument there (the chart configures it by
/// environment), and no subcommand may move OpenBao's address or the
/// credentials it logs in with. Empty: nothing refused.
pub fn refused_in_image(matches: &clap::ArgMatches) -> Vec<String> {
    use clap::parser::ValueSource;
    let from_command_line = |m: &clap::ArgMatches, id: &str| {
        m.try_get_raw(id).ok().flatten().is_some()
            && m.value_source(id) == Some(ValueSource::CommandLine)
    };
    match matches.subcommand() {
        None => <Cli as clap::CommandFactory>::command()
            .get_arguments()
            .map(|a| a.get_id().as_str().to_string())
            .filter(|id| from_command_line(matches, id))
            .map(|id| format!("--{}", id.replace('_', "-")))
            .collect(),
        Some(_) => {
            let mut out = Vec::new();
            let mut m = matches;
            while let Some((_, sub)) = m.subcommand() {
                out.extend(
                    PINNED
                        .iter()
                        .filter(|id| from_command_line(sub, id))
                        .map(|id| format!("--{}", id.replace('_', "-"))),
                );
                m = sub;
            }
            out
        }
    }
}

/// Where the audit log is, in the operator's image and chart.
pub const DEFAULT_AUDIT_LOG: &str = "/var/lib/publicdata-operator/audit.log";

/// How the operator reaches and logs in to OpenBao.
#[derive(clap::Args, Debug)]
pub struct OpenBaoArgs {
    /// OpenBao/Vault address.
    #[arg(long, env = "VAULT_ADDR", required = false, default_value = "")]
    pub vault_addr: String,
    /// OpenBao/Vault token of the operator, for local runs (its policy:
    /// charts/publicdata-operator/files/openbao-operator-policy.hcl). In a
    /// cluster, log in with the ServiceAccount instead (--vault-login-role).
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true, default_value = "")]
    pub vault_token: String,
    /// Log in through this Kubernetes auth mount of OpenBao...
    #[arg(long, env = "VAULT_LOGIN_MOUNT", default_value = "kubernetes")]
    pub vault_login_mount: String,
    /// ...as this role (bound to the operator's ServiceAccount)...
    #[arg(long, env = "VAULT_LOGIN_ROLE")]
    pub vault_login_role: Option<String>,
    /// ...with the ServiceAccount token in this file (projected, refreshed by the kubelet).
    #[arg(
        long,
        env = "VAULT_LOGIN_JWT_FILE",
        default_value = "/var/run/secrets/openbao/token"
    )]
    pub vault_login_jwt_file: std::path::PathBuf,
    /// PEM file of the CA that signed OpenBao's TLS certificate (default: the system's CAs).
    #[arg(long, env = "VAULT_CACERT")]
    pub vault_cacert: Option<std::path::PathBuf>,
}

impl OpenBaoArgs {
    pub fn login(&self) -> anyhow::Result<Login> {
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
pub struct Args {
    /// How long a domain whose validity passed stays frozen before it is
    /// offboarded, unless the bureau renews it first, e.g. `30d`, `12h`.
    /// Only an end the bureau itself set is ever acted on.
    #[arg(long, env = "EXPIRY_GRACE", default_value = "30d", value_parser = parse_duration)]
    pub expiry_grace: std::time::Duration,
    /// How many authorizations the work queue reconciles at once. A burst of
    /// new tenants waits in the queue, not in the API server; a suspension
    /// or revocation never waits (it has its own lane).
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// How often an unchanged authorization is looked at again (OpenBao
    /// drift is found then; Kubernetes objects are watched), e.g. `5m`.
    #[arg(long, env = "RESYNC", default_value = "5m", value_parser = parse_duration)]
    pub resync: std::time::Duration,
    /// The ConfigMap holding the cluster DNS's Corefile (`NAMESPACE/NAME`,
    /// key `Corefile`), read at each resync to say on every authorization
    /// whether tenant pods' names stay in the cluster (condition
    /// `DnsContained`; deploy/coredns/Corefile). Empty: not checked.
    #[arg(long, env = "DNS_COREFILE", default_value = "kube-system/coredns")]
    pub dns_corefile: String,
    /// How long a member's security training counts, in days (R-16: trained
    /// before the job and again periodically). From the day after, the member
    /// has no access until the bureau records a newer training.
    #[arg(long, env = "TRAINING_VALID_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub training_valid_days: u32,
    /// Size of the log volume the operator makes in each tenant environment
    /// (a claim `logs`, the one volume kept at offboarding), e.g. 1Gi.
    /// Empty: none is made.
    #[arg(long, env = "LOG_VOLUME_SIZE", default_value = "")]
    pub log_volume_size: String,
    /// The storage class of those claims; empty: the cluster's default.
    #[arg(long, env = "LOG_VOLUME_STORAGE_CLASS", default_value = "")]
    pub log_volume_storage_class: String,
    /// The memory budget of the export scan, in MiB: the heap of the child
    /// process each scan runs in, capped by the kernel. Keep it well below
    /// the pod's memory limit less the operator's own use (the chart's
    /// default: 128 of 256 Mi).
    #[arg(long, env = "SCAN_MEMORY_BUDGET_MIB", default_value_t = 128,
          value_parser = clap::value_parser!(u64).range(16..=4096))]
    pub scan_memory_budget_mib: u64,
    #[command(flatten)]
    pub openbao: OpenBaoArgs,
    /// The Kubernetes API server URL as OpenBao reaches it (tenant auth mounts review tokens there).
    #[arg(
        long,
        env = "VAULT_K8S_HOST",
        default_value = "https://kubernetes.default.svc"
    )]
    pub vault_k8s_host: String,
    /// CA bundle of that API server.
    #[arg(
        long,
        env = "VAULT_K8S_CA_FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    pub vault_k8s_ca_file: std::path::PathBuf,
    /// A token OpenBao uses to call TokenReview for tenant logins (a
    /// ServiceAccount bound to system:auth-delegator), in a file re-read as it rotates...
    #[arg(long, env = "VAULT_K8S_REVIEWER_JWT_FILE")]
    pub vault_k8s_reviewer_jwt_file: Option<std::path::PathBuf>,
    /// ...or requested for this ServiceAccount of the operator's namespace
    /// (TokenRequest API) and renewed before it expires.
    #[arg(long, env = "VAULT_K8S_REVIEWER_SERVICE_ACCOUNT")]
    pub vault_k8s_reviewer_service_account: Option<String>,
    /// Audience workload tokens must carry to log in to OpenBao.
    #[arg(long, env = "VAULT_AUDIENCE", default_value = "openbao")]
    pub vault_audience: String,
    /// The Kubernetes auth mount tenant workloads log in at, which the
    /// platform enables and names in its policies (the operator writes roles
    /// there, never the mount).
    #[arg(
        long,
        env = "VAULT_WORKLOAD_AUTH_MOUNT",
        default_value = "publicdata-workloads"
    )]
    pub vault_workload_auth_mount: String,
    /// The KV v2 mount of the catalog: scenario grants name paths in it only
    /// (the platform's workload policy reads there and nowhere else).
    #[arg(long, env = "VAULT_CATALOG_MOUNT", default_value = "catalog")]
    pub vault_catalog_mount: String,
    /// CIDRs (comma-separated) where tenant workloads reach OpenBao: the
    /// addresses behind its Service, as a NetworkPolicy sees them. Empty: no
    /// workload can reach OpenBao.
    #[arg(
        long,
        env = "WORKLOAD_OPENBAO_CIDRS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub workload_openbao_cidrs: Vec<String>,
    /// The port OpenBao listens on at those addresses.
    #[arg(long, env = "WORKLOAD_OPENBAO_PORT", default_value_t = 8200)]
    pub workload_openbao_port: u16,
    /// CIDRs (comma-separated) where tenant workloads reach the platform's
    /// PostgreSQL: the addresses behind its Service. Empty: no workload can
    /// reach the database.
    #[arg(
        long,
        env = "WORKLOAD_DATABASE_CIDRS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub workload_database_cidrs: Vec<String>,
    /// The port PostgreSQL listens on at those addresses.
    #[arg(long, env = "WORKLOAD_DATABASE_PORT", default_value_t = 5432)]
    pub workload_database_port: u16,
    /// The platform's PostgreSQL, where datasets with `spec.table` live, as
    /// the operator reaches it. Empty: no data plane (such datasets are
    /// reported not ready, and tenants get no database role).
    #[arg(long, env = "DATABASE_HOST", default_value = "")]
    pub database_host: String,
    /// Its port.
    #[arg(long, env = "DATABASE_PORT", default_value_t = 5432)]
    pub database_port: u16,
    /// The database that holds the catalog's tables.
    #[arg(long, env = "DATABASE_NAME", default_value = "publicdata")]
    pub database_name: String,
    /// The database of dev's samples, on the same server: the operator
    /// copies each dataset's masked sample there, and dev's roles are
    /// granted there and may connect nowhere else (prod's may not connect
    /// to it). Made by the platform like the first (docs/data-plane.md).
    #[arg(
        long,
        env = "DATABASE_SAMPLE_NAME",
        default_value = "publicdata_sample"
    )]
    pub database_sample_name: String,
    /// The operator's role there: it makes roles (CREATEROLE), may end their
    /// sessions (pg_signal_backend), and selects the catalog's tables with
    /// grant option.
    #[arg(long, env = "DATABASE_USER", default_value = "publicdata_operator")]
    pub database_user: String,
    /// A file holding that role's password.
    #[arg(long, env = "DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<std::path::PathBuf>,
    /// OpenBao's database secrets engine (with DATABASE_HOST): its mount...
    #[arg(long, env = "OPENBAO_DATABASE_MOUNT", default_value = "database")]
    pub openbao_database_mount: String,
    /// ...and the connection to the platform's PostgreSQL configured there.
    #[arg(
        long,
        env = "OPENBAO_DATABASE_CONNECTION",
        default_value = "publicdata"
    )]
    pub openbao_database_connection: String,
    /// ...and its connection to the samples database.
    #[arg(
        long,
        env = "OPENBAO_DATABASE_SAMPLE_CONNECTION",
        default_value = "publicdata-sample"
    )]
    pub openbao_database_sample_connection: String,
    /// The audit log (JSON lines, hash-chained, append-only). Put it on a volume.
    #[arg(long, env = "AUDIT_LOG", default_value = DEFAULT_AUDIT_LOG)]
    pub audit_log: std::path::PathBuf,
    /// How often the checkpointer looks whether the audit log moved; it signs
    /// and stores a checkpoint of the head only when it did.
    #[arg(long, env = "AUDIT_CHECKPOINT_EVERY", default_value = "2s", value_parser = parse_duration)]
    pub audit_checkpoint_every: std::time::Duration,
    /// The records store: an S3 endpoint with Object Lock, where key records
    /// of offboarded authorizations are written, locked in compliance mode for
    /// 20 years. Unset: offboardings stop before the wipe and say so.
    #[arg(long, env = "RECORDS_S3_ENDPOINT")]
    pub records_s3_endpoint: Option<String>,
    /// Its bucket (created with Object Lock enabled).
    #[arg(long, env = "RECORDS_S3_BUCKET", default_value = "publicdata-records")]
    pub records_s3_bucket: String,
    /// Its region.
    #[arg(long, env = "RECORDS_S3_REGION", default_value = "us-east-1")]
    pub records_s3_region: String,
    /// The access key...
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true,
        default_value = ""
    )]
    pub records_s3_access_key: String,
    /// ...and its secret.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    pub records_s3_secret_key: String,
    /// Address of the public register of authorized units (HTML at `/`,
    /// JSON at `/register.json`); unset: not served.
    #[arg(long, env = "REGISTER_ADDR")]
    pub register_addr: Option<std::net::SocketAddr>,
    /// Address of the intake of operation logs: the API server's audit
    /// webhook posts to `/v1/kubernetes`, OpenBao's `http` audit device to
    /// `/v1/openbao`. Each tenant's share goes to the records store. Unset:
    /// not served.
    #[arg(long, env = "OPLOG_ADDR")]
    pub oplog_addr: Option<std::net::SocketAddr>,
    /// The intake's serving certificate and key (PEM). Without them it
    /// serves plain HTTP, over which the API server sends no token.
    #[arg(long, env = "OPLOG_TLS_CERT", requires = "oplog_tls_key")]
    pub oplog_tls_cert: Option<std::path::PathBuf>,
    #[arg(long, env = "OPLOG_TLS_KEY", requires = "oplog_tls_cert")]
    pub oplog_tls_key: Option<std::path::PathBuf>,
    /// The bearer token both senders present.
    #[arg(long, env = "OPLOG_TOKEN", hide_env_values = true, default_value = "")]
    pub oplog_token: String,
    /// How often each tenant's share of the operation logs is written to
    /// the records store (one object per tenant and source).
    #[arg(long, env = "OPLOG_FLUSH_EVERY", default_value = "10s", value_parser = parse_duration)]
    pub oplog_flush_every: std::time::Duration,
    /// Address of the audit API (`audit.publicdata.io`, behind the API
    /// server's aggregation layer: see `audit::api`). Every replica serves
    /// it. Unset: not served, and the log is read on the operator's volume only.
    #[arg(long, env = "AUDIT_API_ADDR", requires_all = ["audit_api_tls_cert", "audit_api_tls_key"])]
    pub audit_api_addr: Option<std::net::SocketAddr>,
    /// The audit API's serving certificate and key (PEM): the APIService's
    /// caBundle names their CA.
    #[arg(long, env = "AUDIT_API_TLS_CERT")]
    pub audit_api_tls_cert: Option<std::path::PathBuf>,
    #[arg(long, env = "AUDIT_API_TLS_KEY")]
    pub audit_api_tls_key: Option<std::path::PathBuf>,
    /// Address of the admin server: /metrics, /livez, /readyz.
    #[arg(long, env = "ADMIN_ADDR", default_value = "127.0.0.1:8080")]
    pub admin_addr: std::net::SocketAddr,
    /// Log format: `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Run only while holding the Lease (one active replica of several).
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "publicdata-operator")]
    pub lease_name: String,
    /// Seconds a leader's lock is valid after its last renewal.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration: u64,
    /// Seconds before expiry at which the leader renews.
    #[arg(long, env = "LEASE_RENEW_GRACE_SECONDS", default_value_t = 5)]
    pub lease_renew_grace: u64,
    /// The operator's namespace (the Lease and the reviewer ServiceAccount live there).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// This replica's name (its identity in the Lease).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// The operator's ServiceAccount, when it runs in the cluster: bound in
    /// each tenant namespace to read its Secrets for the offboarding inventory.
    #[arg(long, env = "OPERATOR_SERVICE_ACCOUNT")]
    pub service_account: Option<String>,
}

/// A duration in the friendly format (`30d`, `12h`, `90s`); a day is 24 hours.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|e| format!("{text:?} is not a duration like 30d, 12h or 90s: {e}"))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?}: {e}"))?;
    std::time::Duration::try_from(signed).map_err(|_| format!("{text:?} must not be negative"))
}

#[cfg(test)]
mod image_tests {
    use super::*;
    use clap::CommandFactory;

    fn refused(args: &[&str]) -> Vec<String> {
        let m = Cli::command()
            .try_get_matches_from(args)
            .expect("the command line parses");
        refused_in_image(&m)
    }

    #[test]
    fn in_the_image_a_command_line_cannot_send_the_operators_credentials_elsewhere() {
        // The operator itself takes nothing from a command line there.
        assert_eq!(
            refused(&[
                "publicdata-operator",
                "--vault-addr",
                "http://elsewhere:8200",
                "--vault-login-jwt-file",
                "/var/run/secrets/kubernetes.io/serviceaccount/token",
            ]),
            ["--vault-addr", "--vault-login-jwt-file"]
        );
        // A subcommand may not move OpenBao or the login either.
        assert_eq!(
            refused(&[
                "publicdata-operator",
                "audit",
                "anchor",
                "--vault-addr",
                "http://elsewhere:8200",
                "--vault-login-role",
                "x",
            ]),
            ["--vault-addr", "--vault-login-role"]
        );
        assert_eq!(
            refused(&["publicdata-operator", "trace", "--vault-token", "t"]),
            ["--vault-token"]
        );
        // What the plugin runs, as it runs it: nothing refused.
        assert!(refused(&["publicdata-operator"]).is_empty());
        assert!(refused(&["publicdata-operator", "audit", "anchor"]).is_empty());
        assert!(refused(&["publicdata-operator", "audit", "cat"]).is_empty());
        assert!(refused(&["publicdata-operator", "trace", "--length", "10"]).is_empty());
    }
}
