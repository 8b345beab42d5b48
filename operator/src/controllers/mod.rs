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
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Publishes an Event about `obj`; a failure to publish is logged, never fatal.
pub async fn publish<K: Resource<DynamicType = ()>>(
    client: &kube::Client,
    reporter: &Reporter,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let recorder = Recorder::new(client.clone(), reporter.clone());
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
