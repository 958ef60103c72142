# Frontdesk tasks. `just` is optional: each recipe is one plain command.

# Start the server (SQLite at data/frontdesk.db unless DATABASE_URL says otherwise).
run:
    cargo run --release

# Every test, against SQLite and PostgreSQL (TEST_DATABASE_URL; FRONTDESK_TEST_BACKENDS=sqlite to skip it).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# What CI runs.
ci:
    bash .ci/run

# Load test against the release server, SQLite and PostgreSQL (skipped if unreachable), with
# baselines; writes target/bench/results.{json,md} and chart.svg. See docs/performance.md.
# Extra arguments pass through: `just bench --only ingest,e2e --backend sqlite`.
bench *ARGS:
    cargo build --release -p frontdesk-server -p frontdesk-bench
    target/release/frontdesk-bench --out target/bench {{ARGS}}

# The same, scaled down to finish in under two minutes.
bench-quick *ARGS:
    cargo build --release -p frontdesk-server -p frontdesk-bench
    target/release/frontdesk-bench --quick --out target/bench {{ARGS}}

# Mutation testing (cargo-mutants): the domain crate against its own unit tests, then the
# store's pure parts (error classification, storage health) against the store's unit tests
# that need no database. Reports in /tmp/frontdesk-mutants/; scores in docs/testing.md.
mutants:
    cargo mutants -j 2 --timeout 120 --package frontdesk-domain --test-package frontdesk-domain --output /tmp/frontdesk-mutants/domain
    cargo mutants -j 2 --timeout 120 --package frontdesk-store --file crates/frontdesk-store/src/error.rs --file crates/frontdesk-store/src/health.rs --test-package frontdesk-store --output /tmp/frontdesk-mutants/store -- --lib -- --skip group_commit
