//! Reconcilers, one per kind, and the pure builders they apply.

pub mod authorization;
pub mod export;
pub mod offboard;
pub mod scenario;
pub mod scenario_rules;
pub mod tenant;
pub mod workloads;
