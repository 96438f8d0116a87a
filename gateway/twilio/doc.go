// Package twilio bridges phone calls into Earshot: it serves Twilio Media Streams on a
// WebSocket (GET /v1/twilio/{secret}), transcribes the caller (inbound) and agent
// (outbound) tracks as separate sessions on a gateway.Backend, meters each track per
// call, and delivers speaker-labelled partials, finals and a call summary to the
// tenant's signed webhook and to NATS; with turn-taking on, also each speaker's turns
// (turn.*) and the caller's barge-ins over the agent, with their latency (turns.go).
// Simulate plays WAV files as a Twilio call.
// See docs/phone.md.
package twilio
