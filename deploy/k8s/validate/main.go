// Command validate checks Earshot's deployment files with the real decoders: every
// Kubernetes manifest in deploy/k8s strictly into the k8s.io/api types (unknown fields are
// errors), deploy/compose.yaml with the compose-spec loader (schema, interpolation,
// references), and the rules that keep them true to the code: probes on /readyz and
// /healthz, a PodDisruptionBudget for every workload, non-root containers, grace periods
// longer than the drain, only EARSHOT_* variables and flags that internal/config defines,
// and an HPA metric that transcriber/ really exports.
//
//	cd deploy/k8s/validate && go run . -root ../../..    (make deploy-check)
//
// It is its own module so that the root module's `go test ./...` does not pull in k8s.io
// and compose-go.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// report collects every problem found, so one run lists them all.
type report struct{ problems []string }

func (r *report) add(where, format string, args ...any) {
	r.problems = append(r.problems, where+": "+fmt.Sprintf(format, args...))
}

func main() {
	root := flag.String("root", "../../..", "the repository root")
	flag.Parse()
	abs, err := filepath.Abs(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
		os.Exit(2)
	}
	r, summary, err := validate(abs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
		os.Exit(2)
	}
	if len(r.problems) > 0 {
		for _, p := range r.problems {
			fmt.Fprintln(os.Stderr, "FAIL", p)
		}
		fmt.Fprintf(os.Stderr, "validate: %d problem(s)\n", len(r.problems))
		os.Exit(1)
	}
	fmt.Print(summary)
}

// validate checks the deploy/ files under the repository root; the report lists every
// problem, the summary what was checked.
func validate(root string) (*report, string, error) {
	src, err := readSource(root)
	if err != nil {
		return nil, "", err
	}
	r := &report{}
	kinds, err := checkK8s(filepath.Join(root, "deploy", "k8s"), src, r)
	if err != nil {
		r.add("deploy/k8s", "%v", err)
	}
	services, err := checkCompose(filepath.Join(root, "deploy"), src, r)
	if err != nil {
		r.add("deploy/compose.yaml", "%v", err)
	}
	checkDockerfile(filepath.Join(root, "deploy", "Dockerfile"), src, r)
	summary := fmt.Sprintf("k8s: %s decoded strictly (k8s.io/api %s); rules ok\n", kinds, k8sAPIVersion) +
		fmt.Sprintf("compose: %d services loaded (compose-go %s); rules ok\n", services, composeGoVersion) +
		"Dockerfile: rules ok\n" +
		fmt.Sprintf("source: %d EARSHOT_* variables, %d flags, %d transcriber metrics known\n",
			len(src.env), len(src.flags), len(src.metrics))
	return r, summary, nil
}

// The module versions (go.mod), for the summary line.
const (
	k8sAPIVersion    = "v0.37.2"
	composeGoVersion = "v2.16.2"
)

// plural is "n thing(s)" for the summary.
func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(what, "s"))
}
