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
