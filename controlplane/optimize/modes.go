package optimize

import (
	"context"
	"strings"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// ParseMode parses "recommend", "dry_run" (or "dry-run") and "enforce".
func ParseMode(s string) (bridgev1.DirectiveMode, bool) {
	v, ok := bridgev1.DirectiveMode_value["DIRECTIVE_MODE_"+strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))]
	if !ok || v == 0 {
		return 0, false
	}
	return bridgev1.DirectiveMode(v), true
}

// ParseKind parses a kind name such as "retry" or "circuit_breaker".
func ParseKind(s string) (bridgev1.DirectiveKind, bool) {
	v, ok := bridgev1.DirectiveKind_value["DIRECTIVE_KIND_"+strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))]
	if !ok || v == 0 {
		return 0, false
	}
	return bridgev1.DirectiveKind(v), true
}

// readKVModes refreshes the mode overrides kept in the KV store.
func (e *Engine) readKVModes(ctx context.Context) {
	if e.cfg.Modes == nil {
		return
	}
	kv, err := e.cfg.Modes.List(ctx, ModePrefix)
	if err != nil {
		e.log.Warn("read mode overrides", "err", err)
		return
	}
	out := map[string]map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}
	for key, val := range kv {
		svc, k, ok := strings.Cut(strings.TrimPrefix(key, ModePrefix), "/")
		kind, kok := ParseKind(k)
		mode, mok := ParseMode(string(val))
		if !ok || !kok || !mok {
			e.metrics.badModes.Inc()
			e.log.Warn("bad mode override in kv", "key", key, "value", string(val))
			continue
		}
		if out[svc] == nil {
			out[svc] = map[bridgev1.DirectiveKind]bridgev1.DirectiveMode{}
		}
		out[svc][kind] = mode
	}
	e.kvModes = out
}

// modeLocked resolves the mode of a kind for a service: a KV override for
// the service, then for "*", then one set through the API for the
// service, then for "*", then the kind's default.
func (e *Engine) modeLocked(ctx context.Context, service string, kind bridgev1.DirectiveKind) bridgev1.DirectiveMode {
	for _, s := range []string{service, "*"} {
		if m, ok := e.kvModes[s][kind]; ok {
			return m
		}
	}
	stored, err := e.store.Modes(ctx)
	if err != nil {
		e.log.Warn("read modes", "err", err)
	}
	for _, s := range []string{service, "*"} {
		if m, ok := stored[s][kind]; ok {
			return m
		}
	}
	return e.guard(kind).DefaultMode
}

// Mode returns the mode in force for a kind of a service.
func (e *Engine) Mode(ctx context.Context, service string, kind bridgev1.DirectiveKind) bridgev1.DirectiveMode {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.modeLocked(ctx, service, kind)
}
