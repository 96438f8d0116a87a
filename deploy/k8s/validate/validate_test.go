package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies the files validate reads (internal/config, transcriber, deploy) from the
// repository into a temporary root.
func copyTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, dir := range []string{"internal/config", "transcriber", "deploy"} {
		src := filepath.Join("..", "..", "..", dir)
		err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(filepath.Join("..", "..", ".."), p)
			if info.IsDir() {
				if strings.HasPrefix(rel, filepath.Join("deploy", "k8s", "validate")) || strings.Contains(rel, "testdata") {
					return filepath.SkipDir
				}
				return os.MkdirAll(filepath.Join(root, rel), 0o755)
			}
			if strings.HasSuffix(p, "_test.go") || (strings.HasPrefix(rel, "transcriber") && !strings.HasSuffix(p, ".go")) {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(root, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDeployFilesPass(t *testing.T) {
	r, _, err := validate(copyTree(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.problems) > 0 {
		t.Fatalf("problems in the committed files:\n%s", strings.Join(r.problems, "\n"))
	}
}

// Each mistake a reader could make in the files is caught, with a message naming it.
func TestDeployMistakesCaught(t *testing.T) {
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "deploy/k8s/40-gateway.yaml", "terminationGracePeriodSeconds: 75", "terminationGracePeriodSecond: 75", `unknown field "terminationGracePeriodSecond"`},
		{"short grace", "deploy/k8s/50-transcriber.yaml", "terminationGracePeriodSeconds: 75", "terminationGracePeriodSeconds: 30", "SIGKILL would cut the drain"},
		{"unknown env", "deploy/k8s/10-config.yaml", "EARSHOT_JS_REPLICAS:", "EARSHOT_JS_REPLICA:", "EARSHOT_JS_REPLICA is not an Earshot setting"},
		{"flag of another role", "deploy/k8s/60-billing.yaml", `args: ["billing"]`, `args: ["billing", "--listen", "0.0.0.0:8080"]`, "unknown flag --listen"},
		{"unknown flag", "deploy/k8s/50-transcriber.yaml", `"--max-sessions"`, `"--max-session"`, "unknown flag --max-session"},
		{"wrong probe", "deploy/k8s/60-billing.yaml", "path: /readyz", "path: /ready", "readinessProbe must be httpGet /readyz"},
		{"probe on public port", "deploy/k8s/60-billing.yaml", "{path: /healthz, port: ops}", "{path: /healthz, port: 8080}", "serves /healthz on the ops port"},
		{"no pdb", "deploy/k8s/60-billing.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgetX", "unexpected kind"},
		{"root", "deploy/k8s/40-gateway.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot must be true"},
		{"metric", "deploy/k8s/50-transcriber.yaml", "name: earshot_worker_sessions_live", "name: earshot_worker_streams", `"earshot_worker_streams" is not registered`},
		{"loopback ops", "deploy/k8s/10-config.yaml", "EARSHOT_OPS_LISTEN: 0.0.0.0:9090", "EARSHOT_OPS_LISTEN: 127.0.0.1:9090", "non-loopback"},
		{"compose grace", "deploy/compose.yaml", "stop_grace_period: 75s", "stop_grace_period: 10s", "SIGKILL mid-drain"},
		{"compose schema", "deploy/compose.yaml", "stop_grace_period: 75s", "stop_grace_period: 75s\n  stop_grace: 75s", "stop_grace"},
		{"compose env", "deploy/compose.yaml", "EARSHOT_JS_REPLICAS:", "EARSHOT_REPLICAS:", "EARSHOT_REPLICAS is not an Earshot setting"},
		{"compose nats list", "deploy/compose.yaml", "nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222", "nats://nats-0:4222", "but the nats services are"},
		{"haproxy servers", "deploy/haproxy.cfg", "server gateway-1 gateway-1:8080", "", "but the gateways are"},
		{"dockerfile root", "deploy/Dockerfile", "USER 10001:10001", "USER root", "non-root"},
		{"dockerfile ops", "deploy/Dockerfile", "EARSHOT_OPS_LISTEN=0.0.0.0:9090", "EARSHOT_OPS_LISTEN=127.0.0.1:9090", "EARSHOT_OPS_LISTEN must be 0.0.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t)
			p := filepath.Join(root, tc.file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.old) {
				t.Fatalf("%s no longer holds %q: update the test", tc.file, tc.old)
			}
			if err := os.WriteFile(p, []byte(strings.Replace(string(b), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			r, _, err := validate(root)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(r.problems, "\n")
			if !strings.Contains(all, tc.want) {
				t.Fatalf("want a problem containing %q, got:\n%s", tc.want, all)
			}
		})
	}
}
