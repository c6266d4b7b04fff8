#!/usr/bin/env bash
# Runs every test of panns: the Rust workspace (unit, integration, doc and README
# tests, header drift), then the C, C++, Go, Julia and Python bindings against one
# index file written by Rust. Prints one summary line, "suites: N passed, N failed, N skipped"
# (a suite that could not run, e.g. Julia without julia, exits 77 and counts as skipped);
# exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
bash scripts/setup.sh || { echo "setup failed"; exit 1; }

# suite NAME CMD...: exit status 0 passed, 77 skipped, else failed (scripts/lib-suites.sh).
source scripts/lib-suites.sh

suite suites bash scripts/check-suites.sh
suite rust cargo test --workspace
suite readme python3 scripts/check-readme.py

# One index, built and searched by Rust, that every binding must open and agree with.
export PANNS_FIXTURE_DIR="$CARGO_TARGET_DIR/fixture"
suite fixture cargo run -q -p panns-ffi --example fixture -- "$PANNS_FIXTURE_DIR"

for lang in c cpp go julia python; do
  if [ -f "bindings/$lang/test.sh" ]; then
    suite "$lang" bash "bindings/$lang/test.sh"
  fi
done

# The hostile-file campaign through the CLI, C, Go and Python, kill -9 and a full disk
# (small here; `scripts/campaign.sh 2500 50` is the long run).
suite campaign bash scripts/campaign.sh 10 8

summary
