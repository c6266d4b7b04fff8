#!/usr/bin/env bash
# Tests the C API from C: builds and installs libpanns with scripts/build-lib.sh (release),
# checks the installed files (SONAME libpanns.so.1, versioned names and symlinks, licenses,
# a header that compiles as C89), compiles example.c, test_panns.c, test_sharded.c and
# test_live.c with pkg-config (against libpanns.so, and test_panns.c once more statically
# against libpanns.a), runs them, and with PANNS_VALGRIND=1 runs the test once under
# valgrind memcheck.
#
#   bindings/c/test.sh
#
# Environment: CARGO_TARGET_DIR, PANNS_PROFILE (cargo profile of the library, default
# release as in build-lib.sh; the fixture, when generated here, uses dev),
# PANNS_PREFIX (default $CARGO_TARGET_DIR/panns-prefix), PANNS_SKIP_BUILD=1 (use an
# existing prefix), PANNS_FIXTURE_DIR (the Rust-written cross-language fixture; generated
# when unset), PANNS_VALGRIND=1, CC (default cc).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
export CARGO_TARGET_DIR=$TARGET
PREFIX=${PANNS_PREFIX:-$TARGET/panns-prefix}
PROFILE=dev # of the fixture generator only
CC=${CC:-cc}
BUILD=$TARGET/bindings-c
mkdir -p "$BUILD"

run() {
    echo "+ $*"
    "$@"
}

if [ -z "${PANNS_SKIP_BUILD:-}" ]; then
    run scripts/build-lib.sh "$PREFIX"
fi
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists panns || { echo "panns.pc not found in $PREFIX/lib/pkgconfig" >&2; exit 1; }
LIBDIR=$(pkg-config --variable=libdir panns)

if [ -z "${PANNS_FIXTURE_DIR:-}" ]; then
    PANNS_FIXTURE_DIR=$BUILD/fixture
    run cargo run --quiet --profile "$PROFILE" -p panns-ffi --example fixture -- "$PANNS_FIXTURE_DIR"
fi
export PANNS_FIXTURE_DIR

# The README's example must be example.c, verbatim.
readme_example=$(awk '/^```c$/ {on = 1; next} /^```$/ {on = 0} on' bindings/c/README.md)
if [ "$readme_example" != "$(cat bindings/c/example.c)" ]; then
    echo "bindings/c/README.md: the example differs from bindings/c/example.c" >&2
    exit 1
fi

fail() {
    echo "bindings/c/test.sh: $*" >&2
    exit 1
}
# The installed library: versioned file, SONAME, symlinks, licenses.
VERSION=$(pkg-config --modversion panns)
MAJOR=${VERSION%%.*}
[ -f "$LIBDIR/libpanns.so.$VERSION" ] && [ ! -L "$LIBDIR/libpanns.so.$VERSION" ] ||
    fail "$LIBDIR/libpanns.so.$VERSION is not a regular file"
