#!/usr/bin/env bash
# Tests the Python package (bindings/python): installs it into a venv with pip, which builds the
# native extension module panns._panns with maturin (cargo), then runs pytest on
# bindings/python/tests (Ray is installed too, for the panns.ray tests).
#
#   bindings/python/test.sh [PYTEST ARGS...]
#
# Environment: PANNS_PYVENV (default ${TMPDIR:-/tmp}/panns-pyvenv, reused across runs),
# PYTHON (interpreter creating the venv, default python3), PANNS_CARGO_PROFILE (cargo profile
# of the extension; default here "dev", which shares the build of the rest of the test suite,
# while a plain `pip install` builds "release"), CARGO_TARGET_DIR, PANNS_FIXTURE_DIR (the
# Rust-written cross-language fixture; generated with the panns-ffi `fixture` example when
# unset), PANNS_LIBRARY (libpanns.so for the C-ABI interop tests; built here when unset).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${PANNS_PYVENV:-${TMPDIR:-/tmp}/panns-pyvenv}
PROFILE=${PANNS_CARGO_PROFILE:-dev}

if [ ! -x "$VENV/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
cd "$ROOT"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# The build tool and test dependencies live in the venv, so the package is built without build
# isolation (no download of maturin on every run); maturin runs cargo, which recompiles only
# what changed.
"${PIP[@]}" install --quiet "maturin>=1.16,<2" numpy pytest h5py
# Ray, for the panns.ray tests (tests/test_ray.py runs a local cluster). Where it cannot be
# installed (no wheel for this Python or platform) those tests are skipped with the reason.
if ! "$VENV/bin/python" -c 'import ray, ray.data' >/dev/null 2>&1; then
    "${PIP[@]}" install --quiet "ray[data]>=2.9" ||
        echo "bindings/python: Ray could not be installed; the panns.ray tests will be skipped" >&2
fi
PATH="$VENV/bin:$PATH" MATURIN_PEP517_ARGS="--profile $PROFILE" \
    "${PIP[@]}" install --quiet --no-build-isolation --force-reinstall --no-deps ./bindings/python

TARGET=$(cargo metadata --format-version 1 --no-deps | "$VENV/bin/python" -c \
    'import json, sys; print(json.load(sys.stdin)["target_directory"])')
OUT=$TARGET/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
if [ -z "${PANNS_FIXTURE_DIR:-}" ]; then
    PANNS_FIXTURE_DIR=${TMPDIR:-/tmp}/panns-fixture-py
    cargo run --quiet -p panns-ffi --profile "$PROFILE" --example fixture -- "$PANNS_FIXTURE_DIR"
    export PANNS_FIXTURE_DIR
fi
if [ -z "${PANNS_LIBRARY:-}" ]; then
    cargo build --quiet -p panns-ffi --lib --profile "$PROFILE"
    export PANNS_LIBRARY=$OUT/libpanns.so
fi

# Run from the tests directory so that the source tree's panns/ (which has no extension
# module) does not shadow the installed package.
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
