package panns

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDtypeNames(t *testing.T) {
	if DtypeF32.String() != "f32" || DtypeI8.String() != "i8" || Dtype(7).String() != "Dtype(7)" {
		t.Fatalf("names: %q %q %q", DtypeF32, DtypeI8, Dtype(7))
	}
	var zero Dtype
	if zero != DtypeF32 {
		t.Fatal("the zero Dtype is not DtypeF32")
	}
	if DtypeI8F32.String() != "i8+f32" {
		t.Fatalf("name of DtypeI8F32: %q", DtypeI8F32)
	}
	for _, d := range []Dtype{DtypeF32, DtypeI8, DtypeI8F32} {
		if p, err := ParseDtype(d.String()); err != nil || p != d {
			t.Fatalf("ParseDtype(%q) = %v, %v", d.String(), p, err)
		}
	}
	_, err := ParseDtype("f16")
	wantStatus(t, err, ErrInvalidArgument)
}

// approxRecall is recall@10 of ix at budget against truth (exact neighbour ids per query),
// failing unless every search took the approximate path.
func approxRecall(t *testing.T, ix *Index, queries [][]float32, truth [][]Neighbor, budget int) float64 {
	t.Helper()
	hits := 0
	for i, q := range queries {
		got, st, err := ix.SearchWithStats(q, 10, budget)
		if err != nil {
			t.Fatal(err)
		}
		if st.ExactScan || st.Budget != budget || st.Scored > ix.Len()/2 {
			t.Fatalf("%v index, budget %d of %d items: stats %+v, want the approximate path",
				ix.Dtype(), budget, ix.Len(), st)
		}
		for _, a := range got {
			if slices.ContainsFunc(truth[i], func(e Neighbor) bool { return e.ID == a.ID }) {
				hits++
			}
		}
	}
	return float64(hits) / float64(10*len(queries))
}

// TestDtypeI8Recall compares recall@10 of the same trees storing f32 vectors and i8 codes
// (and then with a graph built before the switch), against the exact neighbours of the f32
// vectors, on the approximate path (budget 500 of 5000 items; random candidates: 0.10).
// Measured: Euclidean f32 0.853, i8 0.848 (graph, beam 40: 0.966, 0.947); angular f32
// 0.903, i8 0.898 (graph: 0.978, 0.966).
func TestDtypeI8Recall(t *testing.T) {
	const n, dim, budget = 5000, 16, 500
	for _, metric := range []Metric{Euclidean, Angular} {
		rows := gaussian(60, n, dim)
		queries := gaussian(61, 100, dim)
		f32 := mustBuild(t, rows, metric, BuildOptions{NTrees: 16, Seed: 5})
		i8 := mustBuild(t, rows, metric, BuildOptions{NTrees: 16, Seed: 5})
		if f32.Dtype() != DtypeF32 || i8.Dtype() != DtypeF32 {
			t.Fatalf("a new index stores %v, %v; want f32", f32.Dtype(), i8.Dtype())
		}
		if err := i8.SetDtype(DtypeI8); err != nil {
			t.Fatal(err)
		}
		if i8.Dtype() != DtypeI8 || i8.Len() != n || i8.NTrees() != 16 {
			t.Fatalf("after SetDtype(DtypeI8): dtype %v, len %d, trees %d", i8.Dtype(), i8.Len(), i8.NTrees())
		}
		truth := make([][]Neighbor, len(queries))
		for i, q := range queries {
			exact, err := f32.LinearSearch(q, 10)
			if err != nil {
				t.Fatal(err)
			}
			truth[i] = exact
		}
		rF32, rI8 := approxRecall(t, f32, queries, truth, budget), approxRecall(t, i8, queries, truth, budget)
		t.Logf("%v: recall@10 at budget %d of %d items, 16 trees: f32 %.3f, i8 %.3f", metric, budget, n, rF32, rI8)
		if rI8 < 0.8 || rI8 < rF32-0.06 {
			t.Fatalf("%v: i8 recall@10 %.3f (f32 %.3f): want >= 0.8 and within 0.06 of f32", metric, rI8, rF32)
		}

		// A graph built on the f32 vectors is kept by the switch to codes.
		g := mustBuild(t, rows, metric, BuildOptions{NTrees: 16, Seed: 5})
		if err := g.BuildGraph(16, 0); err != nil {
			t.Fatal(err)
		}
		gF32 := approxRecall(t, g, queries, truth, 40)
		if err := g.SetDtype(DtypeI8); err != nil {
			t.Fatal(err)
		}
		if g.GraphDegree() != 16 || g.Dtype() != DtypeI8 {
			t.Fatalf("after SetDtype: degree %d, dtype %v", g.GraphDegree(), g.Dtype())
		}
		gI8 := approxRecall(t, g, queries, truth, 40)
		t.Logf("%v: with a graph of degree 16, beam 40: f32 %.3f, i8 %.3f", metric, gF32, gI8)
		if gI8 < 0.8 || gI8 < gF32-0.06 {
			t.Fatalf("%v: graph i8 recall@10 %.3f (f32 %.3f): want >= 0.8 and within 0.06 of f32", metric, gI8, gF32)
		}
	}
}

