#!/usr/bin/env bash
# Tests the Julia binding (bindings/julia) when julia is installed; otherwise says so and
# succeeds. Builds and installs libpanns with scripts/build-lib.sh first and points
# PANNS_LIBRARY at it. Set PANNS_FIXTURE_DIR to compare with the Rust-written fixture.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if ! command -v julia >/dev/null 2>&1; then
    echo "SKIPPED: julia not found on PATH (bindings/julia tests not run)"
    exit 0
fi

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PREFIX=${PANNS_PREFIX:-$TARGET/panns-prefix}
if [ -z "${PANNS_SKIP_BUILD:-}" ]; then
    "$ROOT/scripts/build-lib.sh" "$PREFIX"
fi
if [ -z "${PANNS_LIBRARY:-}" ]; then
    PANNS_LIBRARY=$(find "$PREFIX" -name 'libpanns.so' -print -quit)
    [ -n "$PANNS_LIBRARY" ] || { echo "libpanns.so not found under $PREFIX" >&2; exit 1; }
    export PANNS_LIBRARY
fi
cd "$ROOT"
julia --project=bindings/julia -e 'using Pkg; Pkg.test()'
