// Package panns is the Go binding of panns, an approximate nearest-neighbour library: a forest
// of random-projection trees over float32 vectors, searched best-first and re-ranked by exact
// distance.
//
// It wraps the C ABI of libpanns (docs/c-api.md) with cgo; build flags come from pkg-config
// (panns.pc, installed by scripts/build-lib.sh). A Builder collects vectors and builds an
// Index; an Index can be saved and re-opened (memory-mapped, so processes opening the same
// file share its pages).
//
//	b, err := panns.NewBuilder(128, panns.Angular)
//	...
//	err = b.AddBatch(rows)
//	ix, err := b.Build(panns.DefaultBuildOptions())
//	defer ix.Close()
//	neighbors, err := ix.Search(query, 10, 0)
//
// Index.BuildGraph adds a neighbour graph to a freshly built index: searches then follow the
// graph (budget = beam width), for high recall at a much smaller budget. Index.SetDtype(DtypeI8)
// then stores the vectors in one byte per component (a quarter of the memory and file size).
//
// An Index may be searched from many goroutines at once. A Builder serialises its own calls.
// Both hold C memory: call Close when done (a finalizer frees forgotten handles, eventually).
// Failed calls return an *Error carrying the library's status and the message of that very
// call (the C functions' _e twins return it with the status, so no goroutine is ever locked
// to its OS thread); compare with errors.Is(err, panns.ErrCorrupt) and the other sentinel
// errors. MarshalBinary and OpenBytes move an index through memory instead of a file;
// SearchWithStats tells whether a search took the approximate path.
package panns

