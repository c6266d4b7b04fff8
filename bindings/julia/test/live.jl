# Live-index tests (included by runtests.jl inside the "Panns" testset): add, search against
# an exact scan, remove, commit, a reader refreshing, compaction, the lock and bad input.

"""Exact k nearest labels (squared L2, ties by label) of q in the model label => vector."""
function exact_labels(model::Dict{UInt64,Vector{Float32}}, q, k)
    all = [(sum((Float64.(v) .- Float64.(q)) .^ 2), l) for (l, v) in model]
    sort!(all)
    return [l for (_, l) in all[1:min(k, length(all))]]
end

@testset "live index" begin
    rng = MersenneTwister(11)
    dir = mktempdir()
    path = joinpath(dir, "live.panns")
    w = create_live(path, 12, :euclidean; n_trees = 16)
    model = Dict{UInt64,Vector{Float32}}()
    labels = UInt64.(1_000_000 .+ 3 .* (0:1499))
    X = randn(rng, Float32, 12, 1500)
    add!(w, labels, X)
    for (j, l) in enumerate(labels)
        model[l] = X[:, j]
    end
    @test length(w) == 1500 && live_info(w).pending == 1500 && live_info(w).writable
    ls, ds = search(w, X[:, 8], 3)
    @test ls[1] == labels[8] && ds[1] == 0f0
    # a reader sees the changes after commit! and refresh!
    r = open_live(path)
    @test length(r) == 0 && !live_info(r).writable
    commit!(w)
    @test refresh!(r)
    @test !refresh!(r)
    @test length(r) == 1500 && get_vector(r, labels[100]) == X[:, 100] && haskey(r, labels[5])
    compact!(w)
    @test live_info(w).generation == 1 && live_info(w).base_len == 1500
    # churn: remove 100, replace 50, add 100
    @test remove!(w, labels[1:100]) == 100
    @test remove!(w, labels[1:100]) == 0
    foreach(l -> delete!(model, l), labels[1:100])
    Y = randn(rng, Float32, 12, 50)
    add!(w, labels[501:550], Y)
    for j in 1:50
        model[labels[500 + j]] = Y[:, j]
    end
    Z = randn(rng, Float32, 12, 100)
    new_labels = UInt64.(7 .+ 3 .* (0:99))
    add!(w, new_labels, Z)
    for j in 1:100
        model[new_labels[j]] = Z[:, j]
    end
    info = live_info(w)
    @test info.tombstones == 150 && info.delta_len == 150 && info.len == length(model)
    @test !haskey(w, labels[1]) && get_vector(w, labels[501]) == Y[:, 1]
    # recall against the exact scan at a budget well below half the items
    found = 0
    for _ in 1:40
        q = randn(rng, Float32, 12)
        got, _, st = search_with_stats(w, q, 10; budget = 300)
        @test st.exact_scan == 0
        @test all(l -> haskey(model, l), got)
        found += length(intersect(got, exact_labels(model, q, 10)))
    end
    @info "live recall@10 at budget 300 after churn: $(found / 400)"
    @test found / 400 >= 0.8
    commit!(w)
    @test refresh!(r)
    @test length(r) == length(model) && !haskey(r, labels[1]) && get_vector(r, new_labels[3]) == Z[:, 3]
    # range search at a budget covering every item: the exact ball, nearest first
    q = randn(rng, Float32, 12)
    want = exact_labels(model, q, 6)
    radius = sqrt(sum((Float64.(model[want[6]]) .- q) .^ 2)) * 1.00001
    ball, _, cut = range_search(r, q, radius, 100; budget = 1 << 30)
    @test !cut && ball[1:6] == want
    capped, _, cut = range_search(r, q, 1f9, 3)
    @test length(capped) == 3 && cut
    @throws_status PANNS_INVALID_ARGUMENT range_search(r, q, -1, 3)
    Q = randn(rng, Float32, 12, 7)
    bl, bd = search_batch(r, Q, 5; budget = 100)
    for j in 1:7
        sl, sd = search(r, Q[:, j], 5; budget = 100)
        @test bl[:, j] == sl && bd[:, j] == sd
        @test search(w, Q[:, j], 5; budget = 100) == (sl, sd)
    end
    # one writer at a time; readers change nothing
    @throws_status PANNS_LOCKED open_live(path; writable = true)
    @throws_status PANNS_READ_ONLY add!(r, 1, ones(Float32, 12))
    @throws_status PANNS_READ_ONLY commit!(r)
    # bad batches apply nothing
    n = length(w)
    bad = randn(rng, Float32, 12, 3)
    bad[2, 2] = NaN32
    @throws_status PANNS_NON_FINITE add!(w, [1, 2, 3], bad)
    @throws_status PANNS_INVALID_ARGUMENT add!(w, [1, 2, 1], randn(rng, Float32, 12, 3))
    @throws_status PANNS_DIMENSION_MISMATCH add!(w, [1, 2], randn(rng, Float32, 11, 2))
    @throws_status PANNS_INVALID_ARGUMENT add!(w, [1, 2], randn(rng, Float32, 12, 3))
    @test length(w) == n && !haskey(w, 1) && !haskey(w, 2)
    @throws_status PANNS_OUT_OF_RANGE get_vector(w, 424242)
    @throws_status PANNS_DIMENSION_MISMATCH search(w, ones(Float32, 3), 1)
    close(w)
    close(w)
    @throws_status PANNS_NULL_POINTER commit!(w)
    w2 = open_live(path; writable = true)   # the lock was released
    @test live_info(w2).writable
    close(w2)
    close(r)
    # from an index, with labels
    b = Builder(12, :euclidean)
    add_batch!(b, X[:, 1:50])
    ix = build(b)
    lf = live_from_index(ix, joinpath(dir, "from.panns"); labels = 900 .+ (0:49))
    @test search(lf, X[:, 10], 1)[1] == [UInt64(909)]
    close(lf); close(ix); close(b)
    rm(dir; recursive = true)