[ "$(readlink "$LIBDIR/libpanns.so.$MAJOR")" = "libpanns.so.$VERSION" ] || fail "libpanns.so.$MAJOR is not a symlink to libpanns.so.$VERSION"
[ "$(readlink "$LIBDIR/libpanns.so")" = "libpanns.so.$MAJOR" ] || fail "libpanns.so is not a symlink to libpanns.so.$MAJOR"
soname=$(readelf -d "$LIBDIR/libpanns.so.$VERSION" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
echo "+ readelf -d libpanns.so.$VERSION: SONAME $soname"
[ "$soname" = "libpanns.so.$MAJOR" ] || fail "SONAME is '$soname', want libpanns.so.$MAJOR"
for f in LICENSE-MIT LICENSE-APACHE; do
    cmp -s "$f" "$PREFIX/share/licenses/panns/$f" || fail "$f is not installed in $PREFIX/share/licenses/panns"
done
# The header is C89 (and C++11) clean.
printf '#include <panns.h>\nint main(void) { return (int)panns_status_string(PANNS_OK)[0] == 0; }\n' >"$BUILD/c89.c"
# shellcheck disable=SC2046
run $CC -std=c89 -pedantic-errors -Wall -Wextra -Werror -o "$BUILD/c89" "$BUILD/c89.c" $(pkg-config --cflags --libs panns)

CFLAGS="-std=c11 -O2 -g -Wall -Wextra -Wpedantic -Werror"
# shellcheck disable=SC2046 # pkg-config output is meant to be word-split
run $CC $CFLAGS -o "$BUILD/example" bindings/c/example.c $(pkg-config --cflags --libs panns)
# shellcheck disable=SC2046
run $CC $CFLAGS -o "$BUILD/test_panns" bindings/c/test_panns.c $(pkg-config --cflags --libs panns) -lpthread -lm
# shellcheck disable=SC2046
run $CC $CFLAGS -o "$BUILD/test_sharded" bindings/c/test_sharded.c $(pkg-config --cflags --libs panns) -lm
# shellcheck disable=SC2046
run $CC $CFLAGS -o "$BUILD/test_live" bindings/c/test_live.c $(pkg-config --cflags --libs panns) -lpthread -lm
# Static: the archive itself plus the system libraries of `pkg-config --static`.
static_libs=$(pkg-config --static --libs panns | sed 's/-lpanns//')
# shellcheck disable=SC2046,SC2086
run $CC $CFLAGS -o "$BUILD/test_panns_static" bindings/c/test_panns.c $(pkg-config --cflags panns) \
    "$LIBDIR/libpanns.a" $static_libs -lpthread -lm
# Programs record the SONAME, not the unversioned development symlink.
needed=$(readelf -d "$BUILD/test_panns" | sed -n 's/.*Shared library: \[\(libpanns[^]]*\)\]/\1/p')
echo "+ readelf -d test_panns: NEEDED $needed"
[ "$needed" = "libpanns.so.$MAJOR" ] || fail "test_panns needs '$needed', want libpanns.so.$MAJOR"
if ldd "$BUILD/test_panns_static" | grep -q libpanns; then
    echo "test_panns_static is linked against libpanns.so, not libpanns.a" >&2
    exit 1
fi

export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
passed=0
failed=0
# Runs one test binary, echoing its output, and adds up its closing "N passed, N failed".
run_test() {
    local log rc line
    log=$(mktemp)
    echo "+ $*"
    set +e
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    rm -f "$log"
    if [ -z "$line" ]; then
        echo "$1 printed no result line (exit status $rc)" >&2
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + ${line%% passed*}))
    local f=${line#*, }
    failed=$((failed + ${f%% failed*}))
    if [ "$rc" -ne 0 ] && [ "${f%% failed*}" -eq 0 ]; then
        echo "$1 exited with status $rc" >&2
        failed=$((failed + 1))
    fi
}

echo "+ $BUILD/example $BUILD/example.panns"
out=$("$BUILD/example" "$BUILD/example.panns")
echo "$out"
if echo "$out" | grep -q '^1\. id 42, distance 0\.0000$'; then
    passed=$((passed + 1))
else
    echo "example: item 42 was not its own nearest neighbour" >&2
    failed=$((failed + 1))
fi
rm -f "$BUILD/example.panns"

run_test "$BUILD/test_panns"
run_test "$BUILD/test_panns_static"
run_test "$BUILD/test_sharded"
run_test "$BUILD/test_live"

if [ "${PANNS_VALGRIND:-}" = 1 ]; then
    if command -v valgrind >/dev/null; then
        run_test valgrind --tool=memcheck --error-exitcode=1 --leak-check=full \
            --suppressions=bindings/c/valgrind.supp "$BUILD/test_panns"
    else
        echo "PANNS_VALGRIND=1 but valgrind is not installed: memcheck run skipped"
    fi
fi

echo "c: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
