#!/usr/bin/env bash
# Tests the Julia binding (bindings/julia).
#
# 1. Always (no Julia needed): scripts/check-julia-ccalls.py checks every ccall of
#    bindings/julia/src against include/panns.h (names, argument counts, types, struct
#    layouts), then is fed broken copies of the sources, each of which it must reject.
# 2. When julia is on the PATH: builds and installs libpanns with scripts/build-lib.sh,
#    points PANNS_LIBRARY at it and runs Pkg.test(). Otherwise prints SKIPPED and exits 77,
#    which scripts/test.sh counts as skipped (not passed).
# Set PANNS_FIXTURE_DIR to compare with the Rust-written fixture.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

echo "+ python3 scripts/check-julia-ccalls.py"
python3 scripts/check-julia-ccalls.py

# The checker must fail on wrong signatures: one broken copy per kind of mistake.
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/panns-julia-check.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
SRC=bindings/julia/src/Panns.jl
mutants=0
# The other source files, checked beside each broken copy (CFilter lives in filter.jl).
OTHERS=(bindings/julia/src/filter.jl bindings/julia/src/live.jl)
python3 scripts/check-julia-ccalls.py "$SRC" "${OTHERS[@]}" >/dev/null ||
    { echo "julia/test.sh: the checker rejects the unbroken sources file by file" >&2; exit 1; }
mutant() { # mutant NAME SED_EXPRESSION [FILE]: the checker must reject the edited copy of FILE
    local name=$1 expr=$2 file=${3:-$SRC} out rest=()
    sed -e "$expr" "$file" >"$SCRATCH/$name.jl"
    if cmp -s "$file" "$SCRATCH/$name.jl"; then
        echo "julia/test.sh: mutation '$name' changed nothing (update it)" >&2
        exit 1
    fi
    for f in "$SRC" "${OTHERS[@]}"; do [ "$f" = "$file" ] || rest+=("$f"); done
    if out=$(python3 scripts/check-julia-ccalls.py "$SCRATCH/$name.jl" "${rest[@]}"); then
        echo "$out"
        echo "julia/test.sh: check-julia-ccalls.py accepted a broken copy ($name)" >&2
        exit 1
    fi
    echo "  rejected broken copy '$name': $(echo "$out" | head -n 1)"
    mutants=$((mutants + 1))
}
mutant size_t-as-UInt32 '0,/(Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t,/s//(Ptr{Cvoid}, Ptr{Float32}, UInt32, Csize_t, Csize_t,/'
mutant missing-argument '0,/(Ptr{Cvoid}, UInt32, UInt32, UInt32, Ptr{Ptr{UInt8}}),/s//(Ptr{Cvoid}, UInt32, UInt32, Ptr{Ptr{UInt8}}),/'
mutant unknown-function 's/sym(:panns_index_save_e)/sym(:panns_index_store_e)/'
mutant status-as-Int32 '0,/sym(:panns_builder_add_e), UInt32,/s//sym(:panns_builder_add_e), Int32,/'
mutant handle-by-value 's/(Ptr{Cvoid}, UInt32, Ptr{Float32}, Csize_t, Ptr{Ptr{UInt8}})/(Cvoid, UInt32, Ptr{Float32}, Csize_t, Ptr{Ptr{UInt8}})/'
mutant struct-layout 's/^    leaf_size::UInt32/    leaf_size::UInt64/'
mutant error-pointer 's/(Cstring, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}})/(Cstring, UInt32, Ptr{Ptr{Cvoid}}, Ptr{UInt8})/'
mutant thread-local-error 's/sym(:panns_index_open_e)/sym(:panns_index_open)/'
mutant filter-layout 's/^    n_ids::Csize_t/    n_ids::UInt32/' bindings/julia/src/filter.jl
mutant filter-argument '0,/Ptr{CFilter}, Ptr{UInt32},/s//Ptr{Cvoid}, Ptr{UInt32},/' bindings/julia/src/filter.jl
echo "julia ccall checker: passes on the sources, rejects $mutants broken copies"
# The live-index calls (src/live.jl): broken copies of it, checked beside the other sources.
live_mutant() { # live_mutant NAME SED_EXPRESSION
    rm -rf "$SCRATCH/src" && cp -r bindings/julia/src "$SCRATCH/src"
    sed -e "$2" bindings/julia/src/live.jl >"$SCRATCH/src/live.jl"
    if cmp -s bindings/julia/src/live.jl "$SCRATCH/src/live.jl"; then
        echo "julia/test.sh: mutation '$1' changed nothing (update it)" >&2
        exit 1
    fi
    if python3 scripts/check-julia-ccalls.py "$SCRATCH/src" >/dev/null; then
        echo "julia/test.sh: check-julia-ccalls.py accepted a broken copy of live.jl ($1)" >&2
        exit 1
    fi
}
live_mutant label-width '0,/(Ptr{Cvoid}, Ptr{UInt64}, Ptr{Float32}, Csize_t, Csize_t,/s//(Ptr{Cvoid}, Ptr{UInt32}, Ptr{Float32}, Csize_t, Csize_t,/'
live_mutant changed-flag 's/(Ptr{Cvoid}, Ptr{Cint}, Ptr{Ptr{UInt8}})/(Ptr{Cvoid}, Ptr{UInt64}, Ptr{Ptr{UInt8}})/'
live_mutant generation-width 's/sym(:panns_live_generation), UInt64,/sym(:panns_live_generation), UInt32,/'
live_mutant label-filter-layout 's/^    n_labels::Csize_t/    n_labels::UInt32/'
live_mutant label-filter-argument '0,/Ptr{CLabelFilter}, Ptr{UInt64},/s//Ptr{CFilter}, Ptr{UInt64},/'
echo "julia ccall checker: rejects 5 broken copies of live.jl"

if ! command -v julia >/dev/null 2>&1; then
    echo "SKIPPED: julia not found on PATH (bindings/julia tests not run; the ccall check above ran)"
    exit 77
fi

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PREFIX=${PANNS_PREFIX:-$TARGET/panns-prefix}
if [ -z "${PANNS_SKIP_BUILD:-}" ]; then
    "$ROOT/scripts/build-lib.sh" "$PREFIX"
fi
if [ -z "${PANNS_LIBRARY:-}" ]; then
    PANNS_LIBRARY=$(find "$PREFIX" -name 'libpanns.so' -print -quit)
    [ -n "$PANNS_LIBRARY" ] || { echo "libpanns.so not found under $PREFIX" >&2; exit 1; }
    export PANNS_LIBRARY
fi
julia --threads=4 --project=bindings/julia -e 'using Pkg; Pkg.test()'
