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
close(ix2); close(ix); close(b)
```

Item ids are 0-based insertion order, as in every panns language. Failed calls throw a
[`PannsError`](@ref) with the library's status and message.
"""
module Panns

using Libdl

export Builder, Index, BuildOptions, PannsError, Status, Metric, EUCLIDEAN, ANGULAR, DOT,
       add!, add_batch!, add_file!, build, save, open_index, search, search_batch,
       linear_search, get_vector, dim, metric, n_trees, build_graph!, graph_degree,
       build_options_default, library_version,
       PANNS_OK, PANNS_NULL_POINTER, PANNS_INVALID_ARGUMENT, PANNS_DIMENSION_MISMATCH,
       PANNS_NON_FINITE, PANNS_ZERO_VECTOR, PANNS_EMPTY, PANNS_IO, PANNS_CORRUPT,
       PANNS_UNSUPPORTED, PANNS_OUT_OF_RANGE, PANNS_BUFFER_TOO_SMALL, PANNS_PANIC

# ---------------------------------------------------------------------------------------------
# Library loading

const LIBHANDLE = Ref{Ptr{Cvoid}}(C_NULL)
const SYMBOLS = Dict{Symbol,Ptr{Cvoid}}()
const SYMBOLS_LOCK = ReentrantLock()

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
    return nothing
end

"""
    sym(name) -> Ptr{Cvoid}

The address of the C function `name` in `libpanns` (looked up once, then cached).
"""
function sym(name::Symbol)
    lock(SYMBOLS_LOCK) do
        get!(() -> Libdl.dlsym(LIBHANDLE[], name), SYMBOLS, name)
    end
end

# ---------------------------------------------------------------------------------------------
# Types of the C ABI

"""
    Status

`PannsStatus`: the result code of every fallible C function (values named as in C).
"""
@enum Status::Int32 begin
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
    leaf_size::UInt32    # default 32
    pool_size::UInt32    # default 128
    candidates::UInt32   # default 8
    split::UInt32        # 0 = mean, 1 = median
    threads::UInt32      # 0 = all cores
    seed::UInt64         # default 42
end

"""
    PannsError(status, message)

A failed panns call: the [`Status`](@ref) and the library's message
(`panns_last_error_message`).
"""
struct PannsError <: Exception
    status::Status
    message::String
end

Base.showerror(io::IO, e::PannsError) = print(io, "PannsError(", e.status, "): ", e.message)

"""
    last_error_message() -> String

The calling thread's message of the last failed panns call.
"""
last_error_message() = unsafe_string(ccall(sym(:panns_last_error_message), Cstring, ()))

"""
    check(status)

Throws a [`PannsError`](@ref) unless `status` is `PANNS_OK`.
"""
function check(status::Int32)
    status == Int32(PANNS_OK) && return nothing
    s = status in Int32(PANNS_OK):Int32(PANNS_PANIC) ? Status(status) : PANNS_PANIC
    throw(PannsError(s, last_error_message()))
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
        check(ccall(sym(:panns_builder_new), Int32, (UInt32, UInt32, Ptr{Ptr{Cvoid}}),
                    u32("dim", dim), UInt32(m), out))
        b = new(out[], Int(dim), m)
        finalizer(close, b)
        return b
    end
end

"""
    close(b::Builder)

Frees the builder (idempotent). Using it afterwards throws `PannsError(PANNS_NULL_POINTER)`.
"""
function Base.close(b::Builder)
    if b.ptr != C_NULL
        ccall(sym(:panns_builder_free), Cvoid, (Ptr{Cvoid},), b.ptr)
        b.ptr = C_NULL
    end
    return nothing
end

"""
    live(h) -> Ptr{Cvoid}

The C pointer of an open handle; throws for a closed one.
"""
function live(h)
    h.ptr == C_NULL && throw(PannsError(PANNS_NULL_POINTER, "use of a closed panns handle"))
    return h.ptr
end

"""
    length(b::Builder) -> Int

The number of vectors added since the builder was created or last built.
"""
Base.length(b::Builder) =
    b.ptr == C_NULL ? 0 : Int(ccall(sym(:panns_builder_len), Csize_t, (Ptr{Cvoid},), b.ptr))

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
    check(ccall(sym(:panns_builder_add), Int32, (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Ptr{UInt32}),
                live(b), x, length(x), id))
    return Int(id[])
end

"""
    add_batch!(b::Builder, X::AbstractMatrix{<:Real})

Adds the columns of `X` (`dim × n`: one vector per column, Julia's column-major layout is the
row-major layout of the C ABI) in one call.
"""
function add_batch!(b::Builder, X::AbstractMatrix{<:Real})
    M = Matrix{Float32}(X)
    check(ccall(sym(:panns_builder_add_batch), Int32, (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t),
                live(b), M, size(M, 2), size(M, 1)))
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
    if dataset === nothing   # NULL: the library's default dataset name ("train")
        check(ccall(sym(:panns_builder_add_file), Int32, (Ptr{Cvoid}, Cstring, Ptr{Cvoid}, Ptr{Csize_t}),
                    live(b), path, C_NULL, added))
    else
        check(ccall(sym(:panns_builder_add_file), Int32, (Ptr{Cvoid}, Cstring, Cstring, Ptr{Csize_t}),
                    live(b), path, dataset, added))
    end
    return Int(added[])
end

# ---------------------------------------------------------------------------------------------
# Index

"""
    Index

A built or opened index: search it with [`search`](@ref), [`search_batch`](@ref) and
[`linear_search`](@ref) (safe from many threads at once); free it with `close` (a finalizer
does it otherwise). Closing while another thread searches is a bug of the caller.
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

Frees the index (unmapping an opened file); idempotent.
"""
function Base.close(ix::Index)
    if ix.ptr != C_NULL
        ccall(sym(:panns_index_free), Cvoid, (Ptr{Cvoid},), ix.ptr)
        ix.ptr = C_NULL
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
graph_degree(ix::Index) = Int(ccall(sym(:panns_index_graph_degree), UInt32, (Ptr{Cvoid},), ix.ptr))

"""
    build_graph!(ix::Index; degree = 0, threads = 0) -> Index

Adds (or replaces) a neighbour graph of `degree` neighbours per item (0 = the library default,
24), built with `threads` workers (0 = all cores; the graph does not depend on it). With a
graph, searches reach high recall with far fewer distance computations and `budget` in
[`search`](@ref) is the beam width (like HNSW's ef; 0 = 64). [`save`](@ref) keeps the graph.
No other thread may use `ix` during the call. Throws `PannsError` with `PANNS_UNSUPPORTED` for
an index opened by [`open_index`](@ref) (read-only), `PANNS_INVALID_ARGUMENT` for a degree
above 256.
"""
function build_graph!(ix::Index; degree::Integer = 0, threads::Integer = 0)
    check(ccall(sym(:panns_index_build_graph), Int32, (Ptr{Cvoid}, UInt32, UInt32),
                live(ix), u32("degree", degree), u32("threads", threads)))
    return ix
end

"""
    build(b::Builder; n_trees, leaf_size, pool_size, candidates, split = :mean, threads = 0,
          seed) -> Index

Builds an index over the builder's vectors (which move into it: the builder is left empty but
usable). Omitted options take the library defaults; `split` is `:mean` or `:median`;
`threads = 0` uses all cores and never changes the result.
"""
function build(b::Builder; n_trees = nothing, leaf_size = nothing, pool_size = nothing,
               candidates = nothing, split::Symbol = :mean, threads::Integer = 0, seed = nothing)
    d = build_options_default()
    pick(x, default, name) = x === nothing ? default : u32(name, x)
    split in (:mean, :median) ||
        throw(PannsError(PANNS_INVALID_ARGUMENT, "split must be :mean or :median, got :$split"))
    seed === nothing || seed >= 0 || throw(PannsError(PANNS_INVALID_ARGUMENT, "seed must not be negative"))
    opts = Ref(BuildOptions(pick(n_trees, d.n_trees, "n_trees"),
                            pick(leaf_size, d.leaf_size, "leaf_size"),
                            pick(pool_size, d.pool_size, "pool_size"),
                            pick(candidates, d.candidates, "candidates"),
                            split === :mean ? UInt32(0) : UInt32(1),
                            u32("threads", threads),
                            seed === nothing ? d.seed : UInt64(seed)))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    check(ccall(sym(:panns_builder_build), Int32, (Ptr{Cvoid}, Ptr{BuildOptions}, Ptr{Ptr{Cvoid}}),
                live(b), opts, out))
    return Index(out[])
end

"""
    save(ix::Index, path)

Writes the index to `path` (atomically: temporary file, fsync, rename).
"""
function save(ix::Index, path::AbstractString)
    check(ccall(sym(:panns_index_save), Int32, (Ptr{Cvoid}, Cstring), live(ix), path))
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
    check(ccall(sym(:panns_index_open), Int32, (Cstring, UInt32, Ptr{Ptr{Cvoid}}),
                path, verify ? UInt32(1) : UInt32(0), out))
    return Index(out[])
end

"""
    search(ix::Index, q, k; budget = 0) -> (ids::Vector{Int}, distances::Vector{Float32})

The `k` approximate nearest neighbours of `q`, nearest first (ties by id): 0-based item ids and
their distances (fewer than `k` only if the index is smaller). `budget` is the number of
candidates re-ranked by exact distance (0 = library default), or the beam width when the index
has a neighbour graph ([`build_graph!`](@ref); 0 = 64).
"""
function search(ix::Index, q::AbstractVector{<:Real}, k::Integer; budget::Integer = 0)
    x = Vector{Float32}(q)
    cap = max(1, min(k, ix.len))
    ids = Vector{UInt32}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    check(ccall(sym(:panns_index_search), Int32,
                (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Ptr{UInt32}, Ptr{Float32}, Ptr{Csize_t}),
                live(ix), x, length(x), csize("k", k), csize("budget", budget), ids, dists, count))
    n = Int(count[])
    return Int.(ids[1:n]), dists[1:n]
end

"""
    linear_search(ix::Index, q, k) -> (ids::Vector{Int}, distances::Vector{Float32})

The exact `k` nearest neighbours of `q` by scanning every item.
"""
function linear_search(ix::Index, q::AbstractVector{<:Real}, k::Integer)
    x = Vector{Float32}(q)
    cap = max(1, min(k, ix.len))
    ids = Vector{UInt32}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    check(ccall(sym(:panns_index_linear_search), Int32,
                (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Ptr{UInt32}, Ptr{Float32}, Ptr{Csize_t}),
                live(ix), x, length(x), csize("k", k), ids, dists, count))
    n = Int(count[])
    return Int.(ids[1:n]), dists[1:n]
end

"""
    search_batch(ix::Index, Q, k; budget = 0) -> (ids::Matrix{Int}, distances::Matrix{Float32})

Searches the columns of `Q` (`dim × n`) in parallel on all cores. Column `j` of the `k × n`
results holds the answer for query `j`; past the number of items it is padded with id `-1` and
distance `Inf`.
"""
function search_batch(ix::Index, Q::AbstractMatrix{<:Real}, k::Integer; budget::Integer = 0)
    M = Matrix{Float32}(Q)
    n = size(M, 2)
    csize("k", k)
    n == 0 && return fill(-1, k, 0), fill(Inf32, k, 0)
    kk = min(k, ix.len)   # rows past len are padding: bound the buffers, pad below
    ids = Matrix{UInt32}(undef, max(kk, 1), max(n, 1))
    dists = Matrix{Float32}(undef, max(kk, 1), max(n, 1))
    check(ccall(sym(:panns_index_search_batch), Int32,
                (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Csize_t, Ptr{UInt32}, Ptr{Float32}),
                live(ix), M, n, size(M, 1), csize("k", kk), csize("budget", budget), ids, dists))
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
    get_vector(ix::Index, id) -> Vector{Float32}

A copy of the stored vector of 0-based item `id` (unit-normalised under `ANGULAR`). Throws
`PannsError(PANNS_OUT_OF_RANGE)` for an id outside the index.
"""
function get_vector(ix::Index, id::Integer)
    0 <= id <= typemax(UInt32) || throw(PannsError(PANNS_OUT_OF_RANGE, "item id $id out of range"))
    out = Vector{Float32}(undef, ix.dim)
    check(ccall(sym(:panns_index_get_vector), Int32, (Ptr{Cvoid}, UInt32, Ptr{Float32}, Csize_t),
                live(ix), UInt32(id), out, length(out)))
    return out
end

end # module
