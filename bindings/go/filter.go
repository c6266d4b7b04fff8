package panns

/*
#include <stdlib.h>
#include <panns.h>

extern int pannsGoFilter(uint64_t id, void *user_data);

// A PannsFilter in C memory (never scanned by Go's garbage collector); the Go memory its
// arrays point to is pinned by the caller for the duration of the search.
static PannsFilter *panns_go_filter_new(uint32_t kind, const uint64_t *bits, size_t n_bits,
                                        const uint32_t *ids, size_t n_ids, uintptr_t handle) {
  PannsFilter *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  f->kind = kind;
  f->bits = bits;
  f->n_bits = n_bits;
  f->ids = ids;
  f->n_ids = n_ids;
  if (handle != 0) {
    f->predicate = pannsGoFilter;
    f->user_data = (void *)handle;
  }
  return f;
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// The kinds of PannsFilter.
const (
	filterAll         = 0
	filterAllowBitmap = 1
	filterDenyBitmap  = 2
	filterAllowIDs    = 3
	filterDenyIDs     = 4
	filterPredicate   = 5
	filterAllowList   = 6
)

// Filter says which items a search may return (SearchFiltered, SearchBatchFiltered,
// RangeSearch). The zero Filter allows every item. Make one with AllowMask, DenyMask,
// AllowBitmap, DenyBitmap, AllowIDs, DenyIDs or AllowFunc; the slices given are read by the
// searches (not copied), so do not modify them while a search runs. A filter used by many
// queries can be prepared once with Index.PrepareFilter; its AllowList's Filter method gives
// the Filter to search with.
//
// The library plans each query from the filter: when the budget covers half of the allowed
// items (known for masks, bitmaps and id lists), it scans exactly those; otherwise it walks
// the trees (and graph) through refused items, never returning them.
type Filter struct {
	kind  uint32
	bits  []uint64
	nBits int
	ids   []uint32
	fn    func(id uint64) bool
	list  *AllowList
}

// AllowMask allows the items i with mask[i] true; len(mask) must equal the index's Len.
func AllowMask(mask []bool) Filter {
	return Filter{kind: filterAllowBitmap, bits: maskBits(mask), nBits: len(mask)}
}

// DenyMask allows every item except those with mask[i] true (e.g. deleted items);
// len(mask) must equal the index's Len.
func DenyMask(mask []bool) Filter {
	return Filter{kind: filterDenyBitmap, bits: maskBits(mask), nBits: len(mask)}
}

// AllowBitmap allows the items whose bit is set: bit i%64 of words[i/64] for item i. nBits
// must equal the index's Len and words must hold at least (nBits+63)/64 words.
func AllowBitmap(words []uint64, nBits int) Filter {
	return Filter{kind: filterAllowBitmap, bits: words, nBits: nBits}
}

// DenyBitmap allows every item except those whose bit is set (see AllowBitmap).
func DenyBitmap(words []uint64, nBits int) Filter {
	return Filter{kind: filterDenyBitmap, bits: words, nBits: nBits}
}

// AllowIDs allows only the listed items (any order; an empty list allows nothing). An id not
// below Len gives ErrOutOfRange.
func AllowIDs(ids []uint32) Filter { return Filter{kind: filterAllowIDs, ids: ids} }

// DenyIDs allows every item except the listed ones.
func DenyIDs(ids []uint32) Filter { return Filter{kind: filterDenyIDs, ids: ids} }

// AllowFunc allows the items for which fn returns true. fn is called once per candidate the
// search meets; SearchBatchFiltered calls it from several threads at once, so it must be
// safe for concurrent use. If fn panics, the search stops and returns an error
// (ErrCallbackFailed) carrying the panic's value.
func AllowFunc(fn func(id uint64) bool) Filter { return Filter{kind: filterPredicate, fn: fn} }

// maskBits packs a mask into a bitmap.
func maskBits(mask []bool) []uint64 {
	words := make([]uint64, max(1, (len(mask)+63)/64))
	for i, b := range mask {
		if b {
			words[i/64] |= 1 << (i % 64)
		}
	}
	return words
}

// predicate is what a Go callback's handle refers to: the function and its first panic.
type predicate struct {
	fn       func(id uint64) bool
	mu       sync.Mutex
	panicked any
	failed   bool
}

// cFilter is a Filter handed to C: the C struct, the pins of the Go memory it points to, the
// handle of a Go predicate and the read lock of a prepared AllowList. release frees all of
// them.
type cFilter struct {
	c    *C.PannsFilter
	pin  runtime.Pinner
	h    cgo.Handle
	p    *predicate
	list *AllowList // read-locked until release
}

// toC checks f on the Go side (so C never reads past a slice) and builds its C struct.
func (f *Filter) toC() (*cFilter, error) {
	cf := &cFilter{}
	var bits *C.uint64_t
	var ids *C.uint32_t
	switch f.kind {
	case filterAll:
	case filterAllowBitmap, filterDenyBitmap:
		if f.nBits < 0 || len(f.bits) < (f.nBits+63)/64 {
			return nil, invalid("the filter bitmap has %d words, %d bits need %d", len(f.bits), f.nBits, (max(f.nBits, 0)+63)/64)
		}
		if len(f.bits) > 0 {
			cf.pin.Pin(&f.bits[0])
			bits = (*C.uint64_t)(unsafe.Pointer(&f.bits[0]))
		}
	case filterAllowIDs, filterDenyIDs:
		if len(f.ids) > 0 {
			cf.pin.Pin(&f.ids[0])
			ids = (*C.uint32_t)(unsafe.Pointer(&f.ids[0]))
		}
	case filterPredicate:
		if f.fn == nil {
			return nil, invalid("AllowFunc(nil): the filter function is nil")
		}
		cf.p = &predicate{fn: f.fn}
		cf.h = cgo.NewHandle(cf.p)
	case filterAllowList:
		if f.list == nil {
			return nil, invalid("a Filter of a nil *AllowList")
		}
		f.list.mu.RLock()
		if f.list.ptr == nil {
			f.list.mu.RUnlock()
			return nil, ErrClosed
		}
		cf.list = f.list
	default:
		return nil, invalid("a Filter made without its constructors (kind %d)", f.kind)
	}
	cf.c = C.panns_go_filter_new(C.uint32_t(f.kind), bits, C.size_t(f.nBits), ids, C.size_t(len(f.ids)),
		C.uintptr_t(cf.h))
	if cf.c == nil {
		cf.release()
		return nil, &Error{Status: StatusOutOfMemory, Message: "cannot allocate a PannsFilter"}
	}
	if cf.list != nil {
		// PANNS_FILTER_ALLOW_LIST reads the list from user_data (C memory into C memory).
		cf.c.user_data = unsafe.Pointer(cf.list.ptr)
	}
	return cf, nil
}

// release unpins, deletes the handle, unlocks the AllowList and frees the C struct.
func (cf *cFilter) release() {
	cf.pin.Unpin()
	if cf.h != 0 {
		cf.h.Delete()
	}
	if cf.list != nil {
		cf.list.mu.RUnlock()
		cf.list = nil
	}
	if cf.c != nil {
		C.free(unsafe.Pointer(cf.c))
	}
}

// fix turns the error of a search whose Go predicate panicked into one carrying the panic.
func (cf *cFilter) fix(err error) error { return cf.p.fix(err) }

// fix turns the error of a search in which this predicate (nil: none) panicked into one
// carrying the panic; other errors are returned unchanged.
func (p *predicate) fix(err error) error {
	if err == nil || p == nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed {
		return &Error{Status: StatusCallbackFailed, Message: fmt.Sprintf("the filter function panicked: %v", p.panicked)}
	}
	return err
}

// SearchFiltered is Search restricted to the items f allows: the k nearest allowed items,
// nearest first; fewer when fewer are allowed (none for an empty filter), or when the allowed
// items are too sparse for the budget to reach (raise the budget). A mask or bitmap whose
// length is not Len gives ErrInvalidArgument, an id not below Len ErrOutOfRange, a panicking
// filter function ErrCallbackFailed.
func (ix *Index) SearchFiltered(q []float32, k, budget int, f Filter) ([]Neighbor, error) {
	res, _, err := ix.SearchFilteredWithStats(q, k, budget, f)
	return res, err
}

// SearchFilteredWithStats is SearchFiltered that also reports what the search did
// (ExactScan: the allowed items were scanned exactly).
func (ix *Index) SearchFilteredWithStats(q []float32, k, budget int, f Filter) ([]Neighbor, SearchStats, error) {
	buf, err := ix.checkK(k)
	if err != nil {
		return nil, SearchStats{}, err
	}
	if budget < 0 {
		return nil, SearchStats{}, invalid("budget = %d must not be negative", budget)
	}
	cf, err := f.toC()
	if err != nil {
		return nil, SearchStats{}, err
	}
	defer cf.release()
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
		return C.panns_index_search_filtered_e(ix.ptr, fptr(q), C.size_t(len(q)), C.size_t(k), C.size_t(budget),
			cf.c, (*C.uint32_t)(unsafe.Pointer(&ids[0])), fptr(dists), &count, &st, cerr)
	})
	runtime.KeepAlive(q)
	runtime.KeepAlive(f.bits)
	runtime.KeepAlive(f.ids)
	if err != nil {
		return nil, SearchStats{}, cf.fix(err)
	}
	stats := SearchStats{Scored: int(st.scored), Budget: int(st.budget), ExactScan: st.exact_scan != 0}
	return neighbors(ids, dists, int(count)), stats, nil
}

// SearchBatchFiltered is SearchBatch restricted to the items f allows (one filter for every
// query), in parallel on the library's threads: an AllowFunc function is then called from
// several threads at once.
func (ix *Index) SearchBatchFiltered(queries [][]float32, k, budget int, f Filter) ([][]Neighbor, error) {
	flat, d, err := batchArgs(queries, k, budget, 0)
	if err != nil {
		return nil, err
	}
	if flat == nil {
		return [][]Neighbor{}, nil
	}
	kk := min(k, ix.n)
	if k == 0 {
		kk = 0
	}
	ids := make([]uint32, max(1, len(queries)*kk))
	dists := make([]float32, len(ids))
	counts := make([]C.size_t, len(queries))
	cf, err := f.toC()
	if err != nil {
		return nil, err
	}
	defer cf.release()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, ErrClosed
	}
	if err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_search_batch_filtered_e(ix.ptr, fptr(flat), C.size_t(len(queries)), C.size_t(d),
			C.size_t(kk), C.size_t(budget), cf.c, (*C.uint32_t)(unsafe.Pointer(&ids[0])), fptr(dists),
			&counts[0], cerr)
	}); err != nil {
		return nil, cf.fix(err)
	}
	runtime.KeepAlive(f.bits)
	runtime.KeepAlive(f.ids)
	out := make([][]Neighbor, len(queries))
	for i := range out {
		out[i] = neighbors(ids[i*kk:(i+1)*kk], dists[i*kk:(i+1)*kk], int(counts[i]))
	}
	return out, nil
}

// RangeSearch returns every item f allows within distance radius of q (as FAISS'
// range_search), nearest first, at most maxResults of them; truncated is true when more were
// within the radius and the list was cut. The candidates come from the same search as
// SearchFiltered with k = maxResults+1 and budget (0 = the default), so the result is exact
// only when the budget covers half the allowed items. A negative or NaN radius, or
// maxResults < 1, gives ErrInvalidArgument.
func (ix *Index) RangeSearch(q []float32, radius float32, maxResults, budget int, f Filter) (res []Neighbor, truncated bool, err error) {
	if maxResults < 1 {
		return nil, false, invalid("maxResults = %d must be at least 1", maxResults)
	}
	if budget < 0 {
		return nil, false, invalid("budget = %d must not be negative", budget)
	}
	buf := min(maxResults, max(1, ix.n))
	cf, err := f.toC()
	if err != nil {
		return nil, false, err
	}
	defer cf.release()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.ptr == nil {
		return nil, false, ErrClosed
	}
	ids := make([]uint32, buf)
	dists := make([]float32, buf)
	var count C.size_t
	var trunc C.uint8_t
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_range_search_e(ix.ptr, fptr(q), C.size_t(len(q)), C.float(radius), C.size_t(buf),
			C.size_t(budget), cf.c, (*C.uint32_t)(unsafe.Pointer(&ids[0])), fptr(dists), &count, &trunc, cerr)
	})
	runtime.KeepAlive(q)
	runtime.KeepAlive(f.bits)
	runtime.KeepAlive(f.ids)
	if err != nil {
		return nil, false, cf.fix(err)
	}
	// maxResults above Len: no more than Len items can be within the radius.
	return neighbors(ids, dists, int(count)), trunc != 0 && buf == maxResults, nil
}
