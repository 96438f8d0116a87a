package twilio

import "errors"

// Sentinel errors, wrapped with %w and context.
var (
	// ErrProtocol: a message breaks the Media Streams protocol (bad JSON, media before
	// start, a payload that is not base64 or not whole 20 ms µ-law frames, ...).
	ErrProtocol = errors.New("twilio: protocol violation")
	// ErrUnauthorized: the stream secret or X-Twilio-Signature is missing or wrong.
	ErrUnauthorized = errors.New("twilio: unauthorized")
	// ErrTooManyCalls: the tenant has Config.MaxCallsPerTenant calls live.
	ErrTooManyCalls = errors.New("twilio: too many concurrent calls")
	// ErrSecretNotFound: no tenant owns this stream secret (or it was revoked).
	ErrSecretNotFound = errors.New("twilio: stream secret not found")
	// ErrMediaFormat: start declared a media format other than audio/x-mulaw, 8000 Hz, mono.
	ErrMediaFormat = errors.New("twilio: unsupported media format")
	// ErrParameter: a customParameters value of the start message is invalid (the
	// turn-taking knobs); the message names the parameter and its range.
	ErrParameter = errors.New("twilio: invalid custom parameter")
	// ErrConfig: a Config is invalid.
	ErrConfig = errors.New("twilio: invalid config")
	// ErrBadSignature: an X-Earshot-Signature header does not verify.
	ErrBadSignature = errors.New("twilio: bad webhook signature")
	// ErrQueueClosed: an event was enqueued after the call's delivery ended.
	ErrQueueClosed = errors.New("twilio: delivery queue closed")
)
