package closedloop_test

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/optimize"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// sample is one communication event as the statistics need it.
type sample struct {
	at       time.Time
	service  string
	route    string
	method   string
	status   int
	rpcCode  string
	success  bool
	latency  time.Duration
	endpoint string
	weight   float64
	events   *bridgev1.CommunicationIntelligenceEvent
}

// busStats computes route statistics from the communication events on the
// bus: a small stand-in for controlplane/analyze behind optimize.StatsReader.
type busStats struct {
	mu      sync.Mutex
	samples []sample
}

func consumeStats(tb testing.TB, brokers []string) *busStats {
	tb.Helper()
	s := &busStats{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(bus.TopicCommunication),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(20*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				ev, err := bus.Decode(r)
				if err != nil {
					return
				}
				c, ok := ev.(*bridgev1.CommunicationIntelligenceEvent)
				if !ok {
					return
				}
				pm, rc := c.GetPerformanceMetrics(), c.GetRequestContext()
				w := c.GetSampleWeight()
				if w <= 0 {
					w = 1
				}
				s.add(sample{at: now, service: pm.GetTargetService(), route: rc.GetRoute(), method: rc.GetMethod(),
					status: int(pm.GetStatusCode()), rpcCode: pm.GetRpcCode(), success: pm.GetSuccess(), latency: pm.GetResponseTime().AsDuration(),
					endpoint: pm.GetUpstreamEndpoint(), weight: w, events: c})
			})
		}
	}()
	tb.Cleanup(func() { cancel(); <-done; cl.Close() })
	return s
}

func (s *busStats) add(x sample) {
	s.mu.Lock()
	s.samples = append(s.samples, x)
	s.mu.Unlock()
}

// Routes implements optimize.StatsReader.
func (s *busStats) Routes(service string, window time.Duration) []optimize.RouteSnapshot {
	since := time.Now().Add(-window)
	s.mu.Lock()
	groups := map[[2]string][]sample{}
	for _, x := range s.samples {
		if x.at.After(since) && (service == "" || x.service == service) {
			k := [2]string{x.service, x.route}
			groups[k] = append(groups[k], x)
		}
	}
	s.mu.Unlock()
	var out []optimize.RouteSnapshot
	for k, xs := range groups {
		r := optimize.RouteSnapshot{Service: k[0], Route: k[1], Window: window, StatusCounts: map[int]uint64{}, RPCCodes: map[string]uint64{}}
		var lats []time.Duration
		eps := map[string]*optimize.EndpointStats{}
		for _, x := range xs {
			n := uint64(x.weight + 0.5)
			r.Requests += n
			if !x.success {
				r.Errors += n
				if x.rpcCode != "" && x.rpcCode != "ok" {
					r.RPCCodes[x.rpcCode] += n
				}
			}
			r.StatusCounts[x.status] += n
			for _, d := range x.events.GetPolicyDecisions() {
				if d.GetAction() == bridgev1.PolicyAction_POLICY_ACTION_RETRIED && !d.GetDryRun() {
					r.Retries += n
				}
			}
			if !slices.Contains(r.Methods, x.method) {
				r.Methods = append(r.Methods, x.method)
			}
			lats = append(lats, x.latency)
			if x.endpoint != "" {
				ep := eps[x.endpoint]
				if ep == nil {
					ep = &optimize.EndpointStats{Endpoint: x.endpoint}
					eps[x.endpoint] = ep
				}
				ep.Requests += n
				if !x.success {
					ep.Errors += n
				}
			}
		}
		sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
		q := func(p float64) time.Duration { return lats[int(p*float64(len(lats)-1))] }
		r.P50, r.P90, r.P99, r.P999 = q(0.5), q(0.9), q(0.99), q(0.999)
		if len(eps) > 1 {
			for _, ep := range eps {
				r.Endpoints = append(r.Endpoints, *ep)
			}
		}
		out = append(out, r)
	}
	return out
}

// decisions counts the policy decisions carried by the events seen so far.
func (s *busStats) decisions(action bridgev1.PolicyAction, dryRun bool) (n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.samples {
		for _, d := range x.events.GetPolicyDecisions() {
			if d.GetAction() == action && d.GetDryRun() == dryRun {
				n++
			}
		}
	}
	return n
}
