#!/usr/bin/env bash
# Builds the C library of panns (a release build by default) and installs it into a prefix:
#   PREFIX/lib/libpanns.so.X.Y.Z              the shared library, SONAME libpanns.so.X
#   PREFIX/lib/libpanns.so.X -> libpanns.so.X.Y.Z, PREFIX/lib/libpanns.so -> libpanns.so.X
#   PREFIX/lib/libpanns.a                     the static library
#   PREFIX/include/panns.h, PREFIX/include/panns.hpp   the C header, the C++17 wrapper
#   PREFIX/lib/pkgconfig/panns.pc             pkg-config
#   PREFIX/lib/cmake/panns/pannsConfig.cmake (+ pannsConfigVersion.cmake)
#                                             find_package(panns CONFIG): panns::panns
#   PREFIX/share/licenses/panns/LICENSE-MIT, LICENSE-APACHE
#
# Usage: scripts/build-lib.sh [PREFIX]
#   PREFIX          default: $CARGO_TARGET_DIR/panns-prefix (target/panns-prefix)
#   PANNS_PROFILE   cargo profile, default "release"; "dev" for a quick debug build
#   CARGO_TARGET_DIR is honoured.
#
# Then:
#   export PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
#   cc app.c $(pkg-config --cflags --libs panns) -Wl,-rpath,PREFIX/lib
# (or run with LD_LIBRARY_PATH=PREFIX/lib instead of the rpath), or in CMake:
#   cmake -DCMAKE_PREFIX_PATH=PREFIX ...   with   find_package(panns 1.1 CONFIG REQUIRED)
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

profile=${PANNS_PROFILE:-release}
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
major=${version%%.*}

echo "+ cargo build -p panns-ffi --profile $profile   (CARGO_TARGET_DIR=$target_dir)"
cargo build -p panns-ffi --profile "$profile"

for f in libpanns.so libpanns.a; do
    if [ ! -f "$out_dir/$f" ]; then
        echo "build-lib.sh: $out_dir/$f was not produced" >&2
        exit 1
    fi
done

echo "+ installing into $prefix"
lib=$prefix/lib
mkdir -p "$lib/pkgconfig" "$lib/cmake/panns" "$prefix/include" "$prefix/share/licenses/panns"
# Copy to a temporary name and rename, so a program running against the old library
# keeps its mapping intact; symlinks are replaced the same way.
install -m 755 "$out_dir/libpanns.so" "$lib/.libpanns.so.tmp"
mv -f "$lib/.libpanns.so.tmp" "$lib/libpanns.so.$version"
link() { # link TARGET NAME: NAME -> TARGET, replaced atomically
    ln -sfn "$1" "$lib/.$2.tmp"
    mv -Tf "$lib/.$2.tmp" "$lib/$2"
}
link "libpanns.so.$version" "libpanns.so.$major"
link "libpanns.so.$major" libpanns.so
install -m 644 "$out_dir/libpanns.a" "$lib/libpanns.a"
install -m 644 include/panns.h "$prefix/include/panns.h"
install -m 644 bindings/cpp/include/panns.hpp "$prefix/include/panns.hpp"
install -m 644 LICENSE-MIT LICENSE-APACHE "$prefix/share/licenses/panns/"
cat > "$lib/pkgconfig/panns.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: panns
Description: Approximate nearest-neighbour search with random-projection forests (C API)
URL: https://example.invalid/panns
Version: $version
Libs: -L\${libdir} -lpanns
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC

# The CMake package: relocatable (paths relative to the config file), one imported
# target panns::panns (the shared library, panns.h and panns.hpp; C++17 when CXX is
# enabled) and panns::panns_static.
cat > "$lib/cmake/panns/pannsConfig.cmake" <<CMAKE
# pannsConfig.cmake, written by panns' scripts/build-lib.sh (version $version).
#   find_package(panns $major.0 CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE panns::panns)          # libpanns.so + panns.h + panns.hpp
#   target_link_libraries(app PRIVATE panns::panns_static)   # libpanns.a instead
get_filename_component(_panns_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(panns_VERSION $version)
set(panns_INCLUDE_DIR "\${_panns_prefix}/include")
set(panns_LIBRARY "\${_panns_prefix}/lib/libpanns.so.$version")
include(CMakeFindDependencyMacro)
find_dependency(Threads)
if(NOT TARGET panns::panns)
  add_library(panns::panns SHARED IMPORTED)
  set_target_properties(panns::panns PROPERTIES
    IMPORTED_LOCATION "\${panns_LIBRARY}"
    IMPORTED_SONAME "libpanns.so.$major"
    INTERFACE_INCLUDE_DIRECTORIES "\${panns_INCLUDE_DIR}")
  add_library(panns::panns_static STATIC IMPORTED)
  set_target_properties(panns::panns_static PROPERTIES
    IMPORTED_LOCATION "\${_panns_prefix}/lib/libpanns.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${panns_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;\${CMAKE_DL_LIBS};m")
  get_property(_panns_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if("CXX" IN_LIST _panns_languages)
    # panns.hpp needs C++17.
    set_property(TARGET panns::panns panns::panns_static APPEND PROPERTY
      INTERFACE_COMPILE_FEATURES cxx_std_17)
  endif()
  unset(_panns_languages)
endif()
unset(_panns_prefix)
CMAKE
cat > "$lib/cmake/panns/pannsConfigVersion.cmake" <<CMAKE
# panns $version: compatible with any requested $major.x version up to $version (same SONAME).
set(PACKAGE_VERSION "$version")
if(NOT "\${PACKAGE_FIND_VERSION}" STREQUAL "" AND
   (NOT "\${PACKAGE_FIND_VERSION_MAJOR}" STREQUAL "$major" OR
    PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION))
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if("\${PACKAGE_FIND_VERSION}" STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
if(NOT "\${CMAKE_SIZEOF_VOID_P}" STREQUAL "" AND NOT "\${CMAKE_SIZEOF_VOID_P}" STREQUAL "8")
  set(PACKAGE_VERSION "\${PACKAGE_VERSION} (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
endif()
CMAKE

echo "installed: $lib/libpanns.so.$version (SONAME libpanns.so.$major; symlinks libpanns.so.$major, libpanns.so)"
echo "           $lib/libpanns.a $prefix/include/panns.h $prefix/include/panns.hpp"
echo "           $lib/pkgconfig/panns.pc $lib/cmake/panns/pannsConfig.cmake"
echo "use:       export PKG_CONFIG_PATH=$lib/pkgconfig"
echo "           cc app.c \$(pkg-config --cflags --libs panns) -Wl,-rpath,$lib"
echo "           (or run with LD_LIBRARY_PATH=$lib); CMake: -DCMAKE_PREFIX_PATH=$prefix"
