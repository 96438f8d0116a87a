package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty typed object for apiVersion/kind, or nil for a kind these
// manifests should not hold.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/Service":
		return &corev1.Service{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	}
	return nil
}

// workload is a Deployment or StatefulSet, reduced to what the rules look at.
type workload struct {
	where, kind, name string
	labels            map[string]string
	pod               corev1.PodSpec
}

type manifests struct {
	counts     map[string]int
	workloads  []workload
	pdbs       []*policyv1.PodDisruptionBudget
	hpas       []*autoscalingv2.HorizontalPodAutoscaler
	services   []*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	files      []string
}

// checkK8s decodes every manifest in dir strictly and applies the rules; it returns a
// summary of the kinds decoded.
func checkK8s(dir string, src *source, r *report) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return "", err
	}
	m := &manifests{counts: map[string]int{}, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			continue
		}
		m.files = append(m.files, base)
		if err := m.decodeFile(f, r); err != nil {
			return "", err
		}
	}
	checkKustomization(filepath.Join(dir, "kustomization.yaml"), m.files, r)
	m.rules(src, r)
	checkAdapter(filepath.Join(dir, "prometheus-adapter", "values.yaml"), m.hpas, r)

	var kinds []string
	for k, n := range m.counts {
		kinds = append(kinds, plural(n, k))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d files, %s", len(m.files), strings.Join(kinds, ", ")), nil
}

func (m *manifests) decodeFile(path string, r *report) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rd := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for i := 1; ; i++ {
		doc, err := rd.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		where := fmt.Sprintf("%s#%d", filepath.Base(path), i)
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			r.add(where, "not YAML: %v", err)
			continue
		}
		obj := newObject(tm.APIVersion, tm.Kind)
		if obj == nil {
			r.add(where, "unexpected kind %s %s (add it to newObject when it belongs here)", tm.APIVersion, tm.Kind)
			continue
		}
		// Strict: a misspelt or misplaced field is an error, as the API server's
		// field validation would make it.
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			r.add(where, "%s: %v", tm.Kind, err)
			continue
		}
		m.counts[tm.Kind]++
		switch o := obj.(type) {
		case *appsv1.Deployment:
			where += " Deployment/" + o.Name
			m.workloads = append(m.workloads, workload{where, "Deployment", o.Name, o.Spec.Template.Labels, o.Spec.Template.Spec})
			m.selectorMatches(where, o.Spec.Selector, o.Spec.Template.Labels, r)
		case *appsv1.StatefulSet:
			where += " StatefulSet/" + o.Name
			m.workloads = append(m.workloads, workload{where, "StatefulSet", o.Name, o.Spec.Template.Labels, o.Spec.Template.Spec})
			m.selectorMatches(where, o.Spec.Selector, o.Spec.Template.Labels, r)
		case *policyv1.PodDisruptionBudget:
			m.pdbs = append(m.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			m.hpas = append(m.hpas, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *corev1.Secret:
			m.secrets[o.Name] = o
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(append(out, line...), '\n')
		}
	}
	return out
}

func (m *manifests) selectorMatches(where string, sel *metav1.LabelSelector, podLabels map[string]string, r *report) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
		r.add(where, "selector %v does not select its own pod template (labels %v)", sel, podLabels)
	}
}

func (m *manifests) rules(src *source, r *report) {
	if len(m.workloads) == 0 {
		r.add("deploy/k8s", "no Deployment or StatefulSet found")
	}
	roles := map[string]int{}
	for _, w := range m.workloads {
		m.hasPDB(w, r)
		m.podRules(w, src, r, roles)
	}
	for _, role := range []string{"gateway", "transcriber", "billing"} {
		if roles[role] == 0 {
			r.add("deploy/k8s", "no workload runs `earshot %s`", role)
		}
	}
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		found := false
		for _, w := range m.workloads {
			found = found || labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.labels))
		}
		if !found {
			r.add("Service/"+s.Name, "selector %v matches no workload", s.Spec.Selector)
		}
	}
	m.hpaRules(src, r)
}

// hasPDB: every workload's pods are covered by a PodDisruptionBudget that allows some
// disruption (a PDB that allows none blocks node drains forever).
func (m *manifests) hasPDB(w workload, r *report) {
	for _, p := range m.pdbs {
		s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(labels.Set(w.labels)) {
			continue
		}
		if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
			r.add("PodDisruptionBudget/"+p.Name, "sets neither minAvailable nor maxUnavailable")
		}
		if p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.IntValue() == 0 && p.Spec.MaxUnavailable.StrVal == "" {
			r.add("PodDisruptionBudget/"+p.Name, "maxUnavailable 0 blocks every node drain")
		}
		return
	}
	r.add(w.where, "no PodDisruptionBudget selects its pods")
}

