// Package accuracy holds the transcriber's tests against the real models over whole dev
// sets (offline WER and CER, language detection, quantized weights, concurrent
// decoders) through the transcriber's public API. They are a package of their own so
// that `go test ./...` runs them beside the transcriber's streaming tests instead of after
// them in one binary: on a 2-core machine the two together outran the 25-minute limit of
// one test binary. Under make test the dev-set tests decode a fixed subset of each set
// (the whole sets are about 25 minutes of CPU on a 2-core AVX2 machine); under
// EARSHOT_DEVSET=full (make accuracy, make bench-engine) every clip.
package accuracy
