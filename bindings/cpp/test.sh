#!/usr/bin/env bash
# Tests the header-only C++ wrapper: builds and installs libpanns with scripts/build-lib.sh,
# configures and builds bindings/cpp with CMake against the installed CMake package (in
# bindings/cpp/build, GoogleTest when installed, else tests/mini_gtest.hpp) and runs ctest.
# Then, as a user would, builds two scratch projects outside the repository: one with
# find_package(panns CONFIG REQUIRED) + panns::panns against the prefix, one with
# add_subdirectory(bindings/cpp), which must not build the binding's tests.
#
#   bindings/cpp/test.sh
#
# Environment: CARGO_TARGET_DIR, PANNS_PROFILE (cargo profile of the library, default
# release as in build-lib.sh; the fixture, when generated here, uses dev),
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
PROFILE=dev # of the fixture generator only
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
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q "^panns_DIR:PATH=$PREFIX/lib/cmake/panns\$" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"
fi
run cmake -S bindings/cpp -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$PREFIX"
grep -q "^panns_DIR:PATH=$PREFIX/lib/cmake/panns\$" "$BUILD/CMakeCache.txt" ||
    { echo "bindings/cpp: find_package(panns CONFIG) did not find $PREFIX" >&2; exit 1; }
run cmake --build "$BUILD" -j 2
(cd "$BUILD" && run ctest --output-on-failure)

# A user's project outside the repository, against the installed CMake package.
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/panns-cmake-user.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
mkdir -p "$SCRATCH/app"
cat >"$SCRATCH/app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(panns_user LANGUAGES C CXX)
find_package(panns 1.1 CONFIG REQUIRED)
add_executable(app app.cpp)
target_link_libraries(app PRIVATE panns::panns)
add_executable(capp capp.c)
target_link_libraries(capp PRIVATE panns::panns)
CMAKE
cat >"$SCRATCH/app/app.cpp" <<'CPP'
#include <panns.hpp>
#include <iostream>
int main() {
  panns::Builder b(2, panns::Metric::Euclidean);
  for (int i = 0; i < 100; i++) b.add({static_cast<float>(i), 1.0f});
  panns::Index ix = panns::Index::from_bytes(b.build().to_bytes());
  std::cout << "panns " << panns::version() << " nearest " << ix.search({41.8f, 1.0f}, 1)[0].id << "\n";
}
CPP
cat >"$SCRATCH/app/capp.c" <<'C'
#include <panns.h>
#include <stdio.h>
int main(void) { printf("%s\n", panns_status_string(PANNS_OK)); return 0; }
C
run cmake -S "$SCRATCH/app" -B "$SCRATCH/app/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release
run cmake --build "$SCRATCH/app/build" -j 2
out=$("$SCRATCH/app/build/app")
echo "$out"
[ "$out" = "panns $(pkg-config --modversion panns) nearest 42" ] || { echo "cmake user project: unexpected output" >&2; exit 1; }
[ "$("$SCRATCH/app/build/capp")" = ok ] || { echo "cmake user C project failed" >&2; exit 1; }
needed=$(readelf -d "$SCRATCH/app/build/app" | sed -n 's/.*Shared library: \[\(libpanns[^]]*\)\]/\1/p')
[ "$needed" = libpanns.so.1 ] || { echo "the user's app needs '$needed', want libpanns.so.1" >&2; exit 1; }
# A version the prefix cannot satisfy is refused.
mkdir -p "$SCRATCH/v2"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(v2 LANGUAGES CXX)\nfind_package(panns 2.0 CONFIG REQUIRED)\n' \
    >"$SCRATCH/v2/CMakeLists.txt"
if cmake -S "$SCRATCH/v2" -B "$SCRATCH/v2/build" -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null 2>&1; then
    echo "find_package(panns 2.0) accepted panns $(pkg-config --modversion panns)" >&2
    exit 1
fi

# add_subdirectory(bindings/cpp) gives panns::cpp and builds none of the binding's tests.
mkdir -p "$SCRATCH/sub"
cat >"$SCRATCH/sub/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(panns_sub LANGUAGES CXX)
add_subdirectory("$ROOT/bindings/cpp" panns_cpp)
if(TARGET test_panns OR TARGET test_filter OR TARGET example)
  message(FATAL_ERROR "add_subdirectory(bindings/cpp) defined the binding's tests")
endif()
add_executable(app "$SCRATCH/app/app.cpp")
target_link_libraries(app PRIVATE panns::cpp)
CMAKE
run cmake -S "$SCRATCH/sub" -B "$SCRATCH/sub/build" -DCMAKE_PREFIX_PATH="$PREFIX"
run cmake --build "$SCRATCH/sub/build" -j 2
[ "$(LD_LIBRARY_PATH="$PREFIX/lib" "$SCRATCH/sub/build/app")" = "$out" ] || { echo "add_subdirectory project failed" >&2; exit 1; }
echo "cpp: cmake package and add_subdirectory checks passed"
