//! Reconcilers, one per kind, and the pure builders they apply.

pub mod applied;
pub mod authorization;
pub mod dataset;
pub mod export;
pub mod offboard;
pub mod scenario;
pub mod scenario_rules;
pub mod summary;
pub mod tenant;
pub mod workloads;

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

/// Publishes an Event about `obj` with the operator's one recorder (so kube
/// aggregates repeats into a series); a failure to publish is logged, never
/// fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(
    recorder: &Recorder,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish event");
    }
}

/// Writes `status` as the status of the object `name` of `api`, applied
/// server-side by the operator's field manager: the one status write of
/// every kind (its API version and kind from the type, never a literal).
pub async fn apply_status<K>(
    api: &kube::Api<K>,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &kube::api::PatchParams::apply(crate::context::FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;

    use crate::api::ExportRequest;

    /// The status write, as the API server receives it: a server-side apply
    /// of the status subresource by the operator's field manager, forced,
    /// whose body names the type's API version and kind.
    #[tokio::test]
    async fn a_status_is_applied_to_the_status_subresource_with_the_types_version_and_kind() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("one request");
            assert_eq!(request.method(), http::Method::PATCH);
            let uri = request.uri().to_string();
            assert!(
                uri.starts_with(
                    "/apis/publicdata.io/v1alpha1/namespaces/acme-dev/exportrequests/e1/status?"
                ),
                "{uri}"
            );
            assert!(uri.contains("force=true"), "{uri}");
            assert!(
                uri.contains(&format!("fieldManager={}", crate::context::FIELD_MANAGER)),
                "{uri}"
            );
            assert_eq!(
                request.headers()[http::header::CONTENT_TYPE],
                "application/apply-patch+yaml"
            );
            let body = request.into_body().collect_bytes().await.expect("a body");
            let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(body["apiVersion"], "publicdata.io/v1alpha1");
            assert_eq!(body["kind"], "ExportRequest");
            assert_eq!(body["status"]["phase"], "Failed");
            // The request as the repo's example files it, named e1.
            let mut answer: serde_json::Value =
                serde_yaml::from_str(include_str!("../../../examples/export.yaml"))
                    .expect("examples/export.yaml");
            answer["metadata"] = serde_json::json!({"name": "e1", "namespace": "acme-dev"});
            send.send_response(
                Response::builder()
                    .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
                    .expect("a response"),
            );
        });
        let client = kube::Client::new(service, "default");
        let api: kube::Api<ExportRequest> = kube::Api::namespaced(client, "acme-dev");
        super::apply_status(&api, "e1", &serde_json::json!({"phase": "Failed"}))
            .await
            .expect("applied");
        server.await.expect("the server saw the request");
    }
}
