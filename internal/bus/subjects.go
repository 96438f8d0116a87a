package bus

import "fmt"

// Subjects. Every subject starts with Prefix so that one NATS account can carry several
// deployments, and carries the tenant wherever data belongs to one tenant, so that NATS
// permissions can confine a tenant-facing process to its own subjects.
//
//	earshot.session.request.<model token>        request/reply, queue group QueueWorkers(model)
//	earshot.audio.<tenant>.<session>             gateway → worker, AudioChunk (binary)
//	earshot.results.<tenant>.<session>           worker → gateway, Result (JSON)
//	earshot.control.<worker>                     gateway → worker, Control (JSON)
//	earshot.worker.heartbeat.<worker>            worker → all, Heartbeat (JSON)
//	earshot.usage.<tenant>                       gateway → JetStream USAGE, UsageEvent (JSON)
const Prefix = "earshot"

// SessionRequestSubject is where a gateway asks for a worker for model; workers with a
// free slot for that model subscribe with queue group QueueWorkers(model).
func SessionRequestSubject(model string) string {
	return fmt.Sprintf("%s.session.request.%s", Prefix, ModelToken(model))
}

// QueueWorkers is the queue group of workers serving model.
func QueueWorkers(model string) string { return "workers." + model }

// AudioSubject carries the audio of one session from gateway to worker.
func AudioSubject(t TenantID, s SessionID) string {
	return fmt.Sprintf("%s.audio.%s.%s", Prefix, t, s)
}

// ResultSubject carries results of one session from worker to gateway.
func ResultSubject(t TenantID, s SessionID) string {
	return fmt.Sprintf("%s.results.%s.%s", Prefix, t, s)
}

// TenantResultsWildcard matches every result subject of one tenant (for in-house consumers).
func TenantResultsWildcard(t TenantID) string {
	return fmt.Sprintf("%s.results.%s.*", Prefix, t)
}

// HeartbeatSubject is where worker w announces itself.
func HeartbeatSubject(w WorkerID) string {
	return fmt.Sprintf("%s.worker.heartbeat.%s", Prefix, w)
}

// ControlSubject carries a gateway's Control messages to worker w.
func ControlSubject(w WorkerID) string {
	return fmt.Sprintf("%s.control.%s", Prefix, w)
}

// HeartbeatWildcard matches every worker's heartbeat.
const HeartbeatWildcard = Prefix + ".worker.heartbeat.*"

// UsageSubject is where usage events of tenant t are published (captured by the USAGE stream).
func UsageSubject(t TenantID) string {
	return fmt.Sprintf("%s.usage.%s", Prefix, t)
}

// UsageStream is the JetStream stream that captures UsageWildcard.
const (
	UsageStream   = "USAGE"
	UsageWildcard = Prefix + ".usage.>"
)
