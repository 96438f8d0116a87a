// Package worker is the transcriber's half of the bus protocol (docs/bus.md): a Worker
// subscribes to session requests for the models of a transcriber.SessionFactory only
// while it has a free slot, grants a session, turns the session's numbered audio chunks
// into Session.Write calls (holding early chunks and asking the gateway to resend a
// gap), publishes results with sequence numbers, answers control messages, heartbeats,
// and drains. The gateway's half is package ingest/remote.
package worker
