#!/usr/bin/env bash
# Tests the Go binding (bindings/go): builds and installs libpanns with scripts/build-lib.sh,
# points pkg-config and the dynamic loader at it, then runs gofmt, go vet, go test and (when
# the toolchain supports it) go test -race.
#
#   bindings/go/test.sh [GO TEST ARGS...]
#
# Environment: CARGO_TARGET_DIR, PANNS_PROFILE (cargo profile, default dev, as in
# scripts/build-lib.sh), PANNS_PREFIX (default $CARGO_TARGET_DIR/panns-prefix),
# PANNS_SKIP_BUILD=1 (use an existing prefix), PANNS_GO_RACE=0 (skip the -race run),
# PANNS_FIXTURE_DIR (the Rust-written cross-language fixture; generated when unset).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PREFIX=${PANNS_PREFIX:-$TARGET/panns-prefix}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:-} CGO_ENABLED=1

if [ -z "${PANNS_SKIP_BUILD:-}" ]; then
    "$ROOT/scripts/build-lib.sh" "$PREFIX"
fi
PC=$(find "$PREFIX" -name panns.pc -print -quit)
[ -n "$PC" ] || { echo "panns.pc not found under $PREFIX (run scripts/build-lib.sh)" >&2; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$PC")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
LIBDIR=$(pkg-config --variable=libdir panns)
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ -z "${PANNS_FIXTURE_DIR:-}" ]; then
    PANNS_FIXTURE_DIR=${TMPDIR:-/tmp}/panns-fixture-go
    (cd "$ROOT" && cargo run --quiet --profile "${PANNS_PROFILE:-dev}" -p panns-ffi --example fixture -- "$PANNS_FIXTURE_DIR")
    export PANNS_FIXTURE_DIR
fi

cd "$ROOT/bindings/go"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
    echo "gofmt: these files need formatting:" >&2
    echo "$unformatted" >&2
    exit 1
fi
go vet ./...

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
set +e
go test -count=1 -v "$@" ./... 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -c -- '^--- PASS' "$LOG" || true)
failed=$(grep -c -- '^--- FAIL' "$LOG" || true)
skipped=$(grep -c -- '^--- SKIP' "$LOG" || true)
[ "$rc" -eq 0 ] || { echo "go: $passed passed, $failed failed, $skipped skipped"; exit "$rc"; }
if [ "$passed" -eq 0 ]; then
    echo "bindings/go: no test ran" >&2
    exit 1
fi

if [ "${PANNS_GO_RACE:-1}" != 0 ]; then
    if go test -race -count=1 -run '^$' . >/dev/null 2>&1; then
        go test -race -count=1 "$@" ./...
    else
        echo "bindings/go: -race is not supported here; race run skipped"
    fi
fi
echo "go: $passed passed, $failed failed, $skipped skipped"