// maxAbsDiff is the largest |a[i] - b[i]|.
func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestSetDtypeRoundTrip switches an index to i8 and back: Dtype follows, Vector returns the
// decoded vectors (close to the originals; the rounding stays after the switch back to f32),
// setting the current dtype again changes nothing, and a graph may be built on codes too.
func TestSetDtypeRoundTrip(t *testing.T) {
	rows := gaussian(62, 1000, 24)
	q := gaussian(63, 1, 24)[0]
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 8})
	if err := ix.SetDtype(DtypeF32); err != nil || ix.Dtype() != DtypeF32 {
		t.Fatalf("SetDtype(DtypeF32) on an f32 index: %v, dtype %v", err, ix.Dtype())
	}
	if v, err := ix.Vector(3); err != nil || !slices.Equal(v, rows[3]) {
		t.Fatalf("f32 Vector(3) = %v, %v", v, err)
	}
	if err := ix.SetDtype(DtypeI8); err != nil || ix.Dtype() != DtypeI8 {
		t.Fatalf("SetDtype(DtypeI8): %v, dtype %v", err, ix.Dtype())
	}
	decoded := make([][]float32, len(rows))
	for id := range rows {
		v, err := ix.Vector(id)
		if err != nil {
			t.Fatal(err)
		}
		// One byte over a per-component range of about 7 standard deviations: steps of
		// about 0.03, so a decoded component is within about 0.015 of the original.
		if d := maxAbsDiff(v, rows[id]); d > 0.05 {
			t.Fatalf("decoded vector %d differs by %g from the original", id, d)
		}
		decoded[id] = v
	}
	if slices.Equal(decoded[3], rows[3]) {
		t.Fatal("the i8 vector is the f32 vector: nothing was quantized")
	}
	before, err := ix.Search(q, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	// Searches return the distances to the decoded vectors.
	for _, nb := range before {
		var s float64
		for j, x := range decoded[nb.ID] {
			s += float64(x-q[j]) * float64(x-q[j])
		}
		if math.Abs(math.Sqrt(s)-float64(nb.Distance)) > 1e-3*max(1, math.Sqrt(s)) {
			t.Fatalf("item %d: distance %g, to the decoded vector %g", nb.ID, nb.Distance, math.Sqrt(s))
		}
	}
	if err := ix.SetDtype(DtypeI8); err != nil || ix.Dtype() != DtypeI8 {
		t.Fatalf("SetDtype(DtypeI8) again: %v, dtype %v", err, ix.Dtype())
	}
	if again, err := ix.Search(q, 10, 100); err != nil || !slices.Equal(again, before) {
		t.Fatalf("SetDtype(DtypeI8) twice changed the answers: %v / %v (%v)", again, before, err)
	}

	// Back to f32: the decoded vectors become the stored ones.
	if err := ix.SetDtype(DtypeF32); err != nil || ix.Dtype() != DtypeF32 {
		t.Fatalf("SetDtype(DtypeF32): %v, dtype %v", err, ix.Dtype())
	}
	for _, id := range []int{0, 3, 999} {
		if v, err := ix.Vector(id); err != nil || !slices.Equal(v, decoded[id]) {
			t.Fatalf("Vector(%d) after the switch back = %v, %v; want the decoded %v", id, v, err, decoded[id])
		}
	}
	back, err := ix.Search(q, 10, 100)
	if err != nil || !slices.Equal(ids(back), ids(before)) {
		t.Fatalf("f32 of the decoded vectors answers %v, i8 answered %v (%v)", ids(back), ids(before), err)
	}
	for i := range back {
		if math.Abs(float64(back[i].Distance-before[i].Distance)) > 1e-3*max(1, float64(back[i].Distance)) {
			t.Fatalf("#%d: f32 distance %g, i8 distance %g", i, back[i].Distance, before[i].Distance)
		}
	}

	// A graph built on codes (from the decoded vectors) keeps the dtype.
	if err := ix.SetDtype(DtypeI8); err != nil {
		t.Fatal(err)
	}
	if err := ix.BuildGraph(8, 0); err != nil || ix.GraphDegree() != 8 || ix.Dtype() != DtypeI8 {
		t.Fatalf("BuildGraph on codes: %v, degree %d, dtype %v", err, ix.GraphDegree(), ix.Dtype())
	}
	if res, err := ix.Search(rows[17], 5, 30); err != nil || len(res) != 5 || res[0].ID != 17 {
		t.Fatalf("graph search on codes for item 17 = %v, %v", res, err)
	}
}

