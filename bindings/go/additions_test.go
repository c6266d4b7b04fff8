package panns

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	_ encoding.BinaryMarshaler   = (*Index)(nil)
	_ encoding.BinaryUnmarshaler = (*Index)(nil)
)

// TestDefaults checks the one table of defaults (the Default* constants and the doc of
// BuildOptions) against the linked library (DefaultBuildOptions calls
// panns_build_options_default), and that zero values mean those defaults.
func TestDefaults(t *testing.T) {
	d := DefaultBuildOptions()
	want := BuildOptions{NTrees: DefaultNTrees, LeafSize: DefaultLeafSize, PoolSize: DefaultPoolSize,
		Candidates: DefaultCandidates, Split: SplitMean, Threads: 0, Seed: DefaultSeed}
	if d != want {
		t.Fatalf("panns_build_options_default() = %+v, the Go table says %+v", d, want)
	}
	if d.NTrees != 32 || d.LeafSize != 16 || d.PoolSize != 256 || d.Candidates != 8 || d.Seed != 42 {
		t.Fatalf("defaults %+v differ from the documented 32/16/256/8/42", d)
	}
	// BuildOptions{} builds the very index DefaultBuildOptions() builds (seed 0 = 42).
	rows := gaussian(40, 600, 8)
	marshal := func(o BuildOptions) []byte {
		ix := mustBuild(t, rows, Euclidean, o)
		defer ix.Close()
		b, err := ix.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	zero, def := marshal(BuildOptions{}), marshal(DefaultBuildOptions())
	if !bytes.Equal(zero, def) {
		t.Fatal("BuildOptions{} and DefaultBuildOptions() build different indexes")
	}
	if bytes.Equal(zero, marshal(BuildOptions{Seed: 7})) {
		t.Fatal("the seed changes nothing")
	}
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 4})
	defer ix.Close()
	if err := ix.BuildGraph(0, 0); err != nil || ix.GraphDegree() != DefaultGraphDegree {
		t.Fatalf("BuildGraph(0, 0): degree %d, %v; want %d", ix.GraphDegree(), err, DefaultGraphDegree)
	}
}

func TestMarshalBinaryAndOpenBytes(t *testing.T) {
	rows := gaussian(41, 500, 16)
	ix := mustBuild(t, rows, Angular, BuildOptions{NTrees: 6})
	defer ix.Close()
	b, err := ix.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/x.panns"
	if err := ix.Save(path); err != nil {
		t.Fatal(err)
	}
	opened, err := OpenBytes(b, OpenVerify)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	saved := slices.Clone(b)
	clear(b) // the library copied the bytes
	q := gaussian(42, 1, 16)[0]
	x, err1 := ix.Search(q, 10, 60)
	y, err2 := opened.Search(q, 10, 60)
	if err1 != nil || err2 != nil || !slices.Equal(x, y) || opened.Len() != 500 {
		t.Fatalf("OpenBytes answers differently: %v %v (%v %v)", x, y, err1, err2)
	}
	var u Index
	if err := u.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if z, err := u.Search(q, 10, 60); err != nil || !slices.Equal(x, z) {
		t.Fatalf("UnmarshalBinary answers differently: %v (%v)", z, err)
	}
	wantStatus(t, u.UnmarshalBinary(saved), ErrInvalidArgument)
	_, err = OpenBytes(b)
	wantStatus(t, err, ErrCorrupt)
	_, err = OpenBytes(nil)
	wantStatus(t, err, ErrCorrupt)
	_, err = OpenBytes(saved, OpenFlag(8))
	wantStatus(t, err, ErrInvalidArgument)
	ix.Close()
	if _, err := ix.MarshalBinary(); !errors.Is(err, ErrClosed) {
		t.Fatalf("MarshalBinary after Close = %v", err)
	}
}

