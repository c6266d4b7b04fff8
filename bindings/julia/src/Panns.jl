"""
    Panns

Julia binding of panns, an approximate nearest-neighbour library (a forest of random-projection
trees over `Float32` vectors), through the C ABI of `libpanns` (`docs/c-api.md`).

`libpanns` is loaded from `ENV["PANNS_LIBRARY"]` when set, else found with
`Libdl.find_library` (set `LD_LIBRARY_PATH` to the `lib` directory installed by
`scripts/build-lib.sh`).

```julia
using Panns
b = Builder(128, ANGULAR)
add_batch!(b, X)                 # X: 128×n Matrix, one vector per column
ix = build(b; n_trees = 32)
save(ix, "my.panns")
ix2 = open_index("my.panns")     # memory-mapped
ids, dists = search(ix2, q, 10)  # 0-based item ids, nearest first
idxs, dists = knn(ix2, Q, 10)    # Q: 128×m queries; 1-based ids, 10×m matrices
set_dtype!(ix, :i8)              # vectors as 8-bit codes (build_graph! first, if any)
close(ix2); close(ix); close(b)
```

Item ids are 0-based insertion order in `search`, `search_batch` and `linear_search`, as in
every panns language; [`knn`](@ref) and [`knn!`](@ref) follow Julia (NearestNeighbors.jl)
and return 1-based column indices of the data. Failed calls throw a [`PannsError`](@ref) with
the library's status and the message of that very call (the C `_e` functions return it with
the status, so tasks migrating between threads never read another call's message).
"""
module Panns

using Libdl

export Builder, Index, BuildOptions, PannsError, Status, Metric, EUCLIDEAN, ANGULAR, DOT,
       add!, add_batch!, add_file!, build, save, open_index, search, search_batch,
       linear_search, get_vector, dim, metric, n_trees, build_graph!, graph_degree, dtype, set_dtype!,
       build_options_default, library_version, knn, knn!, search_with_stats, SearchStats,
       to_bytes, open_bytes, status_string, PANNS_OUT_OF_MEMORY, PANNS_CALLBACK_FAILED,
       ShardedIndex, open_sharded, write_manifest, n_shards,
       PANNS_OK, PANNS_NULL_POINTER, PANNS_INVALID_ARGUMENT, PANNS_DIMENSION_MISMATCH,
       PANNS_NON_FINITE, PANNS_ZERO_VECTOR, PANNS_EMPTY, PANNS_IO, PANNS_CORRUPT,
       PANNS_UNSUPPORTED, PANNS_OUT_OF_RANGE, PANNS_BUFFER_TOO_SMALL, PANNS_PANIC,
       PANNS_LOCKED, PANNS_READ_ONLY,
       LiveIndex, create_live, open_live, live_from_index, remove!, commit!, compact!,
       refresh!, live_info, range_search, DenyLabels, AllowList, prepare_filter, n_items

# ---------------------------------------------------------------------------------------------
# Library loading

const LIBHANDLE = Ref{Ptr{Cvoid}}(C_NULL)

"""
Every C function this module calls (`scripts/check-julia-ccalls.py` checks that each
`ccall(sym(:name), ...)` names one of these and that it matches `include/panns.h`).
"""
const FUNCTIONS = (
    :panns_version, :panns_status_string, :panns_error_free, :panns_build_options_default,
    :panns_builder_new_e, :panns_builder_add_e, :panns_builder_add_batch_e, :panns_builder_add_file_e,
    :panns_builder_len, :panns_builder_build_e, :panns_builder_free,
    :panns_index_save_e, :panns_index_open_e, :panns_index_open_buffer_e,
    :panns_index_serialized_len_e, :panns_index_serialize_e, :panns_index_free,
    :panns_index_len, :panns_index_dim, :panns_index_metric, :panns_index_n_trees,
    :panns_index_graph_degree, :panns_index_build_graph_e, :panns_index_build_graph_flags_e, :panns_index_search_e,
    :panns_index_dtype, :panns_index_set_dtype_e,
    :panns_index_search_with_stats_e, :panns_index_linear_search_e, :panns_index_search_batch_e,
    :panns_index_get_vector_e,
    :panns_index_search_filtered_e, :panns_index_search_batch_filtered_e, :panns_index_range_search_e,
    :panns_allow_list_new_e, :panns_allow_list_len, :panns_allow_list_items, :panns_allow_list_free,
    :panns_sharded_open_e, :panns_sharded_open_subset_e, :panns_sharded_write_manifest_e,
    :panns_sharded_search_e, :panns_sharded_search_filtered_e, :panns_sharded_range_search_e,
    :panns_sharded_search_batch_filtered_e, :panns_sharded_len, :panns_sharded_dim, :panns_sharded_metric,
    :panns_sharded_n_shards, :panns_sharded_free,
    :panns_live_create_e, :panns_live_from_index_e, :panns_live_open_e, :panns_live_add_e,
    :panns_live_remove_e, :panns_live_commit_e, :panns_live_compact_e, :panns_live_refresh_e,
    :panns_live_search_with_stats_e, :panns_live_search_batch_e, :panns_live_get_e,
    :panns_live_contains, :panns_live_len, :panns_live_dim, :panns_live_metric,
    :panns_live_generation, :panns_live_base_len, :panns_live_delta_len, :panns_live_tombstones,
    :panns_live_pending, :panns_live_is_writable, :panns_live_free, :panns_live_save_e,
    :panns_live_is_in_memory, :panns_live_range_search_e,
    :panns_live_search_filtered_e, :panns_live_search_batch_filtered_e,
)

