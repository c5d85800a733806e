#!/usr/bin/env bash
# The project's test command, also what CI runs: formatting, lints, then every test of the
# workspace against real NATS and PostgreSQL, which scripts/with-stack.sh provides. Exits
# non-zero when a stage fails; the last lines printed are the test runner's summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check

echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets -- -D warnings

# Documentation examples run first, as nextest does not run them, so that the runner's own
# summary closes the output.
if cargo nextest --version >/dev/null 2>&1; then
  tests='cargo test --workspace --doc && cargo nextest run --workspace --no-fail-fast'
else
  tests='cargo test --workspace --doc && cargo test --workspace --no-fail-fast --lib --bins --tests'
fi
echo "== tests: $tests" >&2
exec bash scripts/with-stack.sh bash -c "$tests"
