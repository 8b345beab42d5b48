//! The test bed itself: each test proves one thing the later tests rely on,
//! against the real processes.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::{TestBed, eventually, run, run_err, run_ok, unique};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The namespace controller of kube-controller-manager finalizes a deleted
/// namespace: its contents are removed and the namespace disappears.
#[tokio::test]
async fn deleted_namespace_is_finalized_by_the_controller_manager() -> Result<()> {
    let bed = TestBed::from_env()?;
    let client = bed.client().await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let name = unique("gone");
    namespaces
        .create(&PostParams::default(), &namespace(&name, &[]))
        .await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, &name);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "content"}, "data": {"k": "v"}}))?,
    )
    .await?;

    namespaces.delete(&name, &DeleteParams::default()).await?;
    // Without the namespace controller it would stay Terminating forever,
    // holding the `kubernetes` finalizer.
    let ns = namespaces.get(&name).await?;
    let phase = ns.status.and_then(|s| s.phase);
    ensure!(
        phase.as_deref() == Some("Terminating"),
        "a deleted namespace should be Terminating first, was {phase:?}"
    );
    eventually("the namespace to disappear", WAIT, || async {
        Ok(namespaces.get_opt(&name).await?.is_none().then_some(()))
    })
    .await
}

/// The deployment controller makes a ReplicaSet, the replicaset controller
/// makes Pods, the scheduler places them on the node and the kubelet runs
/// them (the probe image, imported into the node's containerd).
#[tokio::test]
async fn deployment_gets_a_replicaset_and_its_pods_run_on_the_node() -> Result<()> {
    let bed = TestBed::from_env()?;
    let client = bed.client().await?;
    let ns = unique("deploy");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace(&ns, &[]))
        .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": bed.var("PROBE_IMAGE").context("no PROBE_IMAGE")?,
                                         "imagePullPolicy": "Never", "command": ["sleep", "3600"]}],
                         "terminationGracePeriodSeconds": 1}
            }
        }
    }))?;
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    let uid = created
        .metadata
        .uid
        .context("created deployment has no uid")?;

    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let rs = eventually("a ReplicaSet owned by the Deployment", WAIT, || async {
        Ok(replicasets
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .find(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid && o.kind == "Deployment")
            }))
    })
    .await?;
    ensure!(rs.spec.replicas == Some(2));

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let node = bed
        .var("TESTBED_NODE_NAME")
        .context("no TESTBED_NODE_NAME")?;
    eventually(
        "two Pods of the ReplicaSet running on the node",
        WAIT,
        || async {
            let items = pods.list(&ListParams::default()).await?.items;
            let running = items
                .iter()
                .filter(|p| {
                    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                })
                .count();
            Ok((items.len() == 2 && running == 2).then_some(()))
        },
    )
    .await?;
    Api::<Namespace>::all(client)
        .delete(&ns, &Default::default())
        .await?;
    Ok(())
}

/// RBAC is on: an unprivileged user is forbidden, and a Role grants exactly
/// what it says, in its namespace only.
#[tokio::test]
async fn rbac_forbids_an_impersonated_unprivileged_user() -> Result<()> {
    let bed = TestBed::from_env()?;
    let client = bed.client().await?;
    let granted = unique("rbac-a");
    let other = unique("rbac-b");
    for ns in [&granted, &other] {
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace(ns, &[]))
            .await?;
    }
    let user = unique("mallory");

    let stderr = run_err(
        bed.kubectl()
            .args(["get", "configmaps", "-n", &granted, "--as", &user]),
    )?;
    ensure!(
        stderr.contains("Forbidden"),
        "expected Forbidden, got: {stderr}"
    );

    run_ok(bed.kubectl().args([
        "-n",
        &granted,
        "create",
        "role",
        "read-configmaps",
        "--verb=get,list",
        "--resource=configmaps",
    ]))?;
    run_ok(bed.kubectl().args([
        "-n",
        &granted,
        "create",
        "rolebinding",
        "read-configmaps",
        "--role=read-configmaps",
        "--user",
        &user,
    ]))?;
    let can = |verb: &str, resource: &str, ns: &str| -> Result<bool> {
        // `auth can-i` exits 0 for yes and 1 for no.
        let out = run(bed
            .kubectl()
            .args(["auth", "can-i", verb, resource, "-n", ns, "--as", &user]))?;
        Ok(out.status.success())
    };
    ensure!(
        can("list", "configmaps", &granted)?,
        "the Role should grant list"
    );
    ensure!(
        !can("list", "secrets", &granted)?,
        "the Role grants no secrets"
    );
    ensure!(
        !can("delete", "configmaps", &granted)?,
        "the Role grants no delete"
    );
    ensure!(
        !can("list", "configmaps", &other)?,
        "the Role is for one namespace"
    );
    run_ok(
        bed.kubectl()
            .args(["get", "configmaps", "-n", &granted, "--as", &user]),
    )?;
    let stderr = run_err(
        bed.kubectl()
            .args(["get", "configmaps", "-n", &other, "--as", &user]),
    )?;
    ensure!(
        stderr.contains("Forbidden"),
        "expected Forbidden, got: {stderr}"
    );
    Ok(())
}

