//! The publicdata operator: custom resources, the pure lifecycle, reconcilers,
//! the OpenBao/Vault backend.
#![forbid(unsafe_code)]

pub mod api;
pub mod crdgen;
pub mod lifecycle;
