package panns

import (
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// l2 is the Euclidean distance, computed here as the independent reference.
func l2(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// exactAllowed returns the ids of the k nearest items of q among those allowed, by a scan.
func exactAllowed(rows [][]float32, q []float32, k int, allowed func(int) bool) []uint32 {
	type hit struct {
		d  float64
		id uint32
	}
	var all []hit
	for i, r := range rows {
		if allowed(i) {
			all = append(all, hit{l2(q, r), uint32(i)})
		}
	}
	sort.Slice(all, func(a, b int) bool {
		return all[a].d < all[b].d || (all[a].d == all[b].d && all[a].id < all[b].id)
	})
	out := []uint32{}
	for i := 0; i < k && i < len(all); i++ {
		out = append(out, all[i].id)
	}
	return out
}

// filterIndex is an index of 3000 Gaussian 8-d vectors with a neighbour graph.
func filterIndex(t *testing.T) (*Index, [][]float32) {
	rows := gaussian(77, 3000, 8)
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 8})
	if err := ix.BuildGraph(16, 0); err != nil {
		t.Fatal(err)
	}
	return ix, rows
}

func TestSearchFilteredKindsAgreeAndMatchExactSearch(t *testing.T) {
	ix, rows := filterIndex(t)
	n := len(rows)
	mask := make([]bool, n)
	notMask := make([]bool, n)
	var allowIDs, denyIDs []uint32
	for i := range mask {
		mask[i] = i%2 == 1 // 50%: 1500 items
		notMask[i] = !mask[i]
		if mask[i] {
			allowIDs = append(allowIDs, uint32(i))
		} else {
			denyIDs = append(denyIDs, uint32(i))
		}
	}
	words := maskBits(mask)
	var calls atomic.Int64
	filters := map[string]Filter{
		"DenyMask":    DenyMask(notMask),
		"AllowBitmap": AllowBitmap(words, n),
		"AllowIDs":    AllowIDs(allowIDs),
		"DenyIDs":     DenyIDs(denyIDs),
		"AllowFunc":   AllowFunc(func(id uint64) bool { calls.Add(1); return mask[id] }),
	}
	const k, budget = 10, 40 // 2 * 40 < 1500 and 1500^2 > 16 * 40 * 3000: the approximate path
	found, total := 0, 0
	for qi, q := range gaussian(5, 40, 8) {
		got, st, err := ix.SearchFilteredWithStats(q, k, budget, AllowMask(mask))
		if err != nil {
			t.Fatal(err)
		}
		if st.ExactScan || len(got) != k {
			t.Fatalf("query %d: exact scan %v, %d results; want the approximate path and %d", qi, st.ExactScan, len(got), k)
		}
		for _, h := range got {
			if !mask[h.ID] {
				t.Fatalf("query %d: item %d is not allowed", qi, h.ID)
			}
			if d := l2(q, rows[h.ID]); math.Abs(d-float64(h.Distance)) > 1e-4*math.Max(d, 1) {
				t.Fatalf("item %d: distance %v, want %v", h.ID, h.Distance, d)
			}
		}
		truth := exactAllowed(rows, q, k, func(i int) bool { return mask[i] })
		for _, h := range got {
			if slices.Contains(truth, h.ID) {
				found++
			}
		}
		total += k
		for name, f := range filters {
			other, err := ix.SearchFiltered(q, k, budget, f)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !slices.Equal(ids(other), ids(got)) {
				t.Fatalf("query %d: %s gives %v, AllowMask %v", qi, name, ids(other), ids(got))
			}
		}
	}
	if recall := float64(found) / float64(total); recall < 0.95 {
		t.Fatalf("filtered recall@10 %.3f < 0.95", recall)
	}
	if calls.Load() == 0 {
		t.Fatal("the Go filter function was never called")
	}
}

