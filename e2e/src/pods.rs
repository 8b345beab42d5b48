//! Real pods on the test bed's node: probe pods (busybox, from the image the
//! test bed builds) that serve HTTP, open connections and log in to OpenBao,
//! so isolation is proven with packets, not by reading objects.

use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{TestBed, eventually, run, run_ok};

/// How long a pod may take to be scheduled, started and given an address.
pub const POD_START: Duration = Duration::from_secs(90);
/// How long a NetworkPolicy change may take to reach the node's rules.
pub const POLICY_SYNC: Duration = Duration::from_secs(30);

/// A running probe pod.
#[derive(Debug, Clone)]
pub struct Probe {
    pub namespace: String,
    pub name: String,
    pub ip: String,
}

impl Probe {
    /// The URL of this probe's HTTP server (it answers with its own name).
    pub fn url(&self) -> String {
        format!("http://{}:8080/", self.ip)
    }
}

/// The containers (pod sandboxes included) that containerd runs for pods of
/// `namespace`, by container id.
pub fn running_containers(bed: &TestBed, namespace: &str) -> Result<Vec<String>> {
    let sock = bed
        .var("TESTBED_CONTAINERD_SOCK")
        .context("the env file has no TESTBED_CONTAINERD_SOCK")?;
    let ctr = |args: &[&str]| {
        run_ok(
            bed.command("ctr")
                .args(["--address", sock, "-n", "k8s.io"])
                .args(args),
        )
    };
    let filter = format!("labels.\"io.kubernetes.pod.namespace\"=={namespace}");
    let ids = ctr(&["containers", "ls", "-q", &filter])?;
    let tasks = ctr(&["tasks", "ls"])?;
    let running: Vec<&str> = tasks
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.get(2) == Some(&"RUNNING")).then(|| cols[0])
        })
        .collect();
    Ok(ids
        .lines()
        .map(str::trim)
        .filter(|id| running.contains(id))
        .map(str::to_string)
        .collect())
}

/// A container security context that Pod Security `restricted` admits.
pub fn restricted_container() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": 65534,
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}
    })
}

/// The pod of a probe: serves HTTP on 8080 with its name as the page, and
/// otherwise waits to be exec'd into. `extra` is merged into the pod spec.
pub fn probe_pod(bed: &TestBed, namespace: &str, name: &str, extra: Value) -> Result<Value> {
    let image = bed
        .var("PROBE_IMAGE")
        .context("the test bed's env file has no PROBE_IMAGE (a test bed without a node?)")?;
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": false,
            "containers": [{
                "name": "probe",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c",
                    "mkdir -p /tmp/www && echo \"$POD_NAME\" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"],
                "env": [{"name": "POD_NAME", "value": name}],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "securityContext": restricted_container(),
                "resources": {
                    "requests": {"cpu": "10m", "memory": "16Mi"},
                    "limits": {"cpu": "100m", "memory": "32Mi"}
                }
            }]
        }
    });
    merge(&mut pod["spec"], extra);
    Ok(pod)
}

/// A probe pod of the tenant's `workload` ServiceAccount, with a projected
/// token for OpenBao (audience `openbao`) at /var/run/secrets/openbao/token:
/// how a tenant's workload logs in.
/// The shell lines a workload pod logs in to OpenBao with, by its
/// ServiceAccount token, with the role of `<tenant>-<role>` (its namespace)
/// in the platform's workload auth mount: they leave
/// OpenBao's address in `$openbao` and the token in `$token`, or exit 2 with
/// what OpenBao answered.
pub fn openbao_login_script(bed: &TestBed, tenant: &str, role: &str) -> Result<String> {
    let openbao = bed
        .var("OPENBAO_CLUSTER_ADDR")
        .context("the env file has no OPENBAO_CLUSTER_ADDR")?;
    let mount = crate::WORKLOAD_AUTH_MOUNT;
    Ok(format!(
        r#"openbao={openbao}
jwt=$(cat /var/run/secrets/openbao/token)
login=$(timeout 5 wget -q -O - --header 'Content-Type: application/json' \
  --post-data "{{\"role\":\"{tenant}-{role}\",\"jwt\":\"$jwt\"}}" $openbao/v1/auth/{mount}/login 2>&1)
token=$(echo "$login" | sed -n 's/.*"client_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || {{ echo "login refused: $login"; exit 2; }}"#
    ))
}

pub fn workload_pod(bed: &TestBed, namespace: &str, name: &str) -> Result<Value> {
    probe_pod(
        bed,
        namespace,
        name,
        json!({
            "serviceAccountName": "workload",
            "volumes": [{"name": "openbao-token", "projected": {"sources": [{
                "serviceAccountToken": {"audience": "openbao", "expirationSeconds": 600, "path": "token"}
            }]}}],
            "containers": [{"volumeMounts": [{
                "name": "openbao-token", "mountPath": "/var/run/secrets/openbao", "readOnly": true
            }]}]
        }),
    )
}

/// Merges `extra` into `base`: objects key by key, arrays element by element
/// (so `{"containers": [{"securityContext": ...}]}` changes the first
/// container), anything else replaced.
fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (Value::Array(b), Value::Array(e)) => {
            for (i, v) in e.into_iter().enumerate() {
                match b.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => b.push(v),
                }
            }
        }
        (b, e) => *b = e,
    }
}

