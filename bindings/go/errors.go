package panns

import "fmt"

// Status is a PannsStatus code returned by every fallible function of the C ABI.
type Status int32

// The status codes of the C ABI (docs/c-api.md).
const (
	StatusOK                Status = 0  // success
	StatusNullPointer       Status = 1  // a required pointer argument was NULL
	StatusInvalidArgument   Status = 2  // out-of-range parameter (k = 0, n_trees = 0, bad metric...)
	StatusDimensionMismatch Status = 3  // a vector's length differs from the index dimension
	StatusNonFinite         Status = 4  // NaN or infinite component
	StatusZeroVector        Status = 5  // zero vector under the angular metric
	StatusEmpty             Status = 6  // building or searching with no items
	StatusIO                Status = 7  // a file could not be read or written
	StatusCorrupt           Status = 8  // not a valid panns index or dataset
	StatusUnsupported       Status = 9  // future format version, other endianness, unsupported type
	StatusOutOfRange        Status = 10 // item id beyond the index, or a label a live index lacks
	StatusBufferTooSmall    Status = 11 // an output buffer is shorter than needed
	StatusPanic             Status = 12 // internal error: a Rust panic was caught
	StatusOutOfMemory       Status = 13 // memory could not be allocated
	StatusLocked            Status = 15 // another writer holds a live index's lock
	StatusReadOnly          Status = 16 // a change asked of a live index opened read-only
)

var statusNames = map[Status]string{
	StatusOK:                "PANNS_OK",
	StatusNullPointer:       "PANNS_NULL_POINTER",
	StatusInvalidArgument:   "PANNS_INVALID_ARGUMENT",
	StatusDimensionMismatch: "PANNS_DIMENSION_MISMATCH",
	StatusNonFinite:         "PANNS_NON_FINITE",
	StatusZeroVector:        "PANNS_ZERO_VECTOR",
	StatusEmpty:             "PANNS_EMPTY",
	StatusIO:                "PANNS_IO",
	StatusCorrupt:           "PANNS_CORRUPT",
	StatusUnsupported:       "PANNS_UNSUPPORTED",
	StatusOutOfRange:        "PANNS_OUT_OF_RANGE",
	StatusBufferTooSmall:    "PANNS_BUFFER_TOO_SMALL",
	StatusPanic:             "PANNS_PANIC",
	StatusOutOfMemory:       "PANNS_OUT_OF_MEMORY",
	StatusLocked:            "PANNS_LOCKED",
	StatusReadOnly:          "PANNS_READ_ONLY",
}

// String returns the C name of the status, e.g. "PANNS_IO".
func (s Status) String() string {
	if name, ok := statusNames[s]; ok {
		return name
	}
	return fmt.Sprintf("PannsStatus(%d)", int32(s))
}

// Error is a failed panns call: the status code and the library's message for that call
// (from the C function's _e twin) or, for errors detected in Go, a message of this package.
type Error struct {
	Status  Status
	Message string
}

// Error formats the error as "panns: MESSAGE (STATUS)".
func (e *Error) Error() string {
	if e.Message == "" {
		return "panns: " + e.Status.String()
	}
	return fmt.Sprintf("panns: %s (%s)", e.Message, e.Status)
}

// Is reports whether target is an *Error of the same status with no message of its own, so
// that errors.Is(err, panns.ErrCorrupt) matches every corrupt-file error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Status == e.Status
}

// Sentinel errors for errors.Is: each matches every *Error of its status.
var (
	ErrNullPointer       = &Error{Status: StatusNullPointer}
	ErrInvalidArgument   = &Error{Status: StatusInvalidArgument}
	ErrDimensionMismatch = &Error{Status: StatusDimensionMismatch}
	ErrNonFinite         = &Error{Status: StatusNonFinite}
	ErrZeroVector        = &Error{Status: StatusZeroVector}
	ErrEmpty             = &Error{Status: StatusEmpty}
	ErrIO                = &Error{Status: StatusIO}
	ErrCorrupt           = &Error{Status: StatusCorrupt}
	ErrUnsupported       = &Error{Status: StatusUnsupported}
	ErrOutOfRange        = &Error{Status: StatusOutOfRange}
	ErrBufferTooSmall    = &Error{Status: StatusBufferTooSmall}
	ErrPanic             = &Error{Status: StatusPanic}
	ErrOutOfMemory       = &Error{Status: StatusOutOfMemory}
	ErrLocked            = &Error{Status: StatusLocked}
	ErrReadOnly          = &Error{Status: StatusReadOnly}
)

// ErrClosed is returned by every method called on a Builder, Index or Live after Close.
var ErrClosed = &Error{Status: StatusNullPointer, Message: "use of a closed panns handle"}
