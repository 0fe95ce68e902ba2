package directives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/connect"
	lru "github.com/hashicorp/golang-lru/v2"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var _ bridgev1connect.DirectiveServiceHandler = (*Server)(nil)

// Server implements DirectiveService. Create it with New; serve its Handler
// over HTTP/2 (h2c or TLS) and run Run alongside.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	seen    *lru.Cache[string, struct{}]

	// publishMu serializes this replica's read-modify-write of versions.
	publishMu sync.Mutex

	mu       sync.Mutex
	services map[string]*service
	versions map[string]uint64
	sidecars map[string]*sidecar       // key service/instance, served by this replica
	ackTally map[string]map[uint64]int // service -> acked version -> connected sidecars
	acked    chan struct{}             // closed and replaced on every ack or reject
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate directives config: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, services: map[string]*service{}, versions: map[string]uint64{},
		sidecars: map[string]*sidecar{}, ackTally: map[string]map[uint64]int{}, acked: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.seen, err = lru.New[string, struct{}](cfg.SeenEvents); err != nil {
		return nil, fmt.Errorf("create seen-event cache: %w", err)
	}
	if s.metrics, err = newMetrics(cfg.Registry); err != nil {
		return nil, fmt.Errorf("register directive metrics: %w", err)
	}
	return s, nil
}

// Handler returns the path and handler of DirectiveService (Connect, gRPC
// and gRPC-Web).
func (s *Server) Handler(opts ...connect.HandlerOption) (string, http.Handler) {
	return bridgev1connect.NewDirectiveServiceHandler(s, opts...)
}

// Run polls the KV store for changes made elsewhere and flushes sidecar
// status to it, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.refresh(ctx); err != nil {
		s.log.Warn("read directive state", "err", err)
	}
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	flush := time.NewTicker(s.cfg.StatusFlush)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flushStatus(context.WithoutCancel(ctx))
			return nil
		case <-poll.C:
			if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
				s.metrics.kvErrors.Inc()
				s.log.Warn("read directive state", "err", err)
			}
		case <-flush.C:
			s.flushStatus(ctx)
		}
	}
}

// Publish makes directives the desired set of service under a new version
// and sends it to the service's sidecars: to all of them, or, when
// canaryFraction is in (0, 1), only to that share of instances while the
// rest keep the version in force (call Promote to finish the rollout).
func (s *Server) Publish(ctx context.Context, service string, ds []*bridgev1.Directive, canaryFraction float64) (uint64, error) {
	if service == "" {
		return 0, errors.New("publish directives: empty service")
	}
	if canaryFraction < 0 || canaryFraction > 1 {
		return 0, fmt.Errorf("publish directives: canary fraction %v outside 0 to 1", canaryFraction)
	}
	s.publishMu.Lock()
	defer s.publishMu.Unlock()
	cur, err := s.readDesired(ctx, service)
	if err != nil {
		return 0, err
	}
	next := &bridgev1.DirectiveSnapshot{Service: service, Version: cur.GetVersion() + 1, Directives: ds, IssuedAt: timestamppb.Now()}
	if canaryFraction > 0 && canaryFraction < 1 && cur != nil {
		// A canary on top of a running canary keeps the original stable version.
		stableSnap := cur
		s.mu.Lock()
		if sv := s.services[service]; sv != nil && sv.canary != nil {
			stableSnap = sv.canary.stable
		}
		s.mu.Unlock()
		stable, err := pj.Marshal(stableSnap)
		if err != nil {
			return 0, fmt.Errorf("encode stable snapshot: %w", err)
		}
		c, _ := json.Marshal(canary{Fraction: canaryFraction, Stable: stable})
		if err := s.cfg.KV.Put(ctx, PrefixCanary+service, c); err != nil {
			return 0, fmt.Errorf("write canary: %w", err)
		}
	} else if err := s.cfg.KV.Put(ctx, PrefixCanary+service, nil); err != nil {
		return 0, fmt.Errorf("clear canary: %w", err)
	}
	if err := s.writeDesired(ctx, next); err != nil {
		return 0, err
	}
	s.metrics.published.Inc()
	return next.GetVersion(), s.refresh(ctx)
}

// Promote ends a service's canary: every instance gets the desired version.
func (s *Server) Promote(ctx context.Context, service string) error {
	if err := s.cfg.KV.Put(ctx, PrefixCanary+service, nil); err != nil {
		return fmt.Errorf("clear canary: %w", err)
	}
	return s.refresh(ctx)
}

// Desired returns the desired snapshot of a service (nil if none).
func (s *Server) Desired(ctx context.Context, service string) (*bridgev1.DirectiveSnapshot, error) {
	return s.readDesired(ctx, service)
}

// bump republishes a service's desired set under a new version.
func (s *Server) bump(ctx context.Context, service string) (uint64, error) {
	s.publishMu.Lock()
	cur, err := s.readDesired(ctx, service)
	if err != nil || cur == nil {
		s.publishMu.Unlock()
		return 0, err
	}
	cur.Version++
	cur.IssuedAt = timestamppb.Now()
	err = s.writeDesired(ctx, cur)
	s.publishMu.Unlock()
	if err != nil {
		return 0, err
	}
	return cur.GetVersion(), s.refresh(ctx)
}

func (s *Server) readDesired(ctx context.Context, service string) (*bridgev1.DirectiveSnapshot, error) {
	b, ok, err := s.cfg.KV.Get(ctx, PrefixDesired+service)
	if err != nil {
		return nil, fmt.Errorf("read desired snapshot: %w", err)
	}
	if !ok || len(b) == 0 {
		return nil, nil
	}
	snap := &bridgev1.DirectiveSnapshot{}
	if err := protojson.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("decode desired snapshot of %s: %w", service, err)
	}
	return snap, nil
}

func (s *Server) writeDesired(ctx context.Context, snap *bridgev1.DirectiveSnapshot) error {
	b, err := pj.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode desired snapshot: %w", err)
	}
	if err := s.cfg.KV.Put(ctx, PrefixDesired+snap.GetService(), b); err != nil {
		return fmt.Errorf("write desired snapshot: %w", err)
	}
	return nil
}

// SeenEvent records an event id and reports whether it had been seen
// before, by the stream or by an earlier call. The ingest path calls it for
// the bus copy of a critical signal; the stream calls it for the fast copy;
// whichever comes second is the duplicate.
func (s *Server) SeenEvent(id string) bool {
	if id == "" {
		return false
	}
	seen, _ := s.seen.ContainsOrAdd(id, struct{}{})
	return seen
}

// snapshotFor returns the effective snapshot for an instance and the
// channel closed at the service's next change.
func (s *Server) snapshotFor(service, instance string) (*bridgev1.DirectiveSnapshot, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.serviceLocked(service)
	return sv.snapshotFor(instance), sv.changed
}

// ensureLoaded reads a service's state the first time a sidecar of it connects.
func (s *Server) ensureLoaded(ctx context.Context, service string) {
	s.mu.Lock()
	known := s.services[service] != nil && s.services[service].desired != nil
	s.mu.Unlock()
	if !known {
		if err := s.refresh(ctx); err != nil {
			s.log.Warn("read directive state", "err", err)
		}
	}
}