impl TestBed {
    /// Creates a probe pod and waits until it runs and has an address.
    pub async fn probe(&self, namespace: &str, name: &str) -> Result<Probe> {
        self.probe_with(namespace, name, json!({})).await
    }

    /// Creates probe pods all at once, then waits until each runs.
    pub async fn probes(&self, pods: &[(&str, &str)]) -> Result<Vec<Probe>> {
        for (namespace, name) in pods {
            self.apply(&probe_pod(self, namespace, name, json!({}))?)?;
        }
        let mut running = Vec::new();
        for (namespace, name) in pods {
            running.push(self.wait_running(namespace, name).await?);
        }
        Ok(running)
    }

    /// Creates a probe pod with `extra` merged into its spec; waits until it runs.
    pub async fn probe_with(&self, namespace: &str, name: &str, extra: Value) -> Result<Probe> {
        self.apply(&probe_pod(self, namespace, name, extra)?)?;
        self.wait_running(namespace, name).await
    }

    /// Waits until the pod runs, is ready and has an address.
    pub async fn wait_running(&self, namespace: &str, name: &str) -> Result<Probe> {
        eventually(
            &format!("pod {namespace}/{name} to run"),
            POD_START,
            || async {
                let out = run_ok(
                    self.kubectl()
                        .args(["-n", namespace, "get", "pod", name, "-o", "json"]),
                )?;
                let pod: Value = serde_json::from_str(&out)?;
                let phase = pod["status"]["phase"].as_str().unwrap_or_default();
                if phase == "Failed" || phase == "Succeeded" {
                    bail!("pod {namespace}/{name} ended: {}", pod["status"]);
                }
                let ready = pod["status"]["containerStatuses"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().all(|c| c["ready"] == true));
                let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
                Ok(
                    (phase == "Running" && ready && !ip.is_empty()).then(|| Probe {
                        namespace: namespace.into(),
                        name: name.into(),
                        ip: ip.into(),
                    }),
                )
            },
        )
        .await
    }

    /// Runs a shell script in the probe (`kubectl exec`, through the API
    /// server and the kubelet, as a person would).
    pub fn exec(&self, probe: &Probe, script: &str) -> Result<Output> {
        run(self.kubectl().args([
            "-n",
            &probe.namespace,
            "exec",
            &probe.name,
            "--",
            "sh",
            "-c",
            script,
        ]))
    }

    /// One HTTP GET from inside the probe, with a 3-second budget: the body,
    /// or the error wget and the network gave.
    pub fn fetch(&self, from: &Probe, url: &str) -> Result<Result<String, String>> {
        let out = self.exec(from, &format!("timeout 3 wget -q -O - '{url}' 2>&1"))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("error: unable to upgrade connection")
            || stderr.contains("container not found")
        {
            bail!(
                "kubectl exec into {}/{} failed: {stderr}",
                from.namespace,
                from.name
            );
        }
        Ok(if out.status.success() {
            Ok(text)
        } else {
            Err(format!("exit {}: {text}{stderr}", out.status))
        })
    }

    /// Waits until `from` gets `url` and the page says `expect`.
    pub async fn reaches(&self, from: &Probe, url: &str, expect: &str) -> Result<()> {
        eventually(
            &format!("{}/{} to reach {url}", from.namespace, from.name),
            POLICY_SYNC,
            || async {
                match self.fetch(from, url)? {
                    Ok(body) if body.contains(expect) => Ok(Some(())),
                    Ok(body) => bail!("{url} answered {body:?}, expected {expect:?}"),
                    Err(e) => bail!("{e}"),
                }
            },
        )
        .await
    }

    /// Waits until `from` can no longer get `url`, then checks that it stays
    /// so for three attempts in a row (each a full 3-second try).
    pub async fn cannot_reach(&self, from: &Probe, url: &str) -> Result<()> {
        eventually(
            &format!("{}/{} to be refused {url}", from.namespace, from.name),
            POLICY_SYNC,
            || async { Ok(self.fetch(from, url)?.is_err().then_some(())) },
        )
        .await?;
        for attempt in 1..=3 {
            if let Ok(body) = self.fetch(from, url)? {
                bail!(
                    "{}/{} reached {url} on check {attempt} after being refused: {body:?}",
                    from.namespace,
                    from.name
                );
            }
        }
        Ok(())
    }

    /// Creates a namespace that no policy governs (the control in isolation tests).
    pub fn open_namespace(&self, name: &str) -> Result<()> {
        run_ok(self.kubectl().args(["create", "namespace", name]))?;
        Ok(())
    }
}
