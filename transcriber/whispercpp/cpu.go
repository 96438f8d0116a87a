package whispercpp

/*
#include <ggml-cpu.h>
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/cpu"
)

// An instruction set ggml's CPU code may be compiled for: built reports whether this
// build of ggml uses it, has whether this CPU (and its OS) can run it.
type isa struct {
	name       string
	built, has bool
}

// isas lists the x86 instruction sets scripts/whisper.sh may build ggml for (WHISPER_CPU=auto
// adds those beyond AVX2 that the building machine has) with this CPU's support for them.
func isas() []isa {
	x := cpu.X86
	return []isa{
		{"AVX2", C.ggml_cpu_has_avx2() != 0, x.HasAVX2},
		{"FMA", C.ggml_cpu_has_fma() != 0, x.HasFMA},
		{"AVX-512", C.ggml_cpu_has_avx512() != 0,
			x.HasAVX512F && x.HasAVX512CD && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX512BW},
		{"AVX-512 VBMI", C.ggml_cpu_has_avx512_vbmi() != 0, x.HasAVX512VBMI},
		{"AVX-512 VNNI", C.ggml_cpu_has_avx512_vnni() != 0, x.HasAVX512VNNI},
		{"AVX-512 BF16", C.ggml_cpu_has_avx512_bf16() != 0, x.HasAVX512BF16},
		{"AVX-VNNI", C.ggml_cpu_has_avx_vnni() != 0, x.HasAVXVNNI},
	}
}

// cpuMissing names the instruction sets of list that the build uses and the CPU lacks, or
// returns nil.
func cpuMissing(list []isa) error {
	var miss []string
	for _, i := range list {
		if i.built && !i.has {
			miss = append(miss, i.name)
		}
	}
	if len(miss) == 0 {
		return nil
	}
	return fmt.Errorf("whisper.cpp here was built for %s, which this CPU lacks (a build made on another machine): "+
		"build it again on this one (make build runs scripts/whisper.sh), or with WHISPER_CPU=portable for a build "+
		"that runs on any x86-64 CPU with AVX2: %w", strings.Join(miss, ", "), ErrLoad)
}

// BuiltWithAVX512 reports whether the linked ggml was compiled for AVX-512.
func BuiltWithAVX512() bool { return C.ggml_cpu_has_avx512() != 0 }

// BuiltWithAVX512VNNI reports whether ggml was compiled for AVX-512 VNNI: what its q8_0
// kernel of whisper patch 0010 needs (Load has checked that the CPU has it too).
func BuiltWithAVX512VNNI() bool { return C.ggml_cpu_has_avx512_vnni() != 0 }

// BuiltFor names the instruction sets beyond the baseline that the linked ggml was
// compiled for ("AVX2, FMA, AVX-512, …"; "baseline" if none).
func BuiltFor() string {
	var b []string
	for _, i := range isas() {
		if i.built {
			b = append(b, i.name)
		}
	}
	if len(b) == 0 {
		return "baseline"
	}
	return strings.Join(b, ", ")
}

var cpuCheck = sync.OnceValue(func() error { return cpuMissing(isas()) })

// CPUSupported reports whether this CPU can run the whisper.cpp the binary was linked
// with. Load and LoadVAD call it before any ggml code runs, which would otherwise stop
// the process with SIGILL.
func CPUSupported() error { return cpuCheck() }