/// A ValidatingAdmissionPolicy with a binding rejects a request that violates it.
#[tokio::test]
async fn validating_admission_policy_rejects_a_violating_request() -> Result<()> {
    let bed = TestBed::from_env()?;
    let client = bed.client().await?;
    let name = unique("require-owner");
    let ns = unique("vap");
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &namespace(&ns, &[("policy-test", &name)]),
        )
        .await?;
    // Policy and binding as YAML through kubectl, the way users apply them.
    let manifest = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["configmaps"]
  validations:
  - expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
    message: "every ConfigMap needs an owner label"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        policy-test: {name}
"#
    );
    let file = bed.dir.join(format!("{name}.yaml"));
    std::fs::write(&file, manifest)?;
    run_ok(bed.kubectl().arg("apply").arg("-f").arg(&file))?;

    let cms: Api<ConfigMap> = Api::namespaced(client, &ns);
    let unlabelled: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "nolabel"}}))?;
    // The policy takes effect once the API server has loaded it.
    let message = eventually(
        "the policy to reject an unlabelled ConfigMap",
        WAIT,
        || async {
            match cms.create(&PostParams::default(), &unlabelled).await {
                Err(kube::Error::Api(status)) => Ok(Some(status.message)),
                Err(e) => Err(e.into()),
                Ok(_) => {
                    cms.delete("nolabel", &DeleteParams::default()).await?;
                    Ok(None)
                }
            }
        },
    )
    .await?;
    ensure!(
        message.contains("every ConfigMap needs an owner label"),
        "unexpected rejection: {message}"
    );
    let labelled: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "labelled", "labels": {"owner": "team-a"}}
    }))?;
    cms.create(&PostParams::default(), &labelled).await?;

    run_ok(bed.kubectl().arg("delete").arg("-f").arg(&file))?;
    std::fs::remove_file(&file)?;
    Ok(())
}

/// A ServiceAccount token from the TokenRequest API logs in to OpenBao through
/// the Kubernetes auth method (OpenBao calls TokenReview on this API server)
/// and gets its role's policy; a token of the same-named ServiceAccount in
/// another namespace is refused.
#[tokio::test]
async fn service_account_token_logs_in_to_openbao_only_for_its_namespace() -> Result<()> {
    let bed = TestBed::from_env()?;
    let client = bed.client().await?;
    let home = unique("bao-home");
    let stranger = unique("bao-other");
    for ns in [&home, &stranger] {
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace(ns, &[]))
            .await?;
        Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "workload"}}))?,
            )
            .await?;
    }

    let root = bed.vault_root()?;
    let policy = format!("{home}-read");
    vaultrs::sys::policy::set(
        &root,
        &policy,
        &format!(r#"path "secret/data/{home}/*" {{ capabilities = ["read"] }}"#),
    )
    .await?;
    let role = home.clone();
    let audience = "openbao";
    run_ok(bed.bao().args([
        "write",
        &format!("auth/kubernetes/role/{role}"),
        "bound_service_account_names=workload",
        &format!("bound_service_account_namespaces={home}"),
        &format!("audience={audience}"),
        &format!("token_policies={policy}"),
        "token_ttl=10m",
        "token_max_ttl=30m",
    ]))?;
    let mut data = BTreeMap::new();
    data.insert("answer", "42");
    vaultrs::kv2::set(&root, "secret", &format!("{home}/config"), &data).await?;

    // TokenRequest API, through kubectl.
    let token_of = |ns: &str| -> Result<String> {
        let out = run_ok(bed.kubectl().args([
            "-n",
            ns,
            "create",
            "token",
            "workload",
            "--audience",
            audience,
            "--duration",
            "10m",
        ]))?;
        Ok(out.trim().to_string())
    };

    let login =
        vaultrs::auth::kubernetes::login(&root, "kubernetes", &role, &token_of(&home)?).await?;
    ensure!(
        login.policies.contains(&policy),
        "login should carry {policy}, got {:?}",
        login.policies
    );
    let workload = bed.vault_with_token(&login.client_token)?;
    let read: BTreeMap<String, String> =
        vaultrs::kv2::read(&workload, "secret", &format!("{home}/config")).await?;
    ensure!(read.get("answer").map(String::as_str) == Some("42"));
    // The policy is for this path only.
    let elsewhere: Result<BTreeMap<String, String>, _> =
        vaultrs::kv2::read(&workload, "secret", &format!("{stranger}/config")).await;
    ensure!(
        elsewhere.is_err(),
        "the token must not read outside its path"
    );

    let refused =
        vaultrs::auth::kubernetes::login(&root, "kubernetes", &role, &token_of(&stranger)?).await;
    match refused {
        Err(vaultrs::error::ClientError::APIError { code, errors }) => {
            ensure!(code == 403, "expected 403, got {code}: {errors:?}");
        }
        other => anyhow::bail!("a token from another namespace must be refused, got {other:?}"),
    }
    Ok(())
}

