// Package testutil holds the test harnesses every package shares: an embedded NATS server
// with JetStream on a random port, a real redis-server on a random port, and helpers to
// poll for a condition instead of sleeping.
package testutil