func (m *manifests) podRules(w workload, src *source, r *report, roles map[string]int) {
	ps := w.pod
	psc := ps.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		r.add(w.where, "pod securityContext.runAsNonRoot must be true")
	}
	for _, c := range ps.Containers {
		where := w.where + " container " + c.Name
		uid := int64(-1)
		if psc != nil && psc.RunAsUser != nil {
			uid = *psc.RunAsUser
		}
		csc := c.SecurityContext
		if csc != nil && csc.RunAsUser != nil {
			uid = *csc.RunAsUser
		}
		if uid <= 0 {
			r.add(where, "runAsUser must be set to a non-zero uid")
		}
		if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			r.add(where, "securityContext.allowPrivilegeEscalation must be false")
		}
		if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			r.add(where, "securityContext.readOnlyRootFilesystem must be true")
		}
		if csc == nil || csc.Capabilities == nil || len(csc.Capabilities.Drop) != 1 || csc.Capabilities.Drop[0] != "ALL" {
			r.add(where, "securityContext.capabilities.drop must be [ALL]")
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			r.add(where, "needs a readinessProbe and a livenessProbe")
			continue
		}
		if !isEarshot(c) {
			continue
		}
		args := append(append([]string{}, c.Command...), c.Args...)
		if len(args) > 0 && args[0] == "earshot" {
			args = args[1:]
		}
		if len(args) > 0 {
			roles[args[0]]++
		}
		m.earshotContainer(where, w, c, args, src, r)
	}
}

func isEarshot(c corev1.Container) bool {
	img := c.Image
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	return strings.HasPrefix(img, "earshot:") || strings.HasPrefix(img, "earshot@") || img == "earshot"
}

// earshotContainer: flags and variables the binary knows, probes on the right listener,
// a grace period longer than preStop plus the drain.
func (m *manifests) earshotContainer(where string, w workload, c corev1.Container, args []string, src *source, r *report) {
	drain := src.earshotArgs(where, args, r)
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			cm := m.configMaps[ef.ConfigMapRef.Name]
			if cm == nil {
				r.add(where, "envFrom ConfigMap %q is not in the manifests", ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		}
		if ef.SecretRef != nil && m.secrets[ef.SecretRef.Name] == nil {
			r.add(where, "envFrom Secret %q is not in the manifests", ef.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			s := m.secrets[ref.Name]
			if s == nil {
				r.add(where, "env %s: Secret %q is not in the manifests", e.Name, ref.Name)
			} else if _, ok := s.StringData[ref.Key]; !ok {
				if _, ok := s.Data[ref.Key]; !ok {
					r.add(where, "env %s: Secret %q has no key %q", e.Name, ref.Name, ref.Key)
				}
			}
		}
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	src.envNames(where, names, r)

	// The ops listener must be reachable from the kubelet and Prometheus.
	ops := env["EARSHOT_OPS_LISTEN"]
	if ops == "" || strings.HasPrefix(ops, "127.") || strings.HasPrefix(ops, "localhost") {
		r.add(where, "EARSHOT_OPS_LISTEN %q: probes and /metrics need a non-loopback address like 0.0.0.0:9090", ops)
	}
	opsPort := ops[strings.LastIndex(ops, ":")+1:]
	role := args[0]
	listen := "8080"
	for i, a := range args {
		if a == "--listen" && i+1 < len(args) {
			if strings.HasPrefix(args[i+1], "127.") {
				r.add(where, "--listen %s is loopback: the Service cannot reach it", args[i+1])
			}
			listen = args[i+1][strings.LastIndex(args[i+1], ":")+1:]
		}
	}
	probe := func(kind string, p *corev1.Probe, path string) {
		if p.HTTPGet == nil || p.HTTPGet.Path != path {
			r.add(where, "%s must be httpGet %s", kind, path)
			return
		}
		port := p.HTTPGet.Port.String()
		for _, cp := range c.Ports {
			if cp.Name == port {
				port = fmt.Sprint(cp.ContainerPort)
			}
		}
		// The gateway serves /healthz and /readyz on its public listener too; every role on
		// the ops listener.
		if port != opsPort && !(role == "gateway" && port == listen) {
			r.add(where, "%s on port %s: %s serves %s on the ops port %s%s", kind, port, role, path, opsPort,
				map[bool]string{true: " or its --listen port " + listen}[role == "gateway"])
		}
	}
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	if c.StartupProbe != nil {
		probe("startupProbe", c.StartupProbe, "/healthz")
	}

	// Grace period: preStop, then SIGTERM and the drain, then a margin to exit.
	d, ok := src.drain(where, drain, env, r)
	if !ok {
		return
	}
	var pre time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		h := c.Lifecycle.PreStop
		switch {
		case h.Sleep != nil:
			pre = time.Duration(h.Sleep.Seconds) * time.Second
		case h.Exec != nil && len(h.Exec.Command) == 2 && h.Exec.Command[0] == "sleep":
			if n, err := time.ParseDuration(h.Exec.Command[1] + "s"); err == nil {
				pre = n
			}
		}
	}
	grace := 30 * time.Second
	if w.pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*w.pod.TerminationGracePeriodSeconds) * time.Second
	}
	const margin = 5 * time.Second
	if grace < pre+d+margin {
		r.add(where, "terminationGracePeriodSeconds %v < preStop %v + drain %v + %v: SIGKILL would cut the drain", grace, pre, d, margin)
	}
}

