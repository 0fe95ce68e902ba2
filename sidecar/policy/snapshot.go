package policy

import (
	"strings"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/proto"
)

const numKinds = int(bridgev1.DirectiveKind_DIRECTIVE_KIND_EVENT_SAMPLING) + 1

// compiled is an immutable, validated snapshot ready for the request path.
// Per-directive runtime state (budgets, breakers, limiters, caches) hangs
// off its entries and is carried over to the next snapshot when a directive
// keeps its id and spec.
type compiled struct {
	snap    *bridgev1.DirectiveSnapshot
	version uint64
	// byKind lists, per kind, route-scoped entries first, then service-wide
	// ones, then the static defaults: the first live match wins.
	byKind [numKinds][]*entry
}

// entry is one directive in force.
type entry struct {
	d        *bridgev1.Directive
	id       string
	version  uint64
	route    string // "" for service-wide
	expires  time.Time
	dryRun   bool
	static   bool
	state    any
	kind     bridgev1.DirectiveKind
	kindName string
}

func (e *entry) live(now time.Time) bool { return e.static || now.Before(e.expires) }

func compile(snap *bridgev1.DirectiveSnapshot, defaults []*bridgev1.Directive, prev *compiled, eng *Engine) *compiled {
	c := &compiled{snap: snap, version: snap.GetVersion()}
	old := map[string]*entry{}
	if prev != nil {
		for _, list := range prev.byKind {
			for _, e := range list {
				old[e.id] = e
			}
		}
	}
	add := func(d *bridgev1.Directive, static bool) {
		k := Kind(d)
		e := &entry{
			d: d, id: d.GetId(), version: snap.GetVersion(), route: d.GetScope().GetRoute(),
			dryRun: d.GetMode() == bridgev1.DirectiveMode_DIRECTIVE_MODE_DRY_RUN && !static,
			static: static, kind: k, kindName: kindName(k),
		}
		if !static {
			e.expires = d.GetExpiresAt().AsTime()
		}
		if o, ok := old[e.id]; ok && proto.Equal(o.d.ProtoReflect().Interface(), d) && o.static == static {
			e.state = o.state
		} else {
			e.state = newState(d, eng)
		}
		c.byKind[k] = append(c.byKind[k], e)
	}
	for _, routed := range []bool{true, false} {
		for _, d := range snap.GetDirectives() {
			if (d.GetScope().GetRoute() != "") == routed {
				add(d, false)
			}
		}
	}
	for _, routed := range []bool{true, false} {
		for _, d := range defaults {
			if (d.GetScope().GetRoute() != "") == routed {
				add(d, true)
			}
		}
	}
	return c
}

// lookup returns the first live directive of kind k that matches the
// request, or nil.
func (c *compiled) lookup(k bridgev1.DirectiveKind, route, path string, now time.Time) *entry {
	if c == nil {
		return nil
	}
	for _, e := range c.byKind[k] {
		if !e.live(now) {
			continue
		}
		if e.route == "" || e.route == route || matchTemplate(e.route, path) {
			return e
		}
	}
	return nil
}

// matchTemplate reports whether path matches a route template, where a
// "{name}" segment matches any one segment and a final "{name...}" or "*"
// matches the rest. A template without braces must equal the path.
func matchTemplate(tmpl, path string) bool {
	if tmpl == path {
		return true
	}
	if !strings.ContainsAny(tmpl, "{*") {
		return false
	}
	for {
		ts, trest, tmore := strings.Cut(strings.TrimPrefix(tmpl, "/"), "/")
		ps, prest, pmore := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if ts == "*" || (strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "...}")) {
			return true
		}
		wild := strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}")
		if !wild && ts != ps {
			return false
		}
		if wild && ps == "" {
			return false
		}
		if tmore != pmore {
			return false
		}
		if !tmore {
			return true
		}
		tmpl, path = "/"+trest, "/"+prest
	}
}

func kindName(k bridgev1.DirectiveKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "DIRECTIVE_KIND_"))
}

// newState builds the runtime state a directive needs.
func newState(d *bridgev1.Directive, eng *Engine) any {
	switch s := d.GetSpec().(type) {
	case *bridgev1.Directive_Retry:
		return newBudget(s.Retry.GetBudgetRatio(), s.Retry.GetMinRetriesPerSecond())
	case *bridgev1.Directive_CircuitBreaker:
		return newBreaker(s.CircuitBreaker, d, eng)
	case *bridgev1.Directive_RateLimit:
		return newRateLimiter(s.RateLimit)
	case *bridgev1.Directive_ConcurrencyLimit:
		return newConcurrency(s.ConcurrencyLimit)
	case *bridgev1.Directive_ResponseCache:
		return newCache(s.ResponseCache)
	case *bridgev1.Directive_TrafficWeights:
		return newWeights(s.TrafficWeights)
	}
	return nil
}