func TestSearchFilteredSelectiveFilterIsExact(t *testing.T) {
	ix, rows := filterIndex(t)
	allow := []uint32{5, 77, 1000, 2999, 1234, 42, 600, 601, 602, 1500, 2500, 88}
	for _, q := range gaussian(6, 10, 8) {
		got, st, err := ix.SearchFilteredWithStats(q, 5, 0, AllowIDs(allow))
		if err != nil {
			t.Fatal(err)
		}
		want := exactAllowed(rows, q, 5, func(i int) bool { return slices.Contains(allow, uint32(i)) })
		if !st.ExactScan || st.Scored != len(allow) || !slices.Equal(ids(got), want) {
			t.Fatalf("got %v (stats %+v), want %v by an exact scan of the %d allowed", ids(got), st, want, len(allow))
		}
	}
}

func TestSearchFilteredBadAndEmptyFilters(t *testing.T) {
	ix, _ := filterIndex(t)
	q := gaussian(7, 1, 8)[0]
	_, err := ix.SearchFiltered(q, 5, 0, AllowMask(make([]bool, ix.Len()-1)))
	wantStatus(t, err, ErrInvalidArgument)
	if !strings.Contains(err.Error(), "holds 2999 bits, the index has 3000 items") {
		t.Fatalf("message %q does not name the lengths", err)
	}
	_, err = ix.SearchFiltered(q, 5, 0, AllowBitmap(make([]uint64, 3), ix.Len()))
	wantStatus(t, err, ErrInvalidArgument)
	_, err = ix.SearchFiltered(q, 5, 0, DenyIDs([]uint32{1, 3000}))
	wantStatus(t, err, ErrOutOfRange)
	if !strings.Contains(err.Error(), "filter id 3000") {
		t.Fatalf("message %q does not name the id", err)
	}
	_, err = ix.SearchFiltered(q, 5, 0, AllowFunc(nil))
	wantStatus(t, err, ErrInvalidArgument)
	for name, f := range map[string]Filter{
		"AllowIDs(nil)":      AllowIDs(nil),
		"AllowMask(none)":    AllowMask(make([]bool, ix.Len())),
		"AllowFunc(refuses)": AllowFunc(func(uint64) bool { return false }),
	} {
		got, err := ix.SearchFiltered(q, 5, 50, f)
		if err != nil || len(got) != 0 {
			t.Fatalf("%s: %v, %v; want no results and no error", name, got, err)
		}
	}
	all, err := ix.SearchFiltered(q, 5, 50, Filter{})
	plain, err2 := ix.Search(q, 5, 50)
	if err != nil || err2 != nil || !slices.Equal(ids(all), ids(plain)) {
		t.Fatalf("the zero Filter: %v %v; Search: %v %v", all, err, plain, err2)
	}
	// A panicking filter function: an error carrying the panic, no call after it.
	var calls atomic.Int64
	boom := AllowFunc(func(id uint64) bool {
		if calls.Add(1) == 3 {
			panic("boom at the third call")
		}
		return true
	})
	_, err = ix.SearchFiltered(q, 5, 50, boom)
	wantStatus(t, err, ErrCallbackFailed)
	if !strings.Contains(err.Error(), "boom at the third call") || calls.Load() != 3 {
		t.Fatalf("error %q after %d calls", err, calls.Load())
	}
	calls.Store(0)
	_, err = ix.SearchBatchFiltered(gaussian(8, 32, 8), 5, 50, boom)
	wantStatus(t, err, ErrCallbackFailed)
	// The index still answers.
	if got, err := ix.SearchFiltered(q, 5, 50, AllowFunc(func(uint64) bool { return true })); err != nil || len(got) != 5 {
		t.Fatalf("after a failed search: %v, %v", got, err)
	}
}

