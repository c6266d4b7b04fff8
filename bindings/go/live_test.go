package panns

import (
	"errors"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// liveModel is what a live index should hold: label -> vector.
type liveModel map[uint64][]float32

// exactLabels is the exact k nearest labels of q in m (squared L2, ties by label).
func (m liveModel) exactLabels(q []float32, k int) []uint64 {
	type hit struct {
		d float64
		l uint64
	}
	all := make([]hit, 0, len(m))
	for l, v := range m {
		d := 0.0
		for j := range v {
			x := float64(v[j]) - float64(q[j])
			d += x * x
		}
		all = append(all, hit{d, l})
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].d != all[b].d {
			return all[a].d < all[b].d
		}
		return all[a].l < all[b].l
	})
	out := []uint64{}
	for i := 0; i < k && i < len(all); i++ {
		out = append(out, all[i].l)
	}
	return out
}

// add adds labels with rows through l and into m.
func (m liveModel) add(t *testing.T, l *Live, labels []uint64, rows [][]float32) {
	t.Helper()
	if err := l.Add(labels, rows); err != nil {
		t.Fatal(err)
	}
	for i, lb := range labels {
		m[lb] = rows[i]
	}
}

// assertHolds checks Len, Contains and Get of l against m.
func (m liveModel) assertHolds(t *testing.T, l *Live, absent ...uint64) {
	t.Helper()
	if l.Len() != len(m) {
		t.Fatalf("Len() = %d, want %d", l.Len(), len(m))
	}
	for lb, v := range m {
		got, err := l.Get(lb)
		if err != nil || !slices.Equal(got, v) || !l.Contains(lb) {
			t.Fatalf("label %d: Get = %v, %v; Contains = %v", lb, got, err, l.Contains(lb))
		}
	}
	for _, lb := range absent {
		if l.Contains(lb) {
			t.Fatalf("label %d should not be held", lb)
		}
	}
}

func seqLabels(n int, start, step uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = start + uint64(i)*step
	}
	return out
}

func TestLiveRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.panns")
	w, err := CreateLive(path, 16, Euclidean, BuildOptions{NTrees: 16}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m := liveModel{}
	labels := seqLabels(1500, 1_000_000, 3)
	rows := gaussian(51, 1500, 16)
	m.add(t, w, labels, rows)
	if info := w.Info(); info != (LiveInfo{Len: 1500, DeltaLen: 1500, Pending: 1500, Writable: true}) {
		t.Fatalf("Info() = %+v", info)
	}
	hits, err := w.Search(rows[7], 3, 0)
	if err != nil || len(hits) != 3 || hits[0] != (LiveNeighbor{Label: labels[7], Distance: 0}) {
		t.Fatalf("Search(own vector) = %v, %v", hits, err)
	}
	// A reader sees the writer's changes after Commit and Refresh, not before.
	r, err := OpenLive(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != 0 || r.Info().Writable {
		t.Fatalf("reader before commit: %+v", r.Info())
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Refresh(); !changed || err != nil {
		t.Fatalf("Refresh after commit = %v, %v", changed, err)
	}
	if changed, err := r.Refresh(); changed || err != nil {
		t.Fatalf("second Refresh = %v, %v", changed, err)
	}
	m.assertHolds(t, r)
	if err := w.Compact(); err != nil {
		t.Fatal(err)
	}
	if info := w.Info(); info.Generation != 1 || info.BaseLen != 1500 || info.DeltaLen != 0 {
		t.Fatalf("after Compact: %+v", info)
	}
	// Churn: remove 100 (twice over, plus unknown labels), replace 50, add 100.
	gone := labels[:100]
	n, err := w.Remove(append(slices.Clone(gone), gone[0], 5)...)
	if err != nil || n != 100 {
		t.Fatalf("Remove = %d, %v", n, err)
	}
	for _, lb := range gone {
		delete(m, lb)
	}
	m.add(t, w, labels[500:550], gaussian(52, 50, 16))
	m.add(t, w, seqLabels(100, 7, 3), gaussian(53, 100, 16))
	if info := w.Info(); info.Tombstones != 150 || info.DeltaLen != 150 {
		t.Fatalf("after churn: %+v", info)
	}
	m.assertHolds(t, w, gone...)
	// Recall against the exact scan, at a budget well below half the items.
	found, total := 0, 0
	for _, q := range gaussian(54, 40, 16) {
		hits, st, err := w.SearchWithStats(q, 10, 300)
		if err != nil {
			t.Fatal(err)
		}
		if st.ExactScan {
			t.Fatalf("budget 300 of 1500 scanned exactly: %+v", st)
		}
		want := m.exactLabels(q, 10)
		for _, h := range hits {
			if _, ok := m[h.Label]; !ok {
				t.Fatalf("label %d is not live", h.Label)
			}
			if slices.Contains(want, h.Label) {
				found++
			}
		}
		total += len(want)
	}
	recall := float64(found) / float64(total)
	t.Logf("live recall@10 at budget 300 after churn: %.3f", recall)
	if recall < 0.8 {
		t.Fatalf("recall %.3f", recall)
	}
	// The reader moves to generation 1, then to the churned state after the commit.
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Refresh(); !changed || err != nil {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}
	m.assertHolds(t, r, gone...)
	for _, q := range gaussian(55, 10, 16) {
		a, _ := w.Search(q, 10, 100)
		b, _ := r.Search(q, 10, 100)
		if !slices.Equal(a, b) {
			t.Fatalf("writer %v and reader %v disagree", a, b)
		}
	}
	// RangeSearch at a budget covering every item: the exact ball, nearest first.
	q := gaussian(57, 1, 16)[0]
	want := m.exactLabels(q, 8)
	d7 := float64(0)
	for j := range q {
		x := float64(m[want[6]][j]) - float64(q[j])
		d7 += x * x
	}
	ball, truncated, err := r.RangeSearch(q, float32(math.Sqrt(d7))*1.00001, 100, 1<<30)
	if err != nil || truncated || len(ball) < 7 {
		t.Fatalf("RangeSearch = %v, %v, %v", ball, truncated, err)
	}
	for i := 0; i < 7; i++ {
		if ball[i].Label != want[i] {
			t.Fatalf("RangeSearch %v, exact %v", ball, want)
		}
	}
	if capped, truncated, _ := r.RangeSearch(q, 1e9, 3, 0); len(capped) != 3 || !truncated {
		t.Fatalf("capped RangeSearch = %v, %v", capped, truncated)
	}
	if _, _, err := r.RangeSearch(q, -1, 3, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("negative radius: %v", err)
	}
	// SearchBatch agrees with Search, padding dropped.
	qs := gaussian(56, 9, 16)
	batch, err := r.SearchBatch(qs, 5, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range qs {
		one, _ := r.Search(q, 5, 100)
		if !slices.Equal(batch[i], one) {
			t.Fatalf("query %d: batch %v, single %v", i, batch[i], one)
		}
	}
}

func TestLiveLockReadOnlyAndClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock.panns")
	w, err := CreateLive(path, 4, Angular, BuildOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLive(path, true); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another writer") {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := CreateLive(path, 4, Angular, BuildOptions{}, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("create over a locked index: %v", err)
	}
	r, err := OpenLive(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Add([]uint64{1}, [][]float32{{1, 0, 0, 0}}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("reader Add: %v", err)
	}
	if _, err := r.Remove(1); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("reader Remove: %v", err)
	}
	if err := r.Commit(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("reader Commit: %v", err)
	}
	// Closing the writer releases the lock; Close is idempotent, then ErrClosed.
	w.Close()
	w.Close()
	if err := w.Add([]uint64{1}, [][]float32{{1, 0, 0, 0}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if _, err := w.Search([]float32{1, 0, 0, 0}, 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Search after Close: %v", err)
	}
	if w.Len() != 0 || w.Contains(1) || w.Dim() != 4 || w.Metric() != Angular {
		t.Fatal("accessors after Close")
	}
	w2, err := OpenLive(path, true)
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
}

func TestLiveBadInputAppliesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.panns")
	w, err := CreateLive(path, 4, Angular, BuildOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	m := liveModel{}
	m.add(t, w, []uint64{1, 2}, [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}}) // unit vectors: stored as given
	nan := float32(math.NaN())
	cases := []struct {
		labels []uint64
		rows   [][]float32
		want   error
		needle string
	}{
		{[]uint64{5, 6}, [][]float32{{1, 1, 1, 1}, {1, nan, 1, 1}}, ErrNonFinite, "batch row 1 (label 6)"},
		{[]uint64{5, 6}, [][]float32{{0, 0, 0, 0}, {1, 1, 1, 1}}, ErrZeroVector, "batch row 0"},
		{[]uint64{5, 6}, [][]float32{{1, 1, 1, 1}, {1, 1, 1}}, ErrDimensionMismatch, "batch row 1"},
		{[]uint64{5, 5}, [][]float32{{1, 1, 1, 1}, {1, 2, 1, 1}}, ErrInvalidArgument, "also on row 0"},
		{[]uint64{5}, [][]float32{{1, 1, 1, 1}, {1, 2, 1, 1}}, ErrInvalidArgument, "1 labels for 2 vectors"},
	}
	for i, c := range cases {
		err := w.Add(c.labels, c.rows)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.needle) {
			t.Errorf("case %d: %v, want %v mentioning %q", i, err, c.want, c.needle)
		}
		m.assertHolds(t, w, 5, 6)
	}
	if _, err := w.Search([]float32{0, 0, 0, 0}, 1, 0); !errors.Is(err, ErrZeroVector) {
		t.Errorf("zero query: %v", err)
	}
	if _, err := w.Search([]float32{1, 2}, 1, 0); !errors.Is(err, ErrDimensionMismatch) {
		t.Errorf("short query: %v", err)
	}
	if _, err := w.Search([]float32{1, 2, 3, 4}, 0, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("k = 0: %v", err)
	}
	if _, err := w.Get(99); !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "label 99") {
		t.Errorf("Get(99): %v", err)
	}
	if _, err := OpenLive(filepath.Join(t.TempDir(), "none.panns"), false); !errors.Is(err, ErrIO) {
		t.Errorf("open a missing index: %v", err)
	}
	if _, err := CreateLive(filepath.Join(t.TempDir(), "x.panns"), 4, Metric(9), BuildOptions{}, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("metric 9: %v", err)
	}
	// Fewer items than k: all of them.
	hits, err := w.Search([]float32{3, 1, 0, 0}, 10, 0)
	if err != nil || len(hits) != 2 || hits[0].Label != 1 {
		t.Fatalf("Search k > Len: %v, %v", hits, err)
	}
}

func TestLiveFromIndex(t *testing.T) {
	rows := gaussian(61, 300, 8)
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 8})
	defer ix.Close()
	dir := t.TempDir()
	if _, err := LiveFromIndex(ix, filepath.Join(dir, "a.panns"), []uint64{1, 2}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("2 labels: %v", err)
	}
	labels := seqLabels(300, 1<<40, 1)
	l, err := LiveFromIndex(ix, filepath.Join(dir, "a.panns"), labels)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hits, err := l.Search(rows[42], 1, 0)
	if err != nil || hits[0].Label != 1<<40+42 || l.Info().Generation != 1 {
		t.Fatalf("Search = %v, %v; %+v", hits, err, l.Info())
	}
	ids, err := LiveFromIndex(ix, filepath.Join(dir, "b.panns"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Close()
	if hits, _ := ids.Search(rows[42], 1, 0); hits[0].Label != 42 {
		t.Fatalf("nil labels: %v", hits)
	}
}

// Searches from many goroutines while another adds, removes and commits: the lock keeps the
// handle consistent (run under -race by test.sh) and every hit is a label that was added.
func TestLiveConcurrentSearchAndChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conc.panns")
	w, err := CreateLive(path, 8, Euclidean, BuildOptions{NTrees: 4}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(seqLabels(200, 0, 1), gaussian(71, 200, 8)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			for _, q := range gaussian(seed, 50, 8) {
				hits, err := w.Search(q, 5, 0)
				if err != nil {
					errs <- err
					return
				}
				for _, h := range hits {
					if h.Label >= 400 {
						errs <- errors.New("unknown label")
						return
					}
				}
			}
		}(uint64(80 + g))
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			if err := w.Add(seqLabels(10, uint64(200+10*i), 1), gaussian(uint64(90+i), 10, 8)); err != nil {
				errs <- err
				return
			}
			if _, err := w.Remove(uint64(i)); err != nil {
				errs <- err
				return
			}
			if err := w.Commit(); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if w.Len() != 200+200-20 {
		t.Fatalf("Len() = %d", w.Len())
	}
}

func TestLiveInMemoryAndSave(t *testing.T) {
	rows := gaussian(81, 400, 8)
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 8})
	labels := seqLabels(400, 500, 2)
	m, err := LiveInMemory(ix, labels)
	ix.Close() // the live index holds its own copy
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if info := m.Info(); !info.InMemory || !info.Writable || info.Generation != 1 || info.Len != 400 {
		t.Fatalf("Info() = %+v", info)
	}
	model := liveModel{}
	for i, l := range labels {
		model[l] = rows[i]
	}
	if n, err := m.Remove(labels[0], labels[1]); n != 2 || err != nil {
		t.Fatalf("Remove = %d, %v", n, err)
	}
	delete(model, labels[0])
	delete(model, labels[1])
	model.add(t, m, []uint64{labels[7], 1, 3}, gaussian(82, 3, 8))
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	model.assertHolds(t, m, labels[0], labels[1])
	for _, q := range gaussian(83, 10, 8) {
		got, _ := m.Search(q, 5, 0)
		want := model.exactLabels(q, 5)
		for i := range got {
			if got[i].Label != want[i] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	}
	if err := m.Compact(); err != nil || m.Info().Generation != 2 {
		t.Fatalf("Compact: %v, %+v", err, m.Info())
	}
	path := filepath.Join(t.TempDir(), "saved.panns")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	r, err := OpenLive(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Info().InMemory {
		t.Fatal("a reader of a file is not in memory")
	}
	model.assertHolds(t, r, labels[0], labels[1])
	e, err := NewLiveInMemory(8, Euclidean, BuildOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Save(filepath.Join(t.TempDir(), "empty.panns")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("saving an empty index: %v", err)
	}
}
