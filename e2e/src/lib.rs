//! The shared harness of the end-to-end tests.
//!
//! The tests run against the local test bed that `e2e/testbed/testbed.sh up`
//! starts: real etcd, kube-apiserver, kube-controller-manager and OpenBao
//! processes, and the real kubectl. The harness reads the env file the script
//! writes. When the test bed is not there the tests fail with a hint: they are
//! never skipped.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The Kubernetes auth mount tenant workloads log in at (the platform's,
/// set up by `files/openbao-setup.sh`).
pub const WORKLOAD_AUTH_MOUNT: &str = "publicdata-workloads";

pub mod data_plane;
pub mod pods;
pub mod scenarios;

/// Where the chart installs the operator.
pub const OPERATOR_NAMESPACE: &str = "publicdata-system";

/// Where the tests look for the test bed when `PUBLICDATA_TESTBED_DIR` is unset.
const DEFAULT_DIR: &str = ".testbed/test";

/// A running test bed, as described by its env file.
#[derive(Debug, Clone)]
pub struct TestBed {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub api_server: String,
    pub bao_addr: String,
    pub bao_token: String,
    /// `PATH` with the test bed's kubectl and bao first.
    path: String,
    env: HashMap<String, String>,
}

impl TestBed {
    /// Reads the env file of the running test bed, or fails with a hint.
    pub fn from_env() -> Result<Self> {
        let dir = match std::env::var_os("PUBLICDATA_TESTBED_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(DEFAULT_DIR),
        };
        let env_file = dir.join("testbed.env");
        let text = std::fs::read_to_string(&env_file).with_context(|| {
            format!(
                "the test bed is not up ({} is missing): run `make test`, or \
                 `PUBLICDATA_TESTBED_DIR={} e2e/testbed/testbed.sh up` first",
                env_file.display(),
                dir.display()
            )
        })?;
        let env = parse_env_file(&text);
        let get = |key: &str| {
            env.get(key)
                .cloned()
                .with_context(|| format!("{} has no {key}", env_file.display()))
        };
        let inherited = std::env::var("PATH").unwrap_or_default();
        let path = get("PATH")?.replace("$PATH", &inherited);
        Ok(Self {
            kubeconfig: PathBuf::from(get("KUBECONFIG")?),
            api_server: get("KUBE_APISERVER")?,
            bao_addr: get("BAO_ADDR")?,
            bao_token: get("BAO_TOKEN")?,
            path,
            dir,
            env,
        })
    }

    /// A value from the env file.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// A client for the cluster admin.
    pub async fn client(&self) -> Result<kube::Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A client impersonating `user` in `groups` (the admin may impersonate).
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<kube::Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        Ok(kube::Client::try_from(config)?)
    }

    /// A client for a bureau admin (group `publicdata:bureau`).
    pub async fn bureau(&self) -> Result<kube::Client> {
        self.client_as("bureau-admin", &["publicdata:bureau"]).await
    }

    /// A `kubectl` command against the test bed, as the cluster admin.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Any of the test bed's tools (`ctr`, `kubectl`, ...), with its `PATH`.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// A `bao` command against the test bed's OpenBao, with the root token.
    pub fn bao(&self) -> Command {
        let mut cmd = Command::new("bao");
        cmd.env("PATH", &self.path)
            .env("BAO_ADDR", &self.bao_addr)
            .env("BAO_TOKEN", &self.bao_token);
        cmd
    }

    /// The chart's `files/openbao-setup.sh` as the platform (root) runs it.
    pub fn openbao_setup(&self) -> Command {
        let mut cmd =
            Command::new(repo().join("charts/publicdata-operator/files/openbao-setup.sh"));
        cmd.env("PATH", &self.path)
            .env("BAO_ADDR", &self.bao_addr)
            .env("BAO_TOKEN", &self.bao_token);
        cmd
    }

    /// One query to the test bed's PostgreSQL as its superuser (the
    /// platform's own view): the rows, tab-separated.
    pub fn postgres_admin(&self, sql: &str) -> Result<String> {
        let url = self
            .var("POSTGRES_ADMIN_URL")
            .context("the env file has no POSTGRES_ADMIN_URL (a test bed without PostgreSQL?)")?;
        run_ok(Command::new("psql").args(["-X", "-tA", url, "-c", sql]))
            .map(|rows| rows.trim().to_string())
    }

    /// A vaultrs client for OpenBao, with the root token.
    pub fn vault_root(&self) -> Result<vaultrs::client::VaultClient> {
        self.vault_with_token(&self.bao_token)
    }

    /// A vaultrs client for OpenBao with the given token.
    pub fn vault_with_token(&self, token: &str) -> Result<vaultrs::client::VaultClient> {
        let settings = vaultrs::client::VaultClientSettingsBuilder::default()
            .address(&self.bao_addr)
            .token(token)
            .build()?;
        Ok(vaultrs::client::VaultClient::new(settings)?)
    }
}

