# BinaryBuilder recipe for Panns_jll (libpanns, the C ABI of panns), in the form Yggdrasil
# expects (copy to Yggdrasil's P/Panns/build_tarballs.jl and set the source commit).
#
#   julia --project=@BinaryBuilder build_tarballs.jl --verbose --debug x86_64-linux-gnu
#
# Products: libpanns (SONAME libpanns.so.1 on Linux, set by panns-ffi/build.rs), the header
# include/panns.h and the licenses. Rust >= 1.89 (edition 2024) is needed.
using BinaryBuilder, Pkg

name = "Panns"
version = v"1.1.0"

sources = [
    # The release tag's commit; replace the placeholder hash when registering a release.
    GitSource("https://example.invalid/panns.git", "0000000000000000000000000000000000000000"),
]

script = raw"""
cd ${WORKSPACE}/srcdir/panns*
# Only the C library: no CLI, no benches, no optional HDF5 system library (pure Rust reader).
cargo build --release --locked -p panns-ffi --target ${rust_target}
if [[ "${target}" == *-mingw* ]]; then
    install -Dvm 755 "target/${rust_target}/release/panns.${dlext}" "${libdir}/libpanns.${dlext}"
else
    install -Dvm 755 "target/${rust_target}/release/libpanns.${dlext}" "${libdir}/libpanns.${dlext}"
fi
install -Dvm 644 include/panns.h "${includedir}/panns.h"
install_license LICENSE-MIT LICENSE-APACHE
"""

# 64-bit platforms only (the index format stores u64 offsets; `size_t` is 64 bits in the
# Julia binding's checks); Rust does not target every BinaryBuilder platform.
platforms = filter(p -> nbits(p) == 64, supported_platforms())
filter!(p -> !(Sys.isfreebsd(p) && arch(p) == "aarch64"), platforms)
filter!(p -> arch(p) != "riscv64", platforms)

products = [
    LibraryProduct("libpanns", :libpanns),
    FileProduct("include/panns.h", :panns_h),
]

dependencies = Dependency[]

build_tarballs(ARGS, name, version, sources, script, platforms, products, dependencies;
               compilers = [:c, :rust], julia_compat = "1.6", preferred_gcc_version = v"5")
