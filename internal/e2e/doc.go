// Package e2e holds end-to-end tests that drive a real `earshot serve` (or separate
// earshot processes) through the public API only, with real NATS, Redis and whisper.
package e2e
