package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/internal/testutil"
)

// TestRunScriptModelChoice: `make run` (scripts/run.sh) serves tiny.en-q8_0 as the
// default model beside tiny.en on an x86 CPU with AVX2, where the 8-bit copy decodes
// about a third faster without AVX-512, about 6 % with it when whisper.cpp is built for
// AVX-512 (WHISPER_CPU=auto, the default) and about 15 % in an AVX2-only build
// (WHISPER_CPU=portable) (BENCHMARKS.md, Density), and leaves the models alone everywhere else: without AVX2, without the q8_0
// file, with the GPU, or when the operator chose the models. The CPU is a cpuinfo file
// of the test's (EARSHOT_CPUINFO); `earshot serve` is replaced by a script that records
// the environment it was given, so this checks the script's choice, not serving (the
// q8_0 model's decodes are covered by the transcriber and models packages). `run.sh
// models`, which make bench measures, must name the same models.
func TestRunScriptModelChoice(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	script := filepath.Join(testutil.ModuleRoot(t), "scripts", "run.sh")
	const avx2 = "flags\t\t: fpu sse2 avx avx2 fma bmi2\n"
	const avx512 = "flags\t\t: fpu sse2 avx avx2 fma bmi2 avx512f avx512bw\n"
	const noAVX2 = "flags\t\t: fpu sse2 avx\n"
	cases := []struct {
		name, cpu   string
		q8File      bool
		env         []string
		models, def string
		gain        string // in the message when q8_0 is chosen
	}{
		{"AVX2 without AVX-512", avx2, true, nil, "tiny.en-q8_0,tiny.en", "tiny.en-q8_0", "about a third"},
		{"AVX-512", avx512, true, nil, "tiny.en-q8_0,tiny.en", "tiny.en-q8_0", "about 6 %"},
		{"AVX-512, AVX2-only build", avx512, true, []string{"WHISPER_CPU=portable"}, "tiny.en-q8_0,tiny.en", "tiny.en-q8_0", "about 15 %"},
		{"no AVX2", noAVX2, true, nil, "", "", ""},
		{"no q8_0 file", avx2, false, nil, "", "", ""},
		{"GPU asked for", avx2, true, []string{"EARSHOT_GPU=1"}, "", "", ""},
		{"operator's models", avx2, true, []string{"EARSHOT_MODELS=tiny.en,base"}, "tiny.en,base", "", ""},
		{"operator's default", avx2, true, []string{"EARSHOT_DEFAULT_MODEL=tiny.en"}, "", "tiny.en", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			models := filepath.Join(dir, "models")
			if err := os.MkdirAll(models, 0o755); err != nil {
				t.Fatal(err)
			}
			if c.q8File {
				if err := os.WriteFile(filepath.Join(models, "ggml-tiny.en-q8_0.bin"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cpuinfo := filepath.Join(dir, "cpuinfo")
			if err := os.WriteFile(cpuinfo, []byte("processor\t: 0\n"+c.cpu), 0o644); err != nil {
				t.Fatal(err)
			}
			record := filepath.Join(dir, "serve.env")
			fake := filepath.Join(dir, "earshot")
			body := "#!/usr/bin/env bash\nprintf 'models=%s\\ndefault=%s\\nargs=%s\\n' \"${EARSHOT_MODELS:-}\" \"${EARSHOT_DEFAULT_MODEL:-}\" \"$*\" > " + record + "\n"
			if err := os.WriteFile(fake, []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", script)
			cmd.Env = append([]string{
				"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
				"EARSHOT_BIN=" + fake, "EARSHOT_DATA_DIR=" + filepath.Join(dir, "data"),
				"EARSHOT_REDIS_URL=redis://127.0.0.1:1/0", // no Redis is started
				"EARSHOT_MODEL_DIR=" + models, "EARSHOT_CPUINFO=" + cpuinfo,
			}, c.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("run.sh: %v\n%s", err, out)
			}
			got, err := os.ReadFile(record)
			if err != nil {
				t.Fatalf("serve was not started: %v\n%s", err, out)
			}
			want := "models=" + c.models + "\ndefault=" + c.def + "\nargs=serve --listen 127.0.0.1:8080 --demo\n"
			if string(got) != want {
				t.Fatalf("serve got\n%s\nwant\n%s\nrun.sh said: %s", got, want, out)
			}
			said := strings.Contains(string(out), "the 8-bit copy decodes")
			if said != (c.def == "tiny.en-q8_0") {
				t.Fatalf("run.sh's message about the choice: printed %v, want %v:\n%s", said, !said, out)
			}
			if said && !strings.Contains(string(out), c.gain) {
				t.Fatalf("run.sh's message does not give this CPU's gain (%s):\n%s", c.gain, out)
			}
			// `run.sh models` (make bench's BENCH_MODELS) names the same models, or the
			// default alone, or nothing for the server's default.
			cmd = exec.Command("bash", script, "models")
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
				"EARSHOT_MODEL_DIR=" + models, "EARSHOT_CPUINFO=" + cpuinfo}, c.env...)
			list, err := cmd.Output()
			wantList := c.models
			if wantList == "" {
				wantList = c.def
			}
			if err != nil || strings.TrimSpace(string(list)) != wantList {
				t.Fatalf("run.sh models: %q, %v; want %q", list, err, wantList)
			}
		})
	}
}
