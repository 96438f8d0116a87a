// Package bus owns every NATS subject and every message that crosses NATS between
// Earshot's services: session requests routed to workers with capacity, audio chunks,
// results, worker heartbeats and usage events (subjects.go), and every other subject,
// JetStream stream, KV bucket and object store Earshot uses: usage dead letters,
// pre-recorded jobs and uploads, phone call events, the audit log and retained data
// (streams.go). Every service imports it; it imports nothing of Earshot's, so the wire
// between processes is defined in one place (TestNoNATSNamesOutsideBus keeps it so).
package bus
