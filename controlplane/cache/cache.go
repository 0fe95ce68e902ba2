package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Cache is a byte-value cache with per-key TTLs.
type Cache interface {
	// Get returns the value and true, or false on a miss.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores val for ttl.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Del removes keys; missing keys are not an error.
	Del(ctx context.Context, keys ...string) error
}

// ErrUnavailable is returned (wrapped) while a cache backend is considered
// down after a failure.
var ErrUnavailable = errors.New("cache unavailable")

// Family is a key family of the original design.
type Family int

// The key families.
const (
	// ServiceMeta is service:meta:{service}, base TTL 300s, longer for stable services.
	ServiceMeta Family = iota
	// Perf is perf:{service}:{operation}, base TTL 60s, shorter for volatile metrics (floor 30s).
	Perf
	// Intel is intel:{pattern_type}, TTL 3600s.
	Intel
	// Opt is opt:{service}, TTL 1800s.
	Opt
)

// Families lists every family.
var Families = []Family{ServiceMeta, Perf, Intel, Opt}

var families = [...]struct {
	name, prefix string
	base         time.Duration
	parts        int
}{
	ServiceMeta: {"service_meta", "service:meta:", 300 * time.Second, 1},
	Perf:        {"perf", "perf:", 60 * time.Second, 2},
	Intel:       {"intel", "intel:", 3600 * time.Second, 1},
	Opt:         {"opt", "opt:", 1800 * time.Second, 1},
}

// perfFloor is the shortest TTL a volatile performance metric gets.
const perfFloor = 30 * time.Second

// String returns the family's metric label.
func (f Family) String() string {
	if f < 0 || int(f) >= len(families) {
		return fmt.Sprintf("family(%d)", int(f))
	}
	return families[f].name
}

// Prefix returns the family's key prefix, e.g. "perf:".
func (f Family) Prefix() string { return families[f].prefix }

// BaseTTL returns the family's base TTL.
func (f Family) BaseTTL() time.Duration { return families[f].base }

// Key builds a key of the family: ServiceMeta.Key("pay") is
// "service:meta:pay", Perf.Key("pay", "charge") is "perf:pay:charge". It
// panics on the wrong number of parts (a programming error).
func (f Family) Key(parts ...string) string {
	if len(parts) != families[f].parts {
		panic(fmt.Sprintf("cache: %s key takes %d parts, got %d", f, families[f].parts, len(parts)))
	}
	return f.Prefix() + strings.Join(parts, ":")
}

// TTL returns the adaptive TTL of the family for a score in [0, 1] (clamped):
// for ServiceMeta the score is the service's stability and the TTL is
// base*(1+stability); for Perf it is the metric's volatility and the TTL is
// max(30s, base*(1-volatility)); Intel and Opt use their base TTL.
func TTL(f Family, score float64) time.Duration {
	score = min(max(score, 0), 1)
	base := f.BaseTTL()
	switch f {
	case ServiceMeta:
		return time.Duration(float64(base) * (1 + score))
	case Perf:
		return max(perfFloor, time.Duration(float64(base)*(1-score)))
	default:
		return base
	}
}
