package cache

import (
	"context"
	"sync"
	"time"
)

// memMaxEntries bounds the embedded cache; past it an arbitrary entry is evicted.
const memMaxEntries = 100_000

// Mem is the embedded in-process cache for `omnibridge dev`; it is lost on
// exit and not shared between processes.
type Mem struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]memEntry
}

type memEntry struct {
	val []byte
	exp time.Time
}

var _ Cache = (*Mem)(nil)

// NewMem returns an empty in-process cache.
func NewMem() *Mem { return &Mem{now: time.Now, m: map[string]memEntry{}} }

// Get implements [Cache].
func (c *Mem) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false, nil
	}
	if !c.now().Before(e.exp) {
		delete(c.m, key)
		return nil, false, nil
	}
	return append([]byte(nil), e.val...), true, nil
}

// Set implements [Cache].
func (c *Mem) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= memMaxEntries {
		now := c.now()
		for k, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < memMaxEntries {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = memEntry{val: append([]byte(nil), val...), exp: c.now().Add(ttl)}
	return nil
}

// Del implements [Cache].
func (c *Mem) Del(_ context.Context, keys ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.m, k)
	}
	return nil
}

// Purge deletes every key with the prefix.
func (c *Mem) Purge(_ context.Context, prefix string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(c.m, k)
		}
	}
	return nil
}
