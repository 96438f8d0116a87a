package gateway

import (
	"errors"
	"strings"

	"github.com/earshot-dev/earshot/gateway/wire"
	"github.com/earshot-dev/earshot/internal/bus"
)

// Sentinel errors. Implementations of the interfaces in interfaces.go wrap these (with
// %w) so the gateway can map them to HTTP statuses and wire codes.
var (
	// ErrNoBalance: the tenant has no balance left (402).
	ErrNoBalance = errors.New("insufficient balance")
	// ErrQuotaExhausted: a usage quota of the tenant is used up (402).
	ErrQuotaExhausted = errors.New("quota exhausted")
	// ErrModelNotInPlan: the tenant's plan does not include the model (403).
	ErrModelNotInPlan = errors.New("model not in plan")
	// ErrResumeRefused: resume names no stream of the caller's tenant that ended within
	// the resume window (400, parameter resume).
	ErrResumeRefused = errors.New("resume refused")
	// ErrTooManyStreams: the tenant's concurrent-stream limit is reached (429).
	ErrTooManyStreams = errors.New("too many concurrent streams")

	// ErrUnauthorized: missing, malformed, unknown, revoked or expired credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrKeyNotFound: no API key with this secret or id.
	ErrKeyNotFound = errors.New("api key not found")
	// ErrTokenExpired: a signed token is past its expiry.
	ErrTokenExpired = errors.New("token expired")
	// ErrBadToken: a signed token is malformed or its signature does not verify.
	ErrBadToken = errors.New("bad token")
	// ErrDraining: the server is shutting down and takes no new streams.
	ErrDraining = errors.New("gateway is draining")
	// ErrConfig: a Config is invalid.
	ErrConfig = errors.New("invalid gateway config")
)

// BadRequestRefusal turns a worker's refusal of a session as invalid (an option only the
// worker can check, such as how many tokens keyterm= takes in the model's vocabulary;
// its message is "param: reason") into the ParamError the client gets. nil for any
// other error.
func BadRequestRefusal(err error) *wire.ParamError {
	var r interface {
		Refusal() (bus.ErrorCode, string)
	}
	if !errors.As(err, &r) {
		return nil
	}
	code, msg := r.Refusal()
	if code != bus.CodeBadRequest {
		return nil
	}
	param, reason, ok := strings.Cut(msg, ": ")
	if !ok || param == "" || strings.ContainsAny(param, " \t") {
		param, reason = "", msg
	}
	return wire.BadParam(param, "%s", reason)
}
