package optimize

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ErrNotFound is returned for an unknown recommendation id.
var ErrNotFound = errors.New("recommendation not found")

// Record is a recommendation with what the engine keeps beside it.
type Record struct {
	// Rec is the recommendation as the API shows it.
	Rec *bridgev1.Recommendation
	// Service and Route it concerns (Route empty: service-wide).
	Service, Route string
	// Baseline is the route's outcome before enforcement.
	Baseline *Outcome
	// After is the outcome measured after enforcement.
	After *Outcome
	// Version is the snapshot version that last carried it.
	Version uint64
	// EnforcedAt is when it was enforced (zero when not).
	EnforcedAt time.Time
	// Canary is the share of sidecars it went to first (0: all).
	Canary float64
}

func (r *Record) clone() *Record {
	c := *r
	c.Rec = proto.Clone(r.Rec).(*bridgev1.Recommendation)
	if r.Baseline != nil {
		b := *r.Baseline
		c.Baseline = &b
	}
	if r.After != nil {
		a := *r.After
		c.After = &a
	}
	return &c
}

// Store keeps recommendations, the audit log and operator modes. MemStore
// and PGStore implement it.
type Store interface {
	// Put inserts or replaces a recommendation.
	Put(ctx context.Context, r *Record) error
	// Get returns one, or ErrNotFound.
	Get(ctx context.Context, id string) (*Record, error)
	// List returns the recommendations of service (all when empty) in any
	// of states (all when empty), newest first.
	List(ctx context.Context, service string, states []bridgev1.RecommendationState) ([]*Record, error)
	// Audit appends an entry to the audit log.
	Audit(ctx context.Context, e *bridgev1.AuditEntry) error
	// ListAudit returns entries (for one recommendation when id is not
	// empty), newest first, at most limit.
	ListAudit(ctx context.Context, id string, limit int) ([]*bridgev1.AuditEntry, error)
	// SetMode stores the mode of a kind for a service ("*": every service).
	SetMode(ctx context.Context, service string, kind bridgev1.DirectiveKind, mode bridgev1.DirectiveMode) error
	// Modes returns every stored mode, keyed by service then kind.
	Modes(ctx context.Context) (map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode, error)
}

// MemStore is the in-process Store (the embedded default; not durable).
type MemStore struct {
	mu    sync.Mutex
	recs  map[string]*Record
	audit []*bridgev1.AuditEntry
	modes map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{recs: map[string]*Record{}, modes: map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}}
}

// Put implements Store.
func (m *MemStore) Put(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs[r.Rec.GetId()] = r.clone()
	return nil
}

// Get implements Store.
func (m *MemStore) Get(_ context.Context, id string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[id]
	if !ok {
		return nil, ErrNotFound
	}
	return r.clone(), nil
}

// List implements Store.
func (m *MemStore) List(_ context.Context, service string, states []bridgev1.RecommendationState) ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Record
	for _, r := range m.recs {
		if service != "" && r.Service != service {
			continue
		}
		if len(states) > 0 && !slices.Contains(states, r.Rec.GetState()) {
			continue
		}
		out = append(out, r.clone())
	}
	sortNewest(out)
	return out, nil
}

func sortNewest(rs []*Record) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i].Rec.GetCreatedAt().AsTime(), rs[j].Rec.GetCreatedAt().AsTime()
		if !a.Equal(b) {
			return a.After(b)
		}
		return rs[i].Rec.GetId() > rs[j].Rec.GetId()
	})
}

// Audit implements Store.
func (m *MemStore) Audit(_ context.Context, e *bridgev1.AuditEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.At == nil {
		e.At = timestamppb.Now()
	}
	m.audit = append(m.audit, proto.Clone(e).(*bridgev1.AuditEntry))
	return nil
}

// ListAudit implements Store.
func (m *MemStore) ListAudit(_ context.Context, id string, limit int) ([]*bridgev1.AuditEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*bridgev1.AuditEntry
	for i := len(m.audit) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		if id == "" || m.audit[i].GetRecommendationId() == id {
			out = append(out, proto.Clone(m.audit[i]).(*bridgev1.AuditEntry))
		}
	}
	return out, nil
}

// SetMode implements Store.
func (m *MemStore) SetMode(_ context.Context, service string, kind bridgev1.DirectiveKind, mode bridgev1.DirectiveMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.modes[service] == nil {
		m.modes[service] = map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}
	}
	m.modes[service][kind] = mode
	return nil
}

// Modes implements Store.
func (m *MemStore) Modes(context.Context) (map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}
	for s, km := range m.modes {
		out[s] = map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}
		for k, v := range km {
			out[s][k] = v
		}
	}
	return out, nil
}