impl TestBed {
    /// How the operator runs against this test bed: `chart` (installed by
    /// `testbed.sh operator install`, as a platform runs it) or `host`
    /// (`testbed.sh operator start`, a process with the admin kubeconfig).
    pub fn operator_mode(&self) -> String {
        std::fs::read_to_string(self.dir.join("operator.mode"))
            .map(|m| m.trim().to_string())
            .unwrap_or_else(|_| "host".into())
    }

    /// Fails unless the operator runs against this test bed (`hack/test.sh`
    /// installs it with its chart, or starts it on the host).
    pub fn require_operator(&self) -> Result<()> {
        if self.operator_mode() == "chart" {
            let holder = self.operator_leader().context(
                "the chart-installed operator has no Lease: `testbed.sh operator install`",
            )?;
            let holder = holder.as_str();
            ensure!(!holder.is_empty(), "no replica of the operator leads");
            let phase = run_ok(self.kubectl().args([
                "-n",
                OPERATOR_NAMESPACE,
                "get",
                "pod",
                holder,
                "-o",
                "jsonpath={.status.phase}",
            ]))?;
            ensure!(
                phase.trim() == "Running",
                "the leading replica {holder} is {phase}"
            );
            return Ok(());
        }
        let pids = std::fs::read_to_string(self.dir.join("pids")).unwrap_or_default();
        let pid = pids
            .lines()
            .filter_map(|l| l.strip_prefix("operator "))
            .next_back()
            .context("the operator is not running: start it with `e2e/testbed/testbed.sh operator start target/debug/publicdata-operator`")?;
        if !Path::new(&format!("/proc/{}", pid.trim())).exists() {
            bail!(
                "the operator (pid {pid}) has exited; see {}",
                self.dir.join("logs/operator.log").display()
            );
        }
        Ok(())
    }

    /// Waits (up to 60 s) until the authorization `name` is Ready; returns it.
    pub async fn wait_ready(
        &self,
        name: &str,
    ) -> Result<publicdata_operator::api::OperatorAuthorization> {
        self.wait_conditions(name, "Ready", &[("Ready", "True")])
            .await
    }

    /// Waits until a resumed authorization is Ready with its freeze undone
    /// (`Frozen=False`): `Ready` alone may still be the status from before the
    /// operator took the resume in.
    pub async fn wait_resumed(
        &self,
        name: &str,
    ) -> Result<publicdata_operator::api::OperatorAuthorization> {
        self.wait_conditions(
            name,
            "resumed and Ready",
            &[("Ready", "True"), ("Frozen", "False")],
        )
        .await
    }

