package directives

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"github.com/omninode/bridge/internal/directive"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// service is what a replica knows of one service's desired state.
type service struct {
	desired   *bridgev1.DirectiveSnapshot // the engine's directives, versioned
	overrides map[string]*bridgev1.Directive
	ovHash    string
	canary    *canary
	// effective and stable are what sidecars get: desired (or the canary's
	// stable snapshot) with the overrides merged in.
	effective *bridgev1.DirectiveSnapshot
	stable    *bridgev1.DirectiveSnapshot
	changed   chan struct{} // closed and replaced when effective or stable change
}

// canary is a rollout that sends the desired version to a share of the
// instances while the others keep the stable one.
type canary struct {
	Fraction float64         `json:"fraction"`
	Stable   json.RawMessage `json:"stable"` // protojson DirectiveSnapshot
	stable   *bridgev1.DirectiveSnapshot
}

// inCanary says whether an instance belongs to a canary of the given
// fraction: a stable hash of its id, so the choice survives reconnects and
// is the same on every replica.
func inCanary(instance string, fraction float64) bool {
	h := fnv.New32a()
	h.Write([]byte(instance))
	return float64(h.Sum32()%10000) < fraction*10000
}

// snapshotFor returns the snapshot an instance should have (nil if none).
func (sv *service) snapshotFor(instance string) *bridgev1.DirectiveSnapshot {
	if sv.canary != nil && sv.stable != nil && !inCanary(instance, sv.canary.Fraction) {
		return sv.stable
	}
	return sv.effective
}

// merge returns base with every directive of an overridden kind replaced by
// the override.
func merge(base *bridgev1.DirectiveSnapshot, overrides map[string]*bridgev1.Directive) *bridgev1.DirectiveSnapshot {
	if base == nil {
		return nil
	}
	if len(overrides) == 0 {
		return base
	}
	out := proto.Clone(base).(*bridgev1.DirectiveSnapshot)
	out.Directives = slices.DeleteFunc(out.Directives, func(d *bridgev1.Directive) bool {
		_, ok := overrides[kindKey(d)]
		return ok
	})
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.Directives = append(out.Directives, overrides[k])
	}
	return out
}

// kindKey names a directive's kind as used in override keys ("retry", "timeout", ...).
func kindKey(d *bridgev1.Directive) string { return KindKey(directive.Kind(d)) }

// KindKey returns the lower-case name of a kind used in KV keys and the CLI
// ("timeout", "retry", "circuit_breaker", ...).
func KindKey(k bridgev1.DirectiveKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "DIRECTIVE_KIND_"))
}

var pj = protojson.MarshalOptions{Multiline: true}

// loaded is one service's state as read from the KV store.
type loaded struct {
	desired   *bridgev1.DirectiveSnapshot
	overrides map[string]*bridgev1.Directive
	ovHash    string
	canary    *canary
}

// loadAll reads every service's desired state, overrides and canary.
func (s *Server) loadAll(ctx context.Context) (map[string]*loaded, error) {
	out := map[string]*loaded{}
	get := func(name string) *loaded {
		if out[name] == nil {
			out[name] = &loaded{overrides: map[string]*bridgev1.Directive{}}
		}
		return out[name]
	}
	desired, err := s.cfg.KV.List(ctx, PrefixDesired)
	if err != nil {
		return nil, fmt.Errorf("list desired snapshots: %w", err)
	}
	for key, val := range desired {
		snap := &bridgev1.DirectiveSnapshot{}
		if err := protojson.Unmarshal(val, snap); err != nil {
			s.log.Warn("bad desired snapshot in kv", "key", key, "err", err)
			s.metrics.kvErrors.Inc()
			continue
		}
		get(strings.TrimPrefix(key, PrefixDesired)).desired = snap
	}
	ovs, err := s.cfg.KV.List(ctx, PrefixOverrides)
	if err != nil {
		return nil, fmt.Errorf("list overrides: %w", err)
	}
	hashes := map[string][]string{}
	for key, val := range ovs {
		name, kind, ok := strings.Cut(strings.TrimPrefix(key, PrefixOverrides), "/")
		if !ok || len(val) == 0 {
			continue
		}
		d := &bridgev1.Directive{}
		if err := protojson.Unmarshal(val, d); err != nil || kindKey(d) != kind {
			s.log.Warn("bad override in kv", "key", key, "err", err)
			s.metrics.kvErrors.Inc()
			continue
		}
		get(name).overrides[kind] = d
		sum := sha256.Sum256(val)
		hashes[name] = append(hashes[name], kind+fmt.Sprintf("%x", sum[:8]))
	}
	for name, hs := range hashes {
		sort.Strings(hs)
		get(name).ovHash = strings.Join(hs, ",")
	}
	cans, err := s.cfg.KV.List(ctx, PrefixCanary)
	if err != nil {
		return nil, fmt.Errorf("list canaries: %w", err)
	}
	for key, val := range cans {
		if len(val) == 0 {
			continue
		}
		c := &canary{}
		if err := json.Unmarshal(val, c); err != nil {
			s.metrics.kvErrors.Inc()
			continue
		}
		c.stable = &bridgev1.DirectiveSnapshot{}
		if err := protojson.Unmarshal(c.Stable, c.stable); err != nil {
			s.metrics.kvErrors.Inc()
			continue
		}
		get(strings.TrimPrefix(key, PrefixCanary)).canary = c
	}
	return out, nil
}

