package panns

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// filteredLive is an in-memory live index of 1500 compacted items (every 30th then removed)
// plus 80 in the delta, with its model and the removed labels.
func filteredLive(t *testing.T) (*Live, liveModel, []uint64) {
	t.Helper()
	l, err := NewLiveInMemory(8, Euclidean, BuildOptions{NTrees: 16}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	model := liveModel{}
	labels := seqLabels(1500, 9000, 3)
	model.add(t, l, labels, gaussian(91, 1500, 8))
	if err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	var gone []uint64
	for i := 0; i < len(labels); i += 30 {
		gone = append(gone, labels[i])
	}
	if n, err := l.Remove(gone...); n != len(gone) || err != nil {
		t.Fatalf("Remove = %d, %v", n, err)
	}
	for _, g := range gone {
		delete(model, g)
	}
	model.add(t, l, seqLabels(80, 1, 1), gaussian(92, 80, 8))
	return l, model, gone
}

func even(label uint64) bool { return label%2 == 0 }

// onlyAllowed is the part of m whose labels allow accepts.
func (m liveModel) onlyAllowed(allow func(uint64) bool) liveModel {
	out := liveModel{}
	for l, v := range m {
		if allow(l) {
			out[l] = v
		}
	}
	return out
}

func liveLabels(hits []LiveNeighbor) []uint64 {
	out := make([]uint64, len(hits))
	for i, h := range hits {
		out[i] = h.Label
	}
	return out
}

// The allow-list, the deny-list and the predicate agree with each other and, at a budget
// covering every item, with an exact scan over the allowed live labels; at a budget well
// below n/2 they return only allowed live labels with good recall and change the unfiltered
// answer.
func TestLiveSearchFilteredKindsAgreeAndMatchExactScan(t *testing.T) {
	l, model, gone := filteredLive(t)
	var allow, deny []uint64
	for lb := range model {
		if even(lb) {
			allow = append(allow, lb)
		} else {
			deny = append(deny, lb)
		}
	}
	allow = append(allow, gone...)    // removed: never returned
	allow = append(allow, 100, 1<<40) // never held
	byList, byDeny := AllowLabels(allow), DenyLabels(deny)
	var calls atomic.Int64
	byFunc := AllowLabelFunc(func(lb uint64) bool { calls.Add(1); return even(lb) })
	truthModel := model.onlyAllowed(even)
	const k, small, all = 10, 100, 30000
	found, total, differs := 0, 0, 0
	queries := gaussian(93, 30, 8)
	for i, q := range queries {
		want := truthModel.exactLabels(q, k)
		for _, f := range []LabelFilter{byList, byFunc} {
			got, err := l.SearchFiltered(q, k, all, f)
			if err != nil || !slices.Equal(liveLabels(got), want) {
				t.Fatalf("query %d at budget %d: %v, %v; want %v", i, all, liveLabels(got), err, want)
			}
		}
		a, err := l.SearchFiltered(q, k, small, byList)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []LabelFilter{byDeny, byFunc} {
			b, err := l.SearchFiltered(q, k, small, f)
			if err != nil || !slices.Equal(a, b) {
				t.Fatalf("query %d: the filters disagree: %v vs %v (%v)", i, a, b, err)
			}
		}
		if len(a) != k {
			t.Fatalf("query %d: %d results", i, len(a))
		}
		for j, h := range a {
			if _, live := model[h.Label]; !live || !even(h.Label) {
				t.Fatalf("query %d: label %d returned", i, h.Label)
			}
			if j > 0 && a[j-1].Distance > h.Distance {
				t.Fatalf("query %d: not sorted: %v", i, a)
			}
			if slices.Contains(want, h.Label) {
				found++
			}
		}
		total += len(want)
		plain, _ := l.Search(q, k, small)
		if !slices.Equal(liveLabels(plain), liveLabels(a)) {
			differs++
		}
		if none, err := l.SearchFiltered(q, k, small, LabelFilter{}); err != nil || !slices.Equal(none, plain) {
			t.Fatalf("the zero LabelFilter is not the plain search: %v vs %v (%v)", none, plain, err)
		}
	}
	recall := float64(found) / float64(total)
	t.Logf("filtered live recall@%d at budget %d (half allowed): %.3f", k, small, recall)
	if recall < 0.8 {
		t.Fatalf("recall %.3f", recall)
	}
	if differs < 28 {
		t.Fatalf("the filter changed only %d of 30 answers", differs)
	}
	if calls.Load() < 30*k {
		t.Fatalf("the filter function was called %d times", calls.Load())
	}
	// Empty, unknown-only and removed-only allow-lists match nothing.
	for _, f := range []LabelFilter{AllowLabels(nil), AllowLabels([]uint64{100, 6000, 1 << 50}), AllowLabels(gone)} {
		got, err := l.SearchFiltered(queries[0], k, all, f)
		if err != nil || len(got) != 0 {
			t.Fatalf("%v, %v; want nothing", got, err)
		}
	}
	// Batch: the rows of single searches; short rows are short.
	rows, err := l.SearchBatchFiltered(queries, k, small, byFunc)
	if err != nil || len(rows) != len(queries) {
		t.Fatal(err)
	}
	for i, q := range queries {
		single, _ := l.SearchFiltered(q, k, small, byFunc)
		if !slices.Equal(rows[i], single) {
			t.Fatalf("row %d: %v, single %v", i, rows[i], single)
		}
	}
	rows, err = l.SearchBatchFiltered(queries[:3], k, small, AllowLabels(deny[:2]))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if len(r) != 2 {
			t.Fatalf("a two-label allow-list gave %v", r)
		}
	}
}

func TestLiveSearchFilteredPanicsAndErrors(t *testing.T) {
	l, _, _ := filteredLive(t)
	q := gaussian(94, 1, 8)[0]
	var calls atomic.Int64
	boom := AllowLabelFunc(func(uint64) bool {
		if calls.Add(1) == 5 {
			panic("boom")
		}
		return true
	})
	_, err := l.SearchFiltered(q, 5, 50, boom)
	if !errors.Is(err, ErrCallbackFailed) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("a panicking filter: %v", err)
	}
	if calls.Load() != 5 {
		t.Fatalf("called %d times, want 5 (no call after the abort)", calls.Load())
	}
	calls.Store(0)
	if _, err := l.SearchBatchFiltered(gaussian(95, 16, 8), 5, 50, boom); !errors.Is(err, ErrCallbackFailed) {
		t.Fatalf("a panicking filter in a batch: %v", err)
	}
	if _, err := l.SearchFiltered(q, 5, 0, AllowLabelFunc(nil)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("AllowLabelFunc(nil): %v", err)
	}
	if _, err := l.SearchFiltered(q[:7], 5, 0, LabelFilter{}); !errors.Is(err, ErrDimensionMismatch) {
		t.Fatalf("a short query: %v", err)
	}
	if got, err := l.SearchFiltered(q, 5, 50, AllowLabelFunc(func(uint64) bool { return true })); err != nil || len(got) != 5 {
		t.Fatalf("after the panics: %v, %v", got, err)
	}
	l.Close()
	if _, err := l.SearchFiltered(q, 5, 0, LabelFilter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
