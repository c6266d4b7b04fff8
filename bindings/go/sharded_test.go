package panns

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestSharded builds four shards in Go, writes their manifest, and checks the merged search
// against each shard searched on its own (ids + row offsets, merged here), batch against single
// searches, and the refusal of a replaced and of a missing shard.
func TestSharded(t *testing.T) {
	const per, shards, dim = 300, 4, 10
	rows := gaussian(77, per*shards, dim)
	dir := t.TempDir()
	var paths []string
	var parts []*Index
	for s := 0; s < shards; s++ {
		ix := mustBuild(t, rows[s*per:(s+1)*per], Euclidean, BuildOptions{NTrees: 8})
		p := filepath.Join(dir, "s"+string(rune('0'+s))+".panns")
		if err := ix.Save(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		parts = append(parts, ix)
	}
	manifest := filepath.Join(dir, "m.shards")
	if err := WriteManifest(manifest, paths); err != nil {
		t.Fatal(err)
	}
	sx, err := OpenSharded(manifest, OpenVerify)
	if err != nil {
		t.Fatal(err)
	}
	defer sx.Close()
	if sx.Len() != per*shards || sx.Dim() != dim || sx.Metric() != Euclidean || sx.NShards() != shards {
		t.Fatalf("len %d dim %d metric %v shards %d", sx.Len(), sx.Dim(), sx.Metric(), sx.NShards())
	}
	queries := gaussian(5, 20, dim)
	const k, budget = 8, 30 // 30 << per/2: every shard walks its trees
	for _, q := range queries {
		got, err := sx.Search(q, k, budget)
		if err != nil {
			t.Fatal(err)
		}
		var want []LabeledNeighbor
		for s, ix := range parts {
			hits, err := ix.Search(q, k, budget)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hits {
				want = append(want, LabeledNeighbor{Label: uint64(s*per) + uint64(h.ID), Distance: h.Distance})
			}
		}
		sort.Slice(want, func(i, j int) bool {
			if want[i].Distance != want[j].Distance {
				return want[i].Distance < want[j].Distance
			}
			return want[i].Label < want[j].Label
		})
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("merged %v, independent merge %v", got, want[:k])
		}
	}
	batch, err := sx.SearchBatch(queries, k, budget)
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range queries {
		one, _ := sx.Search(q, k, budget)
		if !slices.Equal(batch[i], one) {
			t.Fatalf("batch row %d: %v, single %v", i, batch[i], one)
		}
	}
	// Two servers holding disjoint subsets: their answers merged equal the whole.
	a, err := OpenShardedSubset(manifest, []int{0, 3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenShardedSubset(manifest, []int{2, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, q := range queries {
		ha, _ := a.Search(q, k, budget)
		hb, _ := b.Search(q, k, budget)
		m := append(ha, hb...)
		sort.Slice(m, func(i, j int) bool {
			if m[i].Distance != m[j].Distance {
				return m[i].Distance < m[j].Distance
			}
			return m[i].Label < m[j].Label
		})
		whole, _ := sx.Search(q, k, budget)
		if !slices.Equal(m[:k], whole) {
			t.Fatalf("subsets merged %v, whole %v", m[:k], whole)
		}
	}
	if _, err := OpenShardedSubset(manifest, []int{1, 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("a shard given twice: %v", err)
	}
	if _, err := sx.Search(queries[0][:3], k, 0); !errors.Is(err, ErrDimensionMismatch) {
		t.Fatalf("short query: %v", err)
	}

	// A shard replaced by another index: refused, naming it.
	other := mustBuild(t, gaussian(9, per, dim), Euclidean, BuildOptions{NTrees: 8})
	if err := other.Save(paths[2]); err != nil {
		t.Fatal(err)
	}
	_, err = OpenSharded(manifest)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "s2.panns") || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("replaced shard: %v", err)
	}
	os.Remove(paths[2])
	if _, err = OpenSharded(manifest); !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "shard 2") {
		t.Fatalf("missing shard: %v", err)
	}
	sx.Close()
	if _, err := sx.Search(queries[0], k, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// openShards builds one Euclidean shard of every per rows (in order, labelled by row), writes
// their manifest in a temporary directory and opens it.
func openShards(t *testing.T, rows [][]float32, per int) *ShardedIndex {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for s := 0; s*per < len(rows); s++ {
		ix := mustBuild(t, rows[s*per:(s+1)*per], Euclidean, BuildOptions{NTrees: 8})
		p := filepath.Join(dir, "s"+string(rune('0'+s))+".panns")
		if err := ix.Save(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	manifest := filepath.Join(dir, "m.shards")
	if err := WriteManifest(manifest, paths); err != nil {
		t.Fatal(err)
	}
	sx, err := OpenSharded(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return sx
}

// TestShardedFiltered checks filtered sharded search against an exact filtered scan of the
// rows (row labels): a short allow-list at a small budget (planned: exact per shard), a
// deny-list and a function at a budget of half a shard (exact), a function at a small budget
// (only allowed labels), an empty list, and a panicking function.
func TestShardedFiltered(t *testing.T) {
	const per, shards, dim = 300, 3, 8
	rows := gaussian(91, per*shards, dim)
	sx := openShards(t, rows, per)
	defer sx.Close()
	exact := func(q []float32, k int, keep func(uint64) bool) []uint64 {
		type hit struct {
			d float32
			l uint64
		}
		var all []hit
		for r, v := range rows {
			if !keep(uint64(r)) {
				continue
			}
			var d float32
			for i := range v {
				d += (v[i] - q[i]) * (v[i] - q[i])
			}
			all = append(all, hit{d, uint64(r)})
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].d != all[j].d {
				return all[i].d < all[j].d
			}
			return all[i].l < all[j].l
		})
		var out []uint64
		for i := 0; i < k && i < len(all); i++ {
			out = append(out, all[i].l)
		}
		return out
	}
	labelsOf := func(h []LabeledNeighbor) []uint64 {
		out := []uint64{}
		for _, x := range h {
			out = append(out, x.Label)
		}
		return out
	}
	listed := []uint64{1, 50, 299, 600, 700, 899, 1 << 40}
	inList := func(l uint64) bool { return slices.Contains(listed, l) }
	odd := func(l uint64) bool { return l%2 == 1 }
	for _, q := range gaussian(6, 10, dim) {
		got, err := sx.SearchFiltered(q, 3, 3, AllowLabels(listed))
		if err != nil {
			t.Fatal(err)
		}
		if want := exact(q, 3, inList); !slices.Equal(labelsOf(got), want) {
			t.Fatalf("allow-list: %v, exact %v", labelsOf(got), want)
		}
		got, _ = sx.SearchFiltered(q, 8, per/2, DenyLabels(listed))
		if want := exact(q, 8, func(l uint64) bool { return !inList(l) }); !slices.Equal(labelsOf(got), want) {
			t.Fatalf("deny-list: %v, exact %v", labelsOf(got), want)
		}
		got, _ = sx.SearchFiltered(q, 8, per/2, AllowLabelFunc(odd))
		if want := exact(q, 8, odd); !slices.Equal(labelsOf(got), want) {
			t.Fatalf("function: %v, exact %v", labelsOf(got), want)
		}
		got, _ = sx.SearchFiltered(q, 8, 20, AllowLabelFunc(odd))
		if len(got) != 8 || !slices.ContainsFunc(got, func(h LabeledNeighbor) bool { return odd(h.Label) }) {
			t.Fatalf("function at budget 20: %v", got)
		}
		for _, h := range got {
			if !odd(h.Label) {
				t.Fatalf("label %d is not allowed", h.Label)
			}
		}
	}
	if got, err := sx.SearchFiltered(rows[0], 5, 10, AllowLabels(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty allow-list: %v %v", got, err)
	}
	_, err := sx.SearchFiltered(rows[0], 5, 10, AllowLabelFunc(func(uint64) bool { panic("boom") }))
	if !errors.Is(err, ErrCallbackFailed) {
		t.Fatalf("a panicking function: %v", err)
	}
}

// TestShardedRangeAndFilteredBatch checks RangeSearch against the exact ball over all shards
// (every shard scans exactly at a budget of half a shard), unfiltered, with an allow-list and
// a function, the cap and its flag; SearchBatchFiltered against one SearchFiltered per row;
// and bad input: a negative or NaN radius, maxResults 0, a wrong dimension, unknown labels,
// an empty list and a panicking function.
func TestShardedRangeAndFilteredBatch(t *testing.T) {
	const per, shards, dim = 250, 3, 8
	rows := gaussian(93, per*shards, dim)
	sx := openShards(t, rows, per)
	defer sx.Close()
	// ball returns the n nearest rows keep accepts and a radius halfway between the n-th and
	// the n+1-th of them (no distance on the boundary).
	ball := func(q []float32, n int, keep func(uint64) bool) ([]uint64, float32) {
		type hit struct {
			d float64
			l uint64
		}
		var all []hit
		for r, v := range rows {
			if !keep(uint64(r)) {
				continue
			}
			var d float64
			for i := range v {
				d += float64(v[i]-q[i]) * float64(v[i]-q[i])
			}
			all = append(all, hit{math.Sqrt(d), uint64(r)})
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].d != all[j].d {
				return all[i].d < all[j].d
			}
			return all[i].l < all[j].l
		})
		var out []uint64
		for i := 0; i < n; i++ {
			out = append(out, all[i].l)
		}
		return out, float32((all[n-1].d + all[n].d) / 2)
	}
	labelsOf := func(h []LabeledNeighbor) []uint64 {
		out := []uint64{}
		for _, x := range h {
			out = append(out, x.Label)
		}
		return out
	}
	odd := func(l uint64) bool { return l%2 == 1 }
	var oddRows []uint64
	for r := uint64(1); r < per*shards; r += 2 {
		oddRows = append(oddRows, r)
	}
	queries := gaussian(8, 6, dim)
	for _, q := range queries {
		want, radius := ball(q, 20, func(uint64) bool { return true })
		got, capped, err := sx.RangeSearch(q, radius, 1000, per/2, LabelFilter{})
		if err != nil || capped || !slices.Equal(labelsOf(got), want) {
			t.Fatalf("range search: %v %v %v, exact %v", labelsOf(got), capped, err, want)
		}
		for i, h := range got {
			if h.Distance > radius || (i > 0 && h.Distance < got[i-1].Distance) {
				t.Fatalf("hit %d %v: outside the radius %v or out of order", i, h, radius)
			}
		}
		got, capped, _ = sx.RangeSearch(q, radius, 7, per/2, LabelFilter{})
		if !capped || !slices.Equal(labelsOf(got), want[:7]) {
			t.Fatalf("capped at 7: %v %v, exact %v", labelsOf(got), capped, want[:7])
		}
		got, capped, _ = sx.RangeSearch(q, radius, 20, per/2, LabelFilter{})
		if capped || len(got) != 20 {
			t.Fatalf("capped at the count: %d %v", len(got), capped)
		}
		wantOdd, radiusOdd := ball(q, 10, odd)
		for _, f := range []LabelFilter{AllowLabels(oddRows), AllowLabelFunc(odd)} {
			got, capped, err := sx.RangeSearch(q, radiusOdd, 1000, per/2, f)
			if err != nil || capped || !slices.Equal(labelsOf(got), wantOdd) {
				t.Fatalf("filtered range search: %v %v %v, exact %v", labelsOf(got), capped, err, wantOdd)
			}
		}
	}
	listed := []uint64{2, 90, 249, 250, 400, 601, 749, 1 << 40}
	for _, f := range []LabelFilter{{}, AllowLabels(listed), DenyLabels(listed), AllowLabelFunc(odd), AllowLabels(nil)} {
		batch, err := sx.SearchBatchFiltered(queries, 5, 30, f)
		if err != nil || len(batch) != len(queries) {
			t.Fatalf("batch: %d rows, %v", len(batch), err)
		}
		for i, q := range queries {
			one, err := sx.SearchFiltered(q, 5, 30, f)
			if err != nil || !slices.Equal(batch[i], one) {
				t.Fatalf("batch row %d: %v, single %v (%v)", i, batch[i], one, err)
			}
		}
	}
	if got, err := sx.SearchBatchFiltered(queries, 5, 30, AllowLabels(nil)); err != nil || len(got[0]) != 0 {
		t.Fatalf("empty allow-list: %v %v", got, err)
	}
	if got, err := sx.SearchBatchFiltered(nil, 5, 30, AllowLabels(listed)); err != nil || len(got) != 0 {
		t.Fatalf("no queries: %v %v", got, err)
	}
	q := queries[0]
	for _, bad := range []float32{-1, float32(math.NaN())} {
		if _, _, err := sx.RangeSearch(q, bad, 10, 0, LabelFilter{}); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "radius") {
			t.Fatalf("radius %v: %v", bad, err)
		}
	}
	if _, _, err := sx.RangeSearch(q, 1, 0, 0, LabelFilter{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("maxResults 0: %v", err)
	}
	if _, _, err := sx.RangeSearch(q[:3], 1, 10, 0, LabelFilter{}); !errors.Is(err, ErrDimensionMismatch) {
		t.Fatalf("short query: %v", err)
	}
	if _, err := sx.SearchBatchFiltered([][]float32{q, q[:3]}, 5, 0, AllowLabels(listed)); err == nil {
		t.Fatal("a ragged batch was accepted")
	}
	if got, _, err := sx.RangeSearch(q, 100, 10, 0, AllowLabels([]uint64{1 << 41})); err != nil || len(got) != 0 {
		t.Fatalf("unknown labels: %v %v", got, err)
	}
	boom := AllowLabelFunc(func(uint64) bool { panic("boom") })
	if _, _, err := sx.RangeSearch(q, 100, 10, 30, boom); !errors.Is(err, ErrCallbackFailed) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("a panicking function: %v", err)
	}
	if _, err := sx.SearchBatchFiltered(queries, 5, 30, boom); !errors.Is(err, ErrCallbackFailed) {
		t.Fatalf("a panicking function in a batch: %v", err)
	}
	sx.Close()
	if _, _, err := sx.RangeSearch(q, 1, 10, 0, LabelFilter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
