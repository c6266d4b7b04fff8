# Filtered search and range search (included by Panns.jl).
#
# A `filter` keyword of `search`, `search_with_stats`, `search_batch` and `range_search` is one
# of: `nothing` (every item), an `AbstractVector{Bool}` / `BitVector` mask with one entry per
# item (entry `i` is 0-based item `i - 1`), an `AbstractVector{<:Integer}` of allowed 0-based
# item ids, a function `f(id::Int)::Bool` of a 0-based id, or an `AllowList` made once by
# `prepare_filter` for many searches. An exception thrown by the function stops the search and
# is rethrown.

const FILTER_ALL = UInt32(0)
const FILTER_ALLOW_BITMAP = UInt32(1)
const FILTER_ALLOW_IDS = UInt32(3)
const FILTER_PREDICATE = UInt32(5)
const FILTER_ALLOW_LIST = UInt32(6)

"""
    AllowList

A filter prepared once for many searches of one index by [`prepare_filter`](@ref)
(`PannsAllowList`): pass it as `filter`; the searches then skip counting and listing the allowed
items. Immutable: any number of tasks may search with it at once. Freed by `close` or its
finalizer.
"""
mutable struct AllowList
    ptr::Ptr{Cvoid}

    function AllowList(ptr::Ptr{Cvoid})
        a = new(ptr)
        finalizer(close, a)
        return a
    end
end

"""
    close(a::AllowList)

Frees the list; idempotent. Also the finalizer: it takes no lock and never yields.
"""
function Base.close(a::AllowList)
    p = a.ptr
    if p != C_NULL
        a.ptr = C_NULL
        ccall(sym(:panns_allow_list_free), Cvoid, (Ptr{Cvoid},), p)
    end
    return nothing
end

"""
    length(a::AllowList) -> Int

The number of items the list allows.
"""
Base.length(a::AllowList) = Int(ccall(sym(:panns_allow_list_len), Csize_t, (Ptr{Cvoid},), live(a)))

"""
    n_items(a::AllowList) -> Int

The item count of the index the list was made for (searches accept it only for an index of
that many items).
"""
n_items(a::AllowList) = Int(ccall(sym(:panns_allow_list_items), Csize_t, (Ptr{Cvoid},), live(a)))

