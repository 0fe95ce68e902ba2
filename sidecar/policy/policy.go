// Package policy is the sidecar's request-path policy hook: the seam through
// which directives from the control plane (timeouts, retries with budgets,
// circuit breaking, rate and concurrency limits, response caching, traffic
// weights, event sampling) act on proxied requests.
//
// The proxy calls it in three places:
//   - Wrap around the handler that forwards to the upstream (admission:
//     rate and concurrency limits, breaker, cache, timeout);
//   - Transport around the upstream round tripper (retries with their
//     budget, per-try timeouts, weighted endpoint choice, breaker outcomes);
//   - Sample when it is about to emit a communication event.
//
// Transport also counts every request's outcome per route in a short,
// lock-free rolling window, whether or not directives are in force, and
// raises SIGNAL_KIND_ERROR_BURST when failures pass a share of it
// (ErrorBurstConfig). Critical signals go to Config.OnSignal and are
// counted in omnibridge_policy_signals_total.
//
// The directives in force are one compiled, immutable snapshot behind an
// atomic pointer: Apply validates a new snapshot whole, then swaps it; the
// request path only loads the pointer. Each directive is checked against its
// expires_at when used, so an expired one falls back to the static defaults
// even if the control plane is gone. Dry-run directives are evaluated and
// recorded (PolicyDecision.dry_run) without changing traffic.
//
// The zero Engine passes everything through unchanged. The package never
// blocks on anything but the request it handles; per-directive state
// (breaker, limiter adaptation, cache) uses short mutexes never held across I/O.
package policy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Engine applies the directives in force. The zero value passes through.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	snap    atomic.Pointer[compiled]
	metrics *metrics
	// signals throttles critical signals to one per kind and route per second.
	signals sync.Map // string -> *atomic.Int64 (unix nanos of the last one)
	// bursts detects error bursts; nil when disabled or when nobody would
	// hear of one (no OnSignal, no Registry), as in the zero Engine.
	bursts *burstDetector
}

// New returns an Engine with cfg's static defaults in force.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate policy config: %w", err)
	}
	e := &Engine{cfg: cfg, log: cfg.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, fmt.Errorf("register policy metrics: %w", err)
	}
	e.metrics = m
	if b := cfg.ErrorBurst.withDefaults(); !b.Disabled && (cfg.OnSignal != nil || m != nil) {
		e.bursts = newBurstDetector(b)
	}
	if len(cfg.Defaults) > 0 {
		e.snap.Store(compile(&bridgev1.DirectiveSnapshot{Service: cfg.Service}, cfg.Defaults, nil, e))
	}
	return e, nil
}

// Apply validates snap and, if it is valid and not older than the snapshot
// in force, makes it the one in force atomically. A snapshot of the same
// version is accepted again (a resynchronization). On error nothing
// changes; a *ValidationError names the directive and field.
func (e *Engine) Apply(snap *bridgev1.DirectiveSnapshot) error {
	if err := Validate(snap, e.cfg.Service, e.cfg.Endpoints); err != nil {
		e.metrics.snapshot("rejected")
		return err
	}
	prev := e.snap.Load()
	if prev != nil && snap.GetVersion() < prev.version {
		e.metrics.snapshot("stale")
		return fmt.Errorf("apply snapshot %d: %w (%d)", snap.GetVersion(), ErrStaleVersion, prev.version)
	}
	next := compile(snap, e.cfg.Defaults, prev, e)
	if !e.snap.CompareAndSwap(prev, next) {
		// A concurrent Apply won; retry against what it installed.
		return e.Apply(snap)
	}
	e.metrics.snapshot("applied")
	e.metrics.version(snap.GetVersion())
	e.log.Info("directive snapshot applied", "service", snap.GetService(), "version", snap.GetVersion(), "directives", len(snap.GetDirectives()))
	return nil
}

// Version returns the version of the snapshot in force (0 if none).
func (e *Engine) Version() uint64 {
	if c := e.snap.Load(); c != nil {
		return c.version
	}
	return 0
}

// Snapshot returns the snapshot in force (nil if none). Do not modify it.
func (e *Engine) Snapshot() *bridgev1.DirectiveSnapshot {
	if c := e.snap.Load(); c != nil && c.version > 0 {
		return c.snap
	}
	return nil
}

// Active returns the ids of the directives in force now (not expired), for
// status pages and tests.
func (e *Engine) Active() []string {
	c := e.snap.Load()
	if c == nil {
		return nil
	}
	now := time.Now()
	var ids []string
	for _, list := range c.byKind {
		for _, en := range list {
			if en.live(now) && !en.static {
				ids = append(ids, en.id)
			}
		}
	}
	return ids
}

// Sample says whether the communication event of a finished request on route
// should be emitted, and the weight it then stands for (1 when every request
// is emitted). Failures are kept when the directive says so. It is
// Keep(Draw(route), success).
func (e *Engine) Sample(route string, success bool) (keep bool, weight float64) {
	return e.Keep(e.Draw(route), success)
}