    /// Waits until an authorization's status has each (condition, status).
    async fn wait_conditions(
        &self,
        name: &str,
        what: &str,
        wanted: &[(&str, &str)],
    ) -> Result<publicdata_operator::api::OperatorAuthorization> {
        let api: kube::Api<publicdata_operator::api::OperatorAuthorization> =
            kube::Api::all(self.client().await?);
        eventually(
            &format!("authorization {name} to be {what}"),
            Duration::from_secs(60),
            || async {
                let oa = api.get(name).await?;
                let done = wanted.iter().all(|(type_, status)| {
                    oa.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == *type_ && c.status == *status)
                    })
                });
                Ok(done.then_some(oa))
            },
        )
        .await
    }

    /// The bureau sets an authorization's state, with a reason and a fresh
    /// decision reference, as `kubectl patch --as ... --as-group publicdata:bureau` would.
    pub async fn set_state(&self, name: &str, state: &str) -> Result<()> {
        let bureau: kube::Api<publicdata_operator::api::OperatorAuthorization> =
            kube::Api::all(self.bureau().await?);
        let patch = serde_json::json!({"spec": {"state": state, "stateChange": {
            "reason": format!("e2e: {state}"), "decision": unique("PDB")}}});
        bureau
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// A tenant workload's login to OpenBao: a token of the `workload`
    /// ServiceAccount of `<tenant>-<env>` (audience `openbao`), at the
    /// platform's workload auth mount, role `<tenant>-<env>`. Returns the
    /// OpenBao token.
    pub async fn workload_login(&self, tenant: &str, env: &str) -> Result<String> {
        let jwt = run_ok(self.kubectl().args([
            "-n",
            &format!("{tenant}-{env}"),
            "create",
            "token",
            "workload",
            "--audience",
            "openbao",
        ]))?;
        let root = self.vault_root()?;
        Ok(vaultrs::auth::kubernetes::login(
            &root,
            WORKLOAD_AUTH_MOUNT,
            &format!("{tenant}-{env}"),
            jwt.trim(),
        )
        .await?
        .client_token)
    }

    /// Whether the OpenBao identity of `<tenant>-<env>` is disabled (a
    /// freeze); None when there is none.
    pub fn identity_disabled(&self, tenant: &str, env: &str) -> Result<Option<bool>> {
        let out = run(self.bao().args([
            "read",
            "-field=disabled",
            &format!("identity/entity/name/publicdata-{tenant}-{env}"),
        ]))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() {
            return Ok(Some(text == "true"));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::ensure!(
            err.contains("No value found") || err.contains("404"),
            "reading the identity of {tenant}-{env}: {err}"
        );
        Ok(None)
    }

    /// The audit log of the operator running against this test bed: a file
    /// of the state directory, or, installed by the chart, the file on its
    /// volume (a directory on the node).
    pub fn audit_log(&self) -> PathBuf {
        if self.operator_mode() == "chart"
            && let Ok(path) = self.chart_audit_log()
        {
            return path;
        }
        self.dir.join("audit.log")
    }

    fn chart_audit_log(&self) -> Result<PathBuf> {
        let pv = run_ok(self.kubectl().args([
            "-n",
            OPERATOR_NAMESPACE,
            "get",
            "pvc",
            "publicdata-operator-audit",
            "-o",
            "jsonpath={.spec.volumeName}",
        ]))?;
        let dir = run_ok(self.kubectl().args([
            "get",
            "pv",
            pv.trim(),
            "-o",
            "jsonpath={.spec.hostPath.path}{.spec.local.path}",
        ]))?;
        ensure!(!dir.trim().is_empty(), "the audit volume has no path");
        Ok(PathBuf::from(dir.trim()).join("audit.log"))
    }

    /// The audit records of one tenant, as JSON values.
    pub fn audit_records(&self, tenant: &str) -> Result<Vec<serde_json::Value>> {
        let text = std::fs::read_to_string(self.audit_log())?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["tenant"] == tenant)
            .collect())
    }

    /// `publicdata-operator audit verify FILE`, with the binary the test bed runs.
    pub fn verify_audit(&self, file: &Path) -> Result<Output> {
        let bin = std::fs::read_to_string(self.dir.join("operator.bin"))?;
        run(Command::new(bin.trim()).args(["audit", "verify"]).arg(file))
    }

    /// `kubectl publicdata ARGS`, with the plugin built by hack/test.sh
    /// (target/debug) on the PATH, as kubectl finds a plugin.
    pub fn plugin(&self, args: &[&str]) -> Result<Output> {
        let dir = repo().join("target/debug");
        ensure!(
            dir.join("kubectl-publicdata").exists(),
            "build the plugin first: cargo build -p kubectl-publicdata (hack/test.sh does)"
        );
        let mut kubectl = self.kubectl();
        let path = kubectl
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
            .unwrap_or_default();
        kubectl
            .env("PATH", format!("{}:{path}", dir.display()))
            .arg("publicdata")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .context("running kubectl publicdata")
    }

    /// The chart-installed operator's pod that holds the Lease (empty when
    /// none does).
    pub fn operator_leader(&self) -> Result<String> {
        let holder = run_ok(self.kubectl().args([
            "-n",
            OPERATOR_NAMESPACE,
            "get",
            "lease",
            "publicdata-operator",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]))?;
        Ok(holder.trim().to_string())
    }

    /// Writes a manifest to a file of its own in the test bed's directory,
    /// for `kubectl create -f` and the like; returns its path.
    pub fn manifest_file(&self, manifest: &serde_json::Value) -> Result<PathBuf> {
        let file = self.dir.join(format!("{}.json", unique("manifest")));
        std::fs::write(&file, serde_json::to_vec_pretty(manifest)?)?;
        Ok(file)
    }

    /// Applies a manifest with `kubectl apply --server-side`, as a user would.
    pub fn apply(&self, manifest: &serde_json::Value) -> Result<String> {
        let file = self.manifest_file(manifest)?;
        let out = self.apply_file(&file);
        std::fs::remove_file(&file)?;
        out
    }

    /// `kubectl apply --server-side -f PATH`. Retries, for up to 30 s, the one
    /// transient answer the API server gives while it rebuilds a CRD's
    /// handler ("There can be a delay between when CustomResourceDefinitions
    /// are created and when they are available"); any other error fails.
    pub fn apply_file(&self, path: &Path) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = run(self
                .kubectl()
                .args(["apply", "--server-side", "-f"])
                .arg(path))?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            if !stderr.contains("There can be a delay") || Instant::now() > deadline {
                bail!("kubectl apply -f {} failed: {stderr}", path.display());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// The example authorization from `examples/authorization.yaml`, renamed, with
/// the given members: `(user, trained)`. A trained member was trained 30 days
/// ago, well inside any training period.
pub fn authorization(name: &str, members: &[(&str, bool)]) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(repo().join("examples/authorization.yaml"))?;
    let mut oa: serde_json::Value = serde_yaml::from_str(&text)?;
    oa["metadata"]["name"] = name.into();
    oa["spec"]["members"] = members
        .iter()
        .map(|(user, trained)| {
            let mut m = serde_json::json!({
                "user": user, "realName": user, "realNameId": format!("RN-{user}"),
                "role": "Developer", "confidentialityUntil": "2030-12-31",
            });
            if *trained {
                m["trainingCompleted"] = days_ago(30).into();
            }
            m
        })
        .collect();
    Ok(oa)
}

