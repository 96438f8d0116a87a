package wire

// ErrorCode is the stable, machine-readable reason in an Error message, in an HTTP
// error body (err_code) and in the dg-error header. Clients switch on it; the text
// beside it may change.
type ErrorCode string

// Error codes. The set only grows; a code never changes meaning.
const (
	CodeBadRequest      ErrorCode = "BAD_REQUEST"       // a query parameter or message is malformed (400)
	CodeUnauthorized    ErrorCode = "INVALID_AUTH"      // missing, unknown, revoked or expired credentials (401)
	CodeRateLimited     ErrorCode = "RATE_LIMITED"      // too many failed authentications from this address (429)
	CodeTooManyStreams  ErrorCode = "TOO_MANY_STREAMS"  // the tenant's concurrent-stream limit is reached (429)
	CodeUnknownModel    ErrorCode = "UNKNOWN_MODEL"     // no such model (400)
	CodeModelNotInPlan  ErrorCode = "MODEL_NOT_IN_PLAN" // the tenant's plan does not include the model (403)
	CodeNoBalance       ErrorCode = "INSUFFICIENT_BALANCE"
	CodeQuotaExhausted  ErrorCode = "QUOTA_EXHAUSTED"   // a usage quota is used up (402, or close 4002)
	CodeNoCapacity      ErrorCode = "NO_CAPACITY"       // no transcriber has a free slot (503, or close 1013)
	CodeShuttingDown    ErrorCode = "SHUTTING_DOWN"     // the gateway is draining (503, or close 1012)
	CodeBadAudio        ErrorCode = "BAD_AUDIO"         // audio does not match the declared encoding (close 4004)
	CodeUnknownMessage  ErrorCode = "UNKNOWN_MESSAGE"   // a text frame is not a known control message (session continues)
	CodeMessageTooLarge ErrorCode = "MESSAGE_TOO_LARGE" // a frame is over the size limit (close 1009)
	CodeIdleTimeout     ErrorCode = "IDLE_TIMEOUT"      // no audio or KeepAlive for the idle timeout (close 4001)
	CodeMaxDuration     ErrorCode = "MAX_DURATION"      // the session reached its maximum length (close 4003), or a pre-recorded file is longer than allowed (413)
	CodeSlowConsumer    ErrorCode = "SLOW_CONSUMER"     // the client does not read its results (close 1008)
	CodeTooFast         ErrorCode = "TOO_FAST"          // audio arrives faster than the real-time limit (warning; reading is slowed)
	CodeInternal        ErrorCode = "INTERNAL"          // a server fault (500, or close 1011)
	CodeNotFound        ErrorCode = "NOT_FOUND"
)

// WebSocket close codes the server uses. 1000-1013 are RFC 6455 / IANA codes; 4000-4999
// are Earshot's own and are stable.
const (
	CloseNormal         = 1000 // after CloseStream: every final and the Metadata were sent
	ClosePolicy         = 1008 // slow consumer, policy violation
	CloseTooLarge       = 1009 // a frame over the size limit
	CloseInternal       = 1011 // server fault, or the transcriber failed
	CloseServiceRestart = 1012 // the gateway is draining; reconnect
	CloseTryAgainLater  = 1013 // capacity lost mid-stream; reconnect later
	CloseBadRequest     = 4000 // malformed input that ends the session
	CloseIdleTimeout    = 4001 // no audio or KeepAlive within the idle timeout
	CloseQuota          = 4002 // balance or quota ran out mid-stream
	CloseMaxDuration    = 4003 // the session reached its maximum length
	CloseBadAudio       = 4004 // audio does not decode with the declared encoding
)
