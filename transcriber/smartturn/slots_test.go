package smartturn

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestSlotsMatchHeader checks ort.h's ST_SLOT_* positions against Microsoft's
// onnxruntime_c_api.h with offsetof, compiled by cc. The header is not in the
// repository: point $EARSHOT_ORT_HEADER at one (any ORT_API_VERSION ≥ 16; the
// table only grows), e.g. include/onnxruntime/core/session/onnxruntime_c_api.h
// of microsoft/onnxruntime. Without it the test is skipped.
func TestSlotsMatchHeader(t *testing.T) {
	src, err := os.ReadFile("ort.h")
	if err != nil {
		t.Fatal(err)
	}
	slots := regexp.MustCompile(`(?m)^#define ST_SLOT_(\w+) (\d+)$`).FindAllSubmatch(src, -1)
	if len(slots) < 30 {
		t.Fatalf("ort.h: %d ST_SLOT_ defines found", len(slots))
	}
	hdr := os.Getenv("EARSHOT_ORT_HEADER")
	if hdr == "" {
		t.Skip("set EARSHOT_ORT_HEADER to onnxruntime_c_api.h to check the slot positions")
	}
	var c bytes.Buffer
	fmt.Fprintf(&c, "#include <stddef.h>\n#include %q\n", hdr)
	fmt.Fprintf(&c, "_Static_assert(ORT_API_VERSION >= 16, \"header older than API 16\");\n")
	for _, s := range slots {
		fmt.Fprintf(&c, "_Static_assert(offsetof(OrtApi, %s) == %s * sizeof(void *), \"slot of %s is not %s\");\n", s[1], s[2], s[1], s[2])
	}
	f := filepath.Join(t.TempDir(), "slots.c")
	if err := os.WriteFile(f, c.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if out, err := exec.Command(cc, "-fsyntax-only", "-std=c11", f).CombinedOutput(); err != nil {
		t.Fatalf("slot positions differ from %s:\n%s", hdr, out)
	}
	t.Logf("%d slot positions match %s", len(slots), hdr)
}
