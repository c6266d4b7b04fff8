package panns

/*
#include <stdlib.h>
#include <panns.h>
*/
import "C"

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Live is a live index: items added, replaced and removed by uint64 label while it is
// searched (panns_live_* of the C ABI). It is a base index file PATH plus an append-only log
// PATH.log; one writer at a time holds PATH.lock (across processes), any number of readers
// open the same files and pick up the writer's commits with Refresh.
//
//	w, err := panns.CreateLive("items.panns", 128, panns.Angular, panns.BuildOptions{}, 0)
//	err = w.Add([]uint64{1001, 1002}, [][]float32{v1, v2})
//	err = w.Commit() // durable when it returns
//	r, err := panns.OpenLive("items.panns", false) // a reader, say in another process
//	hits, err := r.Search(v1, 10, 0) // hits[0].Label == 1001
//
// Searches and accessors may run from many goroutines at once; changes (Add, Remove, Commit,
// Compact, Refresh) are serialised with them by a read-write lock. Call Close when done (a
// finalizer frees a forgotten handle, eventually); closing a writer discards uncommitted
// changes and releases the lock.
type Live struct {
	mu     sync.RWMutex // read-locked by searches and accessors, write-locked by changes and Close
	ptr    *C.PannsLive
	dim    int
	metric Metric
}

// LiveNeighbor is one result of a live-index search: the item's label and its distance.
type LiveNeighbor struct {
	Label    uint64
	Distance float32
}

func newLive(ptr *C.PannsLive) *Live {
	l := &Live{ptr: ptr, dim: int(C.panns_live_dim(ptr)), metric: Metric(C.panns_live_metric(ptr))}
	runtime.SetFinalizer(l, (*Live).Close)
	return l
}

// CreateLive creates an empty live index at path for dim-dimensional vectors and returns its
// writer. opts (zero fields: the defaults) are used by every compaction; graphDegree > 0
// gives each compacted base a neighbour graph of that degree. It fails with
// ErrInvalidArgument if path or its log exists, ErrLocked if another writer holds the lock.
func CreateLive(path string, dim int, metric Metric, opts BuildOptions, graphDegree int) (*Live, error) {
	d, err := u32("dim", dim)
	if err != nil {
		return nil, err
	}
	g, err := u32("graphDegree", graphDegree)
	if err != nil {
		return nil, err
	}
	copts, err := opts.toC()
	if err != nil {
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var ptr *C.PannsLive
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_create_e(cpath, d, C.uint32_t(metric), &copts, g, &ptr, cerr)
	}); err != nil {
		return nil, err
	}
	return newLive(ptr), nil
}

// OpenLive opens the live index at path (any index file opens as generation 1 with its item
// ids as labels). writable takes the writer lock (ErrLocked if another writer holds it); a
// reader sees the last commit made before it opened, later ones after Refresh.
func OpenLive(path string, writable bool) (*Live, error) {
	w := C.uint32_t(0)
	if writable {
		w = 1
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var ptr *C.PannsLive
	if err := call(func(cerr **C.char) C.PannsStatus { return C.panns_live_open_e(cpath, w, &ptr, cerr) }); err != nil {
		return nil, err
	}
	return newLive(ptr), nil
}

// NewLiveInMemory creates an empty live index held in memory only (no file, log or lock):
// Commit does nothing, Compact rebuilds the base in memory, Save writes the contents to a
// file. opts and graphDegree as in CreateLive.
func NewLiveInMemory(dim int, metric Metric, opts BuildOptions, graphDegree int) (*Live, error) {
	d, err := u32("dim", dim)
	if err != nil {
		return nil, err
	}
	g, err := u32("graphDegree", graphDegree)
	if err != nil {
		return nil, err
	}
	copts, err := opts.toC()
	if err != nil {
		return nil, err
	}
	var ptr *C.PannsLive
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_create_e(nil, d, C.uint32_t(metric), &copts, g, &ptr, cerr)
	}); err != nil {
		return nil, err
	}
	return newLive(ptr), nil
}

