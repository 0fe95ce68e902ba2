package kv

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/consul/api"
)

// KV is a small key-value store.
type KV interface {
	// Get returns the value and true, or false when the key is absent.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Put stores val under key.
	Put(ctx context.Context, key string, val []byte) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns every key under prefix with its value.
	List(ctx context.Context, prefix string) (map[string][]byte, error)
}

// Mem is the in-process KV for `omnibridge dev`; it is lost on exit.
type Mem struct {
	mu sync.Mutex
	m  map[string][]byte
}

var (
	_ KV = (*Mem)(nil)
	_ KV = (*Consul)(nil)
)

// NewMem returns an empty in-process KV.
func NewMem() *Mem { return &Mem{m: map[string][]byte{}} }

// Get implements [KV].
func (s *Mem) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return append([]byte(nil), v...), ok, nil
}

// Put implements [KV].
func (s *Mem) Put(_ context.Context, key string, val []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), val...)
	return nil
}

// Delete implements [KV].
func (s *Mem) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// List implements [KV].
func (s *Mem) List(_ context.Context, prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = append([]byte(nil), v...)
		}
	}
	return out, nil
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") {
		return fmt.Errorf("kv: key %q must be non-empty and not start with /", key)
	}
	return nil
}

// Consul is the Consul KV store.
type Consul struct {
	client *api.Client
}

// NewClient returns a Consul API client for addr (host:port, or a URL).
func NewClient(addr string) (*api.Client, error) {
	if addr == "" {
		return nil, errors.New("kv: consul address is required")
	}
	cfg := api.DefaultConfig()
	cfg.Address = addr
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("create consul client: %w", err)
	}
	return c, nil
}

// NewConsul returns a KV over the client's KV store.
func NewConsul(client *api.Client) *Consul { return &Consul{client: client} }

// Client returns the Consul client.
func (c *Consul) Client() *api.Client { return c.client }

// Get implements [KV].
func (c *Consul) Get(ctx context.Context, key string) ([]byte, bool, error) {
	p, _, err := c.client.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, false, fmt.Errorf("consul kv get %s: %w", key, err)
	}
	if p == nil {
		return nil, false, nil
	}
	return p.Value, true, nil
}

// Put implements [KV].
func (c *Consul) Put(ctx context.Context, key string, val []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := c.client.KV().Put(&api.KVPair{Key: key, Value: val}, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("consul kv put %s: %w", key, err)
	}
	return nil
}

// Delete implements [KV].
func (c *Consul) Delete(ctx context.Context, key string) error {
	if _, err := c.client.KV().Delete(key, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("consul kv delete %s: %w", key, err)
	}
	return nil
}

// List implements [KV].
func (c *Consul) List(ctx context.Context, prefix string) (map[string][]byte, error) {
	ps, _, err := c.client.KV().List(prefix, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("consul kv list %s: %w", prefix, err)
	}
	out := make(map[string][]byte, len(ps))
	for _, p := range ps {
		out[p.Key] = p.Value
	}
	return out, nil
}

// Effective returns a service's directive state as operators should see it:
// the desired value, and the overrides by kind that take precedence over it.
func Effective(ctx context.Context, s KV, service string) (desired []byte, overrides map[string][]byte, err error) {
	desired, _, err = s.Get(ctx, DesiredKey(service))
	if err != nil {
		return nil, nil, err
	}
	prefix := PrefixOverrides + service + "/"
	all, err := s.List(ctx, prefix)
	if err != nil {
		return nil, nil, err
	}
	overrides = make(map[string][]byte, len(all))
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		overrides[strings.TrimPrefix(k, prefix)] = all[k]
	}
	return desired, overrides, nil
}