// SampleDraw is the sampling decision for one request, drawn when it
// arrives, before its outcome is known. The proxy reserves the event's
// sequence number at arrival when the draw keeps it, so that an event lost
// to a crash between the response and the event is still a counted gap.
type SampleDraw struct {
	en     *entry
	weight float64
	keep   bool // drawn in: kept whatever the outcome
}

// Kept reports whether the event will be emitted whatever the outcome.
func (d SampleDraw) Kept() bool { return d.keep }

// Draw draws the sampling decision for a request on route.
func (e *Engine) Draw(route string) SampleDraw {
	c := e.snap.Load()
	if c == nil {
		return SampleDraw{keep: true, weight: 1}
	}
	en := c.lookup(bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING, route, route, time.Now())
	if en == nil {
		return SampleDraw{keep: true, weight: 1}
	}
	if rate := en.d.GetEventSampling().GetSampleRate(); rand.Float64() < rate {
		return SampleDraw{en: en, keep: true, weight: 1 / rate}
	}
	return SampleDraw{en: en}
}

// Keep says whether the event of a finished request drawn as d is emitted,
// and the weight it stands for. A draw that kept the event always keeps it.
func (e *Engine) Keep(d SampleDraw, success bool) (keep bool, weight float64) {
	if d.keep {
		return true, d.weight
	}
	if !success && d.en.d.GetEventSampling().GetAlwaysKeepErrors() {
		return true, 1
	}
	e.metrics.decision(d.en, "sampled_out")
	if d.en.dryRun {
		return true, 1
	}
	return false, 0
}

// signal counts a critical signal seen by the request ctx and hands it to
// Config.OnSignal, at most one per kind and route per second. The signal
// carries the id of the request's own event (EventID), the bus copy the
// control plane de-duplicates it against.
func (e *Engine) signal(ctx context.Context, kind bridgev1.SignalKind, route string, value float64, n uint64) {
	if e == nil || (e.cfg.OnSignal == nil && e.metrics == nil) {
		return
	}
	now := time.Now()
	v, _ := e.signals.LoadOrStore(kind.String()+" "+route, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	if now.UnixNano()-prev < int64(time.Second) || !last.CompareAndSwap(prev, now.UnixNano()) {
		return
	}
	e.metrics.signal(kind)
	if e.cfg.OnSignal == nil {
		return
	}
	e.cfg.OnSignal(&bridgev1.CriticalSignal{
		EventId: EventID(ctx), Kind: kind, Route: route, Value: value,
		WindowRequests: n, ObservedAt: timestamppb.New(now),
	})
}

// decide records a decision on the request and counts it.
func (e *Engine) decide(ctx context.Context, en *entry, action bridgev1.PolicyAction) {
	e.metrics.decision(en, action.String())
	Record(ctx, &bridgev1.PolicyDecision{DirectiveId: en.id, DirectiveVersion: en.version, Action: action, DryRun: en.dryRun})
}

type routeKey struct{}

// WithRoute tells the policies the templated route of the request
// ("/orders/{id}"), when the proxy knows it; otherwise directives are
// matched against the request path.
func WithRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, routeKey{}, route)
}

func routeOf(ctx context.Context) string {
	r, _ := ctx.Value(routeKey{}).(string)
	return r
}

type recorderKey struct{}

// recorder collects the decisions policies take for one request. The
// request's goroutine is its only writer (the upstream round trip runs on it).
type recorder struct {
	decisions []*bridgev1.PolicyDecision
	endpoint  string
	eventID   string // the request's event id, once a signal needed it
}

// WithRecorder returns a context that collects policy decisions for one
// request; the proxy installs it before calling the wrapped handler and reads
// it back with Decisions when it builds the request's event.
func WithRecorder(ctx context.Context) context.Context {
	return context.WithValue(ctx, recorderKey{}, &recorder{})
}

// Record adds a decision to the request's recorder, if it has one.
func Record(ctx context.Context, d *bridgev1.PolicyDecision) {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		r.decisions = append(r.decisions, d)
	}
}

// Decisions returns the decisions recorded for the request (nil when none).
func Decisions(ctx context.Context) []*bridgev1.PolicyDecision {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		return r.decisions
	}
	return nil
}

// EventID returns the id the request's event will carry, choosing it now
// if nothing has: a critical signal sent on the directive stream carries
// the id of the event whose bus copy tells the same story, so that the
// control plane counts the two once. Without a recorder it returns a fresh
// id.
func EventID(ctx context.Context) string {
	r, ok := ctx.Value(recorderKey{}).(*recorder)
	if !ok {
		return bus.NewEventID()
	}
	if r.eventID == "" {
		r.eventID = bus.NewEventID()
	}
	return r.eventID
}

// ChosenEventID returns the request's event id if EventID chose one, else
// "" (the proxy then lets the envelope choose).
func ChosenEventID(ctx context.Context) string {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		return r.eventID
	}
	return ""
}

// Endpoint returns the upstream endpoint a traffic-weights directive sent
// the request to ("" when none chose), for PerformanceMetrics.upstream_endpoint.
func Endpoint(ctx context.Context) string {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		return r.endpoint
	}
	return ""
}

func setEndpoint(ctx context.Context, ep string) {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		r.endpoint = ep
	}
}

func retryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
}
