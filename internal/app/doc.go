// Package app wires Earshot's services into processes: logging, NATS connections (embedded
// or external, with credentials and TLS), Redis, the ops HTTP endpoints (/healthz, /readyz,
// /metrics) and two-stage shutdown. The CLI calls it; the services know nothing of it. Run
// (serve.go) reads as the list of a process's steps; serve_billing.go, serve_worker.go and
// serve_gateway.go wire each service.
package app
