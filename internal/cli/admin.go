package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/earshot-dev/earshot/internal/config"
	"github.com/earshot-dev/earshot/internal/redislog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/earshot-dev/earshot/billing"
	"github.com/earshot-dev/earshot/gateway"
	"github.com/earshot-dev/earshot/internal/app"
	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/earshot-dev/earshot/internal/privacy"
)

func init() {
	register(&command{
		name:    "keys",
		summary: "create, list and revoke a tenant's API keys (stored hashed in Redis)",
		usage: `Subcommands:
  create --tenant T      print a new key (shown once; only its hash is stored); T must
                         exist (earshot tenants create T), else nothing is created
  list --tenant T        key ids and creation times
  revoke --tenant T ID   revoke a key; tokens granted with it stop working too
create and revoke are recorded in T's audit log when NATS (--nats) is reachable.`,
		run: runKeys,
	})
	register(&command{
		name:    "tenants",
		summary: "create tenants, set their price plan, top up prepaid balances, show them",
		usage: `Subcommands:
  create T [--plan P]        a tenant on plan P (default payg); plans: payg, payg-min, starter, team, trial, demo
  plan T P [--version N]     move T to plan P (latest version unless --version)
  topup T AMOUNT             add AMOUNT minor units (cents) to T's prepaid balance
  show T                     plan, balance, creation time
  erase T --nats URL         delete everything kept for T (retained transcripts and audio, queued
                             jobs, policy) except the billing ledger and the audit log
  audit T --nats URL         T's audit log (key, plan, retention changes, erasures)`,
		run: runTenants,
	})
}

// redisFlag connects the admin commands to Redis: the --redis URL, and, as the
// services do, EARSHOT_REDIS_SENTINELS with EARSHOT_REDIS_MASTER or
// EARSHOT_REDIS_CLUSTER from the environment (a Sentinel or Cluster deployment).
func redisFlag(e *env, fsRedis *string) (redis.UniversalClient, error) {
	c := config.Common{RedisURL: *fsRedis, RedisMaster: envOr(e, "EARSHOT_REDIS_MASTER", ""),
		RedisSentinels: config.SplitList(envOr(e, "EARSHOT_REDIS_SENTINELS", "")),
		RedisCluster:   config.SplitList(envOr(e, "EARSHOT_REDIS_CLUSTER", ""))}
	if err := c.ValidateRedis(); err != nil {
		return nil, err
	}
	redislog.Route(nil) // the command reports the error itself
	return c.RedisClient()
}

// defaultNATS is EARSHOT_NATS_URL, else the URL (with its per-start credentials) that a
// running `earshot serve` wrote to <data dir>/nats.url (EARSHOT_DATA_DIR, default
// "data"), else a local nats-server.
func defaultNATS(e *env) string {
	return envOrDataFile(e, "EARSHOT_NATS_URL", natsURLFile, "nats://127.0.0.1:4222")
}

// defaultRedis is EARSHOT_REDIS_URL, else the URL of the Redis that `make run`
// (scripts/run.sh) started, which it wrote to <data dir>/redis.url, else a local Redis
// on its default port.
func defaultRedis(e *env) string {
	return envOrDataFile(e, "EARSHOT_REDIS_URL", redisURLFile, "redis://127.0.0.1:6379/0")
}

// redisFlagHelp describes the admin commands' --redis flag.
const redisFlagHelp = "Redis URL (env EARSHOT_REDIS_URL; default: the Redis that make run started, from <data dir>/redis.url, else redis://127.0.0.1:6379/0)"

// Files in the data dir that tell the admin commands where a running `earshot serve`
// (natsURLFile: app.NATSURLFile, written by serve) and its Redis (redisURLFile, written
// by scripts/run.sh) are.
const (
	natsURLFile  = app.NATSURLFile
	redisURLFile = "redis.url"
)

// envOrDataFile is environment variable name, else the first line of file in the data
// dir (EARSHOT_DATA_DIR, default "data"), else def.
func envOrDataFile(e *env, name, file, def string) string {
	if v := envOr(e, name, ""); v != "" {
		return v
	}
	if b, err := os.ReadFile(filepath.Join(envOr(e, "EARSHOT_DATA_DIR", "data"), file)); err == nil {
		if u, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); u != "" {
			return u
		}
	}
	return def
}

