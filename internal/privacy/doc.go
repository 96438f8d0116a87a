// Package privacy keeps what a tenant asked Earshot to keep, and nothing else: opt-in
// retention of transcripts (JetStream KV bucket RETAINED) and audio (object store
// RETAINED_AUDIO) with a TTL, deletion by request, tenant-wide erasure, and an
// append-only audit log (JetStream stream AUDIT) of retention changes, deletions and
// erasures. Deleted and expired records are erased: overwritten in JetStream's block
// files, not only dropped from its index (erase.go). See docs/privacy.md.
package privacy