// fillOverrides completes operator overrides: the service, an id, a mode
// and an expiry when they lack them.
func (s *Server) fillOverrides(name string, ovs map[string]*bridgev1.Directive) {
	for kind, d := range ovs {
		if d.Scope == nil {
			d.Scope = &bridgev1.Scope{}
		}
		d.Scope.Service = name
		if d.GetId() == "" {
			d.Id = "override-" + name + "-" + kind
		}
		if d.GetMode() == bridgev1.DirectiveMode_DIRECTIVE_MODE_UNSPECIFIED {
			d.Mode = bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE
		}
		if d.GetExpiresAt() == nil {
			d.ExpiresAt = timestamppb.New(time.Now().Add(s.cfg.OverrideTTL))
		}
		if d.GetProvenance() == nil {
			d.Provenance = &bridgev1.Provenance{Author: "operator:consul", Reason: "operator override in " + PrefixOverrides + name + "/" + kind}
		}
	}
}

// refresh reads the KV store and installs what changed, notifying the
// streams of the services that changed. When a service's overrides changed
// since this replica last saw them, its version is bumped so that sidecars
// take the new effective snapshot.
func (s *Server) refresh(ctx context.Context) error {
	all, err := s.loadAll(ctx)
	if err != nil {
		return err
	}
	var bump []string
	s.mu.Lock()
	for name, l := range all {
		sv := s.serviceLocked(name)
		if sv.desired != nil && l.desired != nil && l.ovHash != sv.ovHash && l.desired.GetVersion() == sv.desired.GetVersion() {
			bump = append(bump, name)
		}
		if l.ovHash != sv.ovHash {
			s.fillOverrides(name, l.overrides)
		} else {
			l.overrides = sv.overrides
		}
		s.installLocked(ctx, name, sv, l)
	}
	s.mu.Unlock()
	for _, name := range bump {
		if _, err := s.bump(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// installLocked makes l the service's state and wakes its streams if what
// sidecars get changed.
func (s *Server) installLocked(ctx context.Context, name string, sv *service, l *loaded) {
	if l.desired != nil && sv.desired != nil && l.desired.GetVersion() < sv.desired.GetVersion() {
		return // an older read racing a local publish
	}
	sv.desired, sv.overrides, sv.ovHash, sv.canary = l.desired, l.overrides, l.ovHash, l.canary
	eff := merge(sv.desired, sv.overrides)
	var stable *bridgev1.DirectiveSnapshot
	if sv.canary != nil {
		stable = merge(sv.canary.stable, sv.overrides)
	}
	if !proto.Equal(eff, sv.effective) || !proto.Equal(stable, sv.stable) {
		sv.effective, sv.stable = eff, stable
		old := sv.changed
		sv.changed = make(chan struct{})
		if origin := s.sidecars[key(name, originOf(ctx))]; origin != nil && originOf(ctx) != "" && s.cfg.PriorityLead > 0 {
			// A change made in reaction to a sidecar's signal reaches that
			// sidecar first; the others follow PriorityLead later.
			select {
			case origin.kick <- struct{}{}:
			default:
			}
			time.AfterFunc(s.cfg.PriorityLead, func() { close(old) })
		} else {
			close(old)
		}
		if eff != nil {
			s.versions[name] = eff.GetVersion()
		}
	}
}

func (s *Server) serviceLocked(name string) *service {
	sv := s.services[name]
	if sv == nil {
		sv = &service{changed: make(chan struct{}), overrides: map[string]*bridgev1.Directive{}}
		s.services[name] = sv
	}
	return sv
}

type originKey struct{}

// withOrigin marks a context as handling a signal from instance, so that a
// directive published in reaction reaches that instance first.
func withOrigin(ctx context.Context, instance string) context.Context {
	return context.WithValue(ctx, originKey{}, instance)
}

func originOf(ctx context.Context) string {
	s, _ := ctx.Value(originKey{}).(string)
	return s
}
