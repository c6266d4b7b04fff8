package panns

/*
#include <stdlib.h>
#include <panns.h>
*/
import "C"

import (
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// LabeledNeighbor is one result of a sharded search: the item's global label (its row in the
// concatenation of the shards, or the label stored in its shard file) and its distance.
type LabeledNeighbor struct {
	Label    uint64
	Distance float32
}

// ShardedIndex is the set of index files (shards) named by a manifest, searched as one: each
// query goes to every shard on the library's threads and the results are merged exactly by
// (distance, label). Its search methods may be called from many goroutines at once.
type ShardedIndex struct {
	mu      sync.RWMutex
	ptr     *C.PannsShardedIndex
	n       int
	dim     int
	metric  Metric
	nShards int
}

// WriteManifest writes a manifest at manifestPath naming the index files paths (in order; one
// metric and dimension). Files with a labels section are labelled by it, the others by their
// row in the concatenation. A shard that disagrees with the first gives ErrCorrupt naming it.
func WriteManifest(manifestPath string, paths []string) error {
	cm := C.CString(manifestPath)
	defer C.free(unsafe.Pointer(cm))
	cpaths := C.malloc(C.size_t(max(1, len(paths))) * C.size_t(unsafe.Sizeof((*C.char)(nil))))
	defer C.free(cpaths)
	arr := unsafe.Slice((**C.char)(cpaths), max(1, len(paths)))
	for i, p := range paths {
		arr[i] = C.CString(p)
		defer C.free(unsafe.Pointer(arr[i]))
	}
	return call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_write_manifest_e(cm, (**C.char)(cpaths), C.size_t(len(paths)), cerr)
	})
}

// OpenSharded opens the manifest at path, memory-mapping every shard file (with OpenVerify,
// every shard's checksum and values are verified). A shard that is missing, damaged, replaced
// (its checksum differs from the manifest's) or of another metric or dimension is refused with
// an error naming it.
func OpenSharded(path string, flags ...OpenFlag) (*ShardedIndex, error) {
	var f OpenFlag
	for _, x := range flags {
		f |= x
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var ptr *C.PannsShardedIndex
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_open_e(cpath, C.uint32_t(f), &ptr, cerr)
	}); err != nil {
		return nil, err
	}
	return wrapSharded(ptr), nil
}

// OpenShardedSubset opens only the shards at the given positions of the manifest (one
// server's share of a cluster). Labels stay global: merging the results of servers holding
// disjoint subsets by (distance, label) gives exactly the answer of the whole manifest.
func OpenShardedSubset(path string, shards []int, flags ...OpenFlag) (*ShardedIndex, error) {
	var f OpenFlag
	for _, x := range flags {
		f |= x
	}
	which := make([]C.size_t, max(1, len(shards)))
	for i, s := range shards {
		if s < 0 {
			return nil, invalid("shard position %d is negative", s)
		}
		which[i] = C.size_t(s)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var ptr *C.PannsShardedIndex
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_open_subset_e(cpath, &which[0], C.size_t(len(shards)), C.uint32_t(f), &ptr, cerr)
	}); err != nil {
		return nil, err
	}
	return wrapSharded(ptr), nil
}

// wrapSharded takes ownership of ptr.
func wrapSharded(ptr *C.PannsShardedIndex) *ShardedIndex {
	s := &ShardedIndex{
		ptr:     ptr,
		n:       int(C.panns_sharded_len(ptr)),
		dim:     int(C.panns_sharded_dim(ptr)),
		metric:  Metric(C.panns_sharded_metric(ptr)),
		nShards: int(C.panns_sharded_n_shards(ptr)),
	}
	runtime.SetFinalizer(s, (*ShardedIndex).Close)
	return s
}

// Len returns the total number of items over all shards.
func (s *ShardedIndex) Len() int { return s.n }

// Dim returns the vector dimension.
func (s *ShardedIndex) Dim() int { return s.dim }

// Metric returns the distance metric of every shard.
func (s *ShardedIndex) Metric() Metric { return s.metric }

