// Command campaign runs the hostile-file campaign through the Go binding: every file
// named on the command line is opened (with and without checksum verification) and,
// when it opens, searched every way; each answer must keep the invariants (at most
// min(k, len) hits, ids < len, no NaN distance, sorted, a stored row with a non-finite
// value never scores finite). It prints one line of totals and exits 1 on a violation.
// scripts/campaign.sh runs it on the files written by the panns-io campaign example.
//
//	campaign FILE...
package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	panns "github.com/panns/panns/bindings/go"
)

type totals struct {
	inputs, refused, opened, searches, searchErrors, violations int
}

func damaged(ix *panns.Index, id uint32) bool {
	v, err := ix.Vector(int(id))
	if err != nil {
		return true
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return true
		}
	}
	return false
}

func (t *totals) check(ix *panns.Index, hits []panns.Neighbor, k int, path string) {
	ok := len(hits) <= min(k, ix.Len())
	for i, h := range hits {
		d := float64(h.Distance)
		if !ok || int(h.ID) >= ix.Len() || math.IsNaN(d) || (i > 0 && hits[i-1].Distance > h.Distance) ||
			(!math.IsInf(d, 1) && damaged(ix, h.ID)) {
			ok = false
			break
		}
	}
	if !ok {
		t.violations++
		if t.violations <= 3 {
			fmt.Fprintf(os.Stderr, "violation: %s (k %d): %v\n", path, k, hits)
		}
	}
}

func (t *totals) search(ix *panns.Index, k int, path string, f func() ([]panns.Neighbor, error)) {
	t.searches++
	hits, err := f()
	if err != nil {
		t.searchErrors++
		return
	}
	t.check(ix, hits, k, path)
}

func main() {
	var t totals
	r := rand.New(rand.NewPCG(7, 11))
	ks, budgets := []int{1, 5, 50, 400}, []int{0, 1, 20, 1000}
	for _, path := range os.Args[1:] {
		for _, flags := range [][]panns.OpenFlag{nil, {panns.OpenVerify}} {
			t.inputs++
			ix, err := panns.Open(path, flags...)
			if err != nil {
				t.refused++
				continue
			}
			t.opened++
			for rep := 0; rep < 3; rep++ {
				q := make([]float32, ix.Dim())
				for j := range q {
					q[j] = float32(r.Float64()*2 - 1)
				}
				k, budget := ks[r.IntN(4)], budgets[r.IntN(4)]
				t.search(ix, k, path, func() ([]panns.Neighbor, error) { return ix.Search(q, k, budget) })
				t.search(ix, k, path, func() ([]panns.Neighbor, error) { return ix.LinearSearch(q, k) })
				t.searches++
				if rows, err := ix.SearchBatch([][]float32{q, q}, k, budget); err == nil {
					for _, row := range rows {
						t.check(ix, row, k, path)
					}
				} else {
					t.searchErrors++
				}
				if row, err := ix.Vector(r.IntN(ix.Len())); err == nil {
					t.search(ix, k, path, func() ([]panns.Neighbor, error) { return ix.Search(row, k, budget) })
				}
			}
			ix.Close()
		}
	}
	fmt.Printf("go: %d inputs (%d opens refused, %d opened), %d searches (%d refused), %d invariant violations\n",
		t.inputs, t.refused, t.opened, t.searches, t.searchErrors, t.violations)
	if t.violations > 0 {
		os.Exit(1)
	}
}