/// `testbed.sh up` fails loudly, with the component's log, when a component
/// cannot start: here kube-apiserver is given a flag it does not know.
#[tokio::test]
async fn a_component_that_cannot_start_fails_up_with_its_log() -> Result<()> {
    let bed = TestBed::from_env()?;
    let state = bed.dir.with_file_name(unique("broken"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/testbed.sh");
    let out = run(std::process::Command::new("bash")
        .arg(&script)
        .arg("up")
        .env("PUBLICDATA_TESTBED_DIR", &state)
        // The attempt fails at the API server, whatever the disk holds after
        // the main test bed took its share.
        .env("TESTBED_MIN_FREE_MIB", "0")
        .env("TESTBED_APISERVER_EXTRA_ARGS", "--no-such-flag=1"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "up must fail; it printed: {stderr}");
    ensure!(
        stderr.contains("kube-apiserver failed to start"),
        "up must name the component: {stderr}"
    );
    ensure!(
        stderr.contains("unknown flag: --no-such-flag"),
        "up must show the component's log: {stderr}"
    );
    // Nothing of the failed attempt keeps running.
    ensure!(
        !state.join("pids").exists(),
        "the failed attempt left processes behind"
    );
    run_ok(
        std::process::Command::new("bash")
            .arg(&script)
            .arg("down")
            .env("PUBLICDATA_TESTBED_DIR", &state),
    )?;
    ensure!(!state.exists(), "down should remove the state");
    Ok(())
}

/// PostgreSQL holds the example catalog's data and serves it over TCP only
/// with a password: to a pod through its Service, as the platform's roles;
/// the role of OpenBao's database engine reads no table, and a wrong password
/// is refused.
#[tokio::test]
async fn postgres_serves_the_catalog_to_a_pod_only_with_a_password() -> Result<()> {
    let bed = TestBed::from_env()?;
    let client = bed.client().await?;
    let ns = unique("pg");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace(&ns, &[]))
        .await?;
    let probe = bed.probe(&ns, "client").await?;
    let host = bed
        .var("POSTGRES_CLUSTER_HOST")
        .context("no POSTGRES_CLUSTER_HOST")?;
    let port = bed.var("POSTGRES_PORT").context("no POSTGRES_PORT")?;
    let db = bed.var("POSTGRES_DB").context("no POSTGRES_DB")?;
    let dir = bed
        .var("POSTGRES_PASSWORD_DIR")
        .context("no POSTGRES_PASSWORD_DIR")?;
    let password = |role: &str| -> Result<String> {
        Ok(std::fs::read_to_string(format!("{dir}/{role}.password"))?
            .trim()
            .to_string())
    };
    let query = |role: &str, password: &str, sql: &str| -> Result<(bool, String)> {
        let out = bed.exec(
            &probe,
            &format!(
                "PGPASSWORD='{password}' PGCONNECT_TIMEOUT=5 psql -X -tA -h {host} -p {port} -U {role} -d {db} -c \"{sql}\" 2>&1"
            ),
        )?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    };
    let count = "SELECT count(*) FROM market.enterprise_registry";
    let (ok, rows) = query(
        "publicdata_operator",
        &password("publicdata_operator")?,
        count,
    )?;
    ensure!(
        ok && rows == "120",
        "the operator's role reads the table: {rows}"
    );
    let (ok, text) = query("openbao", &password("openbao")?, count)?;
    ensure!(
        !ok && text.contains("permission denied"),
        "OpenBao's role must read no table: {text}"
    );
    let (ok, text) = query("publicdata_operator", "not-the-password", "SELECT 1")?;
    ensure!(
        !ok && text.contains("password authentication failed"),
        "a wrong password must be refused: {text}"
    );
    Api::<Namespace>::all(client)
        .delete(&ns, &Default::default())
        .await?;
    Ok(())
}