# Filled once by __init__ and only read afterwards: no lock, so finalizers (which must never
# take a lock or switch tasks) can call `sym` too.
const SYMBOLS = Dict{Symbol,Ptr{Cvoid}}()

"""
    library_path() -> String

The `libpanns` to load: `ENV["PANNS_LIBRARY"]`, else what `Libdl.find_library` finds.
"""
function library_path()
    env = get(ENV, "PANNS_LIBRARY", "")
    isempty(env) || return env
    found = Libdl.find_library(["libpanns", "panns"])
    isempty(found) && error("Panns: libpanns not found: set PANNS_LIBRARY to the path of " *
                            "libpanns.so, or add its directory to LD_LIBRARY_PATH " *
                            "(scripts/build-lib.sh installs it)")
    return found
end

function __init__()
    LIBHANDLE[] = Libdl.dlopen(library_path())
    empty!(SYMBOLS)
    for name in FUNCTIONS
        SYMBOLS[name] = Libdl.dlsym(LIBHANDLE[], name)   # throws for a libpanns too old
    end
    return nothing
end

"""
    sym(name) -> Ptr{Cvoid}

The address of the C function `name` in `libpanns` (resolved by `__init__`; lock-free).
"""
sym(name::Symbol) = SYMBOLS[name]

# ---------------------------------------------------------------------------------------------
# Types of the C ABI

"""
    Status

`PannsStatus`: the result code of every fallible C function (values named as in C).
"""
@enum Status::UInt32 begin
    PANNS_OK = 0
    PANNS_NULL_POINTER = 1
    PANNS_INVALID_ARGUMENT = 2
    PANNS_DIMENSION_MISMATCH = 3
    PANNS_NON_FINITE = 4
    PANNS_ZERO_VECTOR = 5
    PANNS_EMPTY = 6
    PANNS_IO = 7
    PANNS_CORRUPT = 8
    PANNS_UNSUPPORTED = 9
    PANNS_OUT_OF_RANGE = 10
    PANNS_BUFFER_TOO_SMALL = 11
    PANNS_PANIC = 12
    PANNS_OUT_OF_MEMORY = 13
    PANNS_CALLBACK_FAILED = 14
    PANNS_LOCKED = 15
    PANNS_READ_ONLY = 16
end

"""
    Metric

`PannsMetric`: `EUCLIDEAN` (L2), `ANGULAR` (cosine distance, vectors stored unit-normalised) or
`DOT` (inner product).
"""
@enum Metric::UInt32 EUCLIDEAN = 0 ANGULAR = 1 DOT = 2

"""
    BuildOptions

`PannsBuildOptions`, field for field (the layout must match the C struct). Get the library's
defaults with [`build_options_default`](@ref).
"""
struct BuildOptions
    n_trees::UInt32      # default 32
    leaf_size::UInt32    # default 16
    pool_size::UInt32    # default 256
    candidates::UInt32   # default 8
    split::UInt32        # 0 = mean, 1 = median
    threads::UInt32      # 0 = all cores
    seed::UInt64         # default 42
end

"""
    SearchStats

`PannsSearchStats` (layout of the C struct): what one search did. `exact_scan` is 1 when the
budget covered half the items or more and every item was scanned, 0 when the trees (or the
graph) were walked; `budget` is the effective budget, `scored` the items scored.
"""
struct SearchStats
    scored::Csize_t
    budget::Csize_t
    exact_scan::UInt8
end

"""
    PannsError(status, message)

A failed panns call: the [`Status`](@ref) and the library's message for that call.
"""
struct PannsError <: Exception
    status::Status
    message::String
end

Base.showerror(io::IO, e::PannsError) = print(io, "PannsError(", e.status, "): ", e.message)

"""
    status_string(s) -> String

The library's short description of a status code, e.g. `"dimension mismatch"`.
"""
status_string(s::Union{Status,Integer}) =
    unsafe_string(ccall(sym(:panns_status_string), Cstring, (UInt32,), UInt32(s)))

"""
    ErrorRef

The `char **error` argument of a `_e` function: `Ref{Ptr{UInt8}}(C_NULL)`.
"""
const ErrorRef = Base.RefValue{Ptr{UInt8}}

"""
    check(status, err::ErrorRef)

Frees the message a `_e` call left in `err` and throws a [`PannsError`](@ref) with it unless
`status` is `PANNS_OK`.
"""
function check(status::UInt32, err::ErrorRef)
    msg = ""
    if err[] != C_NULL
        msg = unsafe_string(err[])
        ccall(sym(:panns_error_free), Cvoid, (Ptr{UInt8},), err[])
        err[] = C_NULL
    end
    status == UInt32(PANNS_OK) && return nothing
    s = any(x -> UInt32(x) == status, instances(Status)) ? Status(status) : PANNS_PANIC
    throw(PannsError(s, msg))
end

"""
    library_version() -> String

The version of the loaded `libpanns`, e.g. `"1.1.0"`.
"""
library_version() = unsafe_string(ccall(sym(:panns_version), Cstring, ()))

"""
    build_options_default() -> BuildOptions

The library's default build options (`panns_build_options_default`).
"""
build_options_default() = ccall(sym(:panns_build_options_default), BuildOptions, ())

