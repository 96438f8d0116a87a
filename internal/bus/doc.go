// Package bus owns every NATS subject and every message that crosses NATS between
// Earshot's services: session requests routed to workers with capacity, audio chunks,
// results, worker heartbeats and usage events. Every service imports it; it imports
// nothing of Earshot's, so the wire between processes is defined in one place.
package bus