// TestRecallOnTheApproximatePath measures recall@10 against LinearSearch (by ids) with a
// budget the stats confirm walks the trees. Random candidates would give budget/n = 10%.
func TestRecallOnTheApproximatePath(t *testing.T) {
	const n, budget = 5000, 500
	rows := gaussian(43, n, 16)
	ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 16})
	defer ix.Close()
	hits, queries := 0, gaussian(44, 100, 16)
	for _, q := range queries {
		got, st, err := ix.SearchWithStats(q, 10, budget)
		if err != nil {
			t.Fatal(err)
		}
		if st.ExactScan || st.Budget != budget || st.Scored > n/2 {
			t.Fatalf("stats %+v: want the approximate path", st)
		}
		exact, err := ix.LinearSearch(q, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range got {
			if slices.ContainsFunc(exact, func(e Neighbor) bool { return e.ID == a.ID }) {
				hits++
			}
		}
	}
	recall := float64(hits) / float64(10*len(queries))
	t.Logf("recall@10 at budget %d of %d items, 16 trees: %.3f", budget, n, recall)
	if recall < 0.75 { // measured 0.853
		t.Fatalf("recall@10 = %.3f < 0.75", recall)
	}
}

func TestEmptyQuery(t *testing.T) {
	ix := mustBuild(t, gaussian(45, 50, 6), Euclidean, BuildOptions{NTrees: 2})
	defer ix.Close()
	for _, q := range [][]float32{nil, {}} {
		_, err := ix.Search(q, 3, 0)
		wantStatus(t, err, ErrDimensionMismatch)
		if err == nil || !strings.Contains(err.Error(), "the query is empty: expected 6 components") {
			t.Fatalf("Search(empty) = %v", err)
		}
		_, _, err = ix.SearchWithStats(q, 3, 0)
		wantStatus(t, err, ErrDimensionMismatch)
		_, err = ix.LinearSearch(q, 3)
		wantStatus(t, err, ErrDimensionMismatch)
	}
}

// TestErrorsTravelWithTheCall fails many calls from goroutines that hop between OS threads
// (no LockOSThread anywhere): every error must carry the message of its own call.
func TestErrorsTravelWithTheCall(t *testing.T) {
	ix := mustBuild(t, gaussian(46, 200, 8), Euclidean, BuildOptions{NTrees: 2})
	defer ix.Close()
	var wg sync.WaitGroup
	bad := make(chan string, 64)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			dim := 9 + g // a wrong dimension of its own: "got <dim>"
			q := make([]float32, dim)
			for i := 0; i < 200; i++ {
				_, err := ix.Search(q, 3, 0)
				if err == nil || !strings.HasSuffix(err.Error(), fmt.Sprintf("got %d (PANNS_DIMENSION_MISMATCH)", dim)) {
					bad <- fmt.Sprintf("goroutine %d: %v", g, err)
					return
				}
				if _, err := ix.Search(make([]float32, 8), 3, 0); err != nil {
					bad <- err.Error()
					return
				}
				runtime.Gosched()
			}
		}(g)
	}
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Error(b)
	}
}

func TestBuildGraphExact(t *testing.T) {
	rows := gaussian(43, 2000, 8)
	graphBytes := func(exact bool) []byte {
		ix := mustBuild(t, rows, Euclidean, BuildOptions{NTrees: 4})
		defer ix.Close()
		build := ix.BuildGraph
		if exact {
			build = ix.BuildGraphExact
		}
		if err := build(8, 0); err != nil || ix.GraphDegree() != 8 {
			t.Fatalf("exact %v: degree %d, %v", exact, ix.GraphDegree(), err)
		}
		b, err := ix.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	coded, exact := graphBytes(false), graphBytes(true)
	if bytes.Equal(coded, exact) {
		t.Fatal("BuildGraphExact built the graph BuildGraph builds (on codes)")
	}
	if !bytes.Equal(exact, graphBytes(true)) {
		t.Fatal("two exact builds differ")
	}
}