/// The date `days` days before today (UTC), as `YYYY-MM-DD`.
pub fn days_ago(days: i64) -> String {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    today
        .checked_sub(jiff::Span::new().days(days))
        .unwrap_or(today)
        .to_string()
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command and returns its output, whatever its exit status.
pub fn run(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("could not run {cmd:?}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command that must fail; returns its stderr.
pub fn run_err(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    if out.status.success() {
        bail!(
            "{cmd:?} succeeded but should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A name no other test (or earlier run) uses: `prefix-<suffix>`.
/// The p-th percentile (nearest rank) of sorted durations; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:x}{n}", nanos % 0xfffff)
}

/// Polls `check` until it returns `Some`, or fails after `timeout` saying what
/// it waited for.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > timeout {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The phase an authorization's status records (empty before the first).
pub fn phase(oa: &publicdata_operator::api::OperatorAuthorization) -> &'static str {
    oa.status
        .as_ref()
        .and_then(|s| s.phase)
        .map_or("", |p| p.as_str())
}

/// Waits (up to 90 s) until the authorization `name` satisfies `pred`;
/// returns it. `what` says what is awaited, for the timeout's message.
pub async fn wait_authorization(
    api: &kube::Api<publicdata_operator::api::OperatorAuthorization>,
    name: &str,
    what: &str,
    pred: impl Fn(&publicdata_operator::api::OperatorAuthorization) -> bool,
) -> Result<publicdata_operator::api::OperatorAuthorization> {
    eventually(
        &format!("{name}: {what}"),
        Duration::from_secs(90),
        || async {
            let oa = api.get(name).await?;
            Ok(pred(&oa).then_some(oa))
        },
    )
    .await
}

/// Waits until authorization `name` has condition `type_` with `reason`,
/// its message containing `says`; returns the message.
pub async fn wait_condition(
    api: &kube::Api<publicdata_operator::api::OperatorAuthorization>,
    name: &str,
    type_: &str,
    reason: &str,
    says: &str,
) -> Result<String> {
    let found = |oa: &publicdata_operator::api::OperatorAuthorization| {
        oa.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == type_ && c.reason == reason && c.message.contains(says))
                .map(|c| c.message.clone())
        })
    };
    let oa = wait_authorization(api, name, &format!("{type_} {reason}: {says}"), |oa| {
        found(oa).is_some()
    })
    .await?;
    found(&oa).context("the condition")
}

/// Waits until authorization `name` is in phase `want`; returns it.
pub async fn wait_phase(
    api: &kube::Api<publicdata_operator::api::OperatorAuthorization>,
    name: &str,
    want: &str,
) -> Result<publicdata_operator::api::OperatorAuthorization> {
    wait_authorization(api, name, &format!("phase {want}"), |oa| phase(oa) == want).await
}

/// Waits (up to 60 s) until the operator has written the status of the
/// object's current generation (`status.observedGeneration`), so that what
/// follows checks what it did, not what it had not done yet; returns it.
pub async fn wait_observed<K>(api: &kube::Api<K>, name: &str) -> Result<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    eventually(
        &format!("{name}: the operator to observe its current generation"),
        Duration::from_secs(60),
        || async {
            let obj = api.get(name).await?;
            let v = serde_json::to_value(&obj)?;
            let generation = v["metadata"]["generation"].as_i64();
            let observed = v["status"]["observedGeneration"].as_i64();
            Ok((generation.is_some() && generation == observed).then_some(obj))
        },
    )
    .await
}

