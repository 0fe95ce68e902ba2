package optimize

import (
	"time"
)

// RouteSnapshot is what the engine needs to know of one route over a window.
type RouteSnapshot struct {
	// Service and Route identify it (Route is the templated route or RPC).
	Service, Route string
	// Methods are the HTTP methods seen (upper case); gRPC and Connect are POST.
	Methods []string
	// Window is the span the figures cover.
	Window time.Duration
	// Requests and Errors counted in the window (weighted by sampling),
	// as the clients saw them (after the sidecars' retries).
	Requests, Errors uint64
	// Retries are the extra upstream attempts the sidecars made; each one
	// followed a transient failure the client did not see.
	Retries uint64
	// StatusCounts counts responses per HTTP status.
	StatusCounts map[int]uint64
	// RPCCodes counts gRPC/Connect codes ("unavailable", ...), successes excluded.
	RPCCodes map[string]uint64
	// Latency percentiles.
	P50, P90, P99, P999 time.Duration
	// Endpoints breaks the route down per upstream endpoint and service version.
	Endpoints []EndpointStats
	// RepeatedGetShare is the share of GET/HEAD requests whose response was
	// identical to the previous one for the same URL, 0 to 1 (cache potential).
	RepeatedGetShare float64
	// ChangeInterval is the median time between changes of a repeated GET's
	// response; 0 when unknown.
	ChangeInterval time.Duration
	// SampleTraceIDs are a few traces of slow or failed requests, for evidence.
	SampleTraceIDs []string
}

// EndpointStats are one upstream endpoint's figures for a route.
type EndpointStats struct {
	// Endpoint is the upstream URL (PerformanceMetrics.upstream_endpoint).
	Endpoint string
	// Version is the service version served there.
	Version string
	// Requests and Errors in the window.
	Requests, Errors uint64
	// P99 latency.
	P99 time.Duration
}

// StatsReader gives route statistics; controlplane/analyze implements it.
type StatsReader interface {
	// Routes returns the statistics of every route of service (every
	// service when empty) over the last window.
	Routes(service string, window time.Duration) []RouteSnapshot
}

// ErrorRate is Errors/Requests (0 without requests).
func (r RouteSnapshot) ErrorRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Requests)
}

// RPS is the request rate over the window.
func (r RouteSnapshot) RPS() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Window.Seconds()
}

// transient counts the failures that retries can help: 502, 503, 504 and
// gRPC/Connect unavailable.
func (r RouteSnapshot) transient() uint64 {
	return r.StatusCounts[502] + r.StatusCounts[503] + r.StatusCounts[504] + r.RPCCodes["unavailable"]
}

// upstreamTransientRate is the share of upstream attempts that failed
// transiently: what the clients saw plus what retries hid.
func (r RouteSnapshot) upstreamTransientRate() float64 {
	attempts := r.Requests + r.Retries
	if attempts == 0 {
		return 0
	}
	return float64(r.transient()+r.Retries) / float64(attempts)
}

// idempotent reports whether every method seen on the route is idempotent.
func (r RouteSnapshot) idempotent() bool {
	if len(r.Methods) == 0 {
		return false
	}
	for _, m := range r.Methods {
		switch m {
		case "GET", "HEAD", "OPTIONS", "PUT", "DELETE":
		default:
			return false
		}
	}
	return true
}

// readOnly reports whether the route only serves GET/HEAD.
func (r RouteSnapshot) readOnly() bool {
	if len(r.Methods) == 0 {
		return false
	}
	for _, m := range r.Methods {
		if m != "GET" && m != "HEAD" {
			return false
		}
	}
	return true
}

// Outcome is what effectiveness compares before and after.
type Outcome struct {
	Requests  uint64        `json:"requests"`
	ErrorRate float64       `json:"error_rate"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	RPS       float64       `json:"rps"`
	Window    time.Duration `json:"window"`
}

func outcomeOf(r RouteSnapshot) *Outcome {
	return &Outcome{Requests: r.Requests, ErrorRate: r.ErrorRate(), P50: r.P50, P99: r.P99, RPS: r.RPS(), Window: r.Window}
}
