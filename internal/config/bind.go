package config

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrUnknownEnv is returned for an EARSHOT_* variable that no setting uses.
var ErrUnknownEnv = errors.New("unknown EARSHOT_ environment variable")

// Bind registers every field of the struct pointed to by cfg that has a `flag` tag on fs,
// with its current value as the default, and applies the matching `env` variable from
// environ on top of the default. Nested structs (without tags) are walked. Supported
// kinds: string, bool, int, int64, float64, time.Duration, []string (comma-separated).
func Bind(fs *flag.FlagSet, cfg any, environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return walk(reflect.ValueOf(cfg).Elem(), func(f reflect.StructField, v reflect.Value) error {
		name, help, envName := f.Tag.Get("flag"), f.Tag.Get("help"), f.Tag.Get("env")
		if envName != "" {
			help = fmt.Sprintf("%s (env %s)", help, envName)
			if s, ok := env[envName]; ok {
				if err := set(v, s); err != nil {
					return fmt.Errorf("%s=%q: %w", envName, s, err)
				}
			}
		}
		fs.Var(&value{v}, name, help)
		return nil
	})
}

// EnvNames lists the env tags of cfg's fields.
func EnvNames(cfg any) []string {
	var out []string
	_ = walk(reflect.ValueOf(cfg).Elem(), func(f reflect.StructField, _ reflect.Value) error {
		if e := f.Tag.Get("env"); e != "" {
			out = append(out, e)
		}
		return nil
	})
	return out
}

// CheckEnv fails on any EARSHOT_* variable in environ that is not in known.
func CheckEnv(environ []string, known []string) error {
	k := map[string]bool{}
	for _, n := range known {
		k[n] = true
	}
	var bad []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "EARSHOT_") && !k[name] {
			bad = append(bad, name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	sort.Strings(known)
	return fmt.Errorf("%w: %s (known: %s)", ErrUnknownEnv, strings.Join(bad, ", "), strings.Join(known, ", "))
}

func walk(v reflect.Value, fn func(reflect.StructField, reflect.Value) error) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if f.Tag.Get("flag") == "" {
			if fv.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}) {
				if err := walk(fv, fn); err != nil {
					return err
				}
			}
			continue
		}
		if err := fn(f, fv); err != nil {
			return err
		}
	}
	return nil
}

type value struct{ v reflect.Value }

func (p *value) String() string {
	if !p.v.IsValid() {
		return ""
	}
	if p.v.Kind() == reflect.Slice {
		return strings.Join(p.v.Interface().([]string), ",")
	}
	return fmt.Sprint(p.v.Interface())
}

func (p *value) Set(s string) error { return set(p.v, s) }

func (p *value) IsBoolFlag() bool { return p.v.Kind() == reflect.Bool }

func set(v reflect.Value, s string) error {
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration (like 500ms or 2s): %w", err)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not true or false")
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		v.Set(reflect.ValueOf(SplitList(s)))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// SplitList splits a comma-separated setting (host:port,host:port) into its non-empty,
// trimmed items.
func SplitList(s string) []string {
	var parts []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			parts = append(parts, p)
		}
	}
	return parts
}