"""
    prepare_filter(ix::Index, filter) -> AllowList

`filter` (a `Bool` mask, a vector of 0-based ids, `nothing` for every item, or another
`AllowList`) prepared once for many searches of `ix` (`panns_allow_list_new_e`): the results
and statistics of a search given the list are those of `filter`. A function cannot be prepared
(`PANNS_INVALID_ARGUMENT`).
"""
function prepare_filter(ix::Index, filter)
    filter isa Function &&
        throw(PannsError(PANNS_INVALID_ARGUMENT, "a function filter cannot be prepared: pass a mask or ids"))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    with_filter(filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve ix begin
            check(ccall(sym(:panns_allow_list_new_e), UInt32,
                        (Ptr{Cvoid}, Ptr{CFilter}, Ptr{Ptr{Cvoid}}, Ptr{Ptr{UInt8}}),
                        live(ix), c, out, err), err)
        end
    end
    return AllowList(out[])
end

"""
    CFilter

`PannsFilter`, field for field (the layout must match the C struct; checked by
`scripts/check-julia-ccalls.py`).
"""
struct CFilter
    kind::UInt32
    bits::Ptr{UInt64}
    n_bits::Csize_t
    ids::Ptr{UInt32}
    n_ids::Csize_t
    predicate::Ptr{Cvoid}
    user_data::Ptr{Cvoid}
end

"""
    PredicateState

A Julia filter function and the first exception it threw during one search.
"""
mutable struct PredicateState
    f::Any
    err::Any
end

"""
    filter_trampoline(id, data) -> Cint

The C predicate of function filters: 1 allows, 0 refuses, -1 (after an exception, which is
kept in the state) aborts the search.
"""
function filter_trampoline(id::UInt64, data::Ptr{Cvoid})::Cint
    st = unsafe_pointer_to_objref(data)::PredicateState
    st.err === nothing || return Cint(-1)
    try
        return st.f(Int(id)) ? Cint(1) : Cint(0)
    catch e
        st.err = e
        return Cint(-1)
    end
end

"""
    mask_bits(mask) -> Vector{UInt64}

A mask packed into a bitmap (bit `i % 64` of word `i ÷ 64` for 0-based item `i`).
"""
function mask_bits(mask::AbstractVector{Bool})
    words = zeros(UInt64, max(1, cld(length(mask), 64)))
    for (j, b) in enumerate(mask)
        b && (words[(j - 1) ÷ 64 + 1] |= UInt64(1) << ((j - 1) % 64))
    end
    return words
end

"""
    with_filter(body, filter)

Calls `body(c)` with `c` the C filter (`C_NULL` for `nothing`, else a `Ref{CFilter}` whose
arrays stay alive during the call); rethrows a filter function's exception in place of the
`PANNS_CALLBACK_FAILED` error it caused.
"""
function with_filter(body, filter)
    filter === nothing && return body(C_NULL)
    if filter isa Function
        st = PredicateState(filter, nothing)
        cb = @cfunction(filter_trampoline, Cint, (UInt64, Ptr{Cvoid}))
        GC.@preserve st begin
            c = Ref(CFilter(FILTER_PREDICATE, C_NULL, 0, C_NULL, 0, cb, pointer_from_objref(st)))
            try
                return body(c)
            catch e
                if e isa PannsError && e.status == PANNS_CALLBACK_FAILED && st.err !== nothing
                    throw(st.err)
                end
                rethrow()
            end
        end
    elseif filter isa AbstractVector{Bool}
        words = mask_bits(filter)
        GC.@preserve words begin
            return body(Ref(CFilter(FILTER_ALLOW_BITMAP, pointer(words), length(filter), C_NULL, 0, C_NULL, C_NULL)))
        end
    elseif filter isa AbstractVector{<:Integer}
        for (j, id) in enumerate(filter)
            0 <= id <= typemax(UInt32) ||
                throw(PannsError(PANNS_OUT_OF_RANGE, "filter id $id (entry $j) is not an item id"))
        end
        ids = Vector{UInt32}(filter)
        GC.@preserve ids begin
            p = isempty(ids) ? Ptr{UInt32}(C_NULL) : pointer(ids)
            return body(Ref(CFilter(FILTER_ALLOW_IDS, C_NULL, 0, p, length(ids), C_NULL, C_NULL)))
        end
    elseif filter isa AllowList
        GC.@preserve filter begin
            return body(Ref(CFilter(FILTER_ALLOW_LIST, C_NULL, 0, C_NULL, 0, C_NULL, live(filter))))
        end
    else
        throw(PannsError(PANNS_INVALID_ARGUMENT,
                         "filter must be nothing, a Bool mask, a vector of item ids, a function or an AllowList, got $(typeof(filter))"))
    end
end

"""
    one_query_filtered(ix, q, k, budget, filter) -> (ids::Vector{UInt32}, distances, stats)

One filtered search (`panns_index_search_filtered_e`); 0-based ids.
"""
function one_query_filtered(ix::Index, q::AbstractVector{<:Real}, k::Integer, budget::Integer, filter)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    cap = max(1, min(k, ix.len))
    ids = Vector{UInt32}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    stats = Ref(SearchStats(0, 0, 0))
    with_filter(filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve ix x begin
            check(ccall(sym(:panns_index_search_filtered_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Ptr{CFilter}, Ptr{UInt32},
                         Ptr{Float32}, Ptr{Csize_t}, Ptr{SearchStats}, Ptr{Ptr{UInt8}}),
                        live(ix), x, length(x), csize("k", k), csize("budget", budget), c, ids, dists, count,
                        stats, err), err)
        end
    end
    n = Int(count[])
    return resize!(ids, n), resize!(dists, n), stats[]
end

"""
    batch_filtered!(ids, dists, ix, P, kk, budget, filter)

`panns_index_search_batch_filtered_e` over the columns of `P` (a mask or ids filter; function
filters are searched one query at a time by the caller, on the calling thread).
"""
function batch_filtered!(ids::Matrix{UInt32}, dists::Matrix{Float32}, ix::Index, P::Matrix{Float32},
                         kk::Integer, budget::Integer, filter)
    with_filter(filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve ix P ids dists begin
            check(ccall(sym(:panns_index_search_batch_filtered_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Csize_t, Csize_t, Csize_t, Ptr{CFilter},
                         Ptr{UInt32}, Ptr{Float32}, Ptr{Csize_t}, Ptr{Ptr{UInt8}}),
                        live(ix), P, size(P, 2), size(P, 1), csize("k", kk), csize("budget", budget), c, ids,
                        dists, C_NULL, err), err)
        end
    end
    return nothing
end

"""
    range_search(ix::Index, q, radius; max_results = 1000, budget = 0, filter = nothing)
        -> (ids::Vector{Int}, distances::Vector{Float32}, truncated::Bool)

Every item (that `filter` allows) within distance `radius` of `q`, nearest first, at most
`max_results` of them, as 0-based ids; `truncated` is true when more were within the radius
and the list was cut. The candidates come from the same search as [`search`](@ref) with
`k = max_results + 1`, so the result is exact only when `budget` covers half the (allowed)
items. A negative or NaN radius throws `PannsError(PANNS_INVALID_ARGUMENT)`.
"""
function range_search(ix::Index, q::AbstractVector{<:Real}, radius::Real; max_results::Integer = 1000,
                      budget::Integer = 0, filter = nothing)
    x = q isa Vector{Float32} ? q : Vector{Float32}(q)
    max_results >= 1 || throw(PannsError(PANNS_INVALID_ARGUMENT, "max_results must be at least 1, got $max_results"))
    cap = min(max_results, max(1, ix.len))   # no more than len items can be within the radius
    ids = Vector{UInt32}(undef, cap)
    dists = Vector{Float32}(undef, cap)
    count = Ref{Csize_t}(0)
    truncated = Ref{UInt8}(0)
    with_filter(filter) do c
        err = ErrorRef(C_NULL)
        GC.@preserve ix x begin
            check(ccall(sym(:panns_index_range_search_e), UInt32,
                        (Ptr{Cvoid}, Ptr{Float32}, Csize_t, Float32, Csize_t, Csize_t, Ptr{CFilter}, Ptr{UInt32},
                         Ptr{Float32}, Ptr{Csize_t}, Ptr{UInt8}, Ptr{Ptr{UInt8}}),
                        live(ix), x, length(x), Float32(radius), csize("max_results", cap), csize("budget", budget),
                        c, ids, dists, count, truncated, err), err)
        end
    end
    n = Int(count[])
    return Int.(ids[1:n]), dists[1:n], truncated[] != 0 && cap == max_results
end
