package prerecorded

import (
	"errors"

	"github.com/earshot-dev/earshot/internal/netguard"
)

// Sentinel errors, mapped to HTTP statuses in http.go.
var (
	// ErrTooLarge: the upload (or fetched file) is larger than Config.MaxUpload (413).
	ErrTooLarge = errors.New("audio too large")
	// ErrTooLong: the audio is longer than Config.MaxAudio or the tenant's plan allows (413).
	ErrTooLong = errors.New("audio too long")
	// ErrNotAudio: the body is not audio Earshot can decode (400).
	ErrNotAudio = errors.New("not audio")
	// ErrURLRefused: url= or callback= is outside the allow-list or points at an
	// internal address (400).
	ErrURLRefused = netguard.ErrRefused
	// ErrFetch: fetching url= failed (400: the client's URL does not serve a file).
	ErrFetch = errors.New("fetch failed")
	// ErrCallback: the callback did not accept the result after every retry.
	ErrCallback = errors.New("callback not delivered")
	// ErrTooManyJobs: the tenant has Config.MaxJobsPerTenant requests running or queued (429).
	ErrTooManyJobs = errors.New("too many pre-recorded requests")
	// ErrConfig: a Config is invalid.
	ErrConfig = errors.New("invalid prerecorded config")
)
