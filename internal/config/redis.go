package config

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClient connects to Redis as c says: one server (--redis), a master followed
// through Sentinel (--redis-sentinels, --redis-master) or a Redis Cluster
// (--redis-cluster). The URL's credentials, TLS and database apply to all three (a
// cluster has only database 0). The caller closes it.
func (c *Common) RedisClient() (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("--redis %q: %w (use redis://host:port/db)", c.RedisURL, err)
	}
	switch {
	case len(c.RedisCluster) > 0:
		if opts.DB != 0 {
			return nil, fmt.Errorf("--redis %q names database %d: a Redis Cluster has only database 0", c.RedisURL, opts.DB)
		}
		// The slot map is asked for again at most a second after it was read (go-redis's
		// default is a minute): a refused connection to a dead master does not make
		// the client look again, so without this a failover would keep a tenant's slot
		// unwritable for up to a minute after a replica took over.
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.RedisCluster,
			Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig,
			ClusterStateReloadInterval: time.Second}), nil
	case len(c.RedisSentinels) > 0:
		// Sentinel tells where the master is, and again after a failover.
		return redis.NewFailoverClient(&redis.FailoverOptions{MasterName: c.RedisMaster,
			SentinelAddrs: c.RedisSentinels, Username: opts.Username, Password: opts.Password,
			DB: opts.DB, TLSConfig: opts.TLSConfig}), nil
	}
	return redis.NewClient(opts), nil
}

// RedisReplicas is how many replicas billing waits for on each ledger write: the
// --redis-wait-replicas setting, else 1 where Redis fails over (Sentinel or Cluster:
// a write on no replica could be lost with the master), else 0.
func (c *Common) RedisReplicas() int {
	if c.RedisWait > 0 {
		return c.RedisWait
	}
	if len(c.RedisSentinels) > 0 || len(c.RedisCluster) > 0 {
		return 1
	}
	return 0
}

// ValidateRedis checks the Redis settings alone (the admin commands have no others).
func (c *Common) ValidateRedis() error {
	if (len(c.RedisSentinels) > 0) != (c.RedisMaster != "") {
		return fmt.Errorf("--redis-sentinels and --redis-master go together: give both (host:port,... and the master's name) or neither")
	}
	if len(c.RedisCluster) > 0 && len(c.RedisSentinels) > 0 {
		return fmt.Errorf("--redis-cluster and --redis-sentinels exclude each other: a Redis Cluster fails over by itself, give its nodes only")
	}
	for _, a := range slices.Concat(c.RedisCluster, c.RedisSentinels) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("Redis address %q is not host:port (--redis-cluster and --redis-sentinels take host:port,...)", a)
		}
	}
	if c.RedisWait < 0 {
		return fmt.Errorf("--redis-wait-replicas %d: use 0 or more", c.RedisWait)
	}
	return nil
}
