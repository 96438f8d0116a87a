package billing

import "errors"

// Sentinel errors. Callers test them with errors.Is; the gateway maps the quota ones to
// bus.CodeQuota and a client message that names the reason.
var (
	ErrUnknownTenant  = errors.New("billing: unknown tenant")
	ErrTenantExists   = errors.New("billing: tenant already exists")
	ErrNoBalance      = errors.New("billing: prepaid balance exhausted, top up to continue")
	ErrQuotaExhausted = errors.New("billing: audio quota of the plan exhausted")
	ErrModelNotInPlan = errors.New("billing: model not included in the tenant's plan")
	ErrFileTooLong    = errors.New("billing: the file is longer than the plan allows")
	ErrUnknownPlan    = errors.New("billing: unknown price plan or plan version")
	ErrBadPlan        = errors.New("billing: invalid price plan")
	ErrBadEvent       = errors.New("billing: invalid usage event")
	ErrBadTenantID    = errors.New("billing: invalid tenant id")
	ErrBadMonth       = errors.New("billing: invalid month, want YYYY-MM")
	ErrBadQuery       = errors.New("billing: invalid usage query")
	ErrMeterClosed    = errors.New("billing: meter closed")
	ErrUnpublished    = errors.New("billing: usage not acknowledged by JetStream")
)
