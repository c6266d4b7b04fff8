#!/usr/bin/env bash
# Tests the Python package (bindings/python): installs it into a venv with pip, which builds
# libpanns with cargo (setup.py), then runs pytest on bindings/python/tests.
#
#   bindings/python/test.sh [PYTEST ARGS...]
#
# Environment: PANNS_PYVENV (default ${TMPDIR:-/tmp}/panns-pyvenv, reused across runs),
# PYTHON (interpreter creating the venv, default python3), PANNS_CARGO_PROFILE (cargo profile
# of libpanns; default here "dev", which shares the build of the rest of the test suite, while a
# plain `pip install` defaults to "release"), CARGO_TARGET_DIR, PANNS_FIXTURE_DIR (the
# Rust-written cross-language fixture; generated with the panns-ffi `fixture` example when
# unset).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${PANNS_PYVENV:-${TMPDIR:-/tmp}/panns-pyvenv}
PROFILE=${PANNS_CARGO_PROFILE:-dev}
export PANNS_CARGO_PROFILE=$PROFILE

if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
cd "$ROOT"
# pip always rebuilds and reinstalls a local directory; cargo only recompiles what changed.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check ./bindings/python pytest numpy h5py

if [ -z "${PANNS_FIXTURE_DIR:-}" ]; then
    PANNS_FIXTURE_DIR=${TMPDIR:-/tmp}/panns-fixture-py
    cargo run --quiet -p panns-ffi --profile "$PROFILE" --example fixture -- "$PANNS_FIXTURE_DIR"
    export PANNS_FIXTURE_DIR
fi

# Run from the tests directory so that the source tree's panns/ (which has no libpanns.so)
# does not shadow the installed package.
cd "$ROOT/bindings/python/tests"
set +e
"$VENV/bin/python" -m pytest -q -rs "$@" .
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "bindings/python: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
