# Live indexes (panns_live_* of the C ABI): included by Panns.jl.

"""
    LiveIndex

A live index: items added, replaced and removed by `UInt64` label while it is searched. It is
a base index file `path` plus an append-only log `path.log`; one writer at a time holds
`path.lock` (across processes), readers pick up the writer's commits with [`refresh!`](@ref).

```julia
w = create_live("items.panns", 128, ANGULAR)
add!(w, [1001, 1002], X)          # X: 128×2, one vector per column
commit!(w)                        # durable when it returns
r = open_live("items.panns")      # a reader, say in another process
labels, dists = search(r, X[:, 1], 10)   # labels[1] == 1001
```

Searches, `haskey`, [`get_vector`](@ref) and the accessors may run on many threads at once;
[`add!`](@ref), [`remove!`](@ref), [`commit!`](@ref), [`compact!`](@ref) and
[`refresh!`](@ref) need the index to themselves. Free it with `close` (a finalizer does it
otherwise): uncommitted changes are discarded and a writer releases its lock.
"""
mutable struct LiveIndex
    ptr::Ptr{Cvoid}
    dim::Int
    metric::Metric

    function LiveIndex(ptr::Ptr{Cvoid})
        l = new(ptr,
                Int(ccall(sym(:panns_live_dim), UInt32, (Ptr{Cvoid},), ptr)),
                Metric(ccall(sym(:panns_live_metric), UInt32, (Ptr{Cvoid},), ptr)))
        finalizer(close, l)
        return l
    end
end

"""
    close(l::LiveIndex)

Frees the live index (idempotent): uncommitted changes are discarded, a writer releases its
lock. Also the finalizer: it takes no lock and never yields.
"""
function Base.close(l::LiveIndex)
    p = l.ptr
    if p != C_NULL
        l.ptr = C_NULL
        ccall(sym(:panns_live_free), Cvoid, (Ptr{Cvoid},), p)
    end
    return nothing
end

