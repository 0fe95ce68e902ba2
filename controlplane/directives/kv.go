package directives

import (
	"context"
	"maps"
	"strings"
	"sync"
)

// KV is the part of the key-value store the server needs (Consul in
// production; controlplane/kv implements it).
type KV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, val []byte) error
	List(ctx context.Context, prefix string) (map[string][]byte, error)
}

// Keys in the KV store.
const (
	// PrefixDesired holds the desired snapshot per service (protojson).
	PrefixDesired = "omnibridge/directives/desired/"
	// PrefixOverrides holds operator overrides per service and kind
	// (omnibridge/directives/overrides/<service>/<kind>, a protojson
	// Directive); an override replaces the engine's directives of its kind.
	PrefixOverrides = "omnibridge/directives/overrides/"
	// PrefixCanary holds a running canary per service (JSON).
	PrefixCanary = "omnibridge/directives/canary/"
	// PrefixStatus holds each sidecar's sync state (JSON), written by the
	// replica that serves it.
	PrefixStatus = "omnibridge/directives/status/"
)

// MemoryKV is an in-process KV for tests and the embedded default; it is
// not durable.
type MemoryKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemoryKV returns an empty MemoryKV.
func NewMemoryKV() *MemoryKV { return &MemoryKV{m: map[string][]byte{}} }

// Get returns the value at key.
func (k *MemoryKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok, nil
}

// Put sets the value at key.
func (k *MemoryKV) Put(_ context.Context, key string, val []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = append([]byte(nil), val...)
	return nil
}

// Delete removes key.
func (k *MemoryKV) Delete(_ context.Context, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
	return nil
}

// List returns every key under prefix with its value.
func (k *MemoryKV) List(_ context.Context, prefix string) (map[string][]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string][]byte{}
	for key, v := range maps.All(k.m) {
		if strings.HasPrefix(key, prefix) {
			out[key] = v
		}
	}
	return out, nil
}
