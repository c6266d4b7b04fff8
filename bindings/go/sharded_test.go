package panns

import (
	"errors"
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
