// Package chaos holds Earshot's fault-injection tests (tests only): a real nats-server,
// a real Redis and separate earshot gateway, transcriber and billing processes, with
// live streams through the public WebSocket API while a process is killed or
// restarted. `go test ./internal/chaos/ -run Short` is the CI form; the whole suite is
// `make chaos`. What each fault costs is written up in RELIABILITY.md.
package chaos