/*
#cgo pkg-config: panns
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

// Metric is the distance an index is built for.
type Metric uint32

// The metrics of the C ABI (PannsMetric).
const (
	Euclidean Metric = 0 // L2 distance
	Angular   Metric = 1 // cosine distance 1 - cos; vectors are stored unit-normalised
	Dot       Metric = 2 // inner-product similarity (larger dot product = nearer)
)

// String returns the metric's name: "euclidean", "angular" or "dot".
func (m Metric) String() string {
	switch m {
	case Euclidean:
		return "euclidean"
	case Angular:
		return "angular"
	case Dot:
		return "dot"
	}
	return fmt.Sprintf("Metric(%d)", uint32(m))
}

// ParseMetric returns the metric named s ("euclidean", "angular" or "dot").
func ParseMetric(s string) (Metric, error) {
	for _, m := range []Metric{Euclidean, Angular, Dot} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("unknown metric %q", s)}
}

// Split chooses where a tree node splits its items along the node's projection.
type Split uint32

// The split rules of PannsBuildOptions.split.
const (
	SplitMean   Split = 0 // at the mean projection (default)
	SplitMedian Split = 1 // at the median projection
)

// OpenFlag modifies Open.
type OpenFlag uint32

// OpenVerify makes Open check the file's checksum before using it (PANNS_OPEN_VERIFY).
const OpenVerify OpenFlag = 1

// Neighbor is one search result: an item id (its insertion order) and its distance.
type Neighbor struct {
	ID       uint32
	Distance float32
}

// The library's defaults, as panns_build_options_default() returns them (TestDefaults checks
// this table against the linked library) and, for the graph, panns_index_build_graph with
// degree 0.
const (
	DefaultNTrees      = 32  // trees
	DefaultLeafSize    = 16  // most items per leaf
	DefaultPoolSize    = 256 // shared random projection vectors
	DefaultCandidates  = 8   // pool vectors tried per node
	DefaultSeed        = 42  // random seed
	DefaultGraphDegree = 24  // neighbours per item of BuildGraph(0, ...)
)

// BuildOptions are the parameters of Builder.Build. Every zero value means the library's
// default, so BuildOptions{} builds exactly what DefaultBuildOptions() does:
//
//	field       zero value means
//	NTrees      32 trees
//	LeafSize    16 items per leaf at most
//	PoolSize    256 shared projection vectors
//	Candidates  8 pool vectors tried per node
//	Split       SplitMean
//	Threads     all cores (the index never depends on it)
//	Seed        42 (seed 0 itself cannot be asked for from Go; any other seed is used as given)
type BuildOptions struct {
	NTrees     int    // number of trees (0 = 32); more: better recall, bigger index
	LeafSize   int    // most items per leaf (0 = 16)
	PoolSize   int    // shared random projection vectors (0 = 256)
	Candidates int    // pool vectors tried per node (0 = 8)
	Split      Split  // SplitMean (default) or SplitMedian
	Threads    int    // 0 = all cores; the index does not depend on it
	Seed       uint64 // random seed (0 = 42): same data and seed give the same index
}

// DefaultBuildOptions returns the library's defaults (panns_build_options_default).
func DefaultBuildOptions() BuildOptions {
	d := C.panns_build_options_default()
	return BuildOptions{
		NTrees:     int(d.n_trees),
		LeafSize:   int(d.leaf_size),
		PoolSize:   int(d.pool_size),
		Candidates: int(d.candidates),
		Split:      Split(d.split),
		Threads:    int(d.threads),
		Seed:       uint64(d.seed),
	}
}

// SearchStats tells what one search did (Index.SearchWithStats).
type SearchStats struct {
	Scored    int  // distinct items whose exact distance was computed
	Budget    int  // the effective budget: the given one (or the default), at least k, at most Len
	ExactScan bool // true when 2*Budget >= Len and every item was scanned instead of walking the trees
}

// Version returns the version of the linked libpanns, e.g. "1.1.0".
func Version() string {
	return C.GoString(C.panns_version())
}

// call runs one fallible C call through its _e twin, which hands this call's message back
// with the status: no thread-local state is involved, so the goroutine need not be locked to
// its OS thread.
func call(f func(cerr **C.char) C.PannsStatus) error {
	var cerr *C.char
	st := Status(f(&cerr))
	var msg string
	if cerr != nil {
		msg = C.GoString(cerr)
		C.panns_error_free(cerr)
	}
	if st == StatusOK {
		return nil
	}
	return &Error{Status: st, Message: msg}
}

// invalid is an argument error detected on the Go side, before calling the library.
func invalid(format string, args ...any) error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// u32 converts a non-negative int to a uint32 C argument.
func u32(name string, v int) (C.uint32_t, error) {
	if v < 0 || uint64(v) > math.MaxUint32 {
		return 0, invalid("%s = %d is out of range", name, v)
	}
	return C.uint32_t(v), nil
}

// fptr is the C pointer to the first element of v (nil for an empty slice).
func fptr(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

// Builder collects vectors for a new index. Its methods may be called from several goroutines
// (they are serialised); call Close when done with it.
type Builder struct {
	mu     sync.Mutex
	ptr    *C.PannsBuilder
	dim    int
	metric Metric
}

// NewBuilder returns an empty builder of vectors of length dim for the given metric.
func NewBuilder(dim int, metric Metric) (*Builder, error) {
	cdim, err := u32("dim", dim)
	if err != nil {
		return nil, err
	}
	var ptr *C.PannsBuilder
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_builder_new_e(cdim, C.uint32_t(metric), &ptr, cerr)
	}); err != nil {
		return nil, err
	}
	b := &Builder{ptr: ptr, dim: dim, metric: metric}
	runtime.SetFinalizer(b, (*Builder).Close)
	return b, nil
}

// Dim returns the length of every vector of the builder.
func (b *Builder) Dim() int { return b.dim }

// Metric returns the builder's metric.
func (b *Builder) Metric() Metric { return b.metric }

// Add appends one vector and returns its id (0, 1, 2, ... in order of addition). It fails
// with ErrDimensionMismatch, ErrNonFinite or (angular) ErrZeroVector for a bad vector.
func (b *Builder) Add(v []float32) (uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ptr == nil {
		return 0, ErrClosed
	}
	var id C.uint32_t
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_builder_add_e(b.ptr, fptr(v), C.size_t(len(v)), &id, cerr)
	})
	runtime.KeepAlive(v)
	return uint32(id), err
}

// AddBatch appends rows (each of length Dim) in one call; on error no row is added.
func (b *Builder) AddBatch(rows [][]float32) error {
	if len(rows) == 0 {
		return nil
	}
	flat := make([]float32, 0, len(rows)*b.dim)
	for i, r := range rows {
		if len(r) != b.dim {
			return &Error{Status: StatusDimensionMismatch,
				Message: fmt.Sprintf("row %d has %d components, the builder dimension is %d", i, len(r), b.dim)}
		}
		flat = append(flat, r...)
	}
	return b.AddFlat(flat, b.dim)
}

// AddFlat appends len(data)/dim row-major rows of length dim (which must equal Dim) stored
// contiguously in data, without copying them in Go.
func (b *Builder) AddFlat(data []float32, dim int) error {
	if dim <= 0 || len(data)%dim != 0 {
		return invalid("AddFlat: %d values are not whole rows of dimension %d", len(data), dim)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ptr == nil {
		return ErrClosed
	}
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_builder_add_batch_e(b.ptr, fptr(data), C.size_t(len(data)/dim), C.size_t(dim), cerr)
	})
	runtime.KeepAlive(data)
	return err
}

// AddFile appends the vectors of a dataset file in any format the library reads, chosen by
// extension (.csv, .tsv, .npy, .fvecs, .bvecs, .f32, .hdf5 ...). dataset names the HDF5
// dataset ("" = "train"). It returns the number of vectors added.
func (b *Builder) AddFile(path, dataset string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ptr == nil {
		return 0, ErrClosed
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cds *C.char
	if dataset != "" {
		cds = C.CString(dataset)
		defer C.free(unsafe.Pointer(cds))
	}
	var added C.size_t
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_builder_add_file_e(b.ptr, cpath, cds, &added, cerr)
	})
	return int(added), err
}

// Len returns the number of vectors added since the builder was created or last built.
func (b *Builder) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ptr == nil {
		return 0
	}
	return int(C.panns_builder_len(b.ptr))
}

// toC is the PannsBuildOptions of opts, zero fields replaced by the library's defaults.
func (opts BuildOptions) toC() (C.PannsBuildOptions, error) {
	def := DefaultBuildOptions()
	fill := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	var copts C.PannsBuildOptions
	var err error
	set := func(dst *C.uint32_t, name string, v int) {
		if err == nil {
			*dst, err = u32(name, v)
		}
	}
	set(&copts.n_trees, "NTrees", fill(opts.NTrees, def.NTrees))
	set(&copts.leaf_size, "LeafSize", fill(opts.LeafSize, def.LeafSize))
	set(&copts.pool_size, "PoolSize", fill(opts.PoolSize, def.PoolSize))
	set(&copts.candidates, "Candidates", fill(opts.Candidates, def.Candidates))
	set(&copts.split, "Split", int(opts.Split))
	set(&copts.threads, "Threads", opts.Threads)
	seed := opts.Seed
	if seed == 0 {
		seed = def.Seed
	}
	copts.seed = C.uint64_t(seed)
	return copts, err
}

// Build builds an index over the builder's vectors, which move into the index: afterwards the
// builder is empty but usable. It fails with ErrEmpty if there are no vectors.
func (b *Builder) Build(opts BuildOptions) (*Index, error) {
	copts, err := opts.toC()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ptr == nil {
		return nil, ErrClosed
	}
	var ptr *C.PannsIndex
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_builder_build_e(b.ptr, &copts, &ptr, cerr)
	}); err != nil {
		return nil, err
	}
	return newIndex(ptr), nil
}

// Close frees the builder. It is idempotent; other methods then return ErrClosed.
func (b *Builder) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ptr != nil {
		C.panns_builder_free(b.ptr)
		b.ptr = nil
		runtime.SetFinalizer(b, nil)
	}
	return nil
}

// Index is a built or opened index. Its search methods may be called from many goroutines at
// once; Close waits for running searches to finish before freeing the index.
type Index struct {
	mu     sync.RWMutex // read-locked by every call, write-locked by Close
	ptr    *C.PannsIndex
	n      int
	dim    int
	metric Metric
	nTrees int
	degree int   // graph degree; written under the write lock
	dtype  Dtype // vector storage; written under the write lock
}

// newIndex wraps a PannsIndex* returned by the library.
func newIndex(ptr *C.PannsIndex) *Index {
	ix := &Index{}
	ix.fill(ptr)
	runtime.SetFinalizer(ix, (*Index).Close)
	return ix
}

// fill takes ownership of ptr and caches its properties.
func (ix *Index) fill(ptr *C.PannsIndex) {
	ix.ptr = ptr
	ix.n = int(C.panns_index_len(ptr))
	ix.dim = int(C.panns_index_dim(ptr))
	ix.metric = Metric(C.panns_index_metric(ptr))
	ix.nTrees = int(C.panns_index_n_trees(ptr))
	ix.degree = int(C.panns_index_graph_degree(ptr))
	ix.dtype = Dtype(C.panns_index_dtype(ptr))
}

// Open memory-maps an index file written by Save (by any language). With OpenVerify the
// file's checksum is verified first. A missing or unreadable file gives ErrIO, an invalid one
// ErrCorrupt (or ErrUnsupported for a newer format version).
func Open(path string, flags ...OpenFlag) (*Index, error) {
	var f OpenFlag
	for _, x := range flags {
		f |= x
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var ptr *C.PannsIndex
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_open_e(cpath, C.uint32_t(f), &ptr, cerr)
	}); err != nil {
		return nil, err
	}
	return newIndex(ptr), nil
}

// Len returns the number of items. Len, Dim, Metric, NTrees, GraphDegree and Dtype stay
// available after Close.
func (ix *Index) Len() int { return ix.n }

// Dim returns the length of every vector.
func (ix *Index) Dim() int { return ix.dim }

// Metric returns the index's metric.
func (ix *Index) Metric() Metric { return ix.metric }

// NTrees returns the number of trees.
func (ix *Index) NTrees() int { return ix.nTrees }

// GraphDegree returns the number of neighbours per item of the index's neighbour graph (0 when
// it has none). Like NTrees it stays available after Close.
func (ix *Index) GraphDegree() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.degree
}

// BuildGraph adds (or replaces) a neighbour graph of degree neighbours per item (0 = the
// library default, 24), built with threads workers (0 = all cores; the graph does not depend
// on it). With a graph, searches reach high recall with far fewer distance computations, and
// the budget of Search and SearchBatch becomes the beam width (like HNSW's ef; 0 = 64). Save
// the index afterwards to keep the graph.
//
// BuildGraph waits for running searches to finish and holds off new ones until it returns.
// It works on an index opened from a file or bytes too (the graph then lives in memory beside
// the mapping). A degree above 256 gives ErrInvalidArgument.
func (ix *Index) BuildGraph(degree, threads int) error {
	return ix.buildGraph(degree, threads, 0)
}

// BuildGraphExact is BuildGraph scoring the build's candidates on exact distances instead of
// 8-bit codes: slower, with a lower peak memory (C: PANNS_GRAPH_EXACT_BUILD).
func (ix *Index) BuildGraphExact(degree, threads int) error {
	return ix.buildGraph(degree, threads, C.PANNS_GRAPH_EXACT_BUILD)
}

func (ix *Index) buildGraph(degree, threads int, flags C.uint32_t) error {
	cdeg, err := u32("degree", degree)
	if err != nil {
		return err
	}
	cthreads, err := u32("threads", threads)
	if err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.ptr == nil {
		return ErrClosed
	}
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_build_graph_flags_e(ix.ptr, cdeg, cthreads, flags, cerr)
	})
	ix.degree = int(C.panns_index_graph_degree(ix.ptr))
	return err
}

// Save writes the index to path (atomically: a temporary file, fsync, rename).
func (ix *Index) Save(path string) error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return ErrClosed
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return call(func(cerr **C.char) C.PannsStatus { return C.panns_index_save_e(ix.ptr, cpath, cerr) })
}

// checkK validates k and returns the size of the result buffers (k clamped to Len, at least 1).
func (ix *Index) checkK(k int) (int, error) {
	if k < 0 {
		return 0, invalid("k = %d must be positive", k)
	}
	return max(1, min(k, ix.n)), nil
}

// neighbors pairs the first n ids and distances.
func neighbors(ids []uint32, dists []float32, n int) []Neighbor {
	out := make([]Neighbor, n)
	for i := range out {
		out[i] = Neighbor{ID: ids[i], Distance: dists[i]}
	}
	return out
}

// Search returns the k approximate nearest neighbours of q (length Dim), nearest first (ties
// by id); fewer than k only if the index has fewer items. budget is the number of candidates
// re-ranked by exact distance (0 = the library default); larger is slower and more accurate.
// With a neighbour graph (GraphDegree > 0) budget is the beam width instead (0 = 64).
func (ix *Index) Search(q []float32, k, budget int) ([]Neighbor, error) {
	buf, err := ix.checkK(k)
	if err != nil {
		return nil, err
	}
	if budget < 0 {
		return nil, invalid("budget = %d must not be negative", budget)
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, ErrClosed
	}
	ids := make([]uint32, buf)
	dists := make([]float32, buf)
	var count C.size_t
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_search_e(ix.ptr, fptr(q), C.size_t(len(q)), C.size_t(k), C.size_t(budget),
			(*C.uint32_t)(unsafe.Pointer(&ids[0])), fptr(dists), &count, cerr)
	})
	runtime.KeepAlive(q)
	if err != nil {
		return nil, err
	}
	return neighbors(ids, dists, int(count)), nil
}

// SearchWithStats is Search that also reports what the search did: whether it walked the
// trees (or graph) or scanned every item (a budget covering half the items or more), the
// effective budget and the number of items scored.
func (ix *Index) SearchWithStats(q []float32, k, budget int) ([]Neighbor, SearchStats, error) {
	buf, err := ix.checkK(k)
	if err != nil {
		return nil, SearchStats{}, err
	}
	if budget < 0 {
		return nil, SearchStats{}, invalid("budget = %d must not be negative", budget)
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, SearchStats{}, ErrClosed
	}
	ids := make([]uint32, buf)
	dists := make([]float32, buf)
	var count C.size_t
	var st C.PannsSearchStats
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_search_with_stats_e(ix.ptr, fptr(q), C.size_t(len(q)), C.size_t(k), C.size_t(budget),
			(*C.uint32_t)(unsafe.Pointer(&ids[0])), fptr(dists), &count, &st, cerr)
	})
	runtime.KeepAlive(q)
	if err != nil {
		return nil, SearchStats{}, err
	}
	stats := SearchStats{Scored: int(st.scored), Budget: int(st.budget), ExactScan: st.exact_scan != 0}
	return neighbors(ids, dists, int(count)), stats, nil
}

// MarshalBinary returns the index in the file format (the bytes Save writes), so that an
// index can travel through a network or a database; OpenBytes opens them again. *Index
// implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler.
func (ix *Index) MarshalBinary() ([]byte, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, ErrClosed
	}
	var n C.size_t
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_serialized_len_e(ix.ptr, &n, cerr)
	}); err != nil {
		return nil, err
	}
	// C memory: the library writes into it without Go pointer rules getting in the way.
	buf := C.malloc(max(n, 1))
	if buf == nil {
		return nil, &Error{Status: StatusOutOfMemory, Message: fmt.Sprintf("could not allocate %d bytes", n)}
	}
	defer C.free(buf)
	var written C.size_t
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_serialize_e(ix.ptr, (*C.uint8_t)(buf), n, &written, cerr)
	}); err != nil {
		return nil, err
	}
	return C.GoBytes(buf, C.int(written)), nil
}

// OpenBytes opens an index from the bytes of an index file (MarshalBinary, a file read into
// memory, a network message). The bytes are copied: b may be reused as soon as it returns.
// With OpenVerify the checksum is verified too. Invalid bytes give ErrCorrupt.
func OpenBytes(b []byte, flags ...OpenFlag) (*Index, error) {
	ptr, err := openBytes(b, flags)
	if err != nil {
		return nil, err
	}
	return newIndex(ptr), nil
}

func openBytes(b []byte, flags []OpenFlag) (*C.PannsIndex, error) {
	var f OpenFlag
	for _, x := range flags {
		f |= x
	}
	var one [1]byte
	data := one[:]
	if len(b) > 0 {
		data = b
	}
	var ptr *C.PannsIndex
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_open_buffer_e((*C.uint8_t)(unsafe.Pointer(&data[0])), C.size_t(len(b)), C.uint32_t(f), &ptr, cerr)
	})
	runtime.KeepAlive(data)
	return ptr, err
}

// UnmarshalBinary makes a zero Index (new(panns.Index)) the index whose bytes are b, as
// OpenBytes would; it fails on an Index that already holds one.
func (ix *Index) UnmarshalBinary(b []byte) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.ptr != nil {
		return invalid("UnmarshalBinary into an Index that is already open")
	}
	ptr, err := openBytes(b, nil)
	if err != nil {
		return err
	}
	ix.fill(ptr)
	runtime.SetFinalizer(ix, (*Index).Close)
	return nil
}

// LinearSearch returns the exact k nearest neighbours of q by scanning every item.
func (ix *Index) LinearSearch(q []float32, k int) ([]Neighbor, error) {
	buf, err := ix.checkK(k)
	if err != nil {
		return nil, err
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, ErrClosed
	}
	ids := make([]uint32, buf)
	dists := make([]float32, buf)
	var count C.size_t
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_linear_search_e(ix.ptr, fptr(q), C.size_t(len(q)), C.size_t(k),
			(*C.uint32_t)(unsafe.Pointer(&ids[0])), fptr(dists), &count, cerr)
	})
	runtime.KeepAlive(q)
	if err != nil {
		return nil, err
	}
	return neighbors(ids, dists, int(count)), nil
}

// SearchBatch searches many queries (each of length Dim) in parallel on all cores of the
// library's thread pool and returns one result list per query, as Search would.
func (ix *Index) SearchBatch(queries [][]float32, k, budget int) ([][]Neighbor, error) {
	flat, d, err := batchArgs(queries, k, budget, 0)
	if err != nil {
		return nil, err
	}
	if flat == nil {
		return [][]Neighbor{}, nil
	}
	// Rows past Len are padding (id MaxUint32): asking for at most Len bounds the buffers.
	kk := min(k, ix.n)
	if k == 0 {
		kk = 0
	}
	ids := make([]uint32, max(1, len(queries)*kk))
	dists := make([]float32, len(ids))
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, ErrClosed
	}
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_search_batch_e(ix.ptr, fptr(flat), C.size_t(len(queries)), C.size_t(d),
			C.size_t(kk), C.size_t(budget), (*C.uint32_t)(unsafe.Pointer(&ids[0])), fptr(dists), cerr)
	}); err != nil {
		return nil, err
	}
	out := make([][]Neighbor, len(queries))
	for i := range out {
		row := ids[i*kk : (i+1)*kk]
		n := 0
		for n < kk && row[n] != math.MaxUint32 {
			n++
		}
		out[i] = neighbors(row, dists[i*kk:(i+1)*kk], n)
	}
	return out, nil
}

// Vector returns a copy of the stored vector of item id (unit-normalised under Angular).
// An id outside [0, Len) gives ErrOutOfRange.
func (ix *Index) Vector(id int) ([]float32, error) {
	if id < 0 || uint64(id) > math.MaxUint32 {
		return nil, &Error{Status: StatusOutOfRange, Message: fmt.Sprintf("item id %d out of range", id)}
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, ErrClosed
	}
	out := make([]float32, max(1, ix.dim))
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_get_vector_e(ix.ptr, C.uint32_t(id), fptr(out), C.size_t(ix.dim), cerr)
	}); err != nil {
		return nil, err
	}
	return out[:ix.dim], nil
}

// Close frees the index (unmapping an opened file) once running searches have finished. It is
// idempotent; search methods then return ErrClosed.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.ptr != nil {
		C.panns_index_free(ix.ptr)
		ix.ptr = nil
		runtime.SetFinalizer(ix, nil)
	}
	return nil
}

// batchArgs checks the arguments of a batch search (k at least minK, budget not negative,
// every query as long as the first) and returns the queries as one row-major slice and
// their length; no queries give a nil slice and no error.
func batchArgs(queries [][]float32, k, budget, minK int) ([]float32, int, error) {
	if k < minK {
		return nil, 0, invalid("k = %d must be positive", k)
	}
	if budget < 0 {
		return nil, 0, invalid("budget = %d must not be negative", budget)
	}
	if len(queries) == 0 {
		return nil, 0, nil
	}
	return flatten(queries)
}

// flatten copies a non-empty batch of queries into one row-major slice, checking that every
// query has the length of the first; it returns the slice and that length.
func flatten(queries [][]float32) ([]float32, int, error) {
	d := len(queries[0])
	flat := make([]float32, 0, len(queries)*d)
	for i, q := range queries {
		if len(q) != d {
			return nil, 0, &Error{Status: StatusDimensionMismatch,
				Message: fmt.Sprintf("query %d has %d components, query 0 has %d", i, len(q), d)}
		}
		flat = append(flat, q...)
	}
	return flat, d, nil
}
