package privacy

import "errors"

// Sentinel errors; the HTTP edge maps ErrNotFound to 404 and ErrBadRetention to 400.
var (
	// ErrNotFound: nothing is retained under that request id for that tenant (never
	// retained, expired, deleted, or another tenant's).
	ErrNotFound = errors.New("privacy: not found")
	// ErrBadRetention: a retain or retain_ttl value is not valid.
	ErrBadRetention = errors.New("privacy: bad retention setting")
	// ErrBadTenant: a tenant id cannot name an audit subject.
	ErrBadTenant = errors.New("privacy: bad tenant id")
)
