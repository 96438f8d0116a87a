package main

import (
	"os"
	"regexp"
	"strings"
)

var (
	fromRe    = regexp.MustCompile(`(?im)^FROM\s+(\S+)`)
	envNameRe = regexp.MustCompile(`\b(EARSHOT_[A-Z0-9_]+)=`)
)

// checkDockerfile: the runtime stage (the last FROM) runs earshot as a non-root user, has
// a HEALTHCHECK on /healthz and stops with SIGTERM; the base image is an argument (no
// registry is assumed); its EARSHOT_* defaults are settings Earshot knows.
func checkDockerfile(path string, src *source, r *report) {
	b, err := os.ReadFile(path)
	if err != nil {
		r.add("Dockerfile", "%v", err)
		return
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	froms := fromRe.FindAllStringSubmatchIndex(text, -1)
	if len(froms) < 2 {
		r.add("Dockerfile", "want a multi-stage build (build and runtime stages)")
		return
	}
	for _, m := range froms {
		if img := text[m[2]:m[3]]; !strings.HasPrefix(img, "${BASE}") && !strings.HasPrefix(img, "$BASE") &&
			!strings.EqualFold(img, "build") {
			r.add("Dockerfile", "FROM %s: stages start from ${BASE} or an earlier stage", img)
		}
	}
	if !regexp.MustCompile(`(?m)^ARG BASE=`).MatchString(text) {
		r.add("Dockerfile", "no `ARG BASE=...` before the first FROM")
	}
	final := text[froms[len(froms)-1][0]:]
	var user, health, stop, entry string
	for _, line := range strings.Split(final, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "HEALTHCHECK":
			health = line
		case "STOPSIGNAL":
			stop = f[1]
		case "ENTRYPOINT":
			entry = line
		}
	}
	if u := strings.Split(user, ":")[0]; u == "" || u == "root" || u == "0" {
		r.add("Dockerfile", "runtime stage USER %q: run as a non-root user", user)
	}
	if !strings.Contains(health, "/healthz") {
		r.add("Dockerfile", "runtime stage needs a HEALTHCHECK on /healthz")
	}
	if stop != "SIGTERM" {
		r.add("Dockerfile", "STOPSIGNAL %q: Earshot drains on SIGTERM", stop)
	}
	if !strings.Contains(entry, "earshot") {
		r.add("Dockerfile", "ENTRYPOINT must be earshot")
	}
	for _, m := range envNameRe.FindAllStringSubmatch(final, -1) {
		src.envNames("Dockerfile ENV", []string{m[1]}, r)
	}
	if strings.Contains(final, "EARSHOT_OPS_LISTEN=127.") || !strings.Contains(final, "EARSHOT_OPS_LISTEN=0.0.0.0") {
		r.add("Dockerfile", "EARSHOT_OPS_LISTEN must be 0.0.0.0:PORT in a container (the HEALTHCHECK and probes reach it)")
	}
}
