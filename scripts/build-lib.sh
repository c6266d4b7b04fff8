#!/usr/bin/env bash
# Builds the C library of panns and installs it into a prefix:
#   PREFIX/lib/libpanns.so, PREFIX/lib/libpanns.a, PREFIX/include/panns.h,
#   PREFIX/lib/pkgconfig/panns.pc
#
# Usage: scripts/build-lib.sh [PREFIX]
#   PREFIX          default: $CARGO_TARGET_DIR/panns-prefix (target/panns-prefix)
#   PANNS_PROFILE   cargo profile, default "dev" (target/debug); "release" for target/release
#   CARGO_TARGET_DIR is honoured.
#
# Then:
#   export PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
#   cc app.c $(pkg-config --cflags --libs panns) -Wl,-rpath,PREFIX/lib
# (or run with LD_LIBRARY_PATH=PREFIX/lib instead of the rpath).
set -euo pipefail

caller_dir=$(pwd)
cd "$(dirname "$0")/.."
root=$(pwd)

# Relative paths given by the caller are relative to where the script was started.
abspath() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$caller_dir/$1" ;;
    esac
}

profile=${PANNS_PROFILE:-dev}
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    target_dir=$(abspath "$CARGO_TARGET_DIR")
else
    target_dir=$root/target
fi
export CARGO_TARGET_DIR=$target_dir
case "$profile" in
    dev | test) out_dir=$target_dir/debug ;;
    bench) out_dir=$target_dir/release ;;
    *) out_dir=$target_dir/$profile ;;
esac
prefix=$(abspath "${1:-$target_dir/panns-prefix}")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

echo "+ cargo build -p panns-ffi --profile $profile   (CARGO_TARGET_DIR=$target_dir)"
cargo build -p panns-ffi --profile "$profile"

for f in libpanns.so libpanns.a; do
    if [ ! -f "$out_dir/$f" ]; then
        echo "build-lib.sh: $out_dir/$f was not produced" >&2
        exit 1
    fi
done

echo "+ installing into $prefix"
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
# Copy to a temporary name and rename, so a program running against the old library
# keeps its mapping intact.
install -m 755 "$out_dir/libpanns.so" "$prefix/lib/.libpanns.so.tmp"
mv -f "$prefix/lib/.libpanns.so.tmp" "$prefix/lib/libpanns.so"
install -m 644 "$out_dir/libpanns.a" "$prefix/lib/libpanns.a"
install -m 644 include/panns.h "$prefix/include/panns.h"
cat > "$prefix/lib/pkgconfig/panns.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: panns
Description: Approximate nearest-neighbour search with random-projection forests (C API)
Version: $version
Libs: -L\${libdir} -lpanns
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC

echo "installed: $prefix/lib/libpanns.so $prefix/lib/libpanns.a $prefix/include/panns.h $prefix/lib/pkgconfig/panns.pc"
echo "use:       export PKG_CONFIG_PATH=$prefix/lib/pkgconfig"
echo "           cc app.c \$(pkg-config --cflags --libs panns) -Wl,-rpath,$prefix/lib"
echo "           (or run with LD_LIBRARY_PATH=$prefix/lib)"
