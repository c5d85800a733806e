# Recipes for working on csmp; each calls a script of scripts/ or cargo.

set positional-arguments

# Build csmp in release and run the main job with NATS and PostgreSQL available.
run *ARGS:
    bash scripts/main-job.sh "$@"

# Formatting, lints and every test, as CI runs them.
test:
    bash scripts/test.sh

# The command and projection benchmarks, in release, with NATS and PostgreSQL available.
bench:
    bash scripts/with-stack.sh cargo run --release -p csmp-bench --bin bench-commands
    bash scripts/with-stack.sh cargo run --release -p csmp-bench --bin bench-projection
