package panns

// The Go side of AllowFunc filters: the C callback every Go predicate goes through. In a file
// of its own because a file with //export may only declare things in its C preamble.

// #include <stdint.h>
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// pannsGoFilter is the PannsFilterFn of AllowFunc filters: user_data is the cgo.Handle of a
// *predicate. It returns 1 (allow), 0 (refuse) or, when the Go function panics, -1 (which
// aborts the search with PANNS_CALLBACK_FAILED); the panic's value is kept for the error.
//
//export pannsGoFilter
func pannsGoFilter(id C.uint64_t, userData unsafe.Pointer) (r C.int) {
	p := cgo.Handle(uintptr(userData)).Value().(*predicate)
	defer func() {
		if v := recover(); v != nil {
			p.mu.Lock()
			if !p.failed {
				p.failed, p.panicked = true, v
			}
			p.mu.Unlock()
			r = -1
		}
	}()
	if p.fn(uint64(id)) {
		return 1
	}
	return 0
}