// LiveInMemory makes a live index held in memory only over a copy of ix (generation 1),
// labels as in LiveFromIndex. See NewLiveInMemory.
func LiveInMemory(ix *Index, labels []uint64) (*Live, error) {
	return liveFromIndex(ix, nil, labels)
}

// LiveFromIndex writes ix as generation 1 of a new live index at path and returns its
// writer. labels holds one distinct label per item of ix, or is nil for the item ids.
func LiveFromIndex(ix *Index, path string, labels []uint64) (*Live, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return liveFromIndex(ix, cpath, labels)
}

// liveFromIndex is LiveFromIndex with a C path (nil: in memory).
func liveFromIndex(ix *Index, cpath *C.char, labels []uint64) (*Live, error) {
	if labels != nil && len(labels) != ix.Len() {
		return nil, invalid("%d labels for an index of %d items", len(labels), ix.Len())
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, ErrClosed
	}
	var lp *C.uint64_t
	if len(labels) > 0 {
		lp = (*C.uint64_t)(unsafe.Pointer(&labels[0]))
	}
	var ptr *C.PannsLive
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_from_index_e(ix.ptr, cpath, lp, C.size_t(len(labels)), &ptr, cerr)
	})
	runtime.KeepAlive(labels)
	if err != nil {
		return nil, err
	}
	return newLive(ptr), nil
}

// Dim returns the vector dimension (available after Close).
func (l *Live) Dim() int { return l.dim }

// Metric returns the distance metric (available after Close).
func (l *Live) Metric() Metric { return l.metric }

// Add adds one item per label, labels[i] with vectors[i] (each of length Dim); a label
// already held is replaced. Either the whole batch is applied or, on an error naming the
// row (ErrDimensionMismatch, ErrNonFinite, ErrZeroVector, ErrInvalidArgument for a label
// twice in the batch, ErrReadOnly for a reader), nothing. Visible to this handle's searches
// at once; durable after Commit.
func (l *Live) Add(labels []uint64, vectors [][]float32) error {
	if len(labels) != len(vectors) {
		return invalid("%d labels for %d vectors", len(labels), len(vectors))
	}
	if len(labels) == 0 {
		return nil
	}
	flat := make([]float32, 0, len(vectors)*l.dim)
	for i, v := range vectors {
		if len(v) != l.dim {
			return &Error{Status: StatusDimensionMismatch, Message: fmt.Sprintf(
				"batch row %d (label %d) has %d components, the index dimension is %d; nothing of the batch was applied",
				i, labels[i], len(v), l.dim)}
		}
		flat = append(flat, v...)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ptr == nil {
		return ErrClosed
	}
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_add_e(l.ptr, (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(flat),
			C.size_t(len(labels)), C.size_t(l.dim), cerr)
	})
	runtime.KeepAlive(labels)
	return err
}

// Remove removes the items of labels (labels not held are ignored) and returns how many
// were removed. Durable after Commit; ErrReadOnly for a reader.
func (l *Live) Remove(labels ...uint64) (int, error) {
	if len(labels) == 0 {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ptr == nil {
		return 0, ErrClosed
	}
	var n C.size_t
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_remove_e(l.ptr, (*C.uint64_t)(unsafe.Pointer(&labels[0])), C.size_t(len(labels)), &n, cerr)
	})
	runtime.KeepAlive(labels)
	return int(n), err
}

// change runs one C call that changes the live index, under the write lock.
func (l *Live) change(f func(ptr *C.PannsLive, cerr **C.char) C.PannsStatus) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ptr == nil {
		return ErrClosed
	}
	return call(func(cerr **C.char) C.PannsStatus { return f(l.ptr, cerr) })
}

// Commit makes every change since the last commit durable (fsynced before it returns), then
// compacts if the delta or the removals have grown past their thresholds.
func (l *Live) Commit() error {
	return l.change(func(p *C.PannsLive, e **C.char) C.PannsStatus { return C.panns_live_commit_e(p, e) })
}

