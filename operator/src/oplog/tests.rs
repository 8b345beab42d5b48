use serde_json::json;

use super::*;
use crate::records::MemoryStore;

fn example(name: &str, uid: &str) -> OperatorAuthorization {
    let text = include_str!("../../../examples/authorization.yaml");
    let mut oa: OperatorAuthorization =
        serde_yaml::from_str(text).expect("the example authorization parses");
    oa.metadata.name = Some(name.into());
    oa.metadata.uid = Some(uid.into());
    oa
}

fn operator() -> Operator {
    Operator {
        namespace: "publicdata-system".into(),
        service_account: "publicdata-operator".into(),
    }
}

fn directory() -> Directory {
    let harbor = example("harbor-analytics", "u-harbor");
    let mut other = example("river-data", "u-river");
    other.spec.members.retain(|m| m.user == "wang.fang");
    Directory::new([&harbor, &other], operator())
}

fn set(tenants: &[&str]) -> BTreeSet<String> {
    tenants.iter().map(|t| t.to_string()).collect()
}

fn event(user: &str, namespace: Option<&str>) -> Value {
    let mut e = json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete",
        "verb": "get", "user": {"username": user},
        "objectRef": {"resource": "secrets", "name": "db"},
        "responseStatus": {"code": 403},
    });
    if let Some(ns) = namespace {
        e["objectRef"]["namespace"] = json!(ns);
    }
    e
}

#[test]
fn an_api_request_belongs_to_the_tenant_whose_namespace_it_touched() {
    let d = directory();
    assert_eq!(
        d.kubernetes(&event("someone", Some("harbor-analytics-prod"))),
        set(&["harbor-analytics"])
    );
    // A namespace that only looks like a tenant's is nobody's.
    assert!(d.kubernetes(&event("someone", Some("kube-dev"))).is_empty());
    assert!(d.kubernetes(&event("someone", Some("default"))).is_empty());
}

#[test]
fn a_workload_and_a_member_are_followed_outside_their_namespaces() {
    let d = directory();
    // A workload's ServiceAccount listing namespaces (cluster scope).
    assert_eq!(
        d.kubernetes(&event(
            "system:serviceaccount:river-data-dev:workload",
            None
        )),
        set(&["river-data"])
    );
    // A member of both tenants trying another namespace: both tenants see it.
    assert_eq!(
        d.kubernetes(&event("wang.fang", Some("kube-system"))),
        set(&["harbor-analytics", "river-data"])
    );
    assert_eq!(
        d.kubernetes(&event("li.ming", None)),
        set(&["harbor-analytics"])
    );
    // Impersonation is the impersonated user's act.
    let mut e = event("admin", None);
    e["impersonatedUser"] = json!({"username": "li.ming", "groups": ["x"]});
    assert_eq!(d.kubernetes(&e), set(&["harbor-analytics"]));
}

#[test]
fn the_operators_own_requests_and_received_stages_are_nobodys_share() {
    let d = directory();
    let own = event(
        "system:serviceaccount:publicdata-system:publicdata-operator",
        Some("harbor-analytics-dev"),
    );
    assert!(d.kubernetes(&own).is_empty());
    let mut received = event("li.ming", Some("harbor-analytics-dev"));
    received["stage"] = json!("RequestReceived");
    assert!(d.kubernetes(&received).is_empty());
}

fn bao(path: &str, policies: &[&str], sa: Option<(&str, &str)>) -> Value {
    let mut e = json!({
        "type": "response",
        "auth": {"policies": policies, "display_name": "x"},
        "request": {"path": path, "operation": "read"},
    });
    if let Some((ns, name)) = sa {
        e["auth"]["metadata"] =
            json!({"service_account_namespace": ns, "service_account_name": name});
    }
    e
}

#[test]
fn an_openbao_call_belongs_to_the_tenant_of_its_mount_policy_or_service_account() {
    let d = directory();
    assert_eq!(
        d.openbao(&bao("auth/k8s-harbor-analytics/login", &[], None)),
        set(&["harbor-analytics"])
    );
    assert_eq!(
        d.openbao(&bao("tenants/river-data/data/app", &["root"], None)),
        set(&["river-data"])
    );
    // A dataset read with the tenant's grants policy.
    assert_eq!(
        d.openbao(&bao(
            "datasets/data/transport/masked",
            &["default", "tenant-harbor-analytics-prod-grants"],
            None
        )),
        set(&["harbor-analytics"])
    );
    assert_eq!(
        d.openbao(&bao(
            "sys/capabilities-self",
            &["default"],
            Some(("river-data-prod", "workload"))
        )),
        set(&["river-data"])
    );
    // Unknown tenants, requests without a response, and the operator's
    // own calls are nobody's.
    assert!(
        d.openbao(&bao("tenants/gone/data/x", &["tenant-gone-dev"], None))
            .is_empty()
    );
    let mut request = bao("auth/k8s-harbor-analytics/login", &[], None);
    request["type"] = json!("request");
    assert!(d.openbao(&request).is_empty());
    assert!(
        d.openbao(&bao(
            "tenants/harbor-analytics/data/x",
            &["publicdata-operator"],
            Some(("publicdata-system", "publicdata-operator"))
        ))
        .is_empty()
    );
    // An environment's area and its database credentials, by path alone.
    for path in [
        "areas/harbor-analytics-dev/data/x",
        "database/creds/harbor-analytics-prod",
    ] {
        assert_eq!(
            d.openbao(&bao(path, &["default"], None)),
            set(&["harbor-analytics"]),
            "{path}"
        );
    }
}