// NShards returns the number of shards.
func (s *ShardedIndex) NShards() int { return s.nShards }

// Search returns the k nearest items to q over all shards, nearest first, ties by label: the
// merge of every shard's own top k, each searched with budget (0 = the library default).
func (s *ShardedIndex) Search(q []float32, k, budget int) ([]LabeledNeighbor, error) {
	if k < 0 {
		return nil, invalid("k = %d must be positive", k)
	}
	if budget < 0 {
		return nil, invalid("budget = %d must not be negative", budget)
	}
	buf := max(1, min(k, s.n))
	labels := make([]uint64, buf)
	dists := make([]float32, buf)
	var count C.size_t
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return nil, ErrClosed
	}
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_search_e(s.ptr, fptr(q), C.size_t(len(q)), C.size_t(k),
			C.size_t(budget), (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists), &count, cerr)
	})
	runtime.KeepAlive(q)
	if err != nil {
		return nil, err
	}
	out := make([]LabeledNeighbor, int(count))
	for i := range out {
		out[i] = LabeledNeighbor{Label: labels[i], Distance: dists[i]}
	}
	return out, nil
}

// SearchFiltered is Search restricted to the global labels f allows (see LabelFilter). An
// AllowLabels list is planned per shard: each shard scans its listed items exactly when few
// are listed, and shards holding none are skipped; unknown labels match nothing. A
// DenyLabels list or an AllowLabelFunc function walks every shard with the filter (the
// function is called from the shards' threads, several at once).
func (s *ShardedIndex) SearchFiltered(q []float32, k, budget int, f LabelFilter) ([]LabeledNeighbor, error) {
	if k < 0 {
		return nil, invalid("k = %d must be positive", k)
	}
	if budget < 0 {
		return nil, invalid("budget = %d must not be negative", budget)
	}
	cf, err := f.toC()
	if err != nil {
		return nil, err
	}
	defer cf.release()
	buf := max(1, min(k, s.n))
	labels := make([]uint64, buf)
	dists := make([]float32, buf)
	var count C.size_t
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return nil, ErrClosed
	}
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_search_filtered_e(s.ptr, fptr(q), C.size_t(len(q)), C.size_t(k),
			C.size_t(budget), cf.c, (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists), &count, cerr)
	})
	runtime.KeepAlive(q)
	runtime.KeepAlive(f.labels)
	if err != nil {
		return nil, cf.p.fix(err)
	}
	out := make([]LabeledNeighbor, int(count))
	for i := range out {
		out[i] = LabeledNeighbor{Label: labels[i], Distance: dists[i]}
	}
	return out, nil
}

// SearchBatch searches many queries (each of length Dim) in parallel and returns one merged
// result list per query, as Search would.
func (s *ShardedIndex) SearchBatch(queries [][]float32, k, budget int) ([][]LabeledNeighbor, error) {
	flat, d, err := batchArgs(queries, k, budget, 1)
	if err != nil {
		return nil, err
	}
	if flat == nil {
		return [][]LabeledNeighbor{}, nil
	}
	kk := min(k, s.n)
	labels := make([]uint64, len(queries)*kk)
	dists := make([]float32, len(labels))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return nil, ErrClosed
	}
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_search_batch_e(s.ptr, fptr(flat), C.size_t(len(queries)), C.size_t(d),
			C.size_t(kk), C.size_t(budget), (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists), cerr)
	}); err != nil {
		return nil, err
	}
	out := make([][]LabeledNeighbor, len(queries))
	for i := range out {
		row := make([]LabeledNeighbor, 0, kk)
		for j := 0; j < kk && labels[i*kk+j] != math.MaxUint64; j++ {
			row = append(row, LabeledNeighbor{Label: labels[i*kk+j], Distance: dists[i*kk+j]})
		}
		out[i] = row
	}
	return out, nil
}

