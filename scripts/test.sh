#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the catalogue's freshness, unit tests and the
# end-to-end tests (real PostgreSQL and Redis, ajax-sim and asf-proxy as processes).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh

spec=../shared/ajax-api/swagger-1.135.0.yaml
if [ -f "$spec" ]; then
  python3 tools/gen_catalogue.py --check "$spec"
fi

python3 tools/check_docker.py
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# End-to-end tests start the workspace's binaries, so build them all first.
cargo build --workspace --bins --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
