#!/usr/bin/env bash
# The main job: builds the csmp binary in release and runs `csmp run ARGS...` with NATS and
# PostgreSQL available (scripts/with-stack.sh provides them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p csmp-cli
target_dir=${CARGO_TARGET_DIR:-target}
exec bash scripts/with-stack.sh "$target_dir/release/csmp" run "$@"