// SearchBatchFiltered is SearchBatch restricted to the global labels f allows (one filter for
// every query), in parallel on the library's threads: row i is what SearchFiltered gives for
// queries[i], as many items as were found. An AllowLabelFunc function is called from several
// threads at once, so it must be safe for concurrent use; if it panics, the search stops and
// returns ErrCallbackFailed.
func (s *ShardedIndex) SearchBatchFiltered(queries [][]float32, k, budget int, f LabelFilter) ([][]LabeledNeighbor, error) {
	flat, d, err := batchArgs(queries, k, budget, 1)
	if err != nil {
		return nil, err
	}
	if flat == nil {
		return [][]LabeledNeighbor{}, nil
	}
	cf, err := f.toC()
	if err != nil {
		return nil, err
	}
	defer cf.release()
	kk := max(1, min(k, s.n))
	labels := make([]uint64, len(queries)*kk)
	dists := make([]float32, len(labels))
	counts := make([]C.size_t, len(queries))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return nil, ErrClosed
	}
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_search_batch_filtered_e(s.ptr, fptr(flat), C.size_t(len(queries)), C.size_t(d),
			C.size_t(kk), C.size_t(budget), cf.c, (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists),
			&counts[0], cerr)
	})
	runtime.KeepAlive(f.labels)
	if err != nil {
		return nil, cf.p.fix(err)
	}
	return labeledRows[LabeledNeighbor](labels, dists, counts, kk), nil
}

// labeledRows splits the buffers of a filtered batch (kk entries a row) into one result list
// per row, counts[i] long.
func labeledRows[T ~struct {
	Label    uint64
	Distance float32
}](labels []uint64, dists []float32, counts []C.size_t, kk int) [][]T {
	out := make([][]T, len(counts))
	for i := range out {
		row := make([]T, int(counts[i]))
		for j := range row {
			row[j] = T{Label: labels[i*kk+j], Distance: dists[i*kk+j]}
		}
		out[i] = row
	}
	return out
}

// RangeSearch returns every item whose global label f allows (the zero LabelFilter: every
// item) within radius of q over all shards, nearest first, ties by label, at most maxResults
// of them, and whether that cap cut the list. Each shard's candidates are its maxResults+1
// nearest at budget (0: the default) and the merge is exact, so the answer is exact when the
// budget covers half of each shard's items. Distances are those of the metric (Euclidean: not
// squared). A negative or NaN radius or maxResults = 0 gives ErrInvalidArgument; a panicking
// AllowLabelFunc function gives ErrCallbackFailed.
func (s *ShardedIndex) RangeSearch(q []float32, radius float32, maxResults, budget int, f LabelFilter) ([]LabeledNeighbor, bool, error) {
	if maxResults < 0 || budget < 0 {
		return nil, false, invalid("maxResults = %d and budget = %d must not be negative", maxResults, budget)
	}
	cf, err := f.toC()
	if err != nil {
		return nil, false, err
	}
	defer cf.release()
	buf := max(1, min(maxResults, s.n))
	labels := make([]uint64, buf)
	dists := make([]float32, buf)
	var count C.size_t
	var truncated C.uint8_t
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return nil, false, ErrClosed
	}
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_sharded_range_search_e(s.ptr, fptr(q), C.size_t(len(q)), C.float(radius), C.size_t(maxResults),
			C.size_t(budget), cf.c, (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists), &count, &truncated, cerr)
	})
	runtime.KeepAlive(q)
	runtime.KeepAlive(f.labels)
	if err != nil {
		return nil, false, cf.p.fix(err)
	}
	out := make([]LabeledNeighbor, int(count))
	for i := range out {
		out[i] = LabeledNeighbor{Label: labels[i], Distance: dists[i]}
	}
	return out, truncated != 0, nil
}

// Close unmaps the shards once running searches have finished. It is idempotent; searches
// then return ErrClosed.
func (s *ShardedIndex) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr != nil {
		C.panns_sharded_free(s.ptr)
		s.ptr = nil
		runtime.SetFinalizer(s, nil)
	}
	return nil
}
