package cli

import (
	"os"
	"syscall"
)

// ompEnv makes whisper.cpp's OpenMP threads sleep instead of spinning while they wait
// for work. libgomp reads it once, when the process loads, so it cannot be set from Go
// after start: PassiveOpenMP re-executes the binary with it set, unless the user chose
// a policy. Measured on this 2-core machine under load from other processes: a live JFK
// stream got no result at all within 26 s with the default (spinning) policy and all
// three finals within 12 s with PASSIVE (BENCHMARKS.md, "OpenMP wait policy").
const ompEnv = "OMP_WAIT_POLICY"

// PassiveOpenMP re-executes the process with OMP_WAIT_POLICY=PASSIVE when it is unset.
// It returns only if it did not re-execute (already set, or exec failed).
func PassiveOpenMP() {
	if _, ok := os.LookupEnv(ompEnv); ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), ompEnv+"=PASSIVE")
	_ = syscall.Exec(exe, os.Args, env)
}