func TestSearchBatchFilteredFromManyGoroutines(t *testing.T) {
	ix, _ := filterIndex(t)
	queries := gaussian(9, 24, 8)
	odd := AllowFunc(func(id uint64) bool { return id%2 == 1 })
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch, err := ix.SearchBatchFiltered(queries, 10, 80, odd)
			if err != nil {
				errs <- err
				return
			}
			for i, q := range queries {
				one, err := ix.SearchFiltered(q, 10, 80, odd)
				if err != nil {
					errs <- err
					return
				}
				if !slices.Equal(ids(one), ids(batch[i])) || len(one) != 10 {
					t.Errorf("row %d: batch %v, single %v", i, ids(batch[i]), ids(one))
				}
				for _, h := range one {
					if h.ID%2 != 1 {
						t.Errorf("row %d: even item %d", i, h.ID)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Rows with fewer allowed items than k are short, not padded.
	rows, err := ix.SearchBatchFiltered(queries[:3], 10, 0, AllowIDs([]uint32{4, 8}))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if len(r) != 2 {
			t.Fatalf("row %v: want the 2 allowed items", r)
		}
	}
}

func TestRangeSearch(t *testing.T) {
	ix, rows := filterIndex(t)
	q := gaussian(10, 1, 8)[0]
	order := exactAllowed(rows, q, 41, func(int) bool { return true })
	radius := float32((l2(q, rows[order[39]]) + l2(q, rows[order[40]])) / 2) // 40 inside
	got, truncated, err := ix.RangeSearch(q, radius, 100, ix.Len(), Filter{})
	if err != nil || truncated || !slices.Equal(ids(got), order[:40]) {
		t.Fatalf("exact range search: %v truncated %v err %v; want the 40 inside", ids(got), truncated, err)
	}
	got, truncated, err = ix.RangeSearch(q, radius, 10, ix.Len(), Filter{})
	if err != nil || !truncated || !slices.Equal(ids(got), order[:10]) {
		t.Fatalf("capped: %v truncated %v err %v", ids(got), truncated, err)
	}
	got, _, err = ix.RangeSearch(q, radius, 100, 0, Filter{})
	if err != nil || len(got) < 36 {
		t.Fatalf("approximate range search found %d of 40 (%v)", len(got), err)
	}
	for _, h := range got {
		if h.Distance > radius {
			t.Fatalf("item %d at %v is outside the radius %v", h.ID, h.Distance, radius)
		}
	}
	even := AllowFunc(func(id uint64) bool { return id%2 == 0 })
	got, _, err = ix.RangeSearch(q, radius, 100, ix.Len(), even)
	var wantEven []uint32
	for _, id := range order[:40] {
		if id%2 == 0 {
			wantEven = append(wantEven, id)
		}
	}
	if err != nil || !slices.Equal(ids(got), wantEven) {
		t.Fatalf("filtered range search: %v (%v), want %v", ids(got), err, wantEven)
	}
	for _, r := range []float32{-1, float32(math.NaN())} {
		_, _, err := ix.RangeSearch(q, r, 10, 0, Filter{})
		wantStatus(t, err, ErrInvalidArgument)
		if !strings.Contains(err.Error(), "radius") {
			t.Fatalf("message %q does not name the radius", err)
		}
	}
	_, _, err = ix.RangeSearch(q, 1, 0, 0, Filter{})
	wantStatus(t, err, ErrInvalidArgument)
}

// A prepared filter gives the results and statistics of the filter it came from, in
// SearchFilteredWithStats, SearchBatchFiltered and RangeSearch, on the exact scan (30 items
// at the default budget) and on the walk (50% at beam 40).
func TestPrepareFilterGivesTheResultsOfTheFilter(t *testing.T) {
	ix, _ := filterIndex(t)
	n := ix.Len()
	for _, plan := range []struct {
		stride, budget int
		exact          bool
	}{{100, 0, true}, {2, 40, false}} {
		mask := make([]bool, n)
		var denied []uint32
		allowed := 0
		for i := range mask {
			mask[i] = i%plan.stride == 1
			if mask[i] {
				allowed++
			} else {
				denied = append(denied, uint32(i))
			}
		}
		var lists []*AllowList
		for _, f := range []Filter{AllowMask(mask), DenyIDs(denied)} {
			l, err := ix.PrepareFilter(f)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.Len() != allowed || l.Items() != n {
				t.Fatalf("Len %d, Items %d; want %d, %d", l.Len(), l.Items(), allowed, n)
			}
			lists = append(lists, l)
		}
		// A list prepared from a list: a copy.
		again, err := ix.PrepareFilter(lists[0].Filter())
		if err != nil || again.Len() != allowed {
			t.Fatalf("PrepareFilter(list.Filter()): %v, %v", again, err)
		}
		defer again.Close()
		lists = append(lists, again)
		queries := gaussian(12, 16, 8)
		for qi, q := range queries {
			want, wst, err := ix.SearchFilteredWithStats(q, 10, plan.budget, AllowMask(mask))
			if err != nil {
				t.Fatal(err)
			}
			if wst.ExactScan != plan.exact {
				t.Fatalf("stride %d: exact scan %v, want %v", plan.stride, wst.ExactScan, plan.exact)
			}
			radius := want[len(want)/2].Distance
			wantR, wantT, err := ix.RangeSearch(q, radius, 8, plan.budget, AllowMask(mask))
			if err != nil {
				t.Fatal(err)
			}
			for li, l := range lists {
				got, st, err := ix.SearchFilteredWithStats(q, 10, plan.budget, l.Filter())
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) || st != wst {
					t.Fatalf("query %d, list %d: %v %+v; the mask gives %v %+v", qi, li, got, st, want, wst)
				}
				gotR, gotT, err := ix.RangeSearch(q, radius, 8, plan.budget, l.Filter())
				if err != nil || !slices.Equal(gotR, wantR) || gotT != wantT {
					t.Fatalf("query %d, list %d: range %v %v %v; the mask gives %v %v", qi, li, gotR, gotT, err, wantR, wantT)
				}
			}
		}
		want, err := ix.SearchBatchFiltered(queries, 10, plan.budget, AllowMask(mask))
		if err != nil {
			t.Fatal(err)
		}
		for li, l := range lists {
			got, err := ix.SearchBatchFiltered(queries, 10, plan.budget, l.Filter())
			if err != nil {
				t.Fatal(err)
			}
			for r := range want {
				if !slices.Equal(got[r], want[r]) {
					t.Fatalf("list %d, row %d: %v; the mask gives %v", li, r, got[r], want[r])
				}
			}
		}
	}
}

func TestPrepareFilterErrors(t *testing.T) {
	ix, _ := filterIndex(t)
	q := gaussian(13, 1, 8)[0]
	_, err := ix.PrepareFilter(AllowFunc(func(uint64) bool { return true }))
	wantStatus(t, err, ErrInvalidArgument)
	if !strings.Contains(err.Error(), "cannot be prepared") {
		t.Fatalf("message %q", err)
	}
	_, err = ix.PrepareFilter(AllowMask(make([]bool, ix.Len()-1)))
	wantStatus(t, err, ErrInvalidArgument)
	_, err = ix.PrepareFilter(AllowIDs([]uint32{3000}))
	wantStatus(t, err, ErrOutOfRange)
	// A list of another index's item count is refused.
	small := mustBuild(t, gaussian(14, 100, 8), Euclidean, BuildOptions{NTrees: 4})
	foreign, err := small.PrepareFilter(Filter{})
	if err != nil || foreign.Len() != 100 || foreign.Items() != 100 {
		t.Fatalf("PrepareFilter(Filter{}): %v, %v", foreign, err)
	}
	_, err = ix.SearchFiltered(q, 5, 0, foreign.Filter())
	wantStatus(t, err, ErrInvalidArgument)
	if !strings.Contains(err.Error(), "made for an index of 100 items; this one has 3000") {
		t.Fatalf("message %q", err)
	}
	// After Close: ErrClosed; closing again is a no-op.
	if err := foreign.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = small.SearchFiltered(q, 5, 0, foreign.Filter())
	if err != ErrClosed {
		t.Fatalf("search with a closed list: %v, want ErrClosed", err)
	}
	if err := foreign.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = ix.SearchFiltered(q, 5, 0, (*AllowList)(nil).Filter())
	wantStatus(t, err, ErrInvalidArgument)
}
