// Package app wires Earshot's services into processes: logging, NATS connections (embedded
// or external, with credentials and TLS), Redis, the ops HTTP endpoints (/healthz, /readyz,
// /metrics) and two-stage shutdown. The CLI calls it; the services know nothing of it.
package app
