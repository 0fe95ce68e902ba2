package intelapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/omninode/bridge/controlplane/analyze"
	"github.com/omninode/bridge/controlplane/analyze/analyzetest"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/bus"
	"google.golang.org/protobuf/proto"
)

// fakeLoop is the optimizer's read side at its seam.
type fakeLoop struct{}

func (fakeLoop) ListRecommendations(_ context.Context, req *bridgev1.ListRecommendationsRequest) (*bridgev1.ListRecommendationsResponse, error) {
	return &bridgev1.ListRecommendationsResponse{Recommendations: []*bridgev1.Recommendation{{Id: "r1", Explanation: "for " + req.GetService()}}}, nil
}

func (fakeLoop) GetRecommendation(_ context.Context, id string) (*bridgev1.Recommendation, error) {
	if id != "r1" {
		return nil, analyze.ErrNotFound
	}
	return &bridgev1.Recommendation{Id: "r1"}, nil
}

func (fakeLoop) GetStatus(_ context.Context, service string) (*bridgev1.GetStatusResponse, error) {
	return &bridgev1.GetStatusResponse{Sidecars: []*bridgev1.SidecarStatus{{Service: service, Instance: "i1", SyncState: "SYNCED"}}}, nil
}

// mapCache counts loads per family.
type mapCache struct {
	mu    sync.Mutex
	m     map[string][]byte
	loads map[string]int
}

func (c *mapCache) GetOrLoad(ctx context.Context, family, key string, load func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.m[family+"/"+key]; ok {
		return b, nil
	}
	b, err := load(ctx)
	if err != nil {
		return nil, err
	}
	c.m[family+"/"+key] = b
	c.loads[family]++
	return b, nil
}

type env struct {
	srv     *Server
	url     string
	h2c     *http.Client
	clients map[string]bridgev1connect.IntelligenceServiceClient
	cache   *mapCache
}

func h2cClient() *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: p}}
}

