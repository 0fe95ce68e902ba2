package sidecar

import (
	"encoding/json"
	"net/http"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/sidecar/emit"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminHandler serves /livez, /readyz, /metrics and /debug/state.
func (s *Sidecar) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready: starting or draining", http.StatusServiceUnavailable)
			return
		}
		if bridgev1.HealthStatus(s.health.Load()) == bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY {
			http.Error(w, "not ready: upstream unhealthy", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /debug/state", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.state())
	})
	return mux
}

// debugState is /debug/state: configuration without secrets, and the state
// of the queue, the spool and the bus.
type debugState struct {
	Service        string   `json:"service"`
	Version        string   `json:"version,omitempty"`
	Instance       string   `json:"instance"`
	Listen         string   `json:"listen"`
	Upstream       string   `json:"upstream"`
	Admin          string   `json:"admin"`
	Hooks          string   `json:"hooks"`
	TLS            bool     `json:"tls"`
	MCP            bool     `json:"mcp"`
	Emit           bool     `json:"emit"`
	Brokers        []string `json:"brokers,omitempty"`
	SpoolDir       string   `json:"spool_dir,omitempty"`
	StateDir       string   `json:"state_dir"`
	ControlPlane   string   `json:"control_plane,omitempty"`
	Ready          bool     `json:"ready"`
	UpstreamHealth string   `json:"upstream_health"`
	Sequence       uint64   `json:"sequence"`
	// RunStart is the last sequence number used before this run started;
	// SequenceResumed says whether it was continued exactly (a restart on
	// the same boot, clean or not) rather than past the reservation.
	RunStart        uint64     `json:"run_start_sequence"`
	SequenceResumed bool       `json:"sequence_resumed"`
	PolicyVersion   uint64     `json:"policy_version"`
	Emitter         emit.Stats `json:"emitter"`
}

func (s *Sidecar) state() debugState {
	d := debugState{
		Service: s.cfg.Service, Version: s.cfg.Version, Instance: s.src.Identity().GetInstance(),
		Listen: s.ProxyAddr(), Upstream: s.upstream.Redacted(), Admin: s.AdminAddr(), Hooks: s.HooksAddr(),
		TLS: s.cfg.TLSCert != "", MCP: s.cfg.MCP, Emit: s.cfg.Emit, SpoolDir: s.cfg.SpoolDir, StateDir: s.cfg.StateDir,
		Ready: s.ready.Load(), UpstreamHealth: bridgev1.HealthStatus(s.health.Load()).String(),
		Sequence: s.src.Sequence(), RunStart: s.runStart, SequenceResumed: s.seq.resumed, Emitter: s.EmitStats(),
	}
	if s.cfg.Policy != nil {
		d.PolicyVersion = s.cfg.Policy.Version() // 0: no snapshot applied yet
	}
	if s.cfg.Bus != nil {
		d.Brokers = s.cfg.Bus.Brokers // addresses only; SASL and TLS material stay out
	}
	if s.cfg.ControlPlane != "" {
		d.ControlPlane = s.redactedURL(s.cfg.ControlPlane)
	}
	return d
}

func (s *Sidecar) redactedURL(raw string) string {
	u, err := parseURL(raw)
	if err != nil {
		return "(invalid)"
	}
	return u.Redacted()
}
