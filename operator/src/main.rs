//! The publicdata operator. For now a placeholder that reports its version;
//! the reconcilers arrive with the OperatorAuthorization work.
#![forbid(unsafe_code)]

use clap::Parser;

/// Kubernetes operator for public data authorized operation.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {}

fn main() {
    let _args = Args::parse();
    println!("publicdata-operator {}", env!("CARGO_PKG_VERSION"));
}
