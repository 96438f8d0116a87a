// Package transcriber turns 16 kHz audio into text with whisper.cpp: an offline
// whole-file mode, and a streaming policy that makes whisper behave like a streaming
// recogniser (growing windows trimmed after committed words, LocalAgreement-2 commits,
// VAD endpointing with a speculative final, an early first decode while the VAD confirms
// speech, hallucination guards), scheduled on a fixed pool of decode slots where finals go
// first and preempt partials (sched.go). Package transcriber/worker serves its sessions over NATS
// (`earshot transcriber`). Every cgo call lives in transcriber/whispercpp.
package transcriber
