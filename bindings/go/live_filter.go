package panns

/*
#include <stdlib.h>
#include <panns.h>

extern int pannsGoFilter(uint64_t id, void *user_data);

// A PannsLabelFilter in C memory (never scanned by Go's garbage collector); the Go memory
// its label list points to is pinned by the caller for the duration of the search. A Go
// predicate goes through pannsGoFilter (filter_export.go), as for PannsFilter.
static PannsLabelFilter *panns_go_label_filter_new(uint32_t kind, const uint64_t *labels, size_t n_labels,
                                                   uintptr_t handle) {
  PannsLabelFilter *f = calloc(1, sizeof *f);
  if (f == NULL) return NULL;
  f->kind = kind;
  f->labels = labels;
  f->n_labels = n_labels;
  if (handle != 0) {
    f->predicate = pannsGoFilter;
    f->user_data = (void *)handle;
  }
  return f;
}
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"unsafe"
)

// The kinds of PannsLabelFilter.
const (
	labelFilterAll       = 0
	labelFilterAllow     = 1
	labelFilterDeny      = 2
	labelFilterPredicate = 3
)

// LabelFilter says which labels a live-index search may return (Live.SearchFiltered,
// Live.SearchBatchFiltered). The zero LabelFilter allows every label. Make one with
// AllowLabels, DenyLabels or AllowLabelFunc; a label slice is read by the searches (not
// copied), so do not modify it while a search runs.
//
// A listed label the index does not hold (never added, or removed) matches nothing, and a
// removed label is never returned whatever the filter says. An allow-list is planned: when
// few of the listed labels are held, their items are scanned exactly. A deny-list or a
// function walks the base with the filter, so a selective function needs a large budget to
// find all k results.
type LabelFilter struct {
	kind   uint32
	labels []uint64
	fn     func(label uint64) bool
}

// AllowLabels allows only the listed labels (any order; an empty list allows nothing).
func AllowLabels(labels []uint64) LabelFilter {
	return LabelFilter{kind: labelFilterAllow, labels: labels}
}

// DenyLabels allows every label except the listed ones.
func DenyLabels(labels []uint64) LabelFilter {
	return LabelFilter{kind: labelFilterDeny, labels: labels}
}

// AllowLabelFunc allows the labels for which fn returns true. fn is called once per candidate
// the search meets; SearchBatchFiltered calls it from several threads at once, so it must be
// safe for concurrent use. If fn panics, the search stops and returns an error
// (ErrCallbackFailed) carrying the panic's value.
func AllowLabelFunc(fn func(label uint64) bool) LabelFilter {
	return LabelFilter{kind: labelFilterPredicate, fn: fn}
}

// cLabelFilter is a LabelFilter handed to C: the C struct, the pin of the label list and the
// handle of a Go predicate. release frees all of them.
type cLabelFilter struct {
	c   *C.PannsLabelFilter
	pin runtime.Pinner
	h   cgo.Handle
	p   *predicate
}

// toC checks f and builds its C struct.
func (f *LabelFilter) toC() (*cLabelFilter, error) {
	cf := &cLabelFilter{}
	var labels *C.uint64_t
	switch f.kind {
	case labelFilterAll:
	case labelFilterAllow, labelFilterDeny:
		if len(f.labels) > 0 {
			cf.pin.Pin(&f.labels[0])
			labels = (*C.uint64_t)(unsafe.Pointer(&f.labels[0]))
		}
	case labelFilterPredicate:
		if f.fn == nil {
			return nil, invalid("AllowLabelFunc(nil): the filter function is nil")
		}
		cf.p = &predicate{fn: f.fn}
		cf.h = cgo.NewHandle(cf.p)
	default:
		return nil, invalid("a LabelFilter made without its constructors (kind %d)", f.kind)
	}
	cf.c = C.panns_go_label_filter_new(C.uint32_t(f.kind), labels, C.size_t(len(f.labels)), C.uintptr_t(cf.h))
	if cf.c == nil {
		cf.release()
		return nil, &Error{Status: StatusOutOfMemory, Message: "cannot allocate a PannsLabelFilter"}
	}
	return cf, nil
}

// release unpins, deletes the handle and frees the C struct.
func (cf *cLabelFilter) release() {
	cf.pin.Unpin()
	if cf.h != 0 {
		cf.h.Delete()
	}
	if cf.c != nil {
		C.free(unsafe.Pointer(cf.c))
	}
}

// SearchFiltered is Search restricted to the live items whose label f allows: the k nearest
// allowed items, nearest first (ties by label); fewer when fewer are allowed (none for an
// empty allow-list), or when they are too sparse for the budget to reach (raise the budget).
// A panicking filter function gives ErrCallbackFailed.
func (l *Live) SearchFiltered(q []float32, k, budget int, f LabelFilter) ([]LiveNeighbor, error) {
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
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.ptr == nil {
		return nil, ErrClosed
	}
	// Nothing changes under the read lock: at most Len results.
	buf := max(1, min(k, int(C.panns_live_len(l.ptr))))
	labels := make([]uint64, buf)
	dists := make([]float32, buf)
	var n C.size_t
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_search_filtered_e(l.ptr, fptr(q), C.size_t(len(q)), C.size_t(k), C.size_t(budget), cf.c,
			(*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists), &n, cerr)
	})
	runtime.KeepAlive(q)
	runtime.KeepAlive(f.labels)
	if err != nil {
		return nil, cf.p.fix(err)
	}
	out := make([]LiveNeighbor, int(n))
	for i := range out {
		out[i] = LiveNeighbor{Label: labels[i], Distance: dists[i]}
	}
	return out, nil
}

// SearchBatchFiltered is SearchBatch restricted to the labels f allows (one filter for every
// query), in parallel on the library's threads: an AllowLabelFunc function is then called
// from several threads at once. Each result list holds as many items as were found.
func (l *Live) SearchBatchFiltered(queries [][]float32, k, budget int, f LabelFilter) ([][]LiveNeighbor, error) {
	flat, d, err := batchArgs(queries, k, budget, 0)
	if err != nil {
		return nil, err
	}
	if flat == nil {
		return [][]LiveNeighbor{}, nil
	}
	cf, err := f.toC()
	if err != nil {
		return nil, err
	}
	defer cf.release()
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
	counts := make([]C.size_t, len(queries))
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_live_search_batch_filtered_e(l.ptr, fptr(flat), C.size_t(len(queries)), C.size_t(d),
			C.size_t(kk), C.size_t(budget), cf.c, (*C.uint64_t)(unsafe.Pointer(&labels[0])), fptr(dists),
			&counts[0], cerr)
	})
	runtime.KeepAlive(f.labels)
	if err != nil {
		return nil, cf.p.fix(err)
	}
	return labeledRows[LiveNeighbor](labels, dists, counts, kk), nil
}