// Compact commits, then writes the live items as the next base generation and starts a
// fresh log. Readers move to it on their next Refresh.
func (l *Live) Compact() error {
	return l.change(func(p *C.PannsLive, e **C.char) C.PannsStatus { return C.panns_live_compact_e(p, e) })
}

// Refresh picks up, for a reader, the commits made since it opened or last refreshed, and
// reports whether anything changed (a writer is always current: false).
func (l *Live) Refresh() (bool, error) {
	var changed C.int
	err := l.change(func(p *C.PannsLive, e **C.char) C.PannsStatus { return C.panns_live_refresh_e(p, &changed, e) })
	return changed != 0, err
}

// Save writes the live items to path as one index file with their labels (atomically);
// OpenLive opens it as a live index, Open as a plain index. An index in memory is compacted
// first if it changed. ErrInvalidArgument for an index with no items, its own base file, or
// a path with a live-index log beside it.
func (l *Live) Save(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return l.change(func(p *C.PannsLive, e **C.char) C.PannsStatus { return C.panns_live_save_e(p, cpath, e) })
}

// Search returns the k approximate nearest live items to q (length Dim), nearest first (ties
// by label); fewer than k only if fewer items are live. budget as in Index.Search.
func (l *Live) Search(q []float32, k, budget int) ([]LiveNeighbor, error) {
	hits, _, err := l.search(q, k, budget, false)
	return hits, err
}

// SearchWithStats is Search that also reports what the search of the base did (all zero
// before the first compaction): ExactScan tells whether it scanned the base exactly.
func (l *Live) SearchWithStats(q []float32, k, budget int) ([]LiveNeighbor, SearchStats, error) {
	return l.search(q, k, budget, true)
}

func (l *Live) search(q []float32, k, budget int, withStats bool) ([]LiveNeighbor, SearchStats, error) {
	if k < 0 {
		return nil, SearchStats{}, invalid("k = %d must be positive", k)
	}
	if budget < 0 {
		return nil, SearchStats{}, invalid("budget = %d must not be negative", budget)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return nil, SearchStats{}, ErrClosed
	}
	// Nothing changes under the read lock: at most Len results.
	buf := max(1, min(k, int(C.panns_live_len(l.ptr))))
	labels := make([]uint64, buf)
	dists := make([]float32, buf)
	var n C.size_t
	var st C.PannsSearchStats
	err := call(func(cerr **C.char) C.PannsStatus {
		lp := (*C.uint64_t)(unsafe.Pointer(&labels[0]))
		if withStats {
			return C.panns_live_search_with_stats_e(l.ptr, fptr(q), C.size_t(len(q)), C.size_t(k), C.size_t(budget),
				lp, fptr(dists), &n, &st, cerr)
		}
		return C.panns_live_search_e(l.ptr, fptr(q), C.size_t(len(q)), C.size_t(k), C.size_t(budget),
			lp, fptr(dists), &n, cerr)
	})
	runtime.KeepAlive(q)
	if err != nil {
		return nil, SearchStats{}, err
	}
	out := make([]LiveNeighbor, int(n))
	for i := range out {
		out[i] = LiveNeighbor{Label: labels[i], Distance: dists[i]}
	}
	stats := SearchStats{Scored: int(st.scored), Budget: int(st.budget), ExactScan: st.exact_scan != 0}
	return out, stats, nil
}

// RangeSearch returns every live item within radius of q, nearest first, at most maxResults
// of them, and whether that cap cut the list. The candidates are the maxResults+1 nearest
// at budget (0: the default): approximate unless the budget covers half the items.
// Distances are those of the metric (Euclidean: not squared).
func (l *Live) RangeSearch(q []float32, radius float32, maxResults, budget int) ([]LiveNeighbor, bool, error) {
	if maxResults < 0 || budget < 0 {
		return nil, false, invalid("maxResults = %d and budget = %d must not be negative", maxResults, budget)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return nil, false, ErrClosed
	}
	buf := max(1, min(maxResults, int(C.panns_live_len(l.ptr))))
	labels := make([]uint64, buf)
	dists := make([]float32, buf)
	var n C.size_t
	var truncated C.uint8_t
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_range_search_e(l.ptr, fptr(q), C.size_t(len(q)), C.float(radius), C.size_t(maxResults),
			C.size_t(budget), (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists), &n, &truncated, cerr)
	})
	runtime.KeepAlive(q)
	if err != nil {
		return nil, false, err
	}
	out := make([]LiveNeighbor, int(n))
	for i := range out {
		out[i] = LiveNeighbor{Label: labels[i], Distance: dists[i]}
	}
	return out, truncated != 0, nil
}