// TestDtypeI8SaveOpen saves an i8 index (with a graph): the file is smaller than the f32
// one, and the opened file, its bytes and a verified open report DtypeI8 and answer exactly
// as the index in memory.
func TestDtypeI8SaveOpen(t *testing.T) {
	const n, dim = 3000, 64
	rows := gaussian(64, n, dim)
	queries := gaussian(65, 30, dim)
	ix := mustBuild(t, rows, Angular, BuildOptions{NTrees: 8})
	if err := ix.BuildGraph(12, 0); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f32Path, i8Path := filepath.Join(dir, "f32.panns"), filepath.Join(dir, "i8.panns")
	if err := ix.Save(f32Path); err != nil {
		t.Fatal(err)
	}
	if err := ix.SetDtype(DtypeI8); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(i8Path); err != nil {
		t.Fatal(err)
	}
	size := func(p string) int64 {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	f32Size, i8Size := size(f32Path), size(i8Path)
	t.Logf("%d×%d angular, 8 trees, graph 12: f32 file %d bytes, i8 file %d bytes", n, dim, f32Size, i8Size)
	// The vectors alone shrink from 4 to 1 byte per component.
	if saved := f32Size - i8Size; saved < int64(n*dim*3)*9/10 {
		t.Fatalf("i8 file %d bytes, f32 file %d: want about %d bytes fewer", i8Size, f32Size, n*dim*3)
	}

	data, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != i8Size {
		t.Fatalf("MarshalBinary gives %d bytes, Save wrote %d", len(data), i8Size)
	}
	opened, err := Open(i8Path)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	verified, err := Open(i8Path, OpenVerify)
	if err != nil {
		t.Fatal(err)
	}
	defer verified.Close()
	fromBytes, err := OpenBytes(data, OpenVerify)
	if err != nil {
		t.Fatal(err)
	}
	defer fromBytes.Close()
	f32Opened, err := Open(f32Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f32Opened.Close()
	if f32Opened.Dtype() != DtypeF32 {
		t.Fatalf("the f32 file opens as %v", f32Opened.Dtype())
	}
	for _, op := range []*Index{opened, verified, fromBytes} {
		if op.Dtype() != DtypeI8 || op.Len() != n || op.GraphDegree() != 12 || op.Metric() != Angular {
			t.Fatalf("opened: dtype %v, len %d, degree %d, metric %v", op.Dtype(), op.Len(), op.GraphDegree(), op.Metric())
		}
		for _, q := range queries {
			for _, budget := range []int{0, 40} {
				a, err1 := ix.Search(q, 10, budget)
				b, err2 := op.Search(q, 10, budget)
				if err1 != nil || err2 != nil || !slices.Equal(a, b) {
					t.Fatalf("opened i8 index answers differently: %v / %v (%v, %v)", a, b, err1, err2)
				}
			}
		}
		for _, id := range []int{0, 1234, n - 1} {
			a, err1 := ix.Vector(id)
			b, err2 := op.Vector(id)
			if err1 != nil || err2 != nil || !slices.Equal(a, b) {
				t.Fatalf("opened Vector(%d) differs: %v / %v", id, err1, err2)
			}
		}
	}

	// An opened (memory-mapped) f32 file takes codes too, exactly as the index in memory did,
	// and goes back to f32.
	if err := f32Opened.SetDtype(DtypeI8); err != nil || f32Opened.Dtype() != DtypeI8 {
		t.Fatalf("SetDtype on an opened file: %v, dtype %v", err, f32Opened.Dtype())
	}
	for _, q := range queries[:10] {
		a, err1 := ix.Search(q, 10, 40)
		b, err2 := f32Opened.Search(q, 10, 40)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			t.Fatalf("opened file switched to i8 answers differently: %v / %v (%v, %v)", a, b, err1, err2)
		}
	}
	if err := opened.SetDtype(DtypeF32); err != nil || opened.Dtype() != DtypeF32 {
		t.Fatalf("opened i8 file to f32: %v, dtype %v", err, opened.Dtype())
	}
	back := filepath.Join(dir, "back.panns")
	if err := opened.Save(back); err != nil {
		t.Fatal(err)
	}
	if s := size(back); s != f32Size {
		t.Fatalf("saved back as f32: %d bytes, the f32 file has %d", s, f32Size)
	}
}

// TestSetDtypeInvalid: an unknown dtype is refused by the library with its message and
// leaves the index (dtype, vectors, answers) unchanged; a closed index gives ErrClosed and
// keeps reporting its last dtype.
func TestSetDtypeInvalid(t *testing.T) {
	rows := gaussian(66, 800, 12)
	q := gaussian(67, 1, 12)[0]
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 6})
	for _, d := range []Dtype{DtypeF32, DtypeI8} {
		if err := ix.SetDtype(d); err != nil {
			t.Fatal(err)
		}
		want, err := ix.Search(q, 10, 60)
		if err != nil {
			t.Fatal(err)
		}
		wantVec, err := ix.Vector(5)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []Dtype{3, 255, math.MaxUint32} {
			err := ix.SetDtype(bad)
			wantStatus(t, err, ErrInvalidArgument)
			if !strings.Contains(err.Error(), "dtype") {
				t.Fatalf("SetDtype(%d): the message does not name the dtype: %v", uint32(bad), err)
			}
			if ix.Dtype() != d {
				t.Fatalf("SetDtype(%d) on a %v index changed its dtype to %v", uint32(bad), d, ix.Dtype())
			}
			got, err := ix.Search(q, 10, 60)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("SetDtype(%d) on a %v index changed its answers: %v / %v (%v)", uint32(bad), d, got, want, err)
			}
			if v, err := ix.Vector(5); err != nil || !slices.Equal(v, wantVec) {
				t.Fatalf("SetDtype(%d) on a %v index changed Vector(5): %v", uint32(bad), d, err)
			}
		}
	}
	ix.Close()
	if err := ix.SetDtype(DtypeF32); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetDtype after Close = %v", err)
	}
	if d := ix.Dtype(); d != DtypeI8 {
		t.Fatalf("Dtype after Close = %v, want i8", d)
	}
}