func runKeys(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["keys"], "<create|list|revoke> --tenant T [ID]")
	tenant := fs.String("tenant", "", "tenant id")
	rurl := fs.String("redis", defaultRedis(e), redisFlagHelp)
	natsURL := fs.String("nats", defaultNATS(e), "create, revoke: NATS URL for the audit log (env EARSHOT_NATS_URL; default: the running serve's embedded server from <data dir>/nats.url, else nats://127.0.0.1:4222)")
	redactDefaults(fs, "nats", "redis")
	sub, err := parseSub(fs, args)
	if err != nil {
		return err
	}
	// audit records a key change in the tenant's audit log when NATS is reachable; the
	// key change itself does not depend on it.
	audit := func(action string, id bus.KeyID) {
		ps, closeFn, err := privacyStore(ctx, *natsURL)
		if err == nil {
			defer closeFn()
			err = ps.Audit(ctx, privacy.Entry{Actor: "cli", Action: action, Tenant: bus.TenantID(*tenant), Target: string(id)})
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "warning: %s not recorded in the audit log: %v\n", action, err)
		}
	}
	if *tenant == "" {
		return fmt.Errorf("--tenant is required")
	}
	rdb, err := redisFlag(e, rurl)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ks := gateway.NewKeyStore(rdb)
	t := bus.TenantID(*tenant)
	switch sub {
	case "create":
		if err := tenantExists(ctx, rdb, t, redisHint(fs)); err != nil {
			return err
		}
		k, secret, err := ks.Create(ctx, t)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "key id: %s\nsecret: %s\n(the secret is shown once; use it as: Authorization: Token <secret>)\n", k.ID, secret)
		audit("key.created", k.ID)
		return nil
	case "list":
		keys, err := ks.List(ctx, t)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\n", k.ID, k.Created.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return fmt.Errorf("usage: earshot keys revoke --tenant T ID")
		}
		if err := ks.Revoke(ctx, t, bus.KeyID(fs.Arg(0))); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked %s\n", fs.Arg(0))
		audit("key.revoked", bus.KeyID(fs.Arg(0)))
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: use create, list or revoke", sub)
}

// tenantExists refuses a key for a tenant billing does not know: such a key would
// authenticate, and every stream would then be refused with 402 INSUFFICIENT_BALANCE
// ("unknown tenant"). The error says what to run.
func tenantExists(ctx context.Context, rdb redis.UniversalClient, t bus.TenantID, redisArg string) error {
	_, err := billing.NewStore(rdb, nil, nil).Get(ctx, t)
	if !errors.Is(err, billing.ErrUnknownTenant) {
		return err
	}
	return fmt.Errorf("tenant %s does not exist; create it first, then create the key again:\n"+
		"  earshot tenants create %s%s --plan trial   (the free trial plan)\n"+
		"or, prepaid pay-as-you-go (the default plan; `earshot tenants --help` lists the plans):\n"+
		"  earshot tenants create %s%s && earshot tenants topup %s 1000%s",
		t, t, redisArg, t, redisArg, t, redisArg)
}

// redactDefaults hides the passwords of URL flags' defaults (read from the data dir's
// files) in --help.
func redactDefaults(fs *flag.FlagSet, names ...string) {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil {
			if u, err := url.Parse(f.DefValue); err == nil {
				f.DefValue = u.Redacted()
			}
		}
	}
}

// redisHint is " --redis URL" when the command was given --redis, for the commands an
// error suggests (they must reach the same Redis).
func redisHint(fs *flag.FlagSet) string {
	hint := ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "redis" {
			u := f.Value.String()
			if pu, err := url.Parse(u); err == nil {
				u = pu.Redacted() // a password is not repeated in an error
			}
			hint = " --redis " + u
		}
	})
	return hint
}