func start(t *testing.T, loop LoopReader, mod func(*Config)) *env {
	t.Helper()
	cache := &mapCache{m: map[string][]byte{}, loads: map[string]int{}}
	cfg := DefaultConfig()
	cfg.Analyzer = analyzetest.New(t)
	cfg.Loop = loop
	cfg.Cache = cache
	if mod != nil {
		mod(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Mount(mux, srv)
	hs := httptest.NewUnstartedServer(mux)
	hs.Config.Protocols = new(http.Protocols)
	hs.Config.Protocols.SetHTTP1(true)
	hs.Config.Protocols.SetUnencryptedHTTP2(true)
	hs.Start()
	t.Cleanup(hs.Close)
	e := &env{srv: srv, url: hs.URL, h2c: h2cClient(), cache: cache}
	e.clients = map[string]bridgev1connect.IntelligenceServiceClient{
		"connect":  bridgev1connect.NewIntelligenceServiceClient(http.DefaultClient, hs.URL),
		"grpc":     bridgev1connect.NewIntelligenceServiceClient(e.h2c, hs.URL, connect.WithGRPC()),
		"grpc-web": bridgev1connect.NewIntelligenceServiceClient(e.h2c, hs.URL, connect.WithGRPCWeb()),
	}
	return e
}

func TestEveryMethodOverEveryProtocol(t *testing.T) {
	t.Parallel()
	e := start(t, fakeLoop{}, nil)
	a := analyzetest.New(t) // the same data, for expectations
	for proto_, c := range e.clients {
		t.Run(proto_, func(t *testing.T) {
			ctx := t.Context()
			svcs, err := c.ListServices(ctx, connect.NewRequest(&bridgev1.ListServicesRequest{}))
			if err != nil || !proto.Equal(svcs.Msg, &bridgev1.ListServicesResponse{Services: a.Services()}) {
				t.Fatalf("ListServices: %v %v", err, svcs)
			}
			g, err := c.GetServiceGraph(ctx, connect.NewRequest(&bridgev1.GetServiceGraphRequest{Window: bridgev1.Window_WINDOW_1H}))
			if err != nil || !proto.Equal(g.Msg, a.Graph(bridgev1.Window_WINDOW_1H)) || len(g.Msg.Edges) != 3 {
				t.Fatalf("GetServiceGraph: %v %v", err, g)
			}
			rs, err := c.ListRouteStats(ctx, connect.NewRequest(&bridgev1.ListRouteStatsRequest{Service: "pay", Window: bridgev1.Window_WINDOW_1H, Limit: 1}))
			if err != nil || len(rs.Msg.Routes) != 1 || rs.Msg.Routes[0].Service != "pay" {
				t.Fatalf("ListRouteStats: %v %v", err, rs)
			}
			ps, err := c.ListPatterns(ctx, connect.NewRequest(&bridgev1.ListPatternsRequest{}))
			if err != nil || len(ps.Msg.Patterns) == 0 || ps.Msg.Patterns[0].RootCauseService != "pay" {
				t.Fatalf("ListPatterns: %v %v", err, ps)
			}
			tr, err := c.GetTrace(ctx, connect.NewRequest(&bridgev1.GetTraceRequest{Id: analyzetest.FailedTrace}))
			if err != nil || tr.Msg.RootCauseService != "pay" {
				t.Fatalf("GetTrace: %v %v", err, tr)
			}
			_, err = c.GetTrace(ctx, connect.NewRequest(&bridgev1.GetTraceRequest{Id: "nope"}))
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("GetTrace unknown: %v", err)
			}
			_, err = c.GetTrace(ctx, connect.NewRequest(&bridgev1.GetTraceRequest{}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Fatalf("GetTrace empty: %v", err)
			}
			tl, err := c.ListTools(ctx, connect.NewRequest(&bridgev1.ListToolsRequest{Service: "pay"}))
			if err != nil || len(tl.Msg.Tools) != 1 || len(tl.Msg.Tools[0].History) != 2 {
				t.Fatalf("ListTools: %v %v", err, tl)
			}
			j, err := c.ListJourneys(ctx, connect.NewRequest(&bridgev1.ListJourneysRequest{Limit: 2}))
			if err != nil || len(j.Msg.Journeys) != 2 {
				t.Fatalf("ListJourneys: %v %v", err, j)
			}
			lr, err := c.ListRecommendations(ctx, connect.NewRequest(&bridgev1.ListRecommendationsRequest{Service: "pay"}))
			if err != nil || lr.Msg.Recommendations[0].Explanation != "for pay" {
				t.Fatalf("ListRecommendations: %v %v", err, lr)
			}
			gr, err := c.GetRecommendation(ctx, connect.NewRequest(&bridgev1.GetRecommendationRequest{Id: "r1"}))
			if err != nil || gr.Msg.Recommendation.Id != "r1" {
				t.Fatalf("GetRecommendation: %v %v", err, gr)
			}
			if _, err := c.GetRecommendation(ctx, connect.NewRequest(&bridgev1.GetRecommendationRequest{Id: "r2"})); connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("GetRecommendation unknown: %v", err)
			}
			st, err := c.GetStatus(ctx, connect.NewRequest(&bridgev1.GetStatusRequest{Service: "pay"}))
			if err != nil || st.Msg.Sidecars[0].Service != "pay" {
				t.Fatalf("GetStatus: %v %v", err, st)
			}
			testTap(t, e, c)
		})
	}
	if e.cache.loads["intel.services"] != 1 {
		t.Errorf("services loaded %d times through the cache, want 1 for three identical calls", e.cache.loads["intel.services"])
	}
}

func testTap(t *testing.T, e *env, c bridgev1connect.IntelligenceServiceClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := c.Tap(ctx, connect.NewRequest(&bridgev1.TapRequest{Service: "pay", ErrorsOnly: true, Topics: []string{bus.TopicCommunication}}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	waitSubscribers(t, e.srv, 1)
	evs := analyzetest.Events()
	want := 0
	for _, ev := range evs {
		e.srv.Observe(ev, false)
		if ce, ok := ev.(*bridgev1.CommunicationIntelligenceEvent); ok && !ce.GetPerformanceMetrics().GetSuccess() &&
			(ce.GetPerformanceMetrics().GetTargetService() == "pay" || ce.GetRequestContext().GetSourceService() == "pay") {
			want++
		}
	}
	for i := 0; i < want; i++ {
		if !stream.Receive() {
			t.Fatalf("tap ended after %d of %d: %v", i, want, stream.Err())
		}
		m := stream.Msg().GetCommunication()
		if m == nil || m.GetPerformanceMetrics().GetSuccess() || m.GetPerformanceMetrics().GetTargetService() != "pay" {
			t.Fatalf("tap delivered a non-matching event: %v", stream.Msg())
		}
	}
	cancel()
	waitSubscribers(t, e.srv, 0)
}

func waitSubscribers(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d tap subscribers, want %d", s.Subscribers(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTapCountsDropsForSlowClients(t *testing.T) {
	t.Parallel()
	e := start(t, nil, func(c *Config) { c.TapBuffer = 2 })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := e.clients["grpc"].Tap(ctx, connect.NewRequest(&bridgev1.TapRequest{Topics: []string{bus.TopicLifecycle}}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	waitSubscribers(t, e.srv, 1)
	var life []bus.Event
	for _, ev := range analyzetest.Events() {
		if _, ok := ev.(*bridgev1.ServiceLifecycleEvent); ok {
			life = append(life, ev)
		}
	}
	// Observe never blocks, however slow the client.
	start := time.Now()
	for i := 0; i < 1000; i++ {
		e.srv.Observe(life[0], false)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Observe blocked: %v for 1000 events", d)
	}
	// Every observed event is either received or counted in the
	// dropped_before of a later received one. Markers carry their number k:
	// when marker k arrives, the 1000 flood events and markers 1..k are all
	// accounted for.
	var got, dropped uint64
	for k := 1; ; k++ {
		m := proto.Clone(life[0]).(*bridgev1.ServiceLifecycleEvent)
		m.HealthReason = fmt.Sprint(k)
		e.srv.Observe(m, false)
		if !stream.Receive() {
			t.Fatal(stream.Err())
		}
		got++
		dropped += stream.Msg().GetDroppedBefore()
		if r := stream.Msg().GetLifecycle().GetHealthReason(); r != "" {
			n, _ := strconv.Atoi(r)
			if got+dropped != uint64(1000+n) {
				t.Fatalf("at marker %d: received %d + dropped %d != %d observed", n, got, dropped, 1000+n)
			}
			break
		}
		if k > 100 {
			t.Fatal("no marker arrived")
		}
	}
	if dropped == 0 {
		t.Fatal("no drop counted with a buffer of 2 and 1000 events")
	}
}

func TestUnavailableWithoutLoop(t *testing.T) {
	t.Parallel()
	e := start(t, nil, nil)
	for name, c := range e.clients {
		_, err := c.GetStatus(t.Context(), connect.NewRequest(&bridgev1.GetStatusRequest{}))
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s: GetStatus without loop: %v", name, err)
		}
		_, err = c.ListRecommendations(t.Context(), connect.NewRequest(&bridgev1.ListRecommendationsRequest{}))
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s: ListRecommendations without loop: %v", name, err)
		}
	}
	_, err := e.clients["connect"].Tap(t.Context(), connect.NewRequest(&bridgev1.TapRequest{Topics: []string{"nope"}}))
	if err == nil {
		t.Log("tap error arrives on receive")
	}
}

func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	e := start(t, nil, nil)
	hc := grpchealth.NewClient(e.h2c, e.url, connect.WithGRPC())
	res, err := hc.Check(t.Context(), &grpchealth.CheckRequest{Service: bridgev1connect.IntelligenceServiceName})
	if err != nil || res.Status != grpchealth.StatusServing {
		t.Fatalf("health: %v %v", res, err)
	}
	rc := grpcreflect.NewClient(e.h2c, e.url)
	rs := rc.NewStream(t.Context())
	defer rs.Close()
	names, err := rs.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range names {
		found = found || string(n) == bridgev1connect.IntelligenceServiceName
	}
	if !found {
		t.Fatalf("reflection lists %v", names)
	}
}

func TestInternalErrorsAreHidden(t *testing.T) {
	t.Parallel()
	s := &Server{log: analyzeLog()}
	err := s.toConnect("/x", errors.New("pgx: password authentication failed for user secret"))
	if connect.CodeOf(err) != connect.CodeInternal || err.Error() != "internal: internal error" {
		t.Fatalf("got %v", err)
	}
}
