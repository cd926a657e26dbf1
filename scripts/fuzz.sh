#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 20) with cargo-fuzz, installing it when missing.
# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP lets this stable toolchain take
# them (no sanitizer: `-s none`, libFuzzer's coverage-guided search only).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-20}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in request_path command_body; do
  cargo fuzz run -s none -O "$target" -- -max_total_time="$seconds" 2>&1 | tail -1
done