// TestSetDtypeWhileSearching switches the dtype back and forth while goroutines search and
// read Dtype: SetDtype waits for running searches, and every search finds a stored item as
// its own nearest neighbour whichever dtype it met (run under -race by test.sh).
func TestSetDtypeWhileSearching(t *testing.T) {
	rows := gaussian(68, 2000, 16)
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 8})
	var wg sync.WaitGroup
	var searches atomic.Int64
	errs := make(chan error, 4)
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for rep := 0; ; rep++ {
				select {
				case <-stop:
					return
				default:
				}
				id := (rep*4 + g) % len(rows)
				got, err := ix.Search(rows[id], 10, 100)
				if err == nil && (len(got) != 10 || got[0].ID != uint32(id)) {
					err = fmt.Errorf("item %d: %v", id, got)
				}
				if d := ix.Dtype(); err == nil && d != DtypeF32 && d != DtypeI8 {
					err = fmt.Errorf("Dtype() = %v", d)
				}
				if err != nil {
					errs <- err
					return
				}
				searches.Add(1)
			}
		}(g)
	}
	// Each switch waits until more searches have run since the last one.
	for i := 0; i < 10; i++ {
		for seen := searches.Load(); searches.Load() < seen+8 && len(errs) == 0; {
			runtime.Gosched()
		}
		d := []Dtype{DtypeI8, DtypeF32}[i%2]
		if err := ix.SetDtype(d); err != nil || ix.Dtype() != d {
			t.Errorf("SetDtype(%v): %v, dtype %v", d, err, ix.Dtype())
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDtypeI8F32ReRanks keeps the f32 vectors beside the codes: exact scans equal the f32
// index's (ids and distances), every distance a walk returns is the item's f32 distance, the
// stored vector is the f32 one, and a saved file opens as i8+f32.
func TestDtypeI8F32ReRanks(t *testing.T) {
	const n, dim = 3000, 16
	rows := gaussian(63, n, dim)
	queries := gaussian(64, 20, dim)
	f32 := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 8, Seed: 5})
	r := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 8, Seed: 5})
	if err := r.BuildGraph(16, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDtype(DtypeI8F32); err != nil {
		t.Fatal(err)
	}
	if r.Dtype() != DtypeI8F32 {
		t.Fatalf("dtype %v after SetDtype(DtypeI8F32)", r.Dtype())
	}
	for _, q := range queries {
		want, err := f32.LinearSearch(q, n)
		if err != nil {
			t.Fatal(err)
		}
		exact := map[uint32]float32{}
		for _, w := range want {
			exact[w.ID] = w.Distance
		}
		got, err := r.LinearSearch(q, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want[:10]) {
			t.Fatalf("linear search: %v, want %v", got, want[:10])
		}
		walked, st, err := r.SearchWithStats(q, 10, 40)
		if err != nil {
			t.Fatal(err)
		}
		if st.ExactScan {
			t.Fatalf("stats %+v: want the approximate path", st)
		}
		for _, h := range walked {
			if h.Distance != exact[h.ID] {
				t.Fatalf("item %d: distance %v, its f32 distance is %v", h.ID, h.Distance, exact[h.ID])
			}
		}
	}
	v, err := r.Vector(11)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v, rows[11]) {
		t.Fatalf("vector 11: %v, want the f32 row %v", v, rows[11])
	}
	path := filepath.Join(t.TempDir(), "r.panns")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	opened, err := Open(path, OpenVerify)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	if opened.Dtype() != DtypeI8F32 {
		t.Fatalf("opened dtype %v, want i8+f32", opened.Dtype())
	}
}
