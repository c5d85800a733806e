#!/usr/bin/env bash
# The main job: builds the csmp binary in release and runs `csmp run ARGS...` with NATS and
# PostgreSQL available (scripts/with-stack.sh provides them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release -p csmp-cli
target_dir=${CARGO_TARGET_DIR:-target}
# Help needs no servers.
for arg in "$@"; do
  case "$arg" in
    -h | --help) exec "$target_dir/release/csmp" run "$@" ;;
  esac
done
exec bash scripts/with-stack.sh "$target_dir/release/csmp" run "$@"
