package panns

/*
#include <panns.h>
*/
import "C"

import "fmt"

// Dtype is how an index stores its vectors (the PannsDtype codes of panns_index_set_dtype).
type Dtype uint32

// The storage types of the C ABI (PannsDtype).
const (
	// DtypeF32 stores 32-bit floats as given (the default, and the zero value).
	DtypeF32 Dtype = 0
	// DtypeI8 stores one byte per component with a per-component range (scalar
	// quantization): a quarter of the bytes in memory and on disk. Searches return the
	// distances to the decoded vectors, and Vector returns the decoded vector.
	DtypeI8 Dtype = 1
	// DtypeI8F32 stores both: searches walk the 8-bit codes and re-rank their best
	// candidates from the f32 vectors kept beside them, so distances are exact and rounding
	// does not cap recall (1.25x the f32 bytes; a search reads few f32 rows).
	DtypeI8F32 Dtype = 2
)

// String returns the dtype's name: "f32", "i8" or "i8+f32".
func (d Dtype) String() string {
	switch d {
	case DtypeF32:
		return "f32"
	case DtypeI8:
		return "i8"
	case DtypeI8F32:
		return "i8+f32"
	}
	return fmt.Sprintf("Dtype(%d)", uint32(d))
}

// ParseDtype returns the dtype named s ("f32", "i8" or "i8+f32").
func ParseDtype(s string) (Dtype, error) {
	for _, d := range []Dtype{DtypeF32, DtypeI8, DtypeI8F32} {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, invalid("unknown dtype %q (want \"f32\", \"i8\" or \"i8+f32\")", s)
}

// Dtype returns how the index stores its vectors: DtypeF32 for a freshly built index, the
// dtype of the file for an opened one, or what SetDtype last set. Like GraphDegree it stays
// available after Close.
func (ix *Index) Dtype() Dtype {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.dtype
}

// SetDtype re-stores the vectors of the index as d, keeping its trees and graph (build the
// graph first, with BuildGraph: on DtypeI8 a graph is built from the decoded vectors).
// DtypeI8 encodes every vector in one byte per component; DtypeF32 decodes them again (the
// rounding stays). Setting the dtype the index already has changes nothing. The index then
// lives in memory (an opened file is no longer used); Save it to keep the change: the file of
// an i8 index is about a quarter of the size, and Open reports its dtype.
//
// SetDtype waits for running searches to finish and holds off new ones until it returns. An
// unknown dtype gives ErrInvalidArgument and leaves the index unchanged.
func (ix *Index) SetDtype(d Dtype) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.ptr == nil {
		return ErrClosed
	}
	err := call(func(cerr **C.char) C.PannsStatus {
		return C.panns_index_set_dtype_e(ix.ptr, C.uint32_t(d), cerr)
	})
	ix.dtype = Dtype(C.panns_index_dtype(ix.ptr))
	return err
}
