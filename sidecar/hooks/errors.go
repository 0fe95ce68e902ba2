package hooks

import (
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
)

// Rejection reasons, the values of the reason label of
// omnibridge_hooks_rejected_total.
const (
	ReasonMalformed       = "malformed"        // not JSON/protobuf of the message, or unknown fields
	ReasonTooLarge        = "too_large"        // body over MaxBodyBytes
	ReasonContentType     = "content_type"     // JSON endpoint called with another content type
	ReasonMethod          = "method"           // JSON endpoint called with a method other than POST
	ReasonMissingField    = "missing_field"    // a required field is absent
	ReasonServiceMismatch = "service_mismatch" // service_info.name is not this sidecar's service
	ReasonTooLong         = "field_too_long"   // a string or list over its cap
	ReasonOutOfRange      = "out_of_range"     // an enum, time or duration out of range
	ReasonPendingFull     = "pending_full"     // too many pre-contexts waiting for results
)

// rejectError is a hook refused for a reason. Its message names the field
// and never echoes a value.
type rejectError struct {
	reason string
	msg    string
}

func (e *rejectError) Error() string { return e.msg }

func reject(reason, format string, args ...any) *rejectError {
	return &rejectError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// httpStatus maps a rejection to its HTTP status: the one place for that.
func httpStatus(reason string) int {
	switch reason {
	case ReasonTooLarge:
		return http.StatusRequestEntityTooLarge
	case ReasonContentType:
		return http.StatusUnsupportedMediaType
	case ReasonMethod:
		return http.StatusMethodNotAllowed
	case ReasonPendingFull:
		return http.StatusTooManyRequests
	default:
		return http.StatusBadRequest
	}
}

// connectError maps a rejection to its Connect error: the one place for that.
func connectError(err error) error {
	var re *rejectError
	if !errors.As(err, &re) {
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	code := connect.CodeInvalidArgument
	switch re.reason {
	case ReasonTooLarge, ReasonPendingFull:
		code = connect.CodeResourceExhausted
	}
	return connect.NewError(code, errors.New(re.msg))
}