"""
    to_metric(m) -> Metric

A metric from a `Metric`, a `Symbol` or a `String` (`:euclidean`, `:angular`, `:dot`).
"""
to_metric(m::Metric) = m
to_metric(m::Union{Symbol,AbstractString}) =
    m in (:euclidean, "euclidean") ? EUCLIDEAN :
    m in (:angular, "angular") ? ANGULAR :
    m in (:dot, "dot") ? DOT :
    throw(PannsError(PANNS_INVALID_ARGUMENT, "unknown metric $(repr(m))"))

"""
    u32(name, x) -> UInt32

A non-negative integer argument as `UInt32` (a `PannsError(PANNS_INVALID_ARGUMENT)` otherwise).
"""
function u32(name, x::Integer)
    0 <= x <= typemax(UInt32) || throw(PannsError(PANNS_INVALID_ARGUMENT, "$name = $x is out of range"))
    return UInt32(x)
end

"""
    csize(name, x) -> Csize_t

A non-negative integer argument as `Csize_t`.
"""
function csize(name, x::Integer)
    x >= 0 || throw(PannsError(PANNS_INVALID_ARGUMENT, "$name = $x must not be negative"))
    return Csize_t(x)
end

# ---------------------------------------------------------------------------------------------
# Builder

"""
    Builder(dim, metric = EUCLIDEAN)

An empty collection of vectors of length `dim` for a new index. `metric` is a
[`Metric`](@ref) or `:euclidean`, `:angular`, `:dot`. Free it with `close` (a finalizer does it
otherwise). Not for use from two threads at once.
"""
mutable struct Builder
    ptr::Ptr{Cvoid}
    dim::Int
    metric::Metric

    function Builder(dim::Integer, metric = EUCLIDEAN)
        m = to_metric(metric)
        out = Ref{Ptr{Cvoid}}(C_NULL)
        err = ErrorRef(C_NULL)
        check(ccall(sym(:panns_builder_new_e), UInt32, (UInt32, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                    u32("dim", dim), UInt32(m), out, err), err)
        b = new(out[], Int(dim), m)
        finalizer(close, b)
        return b
    end
end

"""
    close(b::Builder)

Frees the builder (idempotent). Using it afterwards throws `PannsError(PANNS_NULL_POINTER)`.
Also the finalizer: it takes no lock and never yields.
"""
function Base.close(b::Builder)
    p = b.ptr
    if p != C_NULL
        b.ptr = C_NULL
        ccall(sym(:panns_builder_free), Cvoid, (Ptr{Cvoid},), p)
    end
    return nothing
end

"""
    live(h) -> Ptr{Cvoid}

The C pointer of an open handle; throws for a closed one. Callers keep `h` alive across the
`ccall` with `GC.@preserve h` (otherwise its finalizer could free the handle mid-call).
"""
function live(h)
    h.ptr == C_NULL && throw(PannsError(PANNS_NULL_POINTER, "use of a closed panns handle"))
    return h.ptr
end

"""
    length(b::Builder) -> Int

The number of vectors added since the builder was created or last built.
"""
Base.length(b::Builder) = GC.@preserve b begin
    b.ptr == C_NULL ? 0 : Int(ccall(sym(:panns_builder_len), Csize_t, (Ptr{Cvoid},), b.ptr))
end

"""
    dim(b::Builder) -> Int

The length of every vector.
"""
dim(b::Builder) = b.dim

"""
    metric(b::Builder) -> Metric
"""
metric(b::Builder) = b.metric

"""
    add!(b::Builder, v::AbstractVector{<:Real}) -> Int

Adds one vector and returns its id (0-based insertion order). Throws `PannsError` with
`PANNS_DIMENSION_MISMATCH`, `PANNS_NON_FINITE` or (angular) `PANNS_ZERO_VECTOR` for a bad vector.
"""
function add!(b::Builder, v::AbstractVector{<:Real})
    x = Vector{Float32}(v)
    id = Ref{UInt32}(0)
    err = ErrorRef(C_NULL)
    GC.@preserve b begin
        check(ccall(sym(:panns_builder_add_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Ptr{UInt32}, Ptr{Ptr{UInt8}}),
                    live(b), x, length(x), id, err), err)
    end
    return Int(id[])
end

"""
    add_batch!(b::Builder, X::AbstractMatrix{<:Real})

Adds the columns of `X` (`dim × n`: one vector per column, Julia's column-major layout is the
row-major layout of the C ABI; a `Matrix{Float32}` is passed without a copy) in one call.
"""
function add_batch!(b::Builder, X::AbstractMatrix{<:Real})
    M = X isa Matrix{Float32} ? X : Matrix{Float32}(X)
    err = ErrorRef(C_NULL)
    GC.@preserve b M begin
        check(ccall(sym(:panns_builder_add_batch_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Ptr{Ptr{UInt8}}),
                    live(b), M, size(M, 2), size(M, 1), err), err)
    end
    return b
end

"""
    add_file!(b::Builder, path; dataset = nothing) -> Int

Adds the vectors of a dataset file in any format the library reads, chosen by extension
(`.csv`, `.npy`, `.fvecs`, `.hdf5`, ...); `dataset` names the HDF5 dataset (default
`"train"`). Returns the number of vectors added.
"""
function add_file!(b::Builder, path::AbstractString; dataset::Union{Nothing,AbstractString} = nothing)
    added = Ref{Csize_t}(0)
    err = ErrorRef(C_NULL)
    GC.@preserve b begin
        if dataset === nothing   # NULL: the library's default dataset name ("train")
            check(ccall(sym(:panns_builder_add_file_e), UInt32,
                        (Ptr{Cvoid}, Cstring, Ptr{Cvoid}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                        live(b), path, C_NULL, added, err), err)
        else
            check(ccall(sym(:panns_builder_add_file_e), UInt32,
                        (Ptr{Cvoid}, Cstring, Cstring, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                        live(b), path, dataset, added, err), err)
        end
    end
    return Int(added[])
end

# ---------------------------------------------------------------------------------------------
# Index

"""
    Index

A built or opened index: search it with [`search`](@ref), [`knn`](@ref), [`search_batch`](@ref)
and [`linear_search`](@ref) (safe from many threads at once); free it with `close` (a
finalizer does it otherwise). Closing while another thread searches is a bug of the caller.
"""
mutable struct Index
    ptr::Ptr{Cvoid}
    len::Int
    dim::Int
    metric::Metric
    n_trees::Int

    function Index(ptr::Ptr{Cvoid})
        ix = new(ptr,
                 Int(ccall(sym(:panns_index_len), Csize_t, (Ptr{Cvoid},), ptr)),
                 Int(ccall(sym(:panns_index_dim), UInt32, (Ptr{Cvoid},), ptr)),
                 Metric(ccall(sym(:panns_index_metric), UInt32, (Ptr{Cvoid},), ptr)),
                 Int(ccall(sym(:panns_index_n_trees), Csize_t, (Ptr{Cvoid},), ptr)))
        finalizer(close, ix)
        return ix
    end
end

"""
    close(ix::Index)

Frees the index (unmapping an opened file); idempotent. Also the finalizer: it takes no lock
and never yields.
"""
function Base.close(ix::Index)
    p = ix.ptr
    if p != C_NULL
        ix.ptr = C_NULL
        ccall(sym(:panns_index_free), Cvoid, (Ptr{Cvoid},), p)
    end
    return nothing
end

"""
    length(ix::Index) -> Int

The number of items.
"""
Base.length(ix::Index) = ix.len

"""
    dim(ix::Index) -> Int

The length of every vector.
"""
dim(ix::Index) = ix.dim

"""
    metric(ix::Index) -> Metric
"""
metric(ix::Index) = ix.metric

"""
    n_trees(ix::Index) -> Int

The number of trees.
"""
n_trees(ix::Index) = ix.n_trees

"""
    graph_degree(ix::Index) -> Int

The number of neighbours per item of the index's neighbour graph (0 when it has none, or for
a closed index).
"""
graph_degree(ix::Index) = GC.@preserve ix begin
    Int(ccall(sym(:panns_index_graph_degree), UInt32, (Ptr{Cvoid},), ix.ptr))
end

"""
    build_graph!(ix::Index; degree = 0, threads = 0, exact_graph_build = false) -> Index

Adds (or replaces) a neighbour graph of `degree` neighbours per item (0 = the library default,
24), built with `threads` workers (0 = all cores; the graph does not depend on it), to any
index, opened by [`open_index`](@ref) too (the graph then lives in memory). With a graph,
searches reach high recall with far fewer distance computations and `budget` in
[`search`](@ref) is the beam width (like HNSW's ef; 0 = 64). [`save`](@ref) keeps the graph.
`exact_graph_build = true` scores the build's candidates on exact distances instead of
8-bit codes: slower, with a lower peak memory. No other thread may use `ix` during the
call. Throws `PannsError` with `PANNS_INVALID_ARGUMENT` for a degree above 256.
"""
function build_graph!(ix::Index; degree::Integer = 0, threads::Integer = 0,
                      exact_graph_build::Bool = false)
    err = ErrorRef(C_NULL)
    flags = exact_graph_build ? GRAPH_EXACT_BUILD : UInt32(0)
    GC.@preserve ix begin
        check(ccall(sym(:panns_index_build_graph_flags_e), UInt32,
                    (Ptr{Cvoid}, UInt32, UInt32, UInt32, Ptr{Ptr{UInt8}}),
                    live(ix), u32("degree", degree), u32("threads", threads), flags, err), err)
    end
    return ix
end

# `panns_index_build_graph_flags`: score the build's candidates on exact distances.
const GRAPH_EXACT_BUILD = UInt32(1)

"""
    DTYPES

The `PannsDtype` codes by name: `:f32` (0), `:i8` (1) and `:i8_f32` (2: codes walked, the
best candidates re-ranked from the `f32` vectors kept beside them; `"i8+f32"` as a string).
"""
const DTYPES = (f32 = UInt32(0), i8 = UInt32(1), i8_f32 = UInt32(2))

"""
    dtype_code(d) -> UInt32

The `PannsDtype` code of `:f32`/`:i8`/`:i8_f32` (or `"f32"`/`"i8"`/`"i8+f32"`); an integer is
passed through as a code, for the library to check.
"""
dtype_code(d::Integer) = u32("dtype", d)
function dtype_code(d::Union{Symbol,AbstractString})
    s = Symbol(replace(String(d), "+" => "_"))
    haskey(DTYPES, s) || throw(PannsError(PANNS_INVALID_ARGUMENT,
                                          "unknown dtype $(repr(d)): must be :f32, :i8 or :i8_f32"))
    return DTYPES[s]
end

"""
    dtype(ix::Index) -> Symbol

How the index stores its vectors: `:f32` (32-bit floats as given, the default) or `:i8` (one
byte per component with a per-component range, see [`set_dtype!`](@ref)); an opened file
reports its own. `:f32` for a closed index.
"""
function dtype(ix::Index)
    code = GC.@preserve ix begin
        ccall(sym(:panns_index_dtype), UInt32, (Ptr{Cvoid},), ix.ptr)
    end
    for (name, c) in pairs(DTYPES)
        c == code && return name
    end
    throw(PannsError(PANNS_UNSUPPORTED, "the library reports dtype code $code, unknown to this binding"))
end

"""
    set_dtype!(ix::Index, d) -> Index

Re-stores the vectors of `ix` as `d`, keeping its trees and graph: `:i8` encodes them in one
byte per component with a per-component range (scalar quantization: a quarter of the memory
and of the file [`save`](@ref) writes; searches return distances to the decoded vectors and
[`get_vector`](@ref) the decoded vector), `:f32` decodes them again (the rounding stays).
Setting the dtype `ix` has changes nothing. Call [`build_graph!`](@ref) first: on codes the
graph is built from the decoded vectors. An index opened by [`open_index`](@ref) then lives in
memory; save it to keep the change. `d` is `:f32`, `:i8` (or `"f32"`, `"i8"`) or a
`PannsDtype` code (0, 1). No other thread may use `ix` during the call. Throws `PannsError`
with `PANNS_INVALID_ARGUMENT` for an unknown dtype, leaving `ix` unchanged.
"""
function set_dtype!(ix::Index, d::Union{Symbol,AbstractString,Integer})
    code = dtype_code(d)
    err = ErrorRef(C_NULL)
    GC.@preserve ix begin
        check(ccall(sym(:panns_index_set_dtype_e), UInt32, (Ptr{Cvoid}, UInt32, Ptr{Ptr{UInt8}}),
                    live(ix), code, err), err)
    end
    return ix
end

"""
    build_options(n_trees, leaf_size, pool_size, candidates, split, threads, seed) -> BuildOptions

The C build options of [`build`](@ref)'s keywords (`nothing`: the library default).
"""
function build_options(n_trees, leaf_size, pool_size, candidates, split::Symbol, threads::Integer, seed)
    d = build_options_default()
    pick(x, default, name) = x === nothing ? default : u32(name, x)
    split in (:mean, :median) ||
        throw(PannsError(PANNS_INVALID_ARGUMENT, "split must be :mean or :median, got :$split"))
    seed === nothing || seed >= 0 || throw(PannsError(PANNS_INVALID_ARGUMENT, "seed must not be negative"))
    return BuildOptions(pick(n_trees, d.n_trees, "n_trees"),
                        pick(leaf_size, d.leaf_size, "leaf_size"),
                        pick(pool_size, d.pool_size, "pool_size"),
                        pick(candidates, d.candidates, "candidates"),
                        split === :mean ? UInt32(0) : UInt32(1),
                        u32("threads", threads),
                        seed === nothing ? d.seed : UInt64(seed))
end

"""
    build(b::Builder; n_trees, leaf_size, pool_size, candidates, split = :mean, threads = 0,
          seed) -> Index

Builds an index over the builder's vectors (which move into it: the builder is left empty but
usable). Omitted options take the library defaults (32 trees, leaf size 16, pool 256,
8 candidates, seed 42); `split` is `:mean` or `:median`; `threads = 0` uses all cores and
never changes the result.
"""
function build(b::Builder; n_trees = nothing, leaf_size = nothing, pool_size = nothing,
               candidates = nothing, split::Symbol = :mean, threads::Integer = 0, seed = nothing)
    opts = Ref(build_options(n_trees, leaf_size, pool_size, candidates, split, threads, seed))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    err = ErrorRef(C_NULL)
    GC.@preserve b begin
        check(ccall(sym(:panns_builder_build_e), UInt32,
                    (Ptr{Cvoid}, Ptr{BuildOptions}, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                    live(b), opts, out, err), err)
    end
    return Index(out[])
end

"""
    save(ix::Index, path)

Writes the index to `path` (atomically: temporary file, fsync, rename; never rewrite an index
file in place: processes mapping it would crash).
"""
function save(ix::Index, path::AbstractString)
    err = ErrorRef(C_NULL)
    GC.@preserve ix begin
        check(ccall(sym(:panns_index_save_e), UInt32, (Ptr{Cvoid}, Cstring, Ptr{Ptr{UInt8}}),
                    live(ix), path, err), err)
    end
    return nothing
end

"""
    open_index(path; verify = false) -> Index

Memory-maps an index file written by any panns language. `verify` checks the file's checksum
first. Throws `PannsError` with `PANNS_IO` (missing/unreadable), `PANNS_CORRUPT` or
`PANNS_UNSUPPORTED`.
"""
function open_index(path::AbstractString; verify::Bool = false)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    err = ErrorRef(C_NULL)
    check(ccall(sym(:panns_index_open_e), UInt32, (Cstring, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                path, verify ? UInt32(1) : UInt32(0), out, err), err)
    return Index(out[])
end

"""
    open_bytes(bytes::AbstractVector{UInt8}; verify = false) -> Index

An index from the bytes of an index file ([`to_bytes`](@ref), a download, a database). The
bytes are copied by the library.
"""
function open_bytes(bytes::AbstractVector{UInt8}; verify::Bool = false)
    v = bytes isa Vector{UInt8} ? bytes : Vector{UInt8}(bytes)
    data = isempty(v) ? UInt8[0] : v
    out = Ref{Ptr{Cvoid}}(C_NULL)
    err = ErrorRef(C_NULL)
    GC.@preserve data begin
        check(ccall(sym(:panns_index_open_buffer_e), UInt32,
                    (Ptr{UInt8}, Csize_t, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                    data, length(v), verify ? UInt32(1) : UInt32(0), out, err), err)
    end
    return Index(out[])
end

"""
    to_bytes(ix::Index) -> Vector{UInt8}

The index in the file format (the bytes [`save`](@ref) writes).
"""
function to_bytes(ix::Index)
    len = Ref{Csize_t}(0)
    written = Ref{Csize_t}(0)
    err = ErrorRef(C_NULL)
    GC.@preserve ix begin
        check(ccall(sym(:panns_index_serialized_len_e), UInt32, (Ptr{Cvoid}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                    live(ix), len, err), err)
    end
    buf = Vector{UInt8}(undef, max(Int(len[]), 1))
    GC.@preserve ix buf begin
        check(ccall(sym(:panns_index_serialize_e), UInt32,
                    (Ptr{Cvoid}, Ptr{UInt8}, Csize_t, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                    live(ix), buf, len[], written, err), err)
    end
    return resize!(buf, Int(written[]))
end

"""
    one_query(ix, q, k, budget, stats) -> (ids::Vector{UInt32}, distances::Vector{Float32}, stats)

One single-query search (`panns_index_search_with_stats_e`); 0-based ids.
"""
function one_query(ix::Index, q::AbstractVector{<:Real}, k::Integer, budget::Integer)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(k, ix.len))
    ids = Vector{UInt32}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    stats = Ref(SearchStats(0, 0, 0))
    err = ErrorRef(C_NULL)
    GC.@preserve ix x begin
        check(ccall(sym(:panns_index_search_with_stats_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Ptr{UInt32}, Ptr{Float32},
                     Ptr{Csize_t}, Ptr{SearchStats}, Ptr{Ptr{UInt8}}),
                    live(ix), x, length(x), csize("k", k), csize("budget", budget), ids, dists, count,
                    stats, err), err)
    end
    n = Int(count[])
    return resize!(ids, n), resize!(dists, n), stats[]
end

"""
    search(ix::Index, q, k; budget = 0) -> (ids::Vector{Int}, distances::Vector{Float32})

The `k` approximate nearest neighbours of `q`, nearest first (ties by id): 0-based item ids and
their distances (fewer than `k` only if the index is smaller). `budget` is the number of
candidates re-ranked by exact distance (0 = library default), or the beam width when the index
has a neighbour graph ([`build_graph!`](@ref); 0 = 64). `filter` restricts the answer to the
allowed items (see `filter.jl`: a `Bool` mask of one entry per item, a vector of 0-based ids,
or a function of a 0-based id); fewer than `k` come back when fewer are allowed.
"""
function search(ix::Index, q::AbstractVector{<:Real}, k::Integer; budget::Integer = 0, filter = nothing)
    ids, dists, _ = filter === nothing ? one_query(ix, q, k, budget) : one_query_filtered(ix, q, k, budget, filter)
    return Int.(ids), dists
end

"""
    search_with_stats(ix::Index, q, k; budget = 0) -> (ids, distances, stats::SearchStats)

[`search`](@ref) that also tells what the search did: `stats.exact_scan == 1` when the budget
covered half the items or more and every item was scanned, 0 on the approximate path.
"""
function search_with_stats(ix::Index, q::AbstractVector{<:Real}, k::Integer; budget::Integer = 0,
                           filter = nothing)
    ids, dists, stats = filter === nothing ? one_query(ix, q, k, budget) :
                        one_query_filtered(ix, q, k, budget, filter)
    return Int.(ids), dists, stats
end

"""
    linear_search(ix::Index, q, k) -> (ids::Vector{Int}, distances::Vector{Float32})

The exact `k` nearest neighbours of `q` by scanning every item.
"""
function linear_search(ix::Index, q::AbstractVector{<:Real}, k::Integer)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(k, ix.len))
    ids = Vector{UInt32}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    err = ErrorRef(C_NULL)
    GC.@preserve ix x begin
        check(ccall(sym(:panns_index_linear_search_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Ptr{UInt32}, Ptr{Float32}, Ptr{Csize_t},
                     Ptr{Ptr{UInt8}}),
                    live(ix), x, length(x), csize("k", k), ids, dists, count, err), err)
    end
    n = Int(count[])
    return Int.(ids[1:n]), dists[1:n]
end

"""
    batch!(ids::Matrix{UInt32}, dists::Matrix{Float32}, ix, P::Matrix{Float32}, kk, budget)

`panns_index_search_batch_e` over the columns of `P` into `kk × n` buffers (0-based ids,
padding `typemax(UInt32)`).
"""
function batch!(ids::Matrix{UInt32}, dists::Matrix{Float32}, ix::Index, P::Matrix{Float32},
                kk::Integer, budget::Integer)
    err = ErrorRef(C_NULL)
    GC.@preserve ix P ids dists begin
        check(ccall(sym(:panns_index_search_batch_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Csize_t, Ptr{UInt32}, Ptr{Float32},
                     Ptr{Ptr{UInt8}}),
                    live(ix), P, size(P, 2), size(P, 1), csize("k", kk), csize("budget", budget), ids,
                    dists, err), err)
    end
    return nothing
end

"""
    search_batch(ix::Index, Q, k; budget = 0) -> (ids::Matrix{Int}, distances::Matrix{Float32})

Searches the columns of `Q` (`dim × n`) in parallel on all cores. Column `j` of the `k × n`
results holds the answer for query `j` (0-based ids); past the number of items it is padded
with id `-1` and distance `Inf`, as are rows beyond the items `filter` allows (see
[`search`](@ref); a function filter is called on the calling thread, one query at a time).
"""
function search_batch(ix::Index, Q::AbstractMatrix{<:Real}, k::Integer; budget::Integer = 0,
                      filter = nothing)
    M = Q isa Matrix{Float32} ? Q : Matrix{Float32}(Q)
    n = size(M, 2)
    csize("k", k)
    n == 0 && return fill(-1, k, 0), fill(Inf32, k, 0)
    kk = min(k, ix.len)   # rows past len are padding: bound the buffers, pad below
    ids = Matrix{UInt32}(undef, max(kk, 1), n)
    dists = Matrix{Float32}(undef, max(kk, 1), n)
    if filter === nothing
        batch!(ids, dists, ix, M, kk, budget)
    elseif filter isa Function
        # Julia functions are called on the calling thread only: one query at a time.
        fill!(ids, typemax(UInt32))
        for j in 1:n
            r, d, _ = one_query_filtered(ix, view(M, :, j), kk, budget, filter)
            ids[1:length(r), j] .= r
            dists[1:length(d), j] .= d
        end
    else
        batch_filtered!(ids, dists, ix, M, kk, budget, filter)
    end
    out_ids = fill(-1, k, n)
    out_dists = fill(Inf32, k, n)
    for j in 1:n, i in 1:kk
        if ids[i, j] != typemax(UInt32)
            out_ids[i, j] = Int(ids[i, j])
            out_dists[i, j] = dists[i, j]
        end
    end
    return out_ids, out_dists
end

"""
    knn!(idxs::AbstractMatrix{<:Integer}, dists::AbstractMatrix{Float32}, ix::Index,
         points::AbstractMatrix{<:Real}, k; budget = 0) -> (idxs, dists)

[`knn`](@ref) into preallocated `k × n` outputs (`n = size(points, 2)`). A `Matrix{Float32}`
`points` is read in place (no copy); when `k <= length(ix)` and `dists` is a
`Matrix{Float32}`, distances are written in place too.
"""
function knn!(idxs::AbstractMatrix{<:Integer}, dists::AbstractMatrix{Float32}, ix::Index,
              points::AbstractMatrix{<:Real}, k::Integer; budget::Integer = 0)
    d, n = size(points)
    k >= 1 || throw(PannsError(PANNS_INVALID_ARGUMENT, "k must be at least 1, got $k"))
    (size(idxs) == (k, n) && size(dists) == (k, n)) ||
        throw(DimensionMismatch("idxs and dists must be $k×$n, got $(size(idxs)) and $(size(dists))"))
    d == ix.dim ||
        throw(PannsError(PANNS_DIMENSION_MISMATCH, "points have $d rows, the index dimension is $(ix.dim)"))
    n == 0 && return idxs, dists
    P = points isa Matrix{Float32} ? points : Matrix{Float32}(points)   # d×n column-major = n×d row-major
    kk = min(k, ix.len)
    raw = Matrix{UInt32}(undef, kk, n)
    D = (kk == k && dists isa Matrix{Float32}) ? dists : Matrix{Float32}(undef, kk, n)
    batch!(raw, D, ix, P, kk, budget)
    for j in 1:n, i in 1:k
        if i <= kk && raw[i, j] != typemax(UInt32)
            idxs[i, j] = raw[i, j] + 1
            D === dists || (dists[i, j] = D[i, j])
        else
            idxs[i, j] = 0
            dists[i, j] = Inf32
        end
    end
    return idxs, dists
end

"""
    knn(ix::Index, points::AbstractMatrix, k; budget = 0) -> (idxs::Matrix{Int}, dists::Matrix{Float32})
    knn(ix::Index, point::AbstractVector, k; budget = 0) -> (idxs::Vector{Int}, dists::Vector{Float32})

The `k` approximate nearest neighbours of each column of `points` (`dim × n`, Julia's layout
for a set of vectors; a `Matrix{Float32}` is passed to the library without a copy): column
`j` of the `k × n` results holds query `j`'s neighbours, nearest first, as **1-based** indices
of the indexed vectors (item id + 1, i.e. columns of the data matrix given to
[`add_batch!`](@ref)). Past the number of items, columns are padded with index 0 and `Inf`.
Searched in parallel on all cores.
"""
function knn(ix::Index, points::AbstractMatrix{<:Real}, k::Integer; budget::Integer = 0)
    n = size(points, 2)
    k >= 1 || throw(PannsError(PANNS_INVALID_ARGUMENT, "k must be at least 1, got $k"))
    return knn!(Matrix{Int}(undef, k, n), Matrix{Float32}(undef, k, n), ix, points, k; budget = budget)
end

function knn(ix::Index, point::AbstractVector{<:Real}, k::Integer; budget::Integer = 0)
    ids, dists, _ = one_query(ix, point, k, budget)
    return Int.(ids) .+ 1, dists
end

"""
    get_vector(ix::Index, id) -> Vector{Float32}

A copy of the stored vector of 0-based item `id` (unit-normalised under `ANGULAR`). Throws
`PannsError(PANNS_OUT_OF_RANGE)` for an id outside the index.
"""
function get_vector(ix::Index, id::Integer)
    0 <= id <= typemax(UInt32) || throw(PannsError(PANNS_OUT_OF_RANGE, "item id $id out of range"))
    out = Vector{Float32}(undef, ix.dim)
    err = ErrorRef(C_NULL)
    GC.@preserve ix begin
        check(ccall(sym(:panns_index_get_vector_e), UInt32, (Ptr{Cvoid}, UInt32, Ptr{Float32}, Csize_t, Ptr{Ptr{UInt8}}),
                    live(ix), UInt32(id), out, length(out), err), err)
    end
    return out
end

include("filter.jl")

# ---------------------------------------------------------------------------------------------
# Sharded indexes (docs/format.md, "Sharded indexes"; docs/scaling.md)

"""
    ShardedIndex

The index shards named by a manifest, memory-mapped and searched as one: every query goes to
every shard (on the library's threads) and the answers are merged exactly by (distance, label).
Made by [`open_sharded`](@ref); free it with `close` (a finalizer does it otherwise).
"""
mutable struct ShardedIndex
    ptr::Ptr{Cvoid}
    len::Int
    dim::Int
    metric::Metric
    n_shards::Int

    function ShardedIndex(ptr::Ptr{Cvoid})
        sx = new(ptr,
                 Int(ccall(sym(:panns_sharded_len), Csize_t, (Ptr{Cvoid},), ptr)),
                 Int(ccall(sym(:panns_sharded_dim), UInt32, (Ptr{Cvoid},), ptr)),
                 Metric(ccall(sym(:panns_sharded_metric), UInt32, (Ptr{Cvoid},), ptr)),
                 Int(ccall(sym(:panns_sharded_n_shards), Csize_t, (Ptr{Cvoid},), ptr)))
        finalizer(close, sx)
        return sx
    end
end

"""
    close(sx::ShardedIndex)

Unmaps the shards; idempotent. Also the finalizer.
"""
function Base.close(sx::ShardedIndex)
    p = sx.ptr
    if p != C_NULL
        sx.ptr = C_NULL
        ccall(sym(:panns_sharded_free), Cvoid, (Ptr{Cvoid},), p)
    end
    return nothing
end

Base.length(sx::ShardedIndex) = sx.len
dim(sx::ShardedIndex) = sx.dim
metric(sx::ShardedIndex) = sx.metric

"""
    n_shards(sx::ShardedIndex) -> Int
"""
n_shards(sx::ShardedIndex) = sx.n_shards

"""
    write_manifest(manifest, paths)

Writes a manifest naming the index files `paths` (in order; one metric and dimension). Files
with a labels section are labelled by it, the others by their row in the concatenation.
"""
function write_manifest(manifest::AbstractString, paths::AbstractVector{<:AbstractString})
    strs = [String(p) for p in paths]
    ptrs = isempty(strs) ? [Ptr{UInt8}(C_NULL)] : [pointer(p) for p in strs]
    err = ErrorRef(C_NULL)
    GC.@preserve strs ptrs begin
        check(ccall(sym(:panns_sharded_write_manifest_e), UInt32,
                    (Cstring, Ptr{Ptr{UInt8}}, Csize_t, Ptr{Ptr{UInt8}}),
                    manifest, ptrs, length(strs), err), err)
    end
    return nothing
end

"""
    open_sharded(manifest; verify = false, shards = nothing) -> ShardedIndex

Opens the shards of a manifest (or only those at the 0-based positions `shards`: one server's
share; labels stay global). A missing, damaged or replaced shard (its checksum differs from the
manifest's), or one of another metric or dimension, throws a `PannsError` naming it.
"""
function open_sharded(manifest::AbstractString; verify::Bool = false,
                      shards::Union{Nothing,AbstractVector{<:Integer}} = nothing)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    err = ErrorRef(C_NULL)
    flags = verify ? UInt32(1) : UInt32(0)
    if shards === nothing
        check(ccall(sym(:panns_sharded_open_e), UInt32, (Cstring, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                    manifest, flags, out, err), err)
    else
        which = isempty(shards) ? Csize_t[0] : Csize_t[csize("shard", s) for s in shards]
        GC.@preserve which begin
            check(ccall(sym(:panns_sharded_open_subset_e), UInt32,
                        (Cstring, Ptr{Csize_t}, Csize_t, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                        manifest, which, length(shards), flags, out, err), err)
        end
    end
    return ShardedIndex(out[])
end

"""
    search(sx::ShardedIndex, q, k; budget = 0, filter = nothing)
        -> (labels::Vector{UInt64}, distances::Vector{Float32})

The `k` nearest items of `q` over all shards, nearest first, ties by label (labels are not
shifted to 1-based: they are the manifest's global labels). `budget` applies to each shard.
`filter`: a vector of allowed global labels (planned per shard: an exact scan of its listed
items when few are listed; unknown labels match nothing) or `DenyLabels(labels)`. Function
filters are refused here: the shards would call them from the library's own threads.
"""
function search(sx::ShardedIndex, q::AbstractVector{<:Real}, k::Integer; budget::Integer = 0,
                filter = nothing)
    filter === nothing || return search_sharded_filtered(sx, q, k, budget, filter)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(k, sx.len))
    labels = Vector{UInt64}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    err = ErrorRef(C_NULL)
    sx.ptr == C_NULL && throw(PannsError(PANNS_NULL_POINTER, "use of a closed ShardedIndex"))
    GC.@preserve sx x begin
        check(ccall(sym(:panns_sharded_search_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Ptr{UInt64}, Ptr{Float32},
                     Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                    sx.ptr, x, length(x), csize("k", k), csize("budget", budget), labels, dists, count,
                    err), err)
    end
    n = Int(count[])
    return resize!(labels, n), resize!(dists, n)
end

include("live.jl")

end # module
