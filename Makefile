# The two commands of the README are `make demo` and `make test`.
.PHONY: demo test up down status unit e2e lint fmt crds bench bench-suspend bench-data-plane krew

demo:            ## start the test bed and show it (the main job)
	hack/demo.sh

test:            ## every test: fmt, clippy, unit, e2e against a fresh test bed
	hack/test.sh

up:              ## start the test bed (.testbed/default)
	e2e/testbed/testbed.sh up

down:            ## stop the test bed and remove its state
	e2e/testbed/testbed.sh down

status:
	e2e/testbed/testbed.sh status

unit:
	cargo test --workspace --exclude e2e && cargo test -p e2e --lib

e2e:             ## e2e tests against an already running .testbed/test
	PUBLICDATA_TESTBED_DIR=$(CURDIR)/.testbed/test cargo test -p e2e --tests

lint:
	cargo fmt --all --check && cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

krew:            ## package the plugin and install it with krew from .krew.yaml
	hack/krew.sh

crds:            ## regenerate crds/ from the Rust types
	cargo run -q -p publicdata-operator --bin crdgen

bench:           ## the operator at scale (hack/bench.sh [N ...], default 1000): one table, see docs/performance.md
	hack/bench.sh

bench-suspend:   ## suspension on the node: access cut and last container gone, p50/p99
	hack/bench-suspend.sh
bench-data-plane: ## approval to first prod query, suspension to dead database session, p50/p99
	hack/bench-data-plane.sh
