//! The publicdata operator: custom resources, the pure lifecycle, reconcilers,
//! the OpenBao/Vault backend.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod clock;
pub mod context;
pub mod controllers;
pub mod crdgen;
pub mod database;
pub mod dns;
pub mod early_exit;
pub mod evaluation;
pub mod failpoint;
pub mod fingerprint;
pub mod flags;
pub mod leader;
pub mod lifecycle;
pub mod naming;
pub mod oplog;
pub mod records;
pub mod register;
pub mod scan;
pub mod telemetry;
pub mod vault;
