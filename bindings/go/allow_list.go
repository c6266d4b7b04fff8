package panns

// #include <panns.h>
import "C"

import (
	"runtime"
	"sync"
)

// AllowList is a filter prepared once by Index.PrepareFilter for many searches of that index:
// the allowed items as a bitmap and an ascending id list, held by the library. Searching with
// its Filter gives the results (and statistics) of the filter it was made from, without
// counting and listing the allowed items again on every call, which is most of the per-query
// cost of a selective filter. It is immutable and may be used from many goroutines at once;
// Close waits for the searches using it to finish before freeing it (a finalizer frees a list
// that was not closed). It holds no reference to the index, and a search of an index with a
// different item count refuses it (ErrInvalidArgument).
type AllowList struct {
	mu    sync.RWMutex // read-locked by every search using the list, write-locked by Close
	ptr   *C.PannsAllowList
	len   int
	items int
}

// PrepareFilter prepares f (any Filter but AllowFunc, whose items are known only by calling
// it: ErrInvalidArgument) for many searches of this index. A deny filter is inverted once,
// here; the slices of f are copied, so they may change afterwards. The errors are those of
// SearchFiltered for f.
func (ix *Index) PrepareFilter(f Filter) (*AllowList, error) {
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
	var p *C.PannsAllowList
	err = call(func(cerr **C.char) C.PannsStatus {
		return C.panns_allow_list_new_e(ix.ptr, cf.c, &p, cerr)
	})
	runtime.KeepAlive(f.bits)
	runtime.KeepAlive(f.ids)
	if err != nil {
		return nil, err
	}
	a := &AllowList{ptr: p, len: int(C.panns_allow_list_len(p)), items: int(C.panns_allow_list_items(p))}
	runtime.SetFinalizer(a, (*AllowList).Close)
	return a, nil
}

// Filter is the Filter that allows the items of the list, for SearchFiltered,
// SearchBatchFiltered, RangeSearch and PrepareFilter of the index it was made for. A search
// with it after Close returns ErrClosed.
func (a *AllowList) Filter() Filter { return Filter{kind: filterAllowList, list: a} }

// Len returns the number of allowed items.
func (a *AllowList) Len() int { return a.len }

// Items returns the item count of the index the list was made for.
func (a *AllowList) Items() int { return a.items }

// Close frees the list, after the searches using it have finished. Closing twice is a no-op.
func (a *AllowList) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ptr != nil {
		C.panns_allow_list_free(a.ptr)
		a.ptr = nil
		runtime.SetFinalizer(a, nil)
	}
	return nil
}
