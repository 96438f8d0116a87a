package cli

// whisperVersion is the whisper.cpp release the build scripts pin (scripts/whisper.sh).
func whisperVersion() string { return "1.9.1" }
