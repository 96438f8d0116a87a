package wire

import (
	"errors"
	"fmt"
)

// Sentinel errors of the parsers.
var (
	// ErrBadParam: a query parameter is malformed or out of range (see ParamError).
	ErrBadParam = errors.New("bad query parameter")
	// ErrBadControl: a text frame is not a JSON object with a known "type".
	ErrBadControl = errors.New("bad control message")
	// ErrUnknownControl: a text frame is valid JSON but its "type" is not one we know.
	ErrUnknownControl = errors.New("unknown control message type")
	// ErrControlTooLarge: a text frame is longer than MaxControlBytes.
	ErrControlTooLarge = errors.New("control message too large")
)

// ParamError names the query parameter that was rejected and why. It wraps ErrBadParam.
type ParamError struct {
	Param  string
	Reason string
}

func (e *ParamError) Error() string { return fmt.Sprintf("parameter %s: %s", e.Param, e.Reason) }

// Unwrap makes errors.Is(err, ErrBadParam) true.
func (e *ParamError) Unwrap() error { return ErrBadParam }

// BadParam returns a *ParamError for param.
func BadParam(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Reason: fmt.Sprintf(format, args...)}
}
