package bus

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestNamesOnTheWire pins every subject, stream and bucket name to the bytes deployed
// servers already hold: a rename here orphans streams and breaks consumers.
func TestNamesOnTheWire(t *testing.T) {
	for got, want := range map[string]string{
		SessionRequestSubject("tiny.en"):               "earshot.session.request.tiny_en",
		AudioSubject("acme", "s1"):                     "earshot.audio.acme.s1",
		ResultSubject("acme", "s1"):                    "earshot.results.acme.s1",
		TenantResultsWildcard("acme"):                  "earshot.results.acme.*",
		HeartbeatSubject("w1"):                         "earshot.worker.heartbeat.w1",
		HeartbeatWildcard:                              "earshot.worker.heartbeat.*",
		ControlSubject("w1"):                           "earshot.control.w1",
		UsageSubject("acme"):                           "earshot.usage.acme",
		UsageWildcard:                                  "earshot.usage.>",
		UsageStream:                                    "USAGE",
		UsageDeadLetterSubject:                         "earshot.usage.dead",
		PrerecordedJobStream:                           "PRERECORDED",
		PrerecordedJobWildcard:                         "earshot.prerecorded.jobs.>",
		PrerecordedJobSubject("acme"):                  "earshot.prerecorded.jobs.acme",
		PrerecordedAudioBucket:                         "PRERECORDED_AUDIO",
		RequestStatusBucket:                            "REQUESTS",
		CallSubject("acme", "CA1"):                     "earshot.calls.acme.CA1",
		CallDeadLetterSubject("acme"):                  "earshot.twilio.dead.acme",
		AuditStream:                                    "AUDIT",
		AuditWildcard:                                  "earshot.audit.>",
		AuditSubject("acme"):                           "earshot.audit.acme",
		RetainedBucket:                                 "RETAINED",
		RetainedAudioBucket:                            "RETAINED_AUDIO",
		RetentionPolicyBucket:                          "RETENTION_POLICY",
		KVStream(RetainedBucket):                       "KV_RETAINED",
		KVSubject(RetainedBucket, "acme.r1"):           "$KV.RETAINED.acme.r1",
		ObjectStream(RetainedAudioBucket):              "OBJ_RETAINED_AUDIO",
		ObjectMetaSubject(RetainedAudioBucket, "YQ=="): "$O.RETAINED_AUDIO.M.YQ==",
		ObjectChunkSubject(RetainedAudioBucket, "N1"):  "$O.RETAINED_AUDIO.C.N1",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}

// TestNoNATSNamesOutsideBus keeps the promise of doc.go: no package but internal/bus
// declares a NATS subject, JetStream stream, KV bucket or object store name. It parses
// every non-test .go file of the module and reports, outside internal/bus:
//   - a string literal that is a subject of ours or of JetStream's KV/object stores
//     ("earshot.…", "$KV.…", "$O.…"), a queue group ("workers.…"), a KV/object store's
//     stream ("KV_…", "OBJ_…"), or a wildcard subject ("….>", "….*");
//   - any use of bus.Prefix (a subject built by hand);
//   - a jetstream/nats StreamConfig, KeyValueConfig or ObjectStoreConfig whose Name,
//     Bucket or Subjects is not taken from package bus;
//   - a string literal handed to a NATS or JetStream call that takes a subject or a
//     stream/bucket name (Publish, Subscribe, Request, Stream, KeyValue, ObjectStore, …);
//   - a constant named …Stream or …Bucket whose value is an upper-case literal.
func TestNoNATSNamesOutsideBus(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	self, _ := filepath.Abs(".")
	var bad []string
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules" || n == "vendor") {
				return filepath.SkipDir
			}
			if p == self {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		v, err := natsNameViolations(rel, src)
		if err != nil {
			return err
		}
		files++
		bad = append(bad, v...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d files parsed under %s: the walk is broken", files, root)
	}
	for _, b := range bad {
		t.Errorf("%s: declare the name in internal/bus and use it from there", b)
	}
}

// TestNoNATSNamesOutsideBusCatches proves each rule of TestNoNATSNamesOutsideBus finds
// what it is meant to find, and lets bus-derived names through.
func TestNoNATSNamesOutsideBusCatches(t *testing.T) {
	bad := map[string]string{
		"subject literal":   `const DeadLetterSubject = "earshot.usage.dead"`,
		"prefix":            `func jobSubject(t bus.TenantID) string { return bus.Prefix + ".prerecorded.jobs." + string(t) }`,
		"kv stream literal": `var s = "KV_" + bus.RetainedBucket`,
		"kv subject":        `func rec(k string) string { return "$KV." + bus.RetainedBucket + "." + k }`,
		"object subject":    `func m(b string) string { return "$O." + b + ".M.x" }`,
		"wildcard":          `var w = "calls.>"`,
		"queue group":       `func q(m string) string { return "workers." + m }`,
		"stream config":     `var c = jetstream.StreamConfig{Name: "PRERECORDED", Subjects: []string{bus.PrerecordedJobWildcard}}`,
		"stream subjects":   `var c = jetstream.StreamConfig{Name: bus.AuditStream, Subjects: []string{wild}}`,
		"kv config":         `var c = jetstream.KeyValueConfig{Bucket: myBucket}`,
		"object config":     `var c = nats.ObjectStoreConfig{Bucket: "X"}`,
		"publish literal":   `func f() { nc.Publish("audit", nil) }`,
		"stream literal":    `func f() { js.Stream(ctx, "AUDIT") }`,
		"bucket const":      `const JobStream = "PRERECORDED"`,
	}
	for name, decl := range bad {
		v, err := natsNameViolations(name+".go", []byte("package x\n"+decl+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(v) == 0 {
			t.Errorf("%s: %s not reported", name, decl)
		}
	}
	good := []string{
		`var c = jetstream.StreamConfig{Name: bus.KVStream(bus.RetainedBucket), Subjects: []string{bus.KVSubject(bus.RetainedBucket, ">")}}`,
		`var c = jetstream.KeyValueConfig{Bucket: bus.RequestStatusBucket, Description: "a description that mentions KV_ and earshot.usage"}`,
		`func f() { js.Publish(ctx, bus.AuditSubject(t), b); nc.Subscribe(bus.CallSubject(t, "*"), h) }`,
		`const ControlCloseStream = "CloseStream"`,
		`var hosts = "*.example.com"`,
		`func f() { w.Header().Set("Earshot-Reason", "x"); log.Info("earshot", "k", 1) }`,
	}
	for _, decl := range good {
		v, err := natsNameViolations("good.go", []byte("package x\n"+decl+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 0 {
			t.Errorf("false alarm on %s: %v", decl, v)
		}
	}
}

var (
	// Literals that are (the start of) a subject, a queue group or a JetStream-internal name.
	wireLiteral = regexp.MustCompile(`^(` + regexp.QuoteMeta(Prefix) + `\.|workers\.|\$KV\.|\$O\.|\$JS\.|KV_|OBJ_)`)
	// A wildcard subject: tokens separated by dots ending in > or *.
	wildcardLiteral = regexp.MustCompile(`^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_*$-]+)*\.[>*]$`)
	upperName       = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	configTypes     = map[string]bool{"StreamConfig": true, "KeyValueConfig": true, "ObjectStoreConfig": true}
	configPkgs      = map[string]bool{"jetstream": true, "nats": true}
	// NATS and JetStream calls whose string arguments are subjects or stream, bucket or
	// consumer-stream names.
	natsCalls = map[string]bool{
		"Publish": true, "PublishAsync": true, "Subscribe": true, "SubscribeSync": true,
		"QueueSubscribe": true, "QueueSubscribeSync": true, "ChanSubscribe": true, "ChanQueueSubscribe": true,
		"Request": true, "NewMsg": true, "Stream": true, "KeyValue": true, "ObjectStore": true,
		"DeleteStream": true, "DeleteKeyValue": true, "DeleteObjectStore": true, "Consumer": true,
		"OrderedConsumer": true, "CreateConsumer": true, "CreateOrUpdateConsumer": true,
		"DeleteConsumer": true, "StreamNameBySubject": true,
	}
)

// natsNameViolations lists what TestNoNATSNamesOutsideBus reports in one file.
func natsNameViolations(name string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), fmt.Sprintf(format, args...)))
	}
	seen := map[token.Pos]bool{} // a literal reported once
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, ok := stringLit(n); ok && !seen[n.Pos()] {
				if wireLiteral.MatchString(s) || wildcardLiteral.MatchString(s) {
					seen[n.Pos()] = true
					report(n, "NATS name literal %q", s)
				}
			}
		case *ast.SelectorExpr:
			if isBus(n.X) && n.Sel.Name == "Prefix" {
				report(n, "subject built from bus.Prefix")
			}
		case *ast.CompositeLit:
			sel, ok := n.Type.(*ast.SelectorExpr)
			if !ok || !configPkgs[identName(sel.X)] || !configTypes[sel.Sel.Name] {
				return true
			}
			for _, el := range n.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch identName(kv.Key) {
				case "Name", "Bucket":
					if !fromBus(kv.Value) {
						report(kv, "%s.%s's %s is not a name from package bus", identName(sel.X), sel.Sel.Name, identName(kv.Key))
					}
				case "Subjects":
					list, ok := kv.Value.(*ast.CompositeLit)
					if !ok {
						report(kv, "%s.%s's Subjects is not a list of names from package bus", identName(sel.X), sel.Sel.Name)
						continue
					}
					for _, s := range list.Elts {
						if !fromBus(s) {
							report(s, "%s.%s's subject is not a name from package bus", identName(sel.X), sel.Sel.Name)
						}
					}
				}
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || !natsCalls[sel.Sel.Name] {
				return true
			}
			for _, a := range n.Args {
				if lit, ok := a.(*ast.BasicLit); ok {
					if s, ok := stringLit(lit); ok {
						seen[lit.Pos()] = true
						report(lit, "literal %q passed to %s", s, sel.Sel.Name)
					}
				}
			}
		case *ast.GenDecl:
			if n.Tok != token.CONST {
				return true
			}
			for _, sp := range n.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i >= len(vs.Values) || !(strings.HasSuffix(id.Name, "Stream") || strings.HasSuffix(id.Name, "Bucket")) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						if s, ok := stringLit(lit); ok && upperName.MatchString(s) {
							seen[lit.Pos()] = true
							report(id, "constant %s = %q names a JetStream stream or bucket", id.Name, s)
						}
					}
				}
			}
		}
		return true
	})
	sort.Strings(out)
	return out, nil
}

func stringLit(l *ast.BasicLit) (string, bool) {
	if l.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(l.Value)
	return s, err == nil
}

func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

func isBus(e ast.Expr) bool { return identName(e) == "bus" }

// fromBus reports whether e is bus.Name or a call bus.F(args...) whose arguments are
// themselves from bus or not string literals of ours (a key such as ">" is fine).
func fromBus(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		return isBus(e.X)
	case *ast.CallExpr:
		sel, ok := e.Fun.(*ast.SelectorExpr)
		return ok && isBus(sel.X)
	}
	return false
}
