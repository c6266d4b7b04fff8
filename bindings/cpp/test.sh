#!/usr/bin/env bash
# Tests the header-only C++ wrapper: builds and installs libpanns with scripts/build-lib.sh,
# configures and builds bindings/cpp with CMake (in bindings/cpp/build, GoogleTest when
# installed, else tests/mini_gtest.hpp) and runs ctest.
#
#   bindings/cpp/test.sh
#
# Environment: CARGO_TARGET_DIR, PANNS_PROFILE (cargo profile, default dev),
# PANNS_PREFIX (default $CARGO_TARGET_DIR/panns-prefix), PANNS_SKIP_BUILD=1 (use an
# existing prefix), PANNS_FIXTURE_DIR (the Rust-written cross-language fixture; generated
# when unset), CXX.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
export CARGO_TARGET_DIR=$TARGET
PREFIX=${PANNS_PREFIX:-$TARGET/panns-prefix}
PROFILE=${PANNS_PROFILE:-dev}
BUILD=$ROOT/bindings/cpp/build

run() {
    echo "+ $*"
    "$@"
}

if [ -z "${PANNS_SKIP_BUILD:-}" ]; then
    run scripts/build-lib.sh "$PREFIX"
fi
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists panns || { echo "panns.pc not found in $PREFIX/lib/pkgconfig" >&2; exit 1; }
export LD_LIBRARY_PATH="$(pkg-config --variable=libdir panns)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ -z "${PANNS_FIXTURE_DIR:-}" ]; then
    PANNS_FIXTURE_DIR=$TARGET/bindings-cpp-fixture
    run cargo run --quiet --profile "$PROFILE" -p panns-ffi --example fixture -- "$PANNS_FIXTURE_DIR"
fi
export PANNS_FIXTURE_DIR

# The README's example must be example.cpp, verbatim.
readme_example=$(awk '/^```cpp$/ {on = 1; next} /^```$/ {on = 0} on' bindings/cpp/README.md)
if [ "$readme_example" != "$(cat bindings/cpp/example.cpp)" ]; then
    echo "bindings/cpp/README.md: the example differs from bindings/cpp/example.cpp" >&2
    exit 1
fi

# A prefix moved since the last configure would leave stale paths in the cache.
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q "PANNS_LIBDIR:INTERNAL=$PREFIX/lib\$" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
fi
run cmake -S bindings/cpp -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
run cmake --build "$BUILD" -j 2
cd "$BUILD"
run ctest --output-on-failure