// hpaRules: the HPA scales a workload that exists, on a metric the code exports.
func (m *manifests) hpaRules(src *source, r *report) {
	scaledTranscriber := false
	for _, h := range m.hpas {
		where := "HorizontalPodAutoscaler/" + h.Name
		var target *workload
		for i, w := range m.workloads {
			if w.kind == h.Spec.ScaleTargetRef.Kind && w.name == h.Spec.ScaleTargetRef.Name {
				target = &m.workloads[i]
			}
		}
		if target == nil {
			r.add(where, "scaleTargetRef %s/%s is not in the manifests", h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
			continue
		}
		if h.Spec.MinReplicas != nil && *h.Spec.MinReplicas < 2 {
			r.add(where, "minReplicas %d: keep at least 2 so one can drain", *h.Spec.MinReplicas)
		}
		if len(h.Spec.Metrics) == 0 {
			r.add(where, "no metrics")
		}
		for _, ms := range h.Spec.Metrics {
			var name string
			switch ms.Type {
			case autoscalingv2.PodsMetricSourceType:
				name = ms.Pods.Metric.Name
			case autoscalingv2.ObjectMetricSourceType:
				name = ms.Object.Metric.Name
			case autoscalingv2.ExternalMetricSourceType:
				name = ms.External.Metric.Name
			default:
				continue
			}
			if !src.metrics[name] {
				r.add(where, "metric %q is not registered anywhere in transcriber/*.go", name)
			}
			if target.name == "transcriber" && ms.Type == autoscalingv2.PodsMetricSourceType {
				scaledTranscriber = true
			}
		}
	}
	if !scaledTranscriber {
		r.add("deploy/k8s", "no HorizontalPodAutoscaler scales the transcriber Deployment on a Pods metric")
	}
}

// checkKustomization: kustomization.yaml lists exactly the manifest files.
func checkKustomization(path string, files []string, r *report) {
	b, err := os.ReadFile(path)
	if err != nil {
		r.add("kustomization.yaml", "%v", err)
		return
	}
	var k struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
		Images     []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		r.add("kustomization.yaml", "%v", err)
		return
	}
	got := append([]string{}, k.Resources...)
	sort.Strings(got)
	want := append([]string{}, files...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		r.add("kustomization.yaml", "resources %v, but the manifests are %v", got, want)
	}
}

// checkAdapter: the custom-metrics adapter's rules serve the HPA's Pods metric.
func checkAdapter(path string, hpas []*autoscalingv2.HorizontalPodAutoscaler, r *report) {
	b, err := os.ReadFile(path)
	if err != nil {
		r.add("prometheus-adapter/values.yaml", "%v", err)
		return
	}
	var v struct {
		Rules struct {
			Custom []struct {
				SeriesQuery string `json:"seriesQuery"`
				Name        struct {
					As string `json:"as"`
				} `json:"name"`
			} `json:"custom"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		r.add("prometheus-adapter/values.yaml", "%v", err)
		return
	}
	served := map[string]bool{}
	for _, c := range v.Rules.Custom {
		served[c.Name.As] = true
	}
	for _, h := range hpas {
		for _, ms := range h.Spec.Metrics {
			if ms.Type == autoscalingv2.PodsMetricSourceType && !served[ms.Pods.Metric.Name] {
				r.add("prometheus-adapter/values.yaml", "no rule serves %q, the metric HorizontalPodAutoscaler/%s scales on", ms.Pods.Metric.Name, h.Name)
			}
		}
	}
}