end

@testset "live index in memory" begin
    rng = MersenneTwister(12)
    X = randn(rng, Float32, 8, 200)
    b = Builder(8, :euclidean)
    add_batch!(b, X)
    ix = build(b; n_trees = 8)
    labels = UInt64.(100 .+ 2 .* (0:199))
    m = live_from_index(ix, nothing; labels = labels)
    close(ix)   # m holds its own copy
    info = live_info(m)
    @test info.in_memory && info.writable && info.generation == 1 && info.len == 200
    model = Dict{UInt64,Vector{Float32}}(labels[j] => X[:, j] for j in 1:200)
    @test remove!(m, labels[1:2]) == 2
    delete!(model, labels[1]); delete!(model, labels[2])
    Y = randn(rng, Float32, 8, 3)
    add!(m, [labels[9], 1, 3], Y)
    for (j, l) in enumerate([labels[9], 1, 3])
        model[l] = Y[:, j]
    end
    commit!(m)
    for _ in 1:10
        q = randn(rng, Float32, 8)
        @test search(m, q, 5)[1] == exact_labels(model, q, 5)
    end
    compact!(m)
    @test live_info(m).generation == 2
    dir = mktempdir()
    save(m, joinpath(dir, "saved.panns"))
    r = open_live(joinpath(dir, "saved.panns"))
    @test !live_info(r).in_memory && length(r) == length(model)
    @test all(l -> get_vector(r, l) == model[l], keys(model))
    e = create_live(nothing, 8, :angular)
    @test live_info(e).in_memory && length(e) == 0
    @throws_status PANNS_INVALID_ARGUMENT save(e, joinpath(dir, "empty.panns"))
    close(e); close(r); close(m); close(b)
    rm(dir; recursive = true)
end

@testset "live index: filtered search by label" begin
    rng = MersenneTwister(13)
    n = 1500
    m = create_live(nothing, 8, :euclidean; n_trees = 16)
    labels = UInt64.(9000 .+ 3 .* (0:n-1))
    X = randn(rng, Float32, 8, n)
    add!(m, labels, X)
    model = Dict{UInt64,Vector{Float32}}(labels[j] => X[:, j] for j in 1:n)
    compact!(m)
    gone = labels[1:30:end]
    @test remove!(m, gone) == length(gone)
    foreach(l -> delete!(model, l), gone)
    Y = randn(rng, Float32, 8, 80)
    add!(m, UInt64.(1:80), Y)   # the delta
    for j in 1:80
        model[UInt64(j)] = Y[:, j]
    end
    iseven_label(l) = l % 2 == 0
    allowed = Dict(l => v for (l, v) in model if iseven_label(l))
    allow = vcat([l for l in keys(model) if iseven_label(l)], gone, UInt64[100, 1 << 40])   # 100: never held
    deny = DenyLabels([l for l in keys(model) if !iseven_label(l)])
    k, small, every = 10, 100, 30 * n
    Q = randn(rng, Float32, 8, 30)
    found, differs = 0, 0
    for j in 1:30
        q = Q[:, j]
        want = exact_labels(allowed, q, k)
        @test search(m, q, k; budget = every, filter = allow)[1] == want
        @test search(m, q, k; budget = every, filter = iseven_label)[1] == want
        a = search(m, q, k; budget = small, filter = allow)
        @test a == search(m, q, k; budget = small, filter = deny)
        @test a == search(m, q, k; budget = small, filter = iseven_label)
        @test length(a[1]) == k && all(l -> iseven_label(l) && haskey(model, l), a[1]) && issorted(a[2])
        found += count(in(want), a[1])
        differs += search(m, q, k; budget = small)[1] != a[1]
    end
    @test found / (30k) >= 0.8
    @test differs >= 28
    @test isempty(search(m, Q[:, 1], k; filter = UInt64[])[1])
    @test isempty(search(m, Q[:, 1], k; budget = every, filter = gone)[1])
    @test isempty(search(m, Q[:, 1], k; budget = every, filter = [100, 6000, 1 << 40])[1])
    # batch: the rows of single searches, padded past the results found
    L, D = search_batch(m, Q, k; budget = small, filter = allow)
    @test all(j -> L[:, j] == search(m, Q[:, j], k; budget = small, filter = allow)[1], 1:30)
    L, D = search_batch(m, Q[:, 1:3], k; budget = small, filter = iseven_label)
    @test all(j -> L[:, j] == search(m, Q[:, j], k; budget = small, filter = iseven_label)[1], 1:3)
    two = [l for l in keys(model) if !iseven_label(l)][1:2]
    L, D = search_batch(m, Q[:, 1:3], k; budget = small, filter = two)
    @test all(j -> sort(L[1:2, j]) == sort(two) && all(==(typemax(UInt64)), L[3:end, j]), 1:3)
    @test all(isinf, D[3:end, :])
    # an exception of the filter function stops the search and is rethrown
    calls = Ref(0)
    err = try
        search(m, Q[:, 1], 5; budget = 50, filter = l -> (calls[] += 1) < 4 || error("no more"))
        nothing
    catch e
        e
    end
    @test err isa ErrorException && err.msg == "no more" && calls[] == 4
    @throws_status PANNS_INVALID_ARGUMENT search(m, Q[:, 1], 5; filter = "labels")
    close(m)
end
