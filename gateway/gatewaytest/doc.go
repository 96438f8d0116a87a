// Package gatewaytest holds what tests of the gateway and its users share: the one
// configurable stand-in Backend, the real backend over an embedded NATS server
// (NATSBackend, ServeWorker), and TestStreamContract, the rules of gateway.Backend and
// gateway.Stream as a test suite that every backend must pass (the pattern of
// Watermill's pubsub/tests).
package gatewaytest