/// Parses `export KEY="value"` lines (the format testbed.sh writes).
fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// Subresources `kubectl auth can-i` must be told are subresources: it
/// reads `pods/exec` as the pod named `exec`.
const SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "portforward",
    "log",
    "status",
    "ephemeralcontainers",
    "scale",
];

/// `kubectl auth can-i ARGS --as USER`: whether `user` may. A
/// `RESOURCE/SUBRESOURCE` argument (`pods/exec`) is asked as the
/// subresource; any other `TYPE/NAME` as the object of that name.
pub fn can_i(bed: &TestBed, user: &str, args: &[&str]) -> Result<bool> {
    let mut asked: Vec<String> = Vec::new();
    for a in args {
        match a.split_once('/') {
            Some((resource, sub)) if SUBRESOURCES.contains(&sub) => {
                asked.push(resource.to_string());
                asked.push(format!("--subresource={sub}"));
            }
            _ => asked.push(a.to_string()),
        }
    }
    let out = run(bed
        .kubectl()
        .args(["auth", "can-i"])
        .args(&asked)
        .args(["--as", user]))?;
    Ok(out.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_are_parsed() {
        let env = parse_env_file(
            "# comment\nexport KUBECONFIG=\"/tmp/x/kubeconfig\"\nexport PATH=\"/a:/b:$PATH\"\n",
        );
        assert_eq!(
            env.get("KUBECONFIG").map(String::as_str),
            Some("/tmp/x/kubeconfig")
        );
        assert_eq!(env.get("PATH").map(String::as_str), Some("/a:/b:$PATH"));
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique("ns"), unique("ns"));
    }
}
