# Tests of the Julia binding: build, save, open, search, errors, and the cross-language fixture.

using Panns
using Random
using Test

"""Brute-force Euclidean k-NN (0-based ids) of column vectors."""
function brute(X, q, k)
    d = [sqrt(sum((Float64.(X[:, j]) .- q) .^ 2)) for j in 1:size(X, 2)]
    order = sortperm(collect(zip(d, 0:length(d)-1)))
    return order[1:k] .- 1
end

"""Expects a PannsError of the given status with a non-empty message."""
macro throws_status(status, expr)
    quote
        err = try
            $(esc(expr))
            nothing
        catch e
            e
        end
        @test err isa PannsError
        err isa PannsError && @test err.status == $(esc(status))
        err isa PannsError && @test !isempty(err.message)
    end
end

@testset "Panns" begin
    rng = MersenneTwister(7)
    X = randn(rng, Float32, 16, 400)   # 400 vectors of dimension 16, one per column

    @testset "version and defaults" begin
        @test !isempty(library_version())
        d = build_options_default()
        @test d.n_trees > 0 && d.leaf_size > 0 && d.pool_size > 0 && d.candidates > 0
    end

    @testset "build, save, open, search" begin
        b = Builder(16, :euclidean)
        @test add!(b, X[:, 1]) == 0
        @test add!(b, X[:, 2]) == 1
        add_batch!(b, X[:, 3:end])
        @test length(b) == 400 && dim(b) == 16 && metric(b) == EUCLIDEAN
        ix = build(b; n_trees = 12, seed = 3)
        @test length(b) == 0
        @test length(ix) == 400 && dim(ix) == 16 && n_trees(ix) == 12 && metric(ix) == EUCLIDEAN

        ids, dists = search(ix, X[:, 51], 10)
        @test length(ids) == 10 && ids[1] == 50 && dists[1] < 1f-3
        @test issorted(dists)
        q = randn(rng, Float32, 16)
        exact, _ = linear_search(ix, q, 10)
        @test exact == brute(X, Float64.(q), 10)
        # the exact-scan switch: a budget of half the items scans everything, one less does not
        full, _, st = search_with_stats(ix, q, 10; budget = 200)
        @test st.exact_scan == 1 && st.scored == 400 && full == exact
        _, _, st = search_with_stats(ix, q, 10; budget = 199)
        @test st.exact_scan == 0 && st.budget == 199 && st.scored < 400
        @test length(search(ix, q, 1000)[1]) == 400

        Q = randn(rng, Float32, 16, 20)
        bids, bdists = search_batch(ix, Q, 5; budget = 50)
        @test size(bids) == (5, 20)
        for j in 1:20
            sids, sd = search(ix, Q[:, j], 5; budget = 50)
            @test bids[:, j] == sids
            @test bdists[:, j] ≈ sd atol = 1f-6
        end
        @test get_vector(ix, 7) == X[:, 8]

        path = joinpath(mktempdir(), "julia.panns")
        save(ix, path)
        for verify in (false, true)
            op = open_index(path; verify = verify)
            @test length(op) == 400 && dim(op) == 16 && n_trees(op) == 12
            @test search(op, q, 10; budget = 30) == search(ix, q, 10; budget = 30)
            close(op)
            close(op)   # idempotent
        end
        close(ix)
        close(b)
        close(b)
    end

    @testset "angular and padding" begin
        b = Builder(16, ANGULAR)
        add_batch!(b, X[:, 1:3])
        ix = build(b; n_trees = 2)
        v = get_vector(ix, 1)
        @test sum(v .^ 2) ≈ 1 atol = 1e-5
        ids, dists = search_batch(ix, X[:, 1:2], 5)
        @test all(ids[4:5, :] .== -1) && all(isinf, dists[4:5, :])
        close(ix)
        close(b)
    end

    @testset "errors" begin
        @throws_status PANNS_INVALID_ARGUMENT Builder(0, :euclidean)
        @throws_status PANNS_INVALID_ARGUMENT Builder(4, :manhattan)
        b = Builder(4, :angular)
        @throws_status PANNS_DIMENSION_MISMATCH add!(b, Float32[1, 2, 3])
        @throws_status PANNS_NON_FINITE add!(b, Float32[1, NaN, 0, 0])
        @throws_status PANNS_ZERO_VECTOR add!(b, zeros(Float32, 4))
        @throws_status PANNS_DIMENSION_MISMATCH add_batch!(b, ones(Float32, 3, 2))
        @throws_status PANNS_IO add_file!(b, joinpath(mktempdir(), "missing.csv"))
        @throws_status PANNS_EMPTY build(b)
        add_batch!(b, randn(rng, Float32, 4, 30))
        @throws_status PANNS_INVALID_ARGUMENT build(b; n_trees = 0)
        @throws_status PANNS_INVALID_ARGUMENT build(b; n_trees = -1)
        ix = build(b; n_trees = 2)
        @throws_status PANNS_INVALID_ARGUMENT search(ix, Float32[1, 0, 0, 0], 0)
        @throws_status PANNS_INVALID_ARGUMENT search(ix, Float32[1, 0, 0, 0], 3; budget = -1)
        @throws_status PANNS_DIMENSION_MISMATCH search(ix, Float32[1, 0, 0], 3)
        @throws_status PANNS_NON_FINITE search(ix, Float32[NaN, 0, 0, 0], 3)
        @throws_status PANNS_DIMENSION_MISMATCH linear_search(ix, Float32[1, 0], 3)
        @throws_status PANNS_INVALID_ARGUMENT search_batch(ix, ones(Float32, 4, 2), 0)
        @throws_status PANNS_OUT_OF_RANGE get_vector(ix, 30)
        @throws_status PANNS_OUT_OF_RANGE get_vector(ix, -1)
        dir = mktempdir()
        @throws_status PANNS_IO save(ix, joinpath(dir, "no-such-dir", "x.panns"))
        @throws_status PANNS_IO open_index(joinpath(dir, "missing.panns"))
        good = joinpath(dir, "good.panns")
        save(ix, good)
        raw = read(good)
        for (name, content) in ("garbage" => Vector{UInt8}(repeat("not an index ", 20)),
                                "empty" => UInt8[], "truncated" => raw[1:div(length(raw), 2)])
            p = joinpath(dir, name * ".panns")
            write(p, content)
            @throws_status PANNS_CORRUPT open_index(p)
        end
        close(ix)
        @throws_status PANNS_NULL_POINTER search(ix, Float32[1, 0, 0, 0], 3)
        close(b)
        @throws_status PANNS_NULL_POINTER add!(b, Float32[1, 0, 0, 0])
        @test length(b) == 0
    end

    @testset "recall on the approximate path, knn, bytes" begin
        R = randn(MersenneTwister(21), Float32, 16, 5000)
        b = Builder(16, EUCLIDEAN)
        add_batch!(b, R)
        ix = build(b; n_trees = 16)
        Q = randn(MersenneTwister(22), Float32, 16, 100)
        idxs, dists = knn(ix, Q, 10; budget = 500)            # 1-based, 10×100
        @test size(idxs) == (10, 100) && size(dists) == (10, 100)
        hits = 0
        for j in 1:100
            @test search_with_stats(ix, Q[:, j], 10; budget = 500)[3].exact_scan == 0
            exact = linear_search(ix, Q[:, j], 10)[1] .+ 1
            hits += length(intersect(Set(exact), Set(idxs[:, j])))
            @test idxs[:, j] == search(ix, Q[:, j], 10; budget = 500)[1] .+ 1
        end
        @test hits / 1000 >= 0.75          # random candidates: 0.10
        # the data column is its own nearest neighbour, index = column
        @test knn(ix, R[:, 17], 1)[1] == [17]
        I2 = zeros(Int32, 10, 100); D2 = zeros(Float32, 10, 100)
        knn!(I2, D2, ix, Q, 10; budget = 500)
        @test I2 == idxs && D2 == dists
        @test_throws DimensionMismatch knn!(zeros(Int, 3, 3), zeros(Float32, 3, 3), ix, Q, 10)
        small = open_bytes(to_bytes(build(Builder(16, EUCLIDEAN) |> x -> (add_batch!(x, R[:, 1:4]); x))))
        si, sd = knn(small, Q[:, 1:2], 6)
        @test all(si[5:6, :] .== 0) && all(isinf, sd[5:6, :])
        @test status_string(PANNS_DIMENSION_MISMATCH) == "dimension mismatch"
        copy = open_bytes(to_bytes(ix); verify = true)
        @test search(copy, Q[:, 1], 10; budget = 500) == search(ix, Q[:, 1], 10; budget = 500)
        @throws_status PANNS_CORRUPT open_bytes(UInt8[1, 2, 3])
        close(copy); close(small); close(ix); close(b)
    end

    @testset "errors travel with the call" begin
        ix = build(Builder(4, EUCLIDEAN) |> x -> (add_batch!(x, randn(Float32, 4, 50)); x))
        msgs = Vector{String}(undef, 64)
        Threads.@threads for t in 1:64
            msgs[t] = try
                search(ix, zeros(Float32, 4 + t), 3)
                ""
            catch e
                e.message
            end
        end
        @test all(occursin("got $(4 + t)", msgs[t]) for t in 1:64)
        close(ix)
    end

    @testset "neighbour graph" begin
        # 2000 points near 20 centres; queries are stored points plus small noise.
        grng = MersenneTwister(11)
        centres = 4 .* randn(grng, Float32, 16, 20)
        G = centres[:, rand(grng, 1:20, 2000)] .+ randn(grng, Float32, 16, 2000)
        Q = G[:, rand(grng, 1:2000, 100)] .+ 0.05f0 .* randn(grng, Float32, 16, 100)
        function built()
            b = Builder(16, EUCLIDEAN)
            add_batch!(b, G)
            ix = build(b; n_trees = 16, seed = 1)
            close(b)
            return ix
        end
        trees, graph = built(), built()
        @test graph_degree(graph) == 0
        @test build_graph!(graph; degree = 16) === graph
        @test graph_degree(graph) == 16 && n_trees(graph) == 16

        truth = [Set(linear_search(trees, Q[:, j], 10)[1]) for j in 1:size(Q, 2)]
        recall(ix) = sum(length(intersect(truth[j], search(ix, Q[:, j], 10; budget = 40)[1]))
                         for j in 1:size(Q, 2)) / (10 * size(Q, 2))
        @test search_with_stats(trees, Q[:, 1], 10; budget = 40)[3].exact_scan == 0
        r_trees, r_graph = recall(trees), recall(graph)
        @test r_graph >= r_trees
        @test r_graph >= 0.9
        exact = built()                                  # scored exactly during the build
        @test build_graph!(exact; degree = 16, exact_graph_build = true) === exact
        @test graph_degree(exact) == 16 && recall(exact) >= 0.9

        build_graph!(trees)                              # the default degree
        @test graph_degree(trees) == 24
        build_graph!(trees; degree = 8, threads = 1)     # replaced
        @test graph_degree(trees) == 8
        @throws_status PANNS_INVALID_ARGUMENT build_graph!(trees; degree = 100000)
        @throws_status PANNS_INVALID_ARGUMENT build_graph!(trees; degree = -1)

        path = joinpath(mktempdir(), "graph.panns")
        save(graph, path)
        op = open_index(path)
        @test graph_degree(op) == 16
        for j in 1:20
            @test search(op, Q[:, j], 10; budget = 40) == search(graph, Q[:, j], 10; budget = 40)
        end
        build_graph!(op; degree = 8)   # an opened index takes a graph too (in memory)
        @test graph_degree(op) == 8
        close(op)
        @test graph_degree(op) == 0
        @throws_status PANNS_NULL_POINTER build_graph!(op)
        close(graph)
        close(trees)
    end

    @testset "8-bit codes (dtype, set_dtype!)" begin
        # recall@10 on the approximate path (budget 1000 of 5000), f32 vs i8, against the
        # exact neighbours of the f32 vectors; then with a graph built before the switch.
        # Go's twin (same shapes, Go's random data) measured at budget 1000: Euclidean f32
        # 0.964, i8 0.946; angular 0.979, 0.963; graph at beam 40: 0.966/0.947, 0.978/0.966.
        n, d = 5000, 16
        R = randn(MersenneTwister(60), Float32, d, n)
        Q = randn(MersenneTwister(61), Float32, d, 100)
        function built(metric)
            b = Builder(d, metric)
            add_batch!(b, R)
            ix = build(b; n_trees = 16, seed = 5)
            close(b)
            return ix
        end
        function recall(ix, truth, budget)
            hits = 0
            for j in 1:size(Q, 2)
                ids, _, st = search_with_stats(ix, Q[:, j], 10; budget = budget)
                @test st.exact_scan == 0 && st.budget == budget && st.scored <= n ÷ 2
                hits += length(intersect(truth[j], Set(ids)))
            end
            return hits / (10 * size(Q, 2))
        end
        for m in (EUCLIDEAN, ANGULAR)
            f32, i8 = built(m), built(m)
            @test dtype(f32) == :f32 && dtype(i8) == :f32
            @test set_dtype!(i8, :i8) === i8
            @test dtype(i8) == :i8 && length(i8) == n && n_trees(i8) == 16
            truth = [Set(linear_search(f32, Q[:, j], 10)[1]) for j in 1:size(Q, 2)]
            r_f32, r_i8 = recall(f32, truth, 1000), recall(i8, truth, 1000)
            @test r_i8 >= 0.8
            @test r_i8 >= r_f32 - 0.06
            build_graph!(f32; degree = 16)
            g_f32 = recall(f32, truth, 40)
            set_dtype!(f32, :i8)
            @test dtype(f32) == :i8 && graph_degree(f32) == 16
            g_i8 = recall(f32, truth, 40)
            @test g_i8 >= 0.8
            @test g_i8 >= g_f32 - 0.06
            close(f32)
            close(i8)
        end

        # round trip: decoded vectors, the same dtype twice, back to f32
        b = Builder(24, :euclidean)
        X24 = randn(MersenneTwister(62), Float32, 24, 1000)
        add_batch!(b, X24)
        ix = build(b; n_trees = 8)
        close(b)
        q = randn(MersenneTwister(63), Float32, 24)
        set_dtype!(ix, :f32)
        @test dtype(ix) == :f32 && get_vector(ix, 3) == X24[:, 4]
        set_dtype!(ix, "i8")
        @test dtype(ix) == :i8
        decoded = [get_vector(ix, id) for id in 0:999]
        @test maximum(maximum(abs.(decoded[j] .- X24[:, j])) for j in 1:1000) <= 0.05
        @test decoded[4] != X24[:, 4]
        ids, dists = search(ix, q, 10; budget = 100)
        @test dists ≈ [sqrt(sum((Float64.(decoded[i + 1]) .- q) .^ 2)) for i in ids] rtol = 1e-3
        set_dtype!(ix, :i8)
        @test search(ix, q, 10; budget = 100) == (ids, dists)
        set_dtype!(ix, 0)                                  # a PannsDtype code
        @test dtype(ix) == :f32
        @test all(get_vector(ix, id) == decoded[id + 1] for id in (0, 3, 999))
        ids2, dists2 = search(ix, q, 10; budget = 100)
        @test ids2 == ids
        @test dists2 ≈ dists rtol = 1e-3

        # unknown dtypes: refused (by Julia for names, by the library for codes), index unchanged
        for state in (:f32, :i8)
            set_dtype!(ix, state)
            want = search(ix, q, 10; budget = 60)
            v5 = get_vector(ix, 5)
            for bad in (:f16, "int4", 3, 255, -1)
                @throws_status PANNS_INVALID_ARGUMENT set_dtype!(ix, bad)
                @test dtype(ix) == state
                @test search(ix, q, 10; budget = 60) == want
                @test get_vector(ix, 5) == v5
            end
        end
        err = try set_dtype!(ix, 3); nothing catch e; e end
        @test err isa PannsError && occursin("dtype", err.message)

        # codes with the f32 vectors beside them: exact f32 distances, the f32 rows kept
        ix2 = build(let b2 = Builder(24, :euclidean); add_batch!(b2, X24); b2 end; n_trees = 8)
        set_dtype!(ix2, "i8+f32")
        @test dtype(ix2) == :i8_f32
        @test get_vector(ix2, 3) == X24[:, 4]
        ids3, dists3 = search(ix2, q, 10; budget = 100)
        @test dists3 ≈ [sqrt(sum((Float64.(X24[:, i + 1]) .- q) .^ 2)) for i in ids3] rtol = 1e-5
        close(ix2)

        # a graph built on codes keeps the dtype
        build_graph!(ix; degree = 8)
        @test dtype(ix) == :i8 && graph_degree(ix) == 8
        @test search(ix, X24[:, 18], 5; budget = 30)[1][1] == 17
        close(ix)
        @test dtype(ix) == :f32                            # closed
        @throws_status PANNS_NULL_POINTER set_dtype!(ix, :i8)

        # save and reopen: a smaller file, the same answers, the dtype reported
        X64 = randn(MersenneTwister(64), Float32, 64, 3000)
        b = Builder(64, :angular)
        add_batch!(b, X64)
        ix = build(b; n_trees = 8)
        close(b)
        build_graph!(ix; degree = 12)
        dir = mktempdir()
        f32_path, i8_path = joinpath(dir, "f32.panns"), joinpath(dir, "i8.panns")
        save(ix, f32_path)
        set_dtype!(ix, :i8)
        save(ix, i8_path)
        @test filesize(f32_path) - filesize(i8_path) >= 0.9 * 3000 * 64 * 3   # 4 bytes -> 1
        bytes = to_bytes(ix)
        @test length(bytes) == filesize(i8_path)
        f32_op = open_index(f32_path)
        @test dtype(f32_op) == :f32
        QS = randn(MersenneTwister(65), Float32, 64, 30)
        for op in (open_index(i8_path), open_index(i8_path; verify = true), open_bytes(bytes; verify = true))
            @test dtype(op) == :i8 && length(op) == 3000 && graph_degree(op) == 12
            for j in 1:size(QS, 2), budget in (0, 40)
                @test search(op, QS[:, j], 10; budget = budget) == search(ix, QS[:, j], 10; budget = budget)
            end
            @test all(get_vector(op, id) == get_vector(ix, id) for id in (0, 1234, 2999))
            close(op)
        end
        # an opened f32 file takes codes too, as the index in memory did
        set_dtype!(f32_op, :i8)
        @test dtype(f32_op) == :i8
        @test all(search(f32_op, QS[:, j], 10; budget = 40) == search(ix, QS[:, j], 10; budget = 40)
                  for j in 1:10)
        close(f32_op)
        close(ix)
    end

    @testset "filtered and range search" begin
        frng = MersenneTwister(21)
        F = randn(frng, Float32, 8, 3000)
        b = Builder(8, EUCLIDEAN)
        add_batch!(b, F)
        ix = build(b; n_trees = 8)
        close(b)
        build_graph!(ix; degree = 16)
        mask = [j % 2 == 1 for j in 0:2999]           # 0-based item j allowed: 1500 items
        allowed_ids = findall(mask) .- 1
        exact_allowed(q, k) = begin
            d = [sqrt(sum((Float64.(F[:, j]) .- q) .^ 2)) for j in 1:3000]
            order = sortperm(collect(zip(d, 0:2999)))
            [i - 1 for i in order if mask[i]][1:k]
        end
        hits = 0
        for t in 1:30
            q = randn(frng, Float32, 8)
            ids, dists, stats = search_with_stats(ix, q, 10; budget = 40, filter = mask)
            @test stats.exact_scan == 0     # 2 * 40 < 1500, 1500^2 > 16 * 40 * 3000: the walk
            @test length(ids) == 10 && all(mask[i + 1] for i in ids)
            hits += length(intersect(ids, exact_allowed(q, 10)))
            @test search(ix, q, 10; budget = 40, filter = allowed_ids)[1] == ids
            @test search(ix, q, 10; budget = 40, filter = id -> mask[id + 1])[1] == ids
        end
        @test hits / 300 >= 0.95
        # A prepared filter answers as its mask does, on the walk and on the exact scan.
        prepared = prepare_filter(ix, mask)
        @test length(prepared) == count(mask) && n_items(prepared) == 3000
        for t in 1:5
            p = F[:, 100t] .+ 0.1f0
            want = search_with_stats(ix, p, 10; budget = 40, filter = mask)
            got = search_with_stats(ix, p, 10; budget = 40, filter = prepared)
            @test got[1] == want[1] && got[2] == want[2] && got[3].exact_scan == 0
            @test search(ix, p, 3; budget = 1500, filter = prepared)[1] ==
                  search(ix, p, 3; budget = 1500, filter = mask)[1]
        end
        @test length(prepare_filter(ix, [2, 7])) == 2
        @throws_status PANNS_INVALID_ARGUMENT prepare_filter(ix, id -> true)
        @throws_status PANNS_OUT_OF_RANGE prepare_filter(ix, [3000])
        close(prepared)
        close(prepared)   # idempotent
        q = randn(frng, Float32, 8)
        # Empty filters: no results; bad ones: clear errors; a throwing function: rethrown.
        @test isempty(search(ix, q, 5; filter = Int[])[1])
        @test isempty(search(ix, q, 5; filter = falses(3000))[1])
        @throws_status PANNS_INVALID_ARGUMENT search(ix, q, 5; filter = trues(2999))
        @throws_status PANNS_OUT_OF_RANGE search(ix, q, 5; filter = [1, 3000])
        @throws_status PANNS_OUT_OF_RANGE search(ix, q, 5; filter = [-1])
        @test_throws ArgumentError search(ix, q, 5; budget = 50, filter = id -> throw(ArgumentError("no")))
        B = randn(frng, Float32, 8, 6)
        bids, _ = search_batch(ix, B, 10; budget = 80, filter = mask)
        for j in 1:6
            @test bids[:, j] == search(ix, B[:, j], 10; budget = 80, filter = mask)[1]
        end
        fids, _ = search_batch(ix, B, 3; filter = id -> id in (5, 9))
        @test all(fids[3, :] .== -1) && all(sort(fids[1:2, j]) == [5, 9] for j in 1:6)
        # Range search: the 40 nearest inside the radius, exactly when the budget covers half.
        d = [sqrt(sum((Float64.(F[:, j]) .- q) .^ 2)) for j in 1:3000]
        order = sortperm(collect(zip(d, 0:2999)))
        r = (d[order[40]] + d[order[41]]) / 2
        rids, rd, truncated = range_search(ix, q, r; max_results = 100, budget = 3000)
        @test rids == order[1:40] .- 1 && !truncated && all(rd .<= r)
        rids, _, truncated = range_search(ix, q, r; max_results = 10, budget = 3000)
        @test rids == order[1:10] .- 1 && truncated
        @throws_status PANNS_INVALID_ARGUMENT range_search(ix, q, -1.0)
        @throws_status PANNS_INVALID_ARGUMENT range_search(ix, q, NaN)
        close(ix)
    end

    @testset "sharded index" begin
        dir = mktempdir()
        parts = Index[]
        paths = String[]
        for s in 0:3   # 4 shards of 100 columns of X
            b = Builder(16, :euclidean)
            add_batch!(b, X[:, s*100+1:(s+1)*100])
            push!(parts, build(b; n_trees = 8, seed = 3))
            close(b)
            push!(paths, joinpath(dir, "s$s.panns"))
            save(parts[end], paths[end])
        end
        m = joinpath(dir, "m.shards")
        write_manifest(m, paths)
        sx = open_sharded(m; verify = true)
        @test length(sx) == 400 && dim(sx) == 16 && n_shards(sx) == 4 && metric(sx) == EUCLIDEAN
        for j in 1:10
            q = randn(rng, Float32, 16)
            labels, dists = search(sx, q, 6; budget = 20)   # 20 << 50: the trees are walked
            # the merge computed here: each shard on its own, ids + row offsets, sorted
            want = Tuple{Float32,UInt64}[]
            for (s, ix) in enumerate(parts)
                ids, d = search(ix, q, 6; budget = 20)
                append!(want, [(d[i], UInt64((s - 1) * 100 + ids[i])) for i in eachindex(ids)])
            end
            sort!(want)
            @test labels == [w[2] for w in want[1:6]]
            @test dists == [w[1] for w in want[1:6]]
            # two servers' shares merged equal the whole
            a = open_sharded(m; shards = [0, 2])
            c = open_sharded(m; shards = [3, 1])
            la, da = search(a, q, 6; budget = 20)
            lc, dc = search(c, q, 6; budget = 20)
            merged = sort!(collect(zip(vcat(da, dc), vcat(la, lc))))[1:6]
            @test [x[2] for x in merged] == labels
            close(a)
            close(c)
        end
        # filtered by global labels: a short list (exact per shard), a deny-list at half a
        # shard (exact), a function refused; checked against a scan of X's columns
        listed = UInt64[1, 50, 99, 300, 399, 1 << 40]
        exact(q, k, keep) = begin
            d = [(sum((X[:, r+1] .- q) .^ 2), UInt64(r)) for r in 0:399 if keep(UInt64(r))]
            [x[2] for x in sort!(d)[1:min(k, length(d))]]
        end
        for j in 1:5
            q = randn(rng, Float32, 16)
            labels, _ = search(sx, q, 3; budget = 3, filter = listed)
            @test labels == exact(q, 3, l -> l in listed)
            labels, _ = search(sx, q, 6; budget = 50, filter = DenyLabels(listed))
            @test labels == exact(q, 6, l -> !(l in listed))
        end
        @test isempty(search(sx, X[:, 1], 3; filter = UInt64[])[1])
        @throws_status PANNS_INVALID_ARGUMENT search(sx, X[:, 1], 3; filter = l -> true)
        # range search against the exact ball (budget 50 = half a shard: exact), the cap and
        # its flag, filtered; the filtered batch against one filtered search per column
        odd_rows = UInt64.(1:2:399)
        for j in 1:5
            q = randn(rng, Float32, 16)
            d = sort!([(sqrt(sum((X[:, r+1] .- q) .^ 2)), UInt64(r)) for r in 0:399])
            radius = (d[15][1] + d[16][1]) / 2
            labels, dists, truncated = range_search(sx, q, radius, 1000; budget = 50)
            @test labels == [x[2] for x in d[1:15]] && !truncated && all(dists .<= radius)
            labels, _, truncated = range_search(sx, q, radius, 4; budget = 50)
            @test labels == [x[2] for x in d[1:4]] && truncated
            dodd = [x for x in d if isodd(x[2])]
            radius = (dodd[8][1] + dodd[9][1]) / 2
            labels, _, truncated = range_search(sx, q, radius, 1000; budget = 50, filter = odd_rows)
            @test labels == [x[2] for x in dodd[1:8]] && !truncated
        end
        Q = randn(rng, Float32, 16, 6)
        for f in (nothing, listed, DenyLabels(listed), UInt64[])
            bl, bd = search_batch(sx, Q, 5; budget = 20, filter = f)
            for j in 1:6
                l1, d1 = f === nothing ? search(sx, Q[:, j], 5; budget = 20) :
                         search(sx, Q[:, j], 5; budget = 20, filter = f)
                @test bl[1:length(l1), j] == l1 && bd[1:length(d1), j] == d1
                @test all(bl[length(l1)+1:end, j] .== typemax(UInt64))
            end
        end
        @test isempty(range_search(sx, X[:, 1], 100.0, 5; filter = UInt64[])[1])
        @throws_status PANNS_INVALID_ARGUMENT range_search(sx, X[:, 1], -1.0, 5)
        @throws_status PANNS_INVALID_ARGUMENT range_search(sx, X[:, 1], NaN, 5)
        @throws_status PANNS_INVALID_ARGUMENT range_search(sx, X[:, 1], 1.0, 0)
        @throws_status PANNS_DIMENSION_MISMATCH range_search(sx, X[1:3, 1], 1.0, 5)
        @throws_status PANNS_INVALID_ARGUMENT range_search(sx, X[:, 1], 1.0, 5; filter = l -> true)
        @throws_status PANNS_INVALID_ARGUMENT search_batch(sx, Q, 3; filter = l -> true)
        # a replaced shard is refused, naming it
        b = Builder(16, :euclidean)
        add_batch!(b, X[:, 1:100])
        save(build(b; n_trees = 8, seed = 99), paths[3])
        @throws_status PANNS_CORRUPT open_sharded(m)
        err = try open_sharded(m); nothing catch e; e end
        @test occursin("s2.panns", err.message)
        close(sx)
        foreach(close, parts)
    end

    @testset "fixture" begin
        dir = get(ENV, "PANNS_FIXTURE_DIR", "")
        if isempty(dir)
            @info "PANNS_FIXTURE_DIR is not set: fixture comparison skipped"
            @test_skip false
        else
            meta = Dict{String,String}()
            for line in eachline(joinpath(dir, "meta.txt"))
                occursin('=', line) || continue
                key, value = split(line, '='; limit = 2)
                meta[strip(key)] = strip(value)
            end
            d, nq, k, budget = (parse(Int, meta[x]) for x in ("dim", "n_queries", "k", "budget"))
            readle(T, file, n) = ltoh.(reinterpret(T, read(joinpath(dir, file)))[1:n])
            queries = reshape(readle(Float32, "queries.f32", nq * d), d, nq)
            want_ids = reshape(readle(UInt32, "expected_ids.u32", nq * k), k, nq)
            want_dist = reshape(readle(Float32, "expected_dist.f32", nq * k), k, nq)
            ix = open_index(joinpath(dir, "index.panns"); verify = true)
            @test dim(ix) == d
            haskey(meta, "metric") && @test string(metric(ix)) == uppercase(meta["metric"])
            bids, bdists = search_batch(ix, queries, k; budget = budget)
            for j in 1:nq
                valid = want_ids[:, j] .!= typemax(UInt32)
                ids, dists = search(ix, queries[:, j], k; budget = budget)
                @test ids == Int.(want_ids[valid, j])
                @test maximum(abs.(dists .- want_dist[valid, j]); init = 0f0) <= 1f-6
                @test bids[valid, j] == ids
            end
            close(ix)
        end
    end
    include("live.jl")
end
