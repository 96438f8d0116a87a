package bus

// The rest of what Earshot names on NATS: subjects outside the live-session protocol,
// and every JetStream stream, key-value bucket and object store. The packages that use
// them (billing, gateway/prerecorded, gateway/twilio, internal/privacy) import these
// names; TestNoNATSNamesOutsideBus fails if one is declared anywhere else.
//
//	earshot.usage.dead                           billing → JetStream USAGE, rejected UsageEvent
//	earshot.prerecorded.jobs.<tenant>            gateway → JetStream PRERECORDED (work queue)
//	earshot.calls.<tenant>.<call sid>            gateway → in-house consumers, twilio.CallEvent (JSON)
//	earshot.twilio.dead.<tenant>                 gateway → in-house consumers, twilio.DeadLetter (JSON)
//	earshot.audit.<tenant>                       any service or the CLI → JetStream AUDIT, privacy.Entry (JSON)

// UsageDeadLetterToken is the last token of UsageDeadLetterSubject; it is therefore not a
// valid tenant id (billing.ValidTenantID refuses it).
const UsageDeadLetterToken = "dead"

// UsageDeadLetterSubject receives usage events that billing rejected, with header
// "Earshot-Reason". It lies under UsageWildcard, so the USAGE stream keeps dead letters
// as long as usage; the billing consumer skips them.
const UsageDeadLetterSubject = Prefix + ".usage." + UsageDeadLetterToken

// Pre-recorded requests with a callback (gateway/prerecorded).
const (
	PrerecordedJobStream   = "PRERECORDED"                 // JetStream work queue of callback jobs
	PrerecordedJobWildcard = prerecordedJobPrefix + ">"    // the subjects of PrerecordedJobStream
	PrerecordedAudioBucket = "PRERECORDED_AUDIO"           // object store: queued uploads, deleted after processing
	RequestStatusBucket    = "REQUESTS"                    // KV: <tenant>.<request> → prerecorded.Status (no content)
	prerecordedJobPrefix   = Prefix + ".prerecorded.jobs." // PrerecordedJobSubject without its tenant
	callPrefix             = Prefix + ".calls."            // CallSubject without tenant and call
	callDeadLetterPrefix   = Prefix + ".twilio.dead."      // CallDeadLetterSubject without its tenant
	auditPrefix            = Prefix + ".audit."            // AuditSubject without its tenant
	kvStreamPrefix         = "KV_"                         // JetStream's stream of a KV bucket
	objectStreamPrefix     = "OBJ_"                        // JetStream's stream of an object store
	kvSubjectPrefix        = "$KV."                        // JetStream's subjects of a KV bucket
	objectSubjectPrefix    = "$O."                         // JetStream's subjects of an object store
	objectMetaInfix        = ".M."                         // an object's metadata subject
	objectChunkInfix       = ".C."                         // an object's chunk subject
)

// PrerecordedJobSubject is where the callback jobs of tenant t are queued.
func PrerecordedJobSubject(t TenantID) string { return prerecordedJobPrefix + string(t) }

// CallSubject is where every event of phone call callSID of tenant t is published.
func CallSubject(t TenantID, callSID string) string { return callPrefix + string(t) + "." + callSID }

// CallDeadLetterSubject receives the call events tenant t's webhook did not accept.
func CallDeadLetterSubject(t TenantID) string { return callDeadLetterPrefix + string(t) }

// The privacy store (internal/privacy): the audit log, retained responses and audio, and
// the tenants' retention policies.
const (
	AuditStream           = "AUDIT"            // append-only; deletes and purges denied
	AuditWildcard         = auditPrefix + ">"  // the subjects of AuditStream
	RetainedBucket        = "RETAINED"         // KV: <tenant>.<request> → privacy.Record
	RetainedAudioBucket   = "RETAINED_AUDIO"   // object store: <tenant>/<request> → audio as uploaded
	RetentionPolicyBucket = "RETENTION_POLICY" // KV: <tenant> → privacy.Policy
)

// AuditSubject is where the audit entries of tenant t go.
func AuditSubject(t TenantID) string { return auditPrefix + string(t) }

// KVStream is the name of the JetStream stream that holds KV bucket b (nats.go's naming).
func KVStream(b string) string { return kvStreamPrefix + b }

// KVSubject is the subject of key in KV bucket b (nats.go's naming; key may be a wildcard).
func KVSubject(b, key string) string { return kvSubjectPrefix + b + "." + key }

// ObjectStream is the name of the JetStream stream that holds object store b.
func ObjectStream(b string) string { return objectStreamPrefix + b }

// ObjectMetaSubject is the subject of the metadata of an object of store b, whose name
// is encodedName (base64 URL encoding of the object's name, as nats.go writes it).
func ObjectMetaSubject(b, encodedName string) string {
	return objectSubjectPrefix + b + objectMetaInfix + encodedName
}

// ObjectChunkSubject is the subject of the chunks of the object of store b with NUID nuid.
func ObjectChunkSubject(b, nuid string) string {
	return objectSubjectPrefix + b + objectChunkInfix + nuid
}