"""
    create_live(path, dim, metric = EUCLIDEAN; graph_degree = 0, build options...) -> LiveIndex

Creates an empty live index at `path` and returns its writer; `path = nothing` makes one
held in memory only (no file, log or lock: `commit!` does nothing, `compact!` rebuilds the
base in memory, [`save`](@ref) writes it to a file). The build options of
[`build`](@ref) (`n_trees`, `leaf_size`, ...) are used by every compaction; `graph_degree > 0`
gives each compacted base a neighbour graph. Throws `PANNS_INVALID_ARGUMENT` if the files
exist, `PANNS_LOCKED` if another writer holds the lock.
"""
function create_live(path::Union{Nothing,AbstractString}, dim::Integer, metric = EUCLIDEAN; graph_degree::Integer = 0,
                     n_trees = nothing, leaf_size = nothing, pool_size = nothing, candidates = nothing,
                     split::Symbol = :mean, threads::Integer = 0, seed = nothing)
    m = to_metric(metric)
    opts = Ref(build_options(n_trees, leaf_size, pool_size, candidates, split, threads, seed))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    err = ErrorRef(C_NULL)
    if path === nothing   # NULL: in memory
        check(ccall(sym(:panns_live_create_e), UInt32,
                    (Ptr{Cvoid}, UInt32, UInt32, Ptr{BuildOptions}, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                    C_NULL, u32("dim", dim), UInt32(m), opts, u32("graph_degree", graph_degree), out, err), err)
    else
        check(ccall(sym(:panns_live_create_e), UInt32,
                    (Cstring, UInt32, UInt32, Ptr{BuildOptions}, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                    path, u32("dim", dim), UInt32(m), opts, u32("graph_degree", graph_degree), out, err), err)
    end
    return LiveIndex(out[])
end

"""
    open_live(path; writable = false) -> LiveIndex

Opens the live index at `path` (any index file opens as generation 1, its 0-based item ids as
labels). `writable = true` takes the writer lock (`PANNS_LOCKED` if another writer holds it);
a reader sees the last commit made before it opened, later ones after [`refresh!`](@ref).
"""
function open_live(path::AbstractString; writable::Bool = false)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    err = ErrorRef(C_NULL)
    check(ccall(sym(:panns_live_open_e), UInt32, (Cstring, UInt32, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                path, writable ? UInt32(1) : UInt32(0), out, err), err)
    return LiveIndex(out[])
end

"""
    live_from_index(ix::Index, path; labels = nothing) -> LiveIndex

Writes `ix` as generation 1 of a new live index at `path` and returns its writer (`path =
nothing`: a live index held in memory only over a copy of `ix`). `labels` holds one distinct
label per item (`nothing`: the 0-based item ids).
"""
function live_from_index(ix::Index, path::Union{Nothing,AbstractString}; labels = nothing)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    err = ErrorRef(C_NULL)
    ls = labels === nothing ? UInt64[] : Vector{UInt64}(labels)
    lp = labels === nothing ? Ptr{UInt64}(C_NULL) : pointer(ls)
    GC.@preserve ix ls begin
        if path === nothing   # NULL: in memory
            check(ccall(sym(:panns_live_from_index_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{UInt64}, Csize_t, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                        live(ix), C_NULL, lp, length(ls), out, err), err)
        else
            check(ccall(sym(:panns_live_from_index_e), UInt32,
                        (Ptr{Cvoid}, Cstring, Ptr{UInt64}, Csize_t, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                        live(ix), path, lp, length(ls), out, err), err)
        end
    end
    return LiveIndex(out[])
end

"""
    add!(l::LiveIndex, labels, X::AbstractMatrix) -> LiveIndex
    add!(l::LiveIndex, label::Integer, v::AbstractVector) -> LiveIndex

Adds one item per label, `labels[j]` with column `j` of `X` (`dim × n`); a label already held
is replaced. All or nothing: a NaN, a zero vector (angular), a wrong dimension or a label
twice in the batch throws and applies nothing. Durable after [`commit!`](@ref).
"""
function add!(l::LiveIndex, labels::AbstractVector{<:Integer}, X::AbstractMatrix{<:Real})
    ls = Vector{UInt64}(labels)
    length(ls) == size(X, 2) ||
        throw(PannsError(PANNS_INVALID_ARGUMENT, "$(length(ls)) labels for $(size(X, 2)) columns"))
    M = X isa Matrix{Float32} ? X : Matrix{Float32}(X)
    isempty(ls) && return l
    err = ErrorRef(C_NULL)
    GC.@preserve l ls M begin
        check(ccall(sym(:panns_live_add_e), UInt32,
                    (Ptr{Cvoid}, Ptr{UInt64}, Ptr{Float32}, Csize_t, Csize_t, Ptr{Ptr{UInt8}}),
                    live(l), ls, M, size(M, 2), size(M, 1), err), err)
    end
    return l
end

add!(l::LiveIndex, label::Integer, v::AbstractVector{<:Real}) = add!(l, [label], reshape(Vector{Float32}(v), :, 1))

"""
    remove!(l::LiveIndex, labels) -> Int

Removes the items of `labels` (labels not held are ignored); returns how many were removed.
Durable after [`commit!`](@ref).
"""
function remove!(l::LiveIndex, labels::AbstractVector{<:Integer})
    ls = Vector{UInt64}(labels)
    removed = Ref{Csize_t}(0)
    isempty(ls) && return 0
    err = ErrorRef(C_NULL)
    GC.@preserve l ls begin
        check(ccall(sym(:panns_live_remove_e), UInt32, (Ptr{Cvoid}, Ptr{UInt64}, Csize_t, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                    live(l), ls, length(ls), removed, err), err)
    end
    return Int(removed[])
end

"""
    commit!(l::LiveIndex) -> LiveIndex

Makes every change since the last commit durable (fsynced before it returns), then compacts
if the delta or the removals have grown past their thresholds.
"""
function commit!(l::LiveIndex)
    err = ErrorRef(C_NULL)
    GC.@preserve l begin
        check(ccall(sym(:panns_live_commit_e), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), live(l), err), err)
    end
    return l
end

"""
    compact!(l::LiveIndex) -> LiveIndex

Commits, then writes the live items as the next base generation and starts a fresh log.
"""
function compact!(l::LiveIndex)
    err = ErrorRef(C_NULL)
    GC.@preserve l begin
        check(ccall(sym(:panns_live_compact_e), UInt32, (Ptr{Cvoid}, Ptr{Ptr{UInt8}}), live(l), err), err)
    end
    return l
end

"""
    save(l::LiveIndex, path)

Writes the live items to `path` as one index file with their labels (atomically);
[`open_live`](@ref) opens it as a live index, [`open_index`](@ref) as a plain one. An index in
memory is compacted first if it changed. `PANNS_INVALID_ARGUMENT` for an index with no items.
"""
function save(l::LiveIndex, path::AbstractString)
    err = ErrorRef(C_NULL)
    GC.@preserve l begin
        check(ccall(sym(:panns_live_save_e), UInt32, (Ptr{Cvoid}, Cstring, Ptr{Ptr{UInt8}}), live(l), path, err), err)
    end
    return nothing
end

"""
    refresh!(l::LiveIndex) -> Bool

For a reader: picks up the commits made since it opened or last refreshed; true if anything
changed (a writer is always current: false).
"""
function refresh!(l::LiveIndex)
    changed = Ref{Cint}(0)
    err = ErrorRef(C_NULL)
    GC.@preserve l begin
        check(ccall(sym(:panns_live_refresh_e), UInt32, (Ptr{Cvoid}, Ptr{Cint}, Ptr{Ptr{UInt8}}),
                    live(l), changed, err), err)
    end
    return changed[] != 0
end

"""
    search_with_stats(l::LiveIndex, q, k; budget = 0) -> (labels::Vector{UInt64}, distances, stats)

The `k` approximate nearest live items to `q`, nearest first (ties by label), with what the
search of the base did (`stats.exact_scan`; all zero before the first compaction).
"""
function search_with_stats(l::LiveIndex, q::AbstractVector{<:Real}, k::Integer; budget::Integer = 0)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(k, length(l)))
    labels = Vector{UInt64}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    stats = Ref(SearchStats(0, 0, 0))
    err = ErrorRef(C_NULL)
    GC.@preserve l x labels dists begin
        check(ccall(sym(:panns_live_search_with_stats_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Ptr{UInt64}, Ptr{Float32},
                     Ptr{Csize_t}, Ptr{SearchStats}, Ptr{Ptr{UInt8}}),
                    live(l), x, length(x), csize("k", k), csize("budget", budget), labels, dists, count,
                    stats, err), err)
    end
    n = Int(count[])
    return resize!(labels, n), resize!(dists, n), stats[]
end

"""
    search(l::LiveIndex, q, k; budget = 0, filter = nothing) -> (labels::Vector{UInt64}, distances::Vector{Float32})

The `k` approximate nearest live items to `q`, nearest first (ties by label); fewer than `k`
only if fewer items are live (or, with a `filter`, allowed). `budget` as in [`search`](@ref)
of an `Index`. `filter` restricts the answer to some labels: `nothing` (every label), a vector
of allowed labels, [`DenyLabels`](@ref)`(labels)`, or a function `f(label::UInt64)::Bool`
(an exception it throws stops the search and is rethrown). A listed label the index does not
hold matches nothing, a removed label is never returned. A label vector is planned (an exact
scan of its items when few are listed); a deny-list or a function walks the base with the
filter, so a selective function needs a large budget.
"""
function search(l::LiveIndex, q::AbstractVector{<:Real}, k::Integer; budget::Integer = 0, filter = nothing)
    filter === nothing || return search_filtered(l, q, k, budget, filter)
    labels, dists, _ = search_with_stats(l, q, k; budget = budget)
    return labels, dists
end

# ---------------------------------------------------------------------------------------------
# Filtered search of a live index (PannsLabelFilter)

const LABEL_FILTER_ALL = UInt32(0)
const LABEL_FILTER_ALLOW = UInt32(1)
const LABEL_FILTER_DENY = UInt32(2)
const LABEL_FILTER_PREDICATE = UInt32(3)

"""
    DenyLabels(labels)

A `filter` of a live-index [`search`](@ref) / [`search_batch`](@ref): every label except
`labels` (labels not held are ignored).
"""
struct DenyLabels
    labels::Vector{UInt64}
    DenyLabels(labels::AbstractVector{<:Integer}) = new(Vector{UInt64}(labels))
end

"""
    CLabelFilter

`PannsLabelFilter`, field for field (the layout must match the C struct; checked by
`scripts/check-julia-ccalls.py`).
"""
struct CLabelFilter
    kind::UInt32
    labels::Ptr{UInt64}
    n_labels::Csize_t
    predicate::Ptr{Cvoid}
    user_data::Ptr{Cvoid}
end

"""
    label_filter_trampoline(label, data) -> Cint

The C predicate of function filters on labels: 1 allows, 0 refuses, -1 (after an exception,
kept in the state) aborts the search. Same state as `filter_trampoline` (filter.jl), but the
function receives the `UInt64` label itself.
"""
function label_filter_trampoline(label::UInt64, data::Ptr{Cvoid})::Cint
    st = unsafe_pointer_to_objref(data)::PredicateState
    st.err === nothing || return Cint(-1)
    try
        return st.f(label) ? Cint(1) : Cint(0)
    catch e
        st.err = e
        return Cint(-1)
    end
end

"""
    with_label_filter(body, filter)

Calls `body(c)` with `c` the C label filter (`C_NULL` for `nothing`, else a
`Ref{CLabelFilter}` whose list stays alive during the call); rethrows a filter function's
exception in place of the `PANNS_CALLBACK_FAILED` error it caused.
"""
function with_label_filter(body, filter)
    filter === nothing && return body(C_NULL)
    if filter isa Function
        st = PredicateState(filter, nothing)
        cb = @cfunction(label_filter_trampoline, Cint, (UInt64, Ptr{Cvoid}))
        GC.@preserve st begin
            c = Ref(CLabelFilter(LABEL_FILTER_PREDICATE, C_NULL, 0, cb, pointer_from_objref(st)))
            try
                return body(c)
            catch e
                if e isa PannsError && e.status == PANNS_CALLBACK_FAILED && st.err !== nothing
                    throw(st.err)
                end
                rethrow()
            end
        end
    end
    kind, ls = if filter isa DenyLabels
        (LABEL_FILTER_DENY, filter.labels)
    elseif filter isa AbstractVector{<:Integer}
        for (j, lb) in enumerate(filter)
            0 <= lb <= typemax(UInt64) ||
                throw(PannsError(PANNS_INVALID_ARGUMENT, "filter label $lb (entry $j) is not a UInt64"))
        end
        (LABEL_FILTER_ALLOW, Vector{UInt64}(filter))
    else
        throw(PannsError(PANNS_INVALID_ARGUMENT,
                         "filter must be nothing, a vector of labels, DenyLabels(labels) or a function, got $(typeof(filter))"))
    end
    GC.@preserve ls begin
        p = isempty(ls) ? Ptr{UInt64}(C_NULL) : pointer(ls)
        return body(Ref(CLabelFilter(kind, p, length(ls), C_NULL, C_NULL)))
    end
end

"""
    search_filtered(l, q, k, budget, filter) -> (labels, distances)

One filtered search of a live index (`panns_live_search_filtered_e`).
"""
function search_filtered(l::LiveIndex, q::AbstractVector{<:Real}, k::Integer, budget::Integer, filter)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(k, length(l)))
    labels = Vector{UInt64}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    with_label_filter(filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve l x labels dists begin
            check(ccall(sym(:panns_live_search_filtered_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Ptr{CLabelFilter}, Ptr{UInt64},
                         Ptr{Float32}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                        live(l), x, length(x), csize("k", k), csize("budget", budget), c, labels, dists, count,
                        err), err)
        end
    end
    n = Int(count[])
    return resize!(labels, n), resize!(dists, n)
end

"""
    with_sharded_filter(body, sx, filter)

Calls `body(c)` with `c` the C label filter of a sharded search (`C_NULL` for `nothing`; see
[`with_label_filter`](@ref)) after refusing a function filter (the shards would call it from
the library's own threads) and a closed index.
"""
function with_sharded_filter(body, sx::ShardedIndex, filter)
    filter isa Function && throw(PannsError(PANNS_INVALID_ARGUMENT,
        "a function filter cannot run on a sharded index (the shards search on the library's own threads); pass the allowed labels or DenyLabels(labels)"))
    sx.ptr == C_NULL && throw(PannsError(PANNS_NULL_POINTER, "use of a closed ShardedIndex"))
    return with_label_filter(body, filter)
end

"""
    search_sharded_filtered(sx, q, k, budget, filter) -> (labels, distances)

One filtered search of a sharded index (`panns_sharded_search_filtered_e`); `filter` a label
vector or `DenyLabels` (see `search(::ShardedIndex, ...)`).
"""
function search_sharded_filtered(sx::ShardedIndex, q::AbstractVector{<:Real}, k::Integer, budget::Integer,
                                 filter)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(k, sx.len))
    labels = Vector{UInt64}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    with_sharded_filter(sx, filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve sx x labels dists begin
            check(ccall(sym(:panns_sharded_search_filtered_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Ptr{CLabelFilter}, Ptr{UInt64},
                         Ptr{Float32}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                        sx.ptr, x, length(x), csize("k", k), csize("budget", budget), c, labels, dists, count,
                        err), err)
        end
    end
    n = Int(count[])
    return resize!(labels, n), resize!(dists, n)
end

"""
    range_search(sx::ShardedIndex, q, radius, max_results; budget = 0, filter = nothing)
        -> (labels::Vector{UInt64}, distances::Vector{Float32}, truncated::Bool)

Every item within `radius` of `q` over all shards (among the global labels `filter` allows:
a vector of labels or `DenyLabels(labels)`, as in `search(::ShardedIndex, ...)`), nearest
first, ties by label, at most `max_results`; `truncated` tells whether the cap cut the list.
Each shard's candidates are its `max_results + 1` nearest at `budget`, and the merge is
exact: the answer is exact when the budget covers half of each shard's items.
"""
function range_search(sx::ShardedIndex, q::AbstractVector{<:Real}, radius::Real, max_results::Integer;
                      budget::Integer = 0, filter = nothing)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(max_results, sx.len))
    labels = Vector{UInt64}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    truncated = Ref{UInt8}(0)
    with_sharded_filter(sx, filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve sx x labels dists begin
            check(ccall(sym(:panns_sharded_range_search_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Float32, Csize_t, Csize_t, Ptr{CLabelFilter},
                         Ptr{UInt64}, Ptr{Float32}, Ptr{Csize_t}, Ptr{UInt8}, Ptr{Ptr{UInt8}}),
                        sx.ptr, x, length(x), Float32(radius), csize("max_results", max_results),
                        csize("budget", budget), c, labels, dists, count, truncated, err), err)
        end
    end
    n = Int(count[])
    return resize!(labels, n), resize!(dists, n), truncated[] != 0
end

"""
    search_batch(sx::ShardedIndex, Q, k; budget = 0, filter = nothing)
        -> (labels::Matrix{UInt64}, distances::Matrix{Float32})

Searches the columns of `Q` (`dim × n`) over all shards in parallel
(`panns_sharded_search_batch_filtered_e`, one `filter` for every query, as in
`search(::ShardedIndex, ...)`); column `j` of the `k × n` results holds query `j`'s labels,
padded with `typemax(UInt64)` and `Inf` past the items found.
"""
function search_batch(sx::ShardedIndex, Q::AbstractMatrix{<:Real}, k::Integer; budget::Integer = 0,
                      filter = nothing)
    M = Q isa Matrix{Float32} ? Q : Matrix{Float32}(Q)
    n = size(M, 2)
    csize("k", k)
    out_labels = fill(typemax(UInt64), k, n)
    out_dists = fill(Inf32, k, n)
    n == 0 && return out_labels, out_dists
    kk = k == 0 ? 0 : max(1, min(k, sx.len))   # rows past the items are padding
    labels = Matrix{UInt64}(undef, max(kk, 1), n)
    dists = Matrix{Float32}(undef, max(kk, 1), n)
    counts = zeros(Csize_t, n)
    with_sharded_filter(sx, filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve sx M labels dists counts begin
            check(ccall(sym(:panns_sharded_search_batch_filtered_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Csize_t, Ptr{CLabelFilter},
                         Ptr{UInt64}, Ptr{Float32}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                        sx.ptr, M, n, size(M, 1), kk, csize("budget", budget), c, labels, dists, counts,
                        err), err)
        end
    end
    for j in 1:n, i in 1:min(kk, Int(counts[j]))
        out_labels[i, j] = labels[i, j]
        out_dists[i, j] = dists[i, j]
    end
    return out_labels, out_dists
end

"""
    range_search(l::LiveIndex, q, radius, max_results; budget = 0)
        -> (labels::Vector{UInt64}, distances::Vector{Float32}, truncated::Bool)

Every live item within `radius` of `q`, nearest first, at most `max_results`; `truncated`
tells whether the cap cut the list. The candidates are the `max_results + 1` nearest at
`budget`: approximate unless the budget covers half the items.
"""
function range_search(l::LiveIndex, q::AbstractVector{<:Real}, radius::Real, max_results::Integer;
                      budget::Integer = 0)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(max_results, length(l)))
    labels = Vector{UInt64}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    truncated = Ref{UInt8}(0)
    err = ErrorRef(C_NULL)
    GC.@preserve l x labels dists begin
        check(ccall(sym(:panns_live_range_search_e), UInt32,
                    (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Float32, Csize_t, Csize_t, Ptr{UInt64}, Ptr{Float32},
                     Ptr{Csize_t}, Ptr{UInt8}, Ptr{Ptr{UInt8}}),
                    live(l), x, length(x), Float32(radius), csize("max_results", max_results),
                    csize("budget", budget), labels, dists, count, truncated, err), err)
    end
    n = Int(count[])
    return resize!(labels, n), resize!(dists, n), truncated[] != 0
end

"""
    search_batch(l::LiveIndex, Q, k; budget = 0, filter = nothing)
        -> (labels::Matrix{UInt64}, distances::Matrix{Float32})

Searches the columns of `Q` (`dim × n`) in parallel; column `j` of the `k × n` results holds
query `j`'s labels, padded with `typemax(UInt64)` and `Inf` past the number of live (with a
`filter`, allowed) items found. `filter` as in [`search`](@ref); a function filter is called
on the calling thread, one query at a time.
"""
function search_batch(l::LiveIndex, Q::AbstractMatrix{<:Real}, k::Integer; budget::Integer = 0, filter = nothing)
    M = Q isa Matrix{Float32} ? Q : Matrix{Float32}(Q)
    n = size(M, 2)
    csize("k", k)
    out_labels = fill(typemax(UInt64), k, n)
    out_dists = fill(Inf32, k, n)
    n == 0 && return out_labels, out_dists
    if filter isa Function
        for j in 1:n
            ls, ds = search_filtered(l, view(M, :, j), k, budget, filter)
            out_labels[1:length(ls), j] = ls
            out_dists[1:length(ds), j] = ds
        end
        return out_labels, out_dists
    end
    kk = k == 0 ? 0 : max(1, min(k, length(l)))   # rows past the live items are padding
    labels = Matrix{UInt64}(undef, max(kk, 1), n)
    dists = Matrix{Float32}(undef, max(kk, 1), n)
    counts = fill(Csize_t(kk), n)
    err = ErrorRef(C_NULL)
    if filter === nothing
        GC.@preserve l M labels dists begin
            check(ccall(sym(:panns_live_search_batch_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Csize_t, Ptr{UInt64}, Ptr{Float32},
                         Ptr{Ptr{UInt8}}),
                        live(l), M, n, size(M, 1), kk, csize("budget", budget), labels, dists, err), err)
        end
    else
        with_label_filter(filter) do c
            GC.@preserve l M labels dists counts begin
                check(ccall(sym(:panns_live_search_batch_filtered_e), UInt32,
                            (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Csize_t, Ptr{CLabelFilter},
                             Ptr{UInt64}, Ptr{Float32}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                            live(l), M, n, size(M, 1), kk, csize("budget", budget), c, labels, dists, counts,
                            err), err)
            end
        end
    end
    for j in 1:n, i in 1:min(kk, Int(counts[j]))
        out_labels[i, j] = labels[i, j]
        out_dists[i, j] = dists[i, j]
    end
    return out_labels, out_dists
end

"""
    haskey(l::LiveIndex, label) -> Bool

True if `label` is held.
"""
Base.haskey(l::LiveIndex, label::Integer) = GC.@preserve l begin
    label >= 0 && ccall(sym(:panns_live_contains), Cint, (Ptr{Cvoid}, UInt64), l.ptr, UInt64(label)) != 0
end

"""
    get_vector(l::LiveIndex, label) -> Vector{Float32}

A copy of the stored vector of `label` (unit length under `ANGULAR`); throws
`PannsError(PANNS_OUT_OF_RANGE)` if the label is not held.
"""
function get_vector(l::LiveIndex, label::Integer)
    out = Vector{Float32}(undef, l.dim)
    err = ErrorRef(C_NULL)
    GC.@preserve l begin
        check(ccall(sym(:panns_live_get_e), UInt32, (Ptr{Cvoid}, UInt64, Ptr{Float32}, Csize_t, Ptr{Ptr{UInt8}}),
                    live(l), UInt64(label), out, length(out), err), err)
    end
    return out
end

"""
    length(l::LiveIndex) -> Int

The number of live items (0 for a closed index).
"""
Base.length(l::LiveIndex) = GC.@preserve l begin
    Int(ccall(sym(:panns_live_len), Csize_t, (Ptr{Cvoid},), l.ptr))
end

"""
    dim(l::LiveIndex) -> Int
"""
dim(l::LiveIndex) = l.dim

"""
    metric(l::LiveIndex) -> Metric
"""
metric(l::LiveIndex) = l.metric

"""
    live_info(l::LiveIndex) -> NamedTuple

`(len, generation, base_len, delta_len, tombstones, pending, writable, in_memory)`: live
items, the base generation (0 before the first compaction), items in the base file (removed
ones included), live items added since the base was written, base items removed or replaced
since, this handle's uncommitted changes, whether it takes changes (the writer, or an index
in memory), and whether it is held in memory only.
"""
function live_info(l::LiveIndex)
    info = GC.@preserve l begin
        p = l.ptr
        (len = Int(ccall(sym(:panns_live_len), Csize_t, (Ptr{Cvoid},), p)),
         generation = ccall(sym(:panns_live_generation), UInt64, (Ptr{Cvoid},), p),
         base_len = Int(ccall(sym(:panns_live_base_len), Csize_t, (Ptr{Cvoid},), p)),
         delta_len = Int(ccall(sym(:panns_live_delta_len), Csize_t, (Ptr{Cvoid},), p)),
         tombstones = Int(ccall(sym(:panns_live_tombstones), Csize_t, (Ptr{Cvoid},), p)),
         pending = Int(ccall(sym(:panns_live_pending), Csize_t, (Ptr{Cvoid},), p)),
         writable = ccall(sym(:panns_live_is_writable), Cint, (Ptr{Cvoid},), p) != 0,
         in_memory = ccall(sym(:panns_live_is_in_memory), Cint, (Ptr{Cvoid},), p) != 0)
    end
    return info
end
