#!/usr/bin/env bash
# Tests the Go binding (bindings/go): builds and installs libpanns with scripts/build-lib.sh,
# points pkg-config and the dynamic loader at it, then runs gofmt, go vet, go test and (when
# the toolchain supports it) go test -race. Finally follows bindings/go/README.md literally in a
# scratch module outside the repository (its install steps, with PANNS_REPO and PREFIX set to
# this checkout and a scratch prefix, and its example program), without LD_LIBRARY_PATH.
#
#   bindings/go/test.sh [GO TEST ARGS...]
#
# Environment: CARGO_TARGET_DIR, PANNS_PROFILE (cargo profile, default release, as in
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
    (cd "$ROOT" && cargo run --quiet --profile dev -p panns-ffi --example fixture -- "$PANNS_FIXTURE_DIR")
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
# The README, literally, in a scratch module outside the repository.
block() { # the fenced block after the marker line $1 in README.md
    awk -v m="$1" '$0 == m {found = 1; next} found && /^```/ {if (on) exit; on = 1; next} on' "$ROOT/bindings/go/README.md"
}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/panns-go-user.XXXXXX")
trap 'rm -f "$LOG"; rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH/app"
block '<!-- go-readme-main -->' >"$SCRATCH/app/main.go"
block '<!-- go-readme-steps -->' |
    sed -e "s|^PANNS_REPO=.*|PANNS_REPO=$ROOT|" -e "s|^PREFIX=.*|PREFIX=$SCRATCH/prefix|" >"$SCRATCH/steps.sh"
grep -q '^go build' "$SCRATCH/steps.sh" && grep -q '^package main' "$SCRATCH/app/main.go" ||
    { echo "bindings/go/README.md: the marked blocks were not found" >&2; exit 1; }
echo "+ README steps in $SCRATCH/app (a new module, LD_LIBRARY_PATH unset)"
readme_out=$(cd "$SCRATCH/app" && go mod init example.com/pannsuser >/dev/null 2>&1 &&
    env -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u CGO_LDFLAGS bash -euo pipefail "$SCRATCH/steps.sh" 2>&1) ||
    { echo "$readme_out"; echo "bindings/go/README.md: the install steps failed" >&2; exit 1; }
echo "$readme_out" | tail -n 1
echo "$readme_out" | tail -n 1 | grep -q "^panns $(pkg-config --modversion panns) nearest 42 exact scan false$" ||
    { echo "bindings/go/README.md: the example printed something else" >&2; exit 1; }
grep -q "=> $ROOT/bindings/go" "$SCRATCH/app/go.mod" || { echo "the replace directive is missing" >&2; exit 1; }
passed=$((passed + 1))
echo "go: $passed passed, $failed failed, $skipped skipped"