func runTenants(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["tenants"], "<create|plan|topup|show> T [args]")
	rurl := fs.String("redis", defaultRedis(e), redisFlagHelp)
	plan := fs.String("plan", "payg", "create: price plan")
	version := fs.Int("version", 0, "plan: plan version (0 = latest)")
	plansFile := fs.String("plans", envOr(e, "EARSHOT_PLANS", ""), "price plans JSON file (env EARSHOT_PLANS; default: built-in plans)")
	natsURL := fs.String("nats", defaultNATS(e), "erase, audit: NATS URL (env EARSHOT_NATS_URL; default: the running serve's embedded server from <data dir>/nats.url, else nats://127.0.0.1:4222)")
	redactDefaults(fs, "nats", "redis")
	sub, err := parseSub(fs, args)
	if err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("usage: earshot tenants %s T ...", sub)
	}
	rdb, err := redisFlag(e, rurl)
	if err != nil {
		return err
	}
	defer rdb.Close()
	plans, err := loadPlans(*plansFile)
	if err != nil {
		return err
	}
	store := billing.NewStore(rdb, plans, nil)
	t := bus.TenantID(fs.Arg(0))
	switch sub {
	case "create":
		tn, err := store.CreateTenant(ctx, t, *plan)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant %s on plan %s v%d\n", tn.ID, tn.Plan, tn.PlanVersion)
		return nil
	case "plan":
		if fs.NArg() != 2 {
			return fmt.Errorf("usage: earshot tenants plan T PLAN")
		}
		return store.SetPlan(ctx, t, fs.Arg(1), *version)
	case "topup":
		if fs.NArg() != 2 {
			return fmt.Errorf("usage: earshot tenants topup T AMOUNT_MINOR")
		}
		amt, err := strconv.ParseInt(fs.Arg(1), 10, 64)
		if err != nil || amt <= 0 {
			return fmt.Errorf("AMOUNT must be a positive whole number of minor units (cents), got %q", fs.Arg(1))
		}
		tn, err := store.TopUp(ctx, t, amt)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant %s balance %d minor units\n", tn.ID, tn.BalanceMinor())
		return nil
	case "erase", "audit":
		ps, closeFn, err := privacyStore(ctx, *natsURL)
		if err != nil {
			return err
		}
		defer closeFn()
		if sub == "audit" {
			entries, err := ps.AuditLog(ctx, t)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET")
			for _, en := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", en.At.UTC().Format(time.RFC3339), en.Actor, en.Action, en.Target)
			}
			return tw.Flush()
		}
		n, err := ps.EraseTenant(ctx, t, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "erased tenant %s: %d transcripts, %d audio files (billing ledger kept)\n", t, n.Transcripts, n.Audio)
		return nil
	case "show":
		tn, err := store.Get(ctx, t)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "tenant %s\nplan %s v%d\nbalance %d minor units\ncreated %s\n", tn.ID, tn.Plan, tn.PlanVersion,
			tn.BalanceMinor(), tn.Created.UTC().Format(time.RFC3339))
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: use create, plan, topup or show", sub)
}

// runBillingReport prints a tenant's invoice for a month (earshot billing report).
func runBillingReport(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, commands["billing"], "report --tenant T --month YYYY-MM [--csv]")
	tenant := fs.String("tenant", "", "tenant id")
	month := fs.String("month", time.Now().UTC().Format("2006-01"), "month, YYYY-MM")
	csv := fs.Bool("csv", false, "print CSV instead of a table")
	plansFile := fs.String("plans", envOr(e, "EARSHOT_PLANS", ""), "price plans JSON file (env EARSHOT_PLANS; default: built-in plans)")
	rurl := fs.String("redis", defaultRedis(e), redisFlagHelp)
	if err := parse(fs, interleave(args)); err != nil {
		return err
	}
	if *tenant == "" {
		return fmt.Errorf("--tenant is required")
	}
	if _, err := time.Parse("2006-01", *month); err != nil {
		return fmt.Errorf("--month %q: use YYYY-MM, like 2026-11", *month)
	}
	rdb, err := redisFlag(e, rurl)
	if err != nil {
		return err
	}
	defer rdb.Close()
	plans, err := loadPlans(*plansFile)
	if err != nil {
		return err
	}
	inv, err := billing.NewStore(rdb, plans, nil).Report(ctx, bus.TenantID(*tenant), *month)
	if err != nil {
		return err
	}
	if *csv {
		return inv.WriteCSV(e.stdout)
	}
	return inv.WriteTable(e.stdout)
}

func envOr(e *env, name, def string) string {
	for _, kv := range e.environ {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return def
}

// privacyStore connects to NATS and opens the retention and audit store.
func privacyStore(ctx context.Context, url string) (*privacy.Store, func(), error) {
	nc, err := nats.Connect(url, nats.Name("earshot-cli"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w (set --nats)", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	ps, err := privacy.Open(ctx, privacy.Config{JS: js})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return ps, nc.Close, nil
}

// loadPlans reads a plans file, or returns the built-in plans for "".
func loadPlans(path string) (*billing.Plans, error) {
	if path == "" {
		return billing.DefaultPlans(), nil
	}
	return billing.LoadPlans(path)
}