// SearchBatch searches many queries (each of length Dim) in parallel on all cores and
// returns one result list per query, as Search would.
func (l *Live) SearchBatch(queries [][]float32, k, budget int) ([][]LiveNeighbor, error) {
	flat, d, err := batchArgs(queries, k, budget, 0)
	if err != nil {
		return nil, err
	}
	if flat == nil {
		return [][]LiveNeighbor{}, nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return nil, ErrClosed
	}
	kk := min(k, int(C.panns_live_len(l.ptr)))
	if k > 0 {
		kk = max(kk, 1)
	}
	labels := make([]uint64, max(1, len(queries)*kk))
	dists := make([]float32, len(labels))
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_search_batch_e(l.ptr, fptr(flat), C.size_t(len(queries)), C.size_t(d), C.size_t(kk),
			C.size_t(budget), (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists), cerr)
	}); err != nil {
		return nil, err
	}
	out := make([][]LiveNeighbor, len(queries))
	for i := range out {
		row := []LiveNeighbor{}
		for j := i * kk; j < (i+1)*kk && labels[j] != math.MaxUint64; j++ {
			row = append(row, LiveNeighbor{Label: labels[j], Distance: dists[j]})
		}
		out[i] = row
	}
	return out, nil
}

// Contains reports whether label is held (false after Close).
func (l *Live) Contains(label uint64) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.ptr != nil && C.panns_live_contains(l.ptr, C.uint64_t(label)) != 0
}

// Get returns a copy of the stored vector of label (unit length under Angular);
// ErrOutOfRange if the label is not held.
func (l *Live) Get(label uint64) ([]float32, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return nil, ErrClosed
	}
	out := make([]float32, l.dim)
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_get_e(l.ptr, C.uint64_t(label), fptr(out), C.size_t(l.dim), cerr)
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// LiveInfo is the state of a live index at one moment (Live.Info).
type LiveInfo struct {
	Len        int    // live items
	Generation uint64 // base generation (0 before the first compaction)
	BaseLen    int    // items in the base file, removed ones included
	DeltaLen   int    // live items added since the base was written
	Tombstones int    // base items removed or replaced since the base was written
	Pending    int    // uncommitted changes of this handle
	Writable   bool   // this handle takes changes (the writer, or an index in memory)
	InMemory   bool   // held in memory only (NewLiveInMemory, LiveInMemory)
}

// Len returns the number of live items (0 after Close).
func (l *Live) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return 0
	}
	return int(C.panns_live_len(l.ptr))
}

// Info returns the live index's counters, read together (zero after Close).
func (l *Live) Info() LiveInfo {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return LiveInfo{}
	}
	return LiveInfo{
		Len:        int(C.panns_live_len(l.ptr)),
		Generation: uint64(C.panns_live_generation(l.ptr)),
		BaseLen:    int(C.panns_live_base_len(l.ptr)),
		DeltaLen:   int(C.panns_live_delta_len(l.ptr)),
		Tombstones: int(C.panns_live_tombstones(l.ptr)),
		Pending:    int(C.panns_live_pending(l.ptr)),
		Writable:   C.panns_live_is_writable(l.ptr) != 0,
		InMemory:   C.panns_live_is_in_memory(l.ptr) != 0,
	}
}

// Close frees the handle once running calls have finished: uncommitted changes are
// discarded and a writer releases its lock. It is idempotent; other methods then return
// ErrClosed.
func (l *Live) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ptr != nil {
		C.panns_live_free(l.ptr)
		l.ptr = nil
		runtime.SetFinalizer(l, nil)
	}
	return nil
}