#[test]
fn a_name_says_its_entries_and_digest() {
    let sha = "ab".repeat(32);
    let at: jiff::Timestamp = "2026-11-27T10:00:00.123Z".parse().unwrap();
    let name = object_name(at, "publicdata-operator-7c9-x2", 4, 17, &sha);
    assert_eq!(
        name,
        format!("20261127T100000.123Z-publicdata-operator-7c9-x2-4-n17-{sha}.jsonl")
    );
    assert_eq!(parse_name(&format!("a/b/{name}")), Some((17, sha.as_str())));
    assert_eq!(written_after(&format!("a/b/{name}")), Some(at));
    assert_eq!(parse_name("a/b/manifest.json"), None);
    assert_eq!(parse_name("x-n3-abc.jsonl"), None);
}

#[tokio::test]
async fn a_flush_writes_each_tenants_share_locked_and_it_reads_back() {
    let store = Arc::new(MemoryStore::default());
    let intake = Intake::new(store.clone(), "replica-a");
    let d = directory();
    let events = [
        event("li.ming", Some("harbor-analytics-dev")),
        event("wang.fang", None),
        event("nobody", Some("default")),
    ];
    {
        let mut buffer = intake.buffer();
        for e in &events {
            buffer.add(&d.kubernetes(e), Source::Kubernetes, e);
        }
        let b = bao("auth/k8s-river-data/login", &[], None);
        buffer.add(&d.openbao(&b), Source::OpenBao, &b);
    }
    let now = jiff::Timestamp::now();
    assert_eq!(intake.flush(&d, now).await, 3);
    assert_eq!(intake.flush(&d, now).await, 0, "nothing twice");

    let harbor = read(
        store.as_ref(),
        "harbor-analytics",
        "u-harbor",
        Source::Kubernetes,
    )
    .await
    .unwrap();
    assert_eq!(harbor, events[..2].to_vec());
    let river = summary(store.as_ref(), "river-data", "u-river", Source::Kubernetes)
        .await
        .unwrap();
    assert_eq!(
        river,
        Summary {
            objects: 1,
            entries: 1,
            first: river.first
        }
    );
    let bao_share = summary(store.as_ref(), "river-data", "u-river", Source::OpenBao)
        .await
        .unwrap();
    assert_eq!(bao_share.entries, 1);
    // Locked like key records.
    for (key, stored) in store.objects.lock().unwrap().iter() {
        let (mode, until) = stored.lock.clone().unwrap();
        assert_eq!(mode, records::MODE, "{key}");
        assert_eq!(until, records::years_after(now, records::KEY_RECORD_YEARS));
    }
    let kept = kept(store.as_ref(), "harbor-analytics", "u-harbor", "2046-11-27")
        .await
        .unwrap();
    assert_eq!(
        kept[0].what,
        "operation logs: Kubernetes API requests, 2 entries in 1 object(s)"
    );
    assert_eq!(
        kept[0].location,
        "memory://records/harbor-analytics/u-harbor/operation-logs/kubernetes/"
    );
    assert_eq!(
        kept[1].what,
        "operation logs: OpenBao calls, 0 entries in 0 object(s)"
    );
    // Kept until the oldest object's lock ends, which is before the
    // archive's own when the logs are older than the offboarding; a source
    // without objects says the archive's date.
    let oldest = summary(
        store.as_ref(),
        "harbor-analytics",
        "u-harbor",
        Source::Kubernetes,
    )
    .await
    .unwrap()
    .first
    .unwrap();
    assert!(oldest <= now);
    assert_eq!(
        kept[0].until,
        records::years_after(oldest, records::KEY_RECORD_YEARS)
            .strftime("%Y-%m-%d")
            .to_string()
    );
    assert_eq!(kept[1].until, "2046-11-27");
}

#[tokio::test]
async fn an_object_altered_in_the_store_is_named() {
    let store = Arc::new(MemoryStore::default());
    let intake = Intake::new(store.clone(), "r");
    let d = directory();
    let e = event("li.ming", Some("harbor-analytics-dev"));
    intake
        .buffer()
        .add(&d.kubernetes(&e), Source::Kubernetes, &e);
    intake.flush(&d, jiff::Timestamp::now()).await;
    {
        let mut objects = store.objects.lock().unwrap();
        let stored = objects.values_mut().next().unwrap();
        stored.bytes = b"{\"verb\":\"nothing to see\"}\n".to_vec();
    }
    let err = read(
        store.as_ref(),
        "harbor-analytics",
        "u-harbor",
        Source::Kubernetes,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, records::Error::Digest { .. }), "{err}");
}

