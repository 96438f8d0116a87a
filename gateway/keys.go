package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/earshot-dev/earshot/internal/bus"
	"github.com/redis/go-redis/v9"
)

// KeySecretPrefix starts every API key secret, so a leaked key is easy to recognise.
const KeySecretPrefix = "esk_"

// Key is an API key's public record: never the secret, which is stored only as its
// SHA-256 digest and shown once, by Create.
type Key struct {
	ID      bus.KeyID    `json:"id"`
	Tenant  bus.TenantID `json:"tenant"`
	Created time.Time    `json:"created"`
}

// KeyStore keeps API keys in Redis:
//
//	earshot:apikey:hash:<sha256 hex of secret>  → key id
//	earshot:apikey:id:<id>                      → hash {tenant, hash, created}
//	earshot:apikeys:<tenant>                    → set of key ids
//
// Safe for concurrent use.
type KeyStore struct {
	rdb redis.UniversalClient
}

// NewKeyStore returns a store on rdb.
func NewKeyStore(rdb redis.UniversalClient) *KeyStore { return &KeyStore{rdb: rdb} }

func hashKey(h string) string          { return "earshot:apikey:hash:" + h }
func idKey(id bus.KeyID) string        { return "earshot:apikey:id:" + string(id) }
func tenantKeys(t bus.TenantID) string { return "earshot:apikeys:" + string(t) }

func digest(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

// Create makes a key for tenant and returns its record and its secret; the secret
// cannot be recovered later.
func (s *KeyStore) Create(ctx context.Context, tenant bus.TenantID) (Key, string, error) {
	if !bus.ValidToken(string(tenant)) {
		return Key{}, "", fmt.Errorf("create key: tenant %q is not a valid id", tenant)
	}
	var idb [8]byte
	var sec [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return Key{}, "", err
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return Key{}, "", err
	}
	k := Key{ID: bus.KeyID(hex.EncodeToString(idb[:])), Tenant: tenant, Created: time.Now().UTC().Truncate(time.Second)}
	secret := KeySecretPrefix + base64.RawURLEncoding.EncodeToString(sec[:])
	h := digest(secret)
	// One write at a time (in a Redis Cluster the three keys are on different slots, so
	// no transaction spans them), the secret's lookup last: a key works only once its
	// record is complete, and a failure leaves at most a record whose secret nobody has.
	err := s.rdb.HSet(ctx, idKey(k.ID), "tenant", string(tenant), "hash", h, "created", k.Created.Format(time.RFC3339)).Err()
	if err == nil {
		err = s.rdb.SAdd(ctx, tenantKeys(tenant), string(k.ID)).Err()
	}
	if err == nil {
		err = s.rdb.Set(ctx, hashKey(h), string(k.ID), 0).Err()
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("create key for %s: %w", tenant, err)
	}
	return k, secret, nil
}

// Lookup returns the key whose secret this is, or an error wrapping ErrKeyNotFound.
func (s *KeyStore) Lookup(ctx context.Context, secret string) (Key, error) {
	if !strings.HasPrefix(secret, KeySecretPrefix) || len(secret) > 128 {
		return Key{}, fmt.Errorf("lookup key: %w", ErrKeyNotFound)
	}
	id, err := s.rdb.Get(ctx, hashKey(digest(secret))).Result()
	if errors.Is(err, redis.Nil) {
		return Key{}, fmt.Errorf("lookup key: %w", ErrKeyNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("lookup key: %w", err)
	}
	return s.get(ctx, bus.KeyID(id))
}

func (s *KeyStore) get(ctx context.Context, id bus.KeyID) (Key, error) {
	m, err := s.rdb.HGetAll(ctx, idKey(id)).Result()
	if err != nil {
		return Key{}, fmt.Errorf("get key %s: %w", id, err)
	}
	if len(m) == 0 {
		return Key{}, fmt.Errorf("get key %s: %w", id, ErrKeyNotFound)
	}
	created, _ := time.Parse(time.RFC3339, m["created"])
	return Key{ID: id, Tenant: bus.TenantID(m["tenant"]), Created: created}, nil
}

// Active reports whether key id exists.
func (s *KeyStore) Active(ctx context.Context, id bus.KeyID) (bool, error) {
	n, err := s.rdb.Exists(ctx, idKey(id)).Result()
	if err != nil {
		return false, fmt.Errorf("key %s active: %w", id, err)
	}
	return n == 1, nil
}

// List returns the tenant's keys, oldest first.
func (s *KeyStore) List(ctx context.Context, tenant bus.TenantID) ([]Key, error) {
	ids, err := s.rdb.SMembers(ctx, tenantKeys(tenant)).Result()
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", tenant, err)
	}
	keys := make([]Key, 0, len(ids))
	for _, id := range ids {
		k, err := s.get(ctx, bus.KeyID(id))
		if errors.Is(err, ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].Created.Equal(keys[j].Created) {
			return keys[i].Created.Before(keys[j].Created)
		}
		return keys[i].ID < keys[j].ID
	})
	return keys, nil
}

// Revoke deletes key id of tenant; its secret and every token issued with it stop
// working at once. A key of another tenant is ErrKeyNotFound.
func (s *KeyStore) Revoke(ctx context.Context, tenant bus.TenantID, id bus.KeyID) error {
	m, err := s.rdb.HGetAll(ctx, idKey(id)).Result()
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	if len(m) == 0 || m["tenant"] != string(tenant) {
		return fmt.Errorf("revoke key %s of %s: %w", id, tenant, ErrKeyNotFound)
	}
	// The secret's lookup first (the key stops working at once), then the record: each
	// step can be repeated, so a revocation cut short is finished by asking again.
	err = s.rdb.Del(ctx, hashKey(m["hash"])).Err()
	if err == nil {
		err = s.rdb.SRem(ctx, tenantKeys(tenant), string(id)).Err()
	}
	if err == nil {
		err = s.rdb.Del(ctx, idKey(id)).Err()
	}
	if err != nil {
		return fmt.Errorf("revoke key %s: %w", id, err)
	}
	return nil
}