/// A store that refuses every write until told otherwise.
#[derive(Default)]
struct Down {
    inner: MemoryStore,
    up: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for Down {
    fn location(&self) -> String {
        self.inner.location()
    }
    async fn put_locked(
        &self,
        key: &str,
        bytes: &[u8],
        until: jiff::Timestamp,
    ) -> Result<(), records::Error> {
        if !self.up.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(records::Error::Store {
                location: self.location(),
                message: "connection refused".into(),
            });
        }
        self.inner.put_locked(key, bytes, until).await
    }
    async fn get(&self, key: &str) -> Result<Option<records::Stored>, records::Error> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<records::Listed>, records::Error> {
        self.inner.list(prefix).await
    }
}

#[tokio::test]
async fn entries_wait_for_a_store_that_is_down_and_keep_their_order() {
    let store = Arc::new(Down::default());
    let intake = Intake::new(store.clone(), "r");
    let d = directory();
    let first = event("li.ming", Some("harbor-analytics-dev"));
    let second = event("li.ming", Some("harbor-analytics-prod"));
    intake
        .buffer()
        .add(&d.kubernetes(&first), Source::Kubernetes, &first);
    assert_eq!(intake.flush(&d, jiff::Timestamp::now()).await, 0);
    intake
        .buffer()
        .add(&d.kubernetes(&second), Source::Kubernetes, &second);
    store.up.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(intake.flush(&d, jiff::Timestamp::now()).await, 1);
    let got = read(
        &store.inner,
        "harbor-analytics",
        "u-harbor",
        Source::Kubernetes,
    )
    .await
    .unwrap();
    assert_eq!(got, vec![first, second]);
}

#[test]
fn a_full_buffer_drops_and_counts_instead_of_growing() {
    let mut buffer = Buffer {
        held: BUFFER_LIMIT,
        ..Buffer::default()
    };
    let e = event("li.ming", None);
    buffer.add(&set(&["harbor-analytics"]), Source::Kubernetes, &e);
    assert_eq!(buffer.dropped, 1);
    assert!(buffer.entries.is_empty());
}

#[test]
fn only_the_shared_token_is_let_in() {
    let mut headers = HeaderMap::new();
    assert!(!authorized(&headers, "s3cret"));
    headers.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
    assert!(!authorized(&headers, "s3cret"));
    headers.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
    assert!(authorized(&headers, "s3cret"));
    // No token configured lets nobody in.
    headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
    assert!(!authorized(&headers, ""));
}

fn bao_write(path: &str, operation: &str, sa: Option<(&str, &str)>) -> Value {
    let mut e = json!({"type": "response", "time": "2026-11-28T01:00:00Z",
        "request": {"operation": operation, "path": path}, "auth": {"policies": ["root"]}});
    if let Some((ns, name)) = sa {
        e["auth"]["metadata"] =
            json!({"service_account_namespace": ns, "service_account_name": name});
    }
    e
}

#[test]
fn a_change_to_a_tenants_openbao_configuration_by_anyone_but_the_operator_is_named() {
    let d = directory();
    for path in [
        "sys/policy/tenant-harbor-analytics-dev",
        "sys/policies/acl/tenant-harbor-analytics-prod-grants",
        "auth/k8s-harbor-analytics/role/dev",
        "auth/k8s-harbor-analytics/config",
        "sys/auth/k8s-harbor-analytics",
        "sys/auth/k8s-harbor-analytics/tune",
        "sys/mounts/tenants/harbor-analytics",
        "sys/mounts/areas/harbor-analytics-prod",
        "identity/entity/name/publicdata-harbor-analytics-dev",
        "auth/publicdata-workloads/role/harbor-analytics-prod",
    ] {
        assert_eq!(
            d.openbao_change(&bao_write(path, "update", None)),
            Some("harbor-analytics".to_string()),
            "{path}"
        );
    }
    // Reads, requests (not responses), failed writes, the operator's own
    // writes, data written by workloads, and unknown tenants say nothing.
    let read = bao_write("sys/policy/tenant-harbor-analytics-dev", "read", None);
    let mut request = bao_write("sys/policy/tenant-harbor-analytics-dev", "update", None);
    request["type"] = json!("request");
    let mut failed = bao_write("sys/policy/tenant-harbor-analytics-dev", "update", None);
    failed["error"] = json!("permission denied");
    let own = bao_write(
        "sys/policy/tenant-harbor-analytics-dev",
        "update",
        Some(("publicdata-system", "publicdata-operator")),
    );
    let data = bao_write("tenants/harbor-analytics/data/dev/x", "create", None);
    let unknown = bao_write("sys/policy/tenant-nobody-dev", "update", None);
    for e in [read, request, failed, own, data, unknown] {
        assert_eq!(d.openbao_change(&e), None, "{e}");
    }
}
