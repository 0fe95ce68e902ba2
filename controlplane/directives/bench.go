package directives

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FanOutResult are the figures of one FanOutBench run.
type FanOutResult struct {
	// Sidecars is the number of simulated sidecars connected.
	Sidecars int
	// Connect is the time until all had connected and acknowledged the first version.
	Connect time.Duration
	// FanOut is, per round, the time from Publish to the last acknowledgement.
	FanOut []time.Duration
	// Critical is, per round, the time from a critical signal leaving a
	// sidecar to a directive reacting to it arriving at that sidecar.
	Critical []time.Duration
}

// Pct returns the p-th percentile (0 to 100) of ds.
func Pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}

func (r FanOutResult) String() string {
	return fmt.Sprintf("%d sidecars: connect+first ack %v; publish→all acks p50 %v p99 %v max %v (%d rounds); signal→directive at sidecar p50 %v p99 %v (%d rounds)",
		r.Sidecars, r.Connect.Round(time.Millisecond), Pct(r.FanOut, 50).Round(time.Microsecond), Pct(r.FanOut, 99).Round(time.Microsecond),
		Pct(r.FanOut, 100).Round(time.Microsecond), len(r.FanOut), Pct(r.Critical, 50).Round(time.Microsecond), Pct(r.Critical, 99).Round(time.Microsecond), len(r.Critical))
}

// FanOutBench starts a Server on a loopback h2c listener, connects n
// simulated sidecars over real HTTP/2 streams (Connect protocol, or gRPC),
// each acknowledging every snapshot, and measures rounds fan-outs (Publish
// to the last ack) and rounds critical-path trips (a sidecar's signal, the
// server's OnSignal publishing a reacting directive, its arrival at that
// sidecar). It is the body of the fan-out benchmark in `make bench`.
func FanOutBench(ctx context.Context, n, rounds int, grpc bool) (FanOutResult, error) {
	res := FanOutResult{Sidecars: n}
	const service = "bench"
	var srv *Server
	var err error
	published := make(chan uint64, rounds)
	cfg := DefaultConfig()
	cfg.KV = NewMemoryKV()
	cfg.StatusFlush = time.Hour // status writes are not what is measured
	cfg.OnSignal = func(ctx context.Context, svc string, sig *bridgev1.CriticalSignal) {
		v, err := srv.Publish(ctx, svc, []*bridgev1.Directive{benchDirective(svc, sig.GetEventId())}, 0)
		if err == nil {
			published <- v
		}
	}
	if srv, err = New(cfg); err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, fmt.Errorf("listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(srv.Handler())
	hs := NewH2CServer(mux)
	go hs.Serve(ln)
	defer hs.Close()
	go srv.Run(ctx)
	if _, err := srv.Publish(ctx, service, []*bridgev1.Directive{benchDirective(service, "initial")}, 0); err != nil {
		return res, err
	}

	base := "http://" + ln.Addr().String()
	var opts []connect.ClientOption
	if grpc {
		opts = append(opts, connect.WithGRPC())
	}
	// Spread streams over several connections, as separate pods would.
	const perConn = 100
	var clients []bridgev1connect.DirectiveServiceClient
	for i := 0; i < (n+perConn-1)/perConn; i++ {
		clients = append(clients, bridgev1connect.NewDirectiveServiceClient(h2cClient(), base, opts...))
	}
	type sim struct {
		stream *connect.BidiStreamForClient[bridgev1.SyncRequest, bridgev1.SyncResponse]
		got    chan uint64
	}
	sims := make([]*sim, n)
	var wg sync.WaitGroup
	start := time.Now()
	errc := make(chan error, n)
	for i := range n {
		st := clients[i/perConn].Sync(ctx)
		sm := &sim{stream: st, got: make(chan uint64, 64)}
		sims[i] = sm
		if err := st.Send(&bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Hello{Hello: &bridgev1.SidecarHello{Service: service, Instance: fmt.Sprintf("sim-%04d", i)}}}); err != nil {
			return res, fmt.Errorf("hello %d: %w", i, err)
		}
		wg.Go(func() {
			for {
				msg, err := st.Receive()
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				if s := msg.GetSnapshot(); s != nil {
					if err := st.Send(&bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Ack{Ack: &bridgev1.SnapshotAck{Version: s.GetVersion()}}}); err != nil {
						errc <- err
						return
					}
					select {
					case sm.got <- s.GetVersion():
					default:
					}
				}
			}
		})
	}
	defer func() {
		cancel()
		for _, sm := range sims {
			sm.stream.CloseRequest()
		}
		wg.Wait()
	}()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if err := srv.WaitAcked(wctx, service, 1, n); err != nil {
		return res, err
	}
	res.Connect = time.Since(start)
	for r := range rounds {
		t0 := time.Now()
		v, err := srv.Publish(ctx, service, []*bridgev1.Directive{benchDirective(service, fmt.Sprint("round-", r))}, 0)
		if err != nil {
			return res, err
		}
		if err := srv.WaitAcked(wctx, service, v, n); err != nil {
			return res, err
		}
		res.FanOut = append(res.FanOut, time.Since(t0))
	}
	probe := sims[0]
	for r := range rounds {
		for len(probe.got) > 0 {
			<-probe.got
		}
		t0 := time.Now()
		sig := &bridgev1.CriticalSignal{EventId: fmt.Sprintf("bench-signal-%d-%d", r, t0.UnixNano()), Kind: bridgev1.SignalKind_SIGNAL_KIND_ERROR_BURST, Value: 0.5, ObservedAt: timestamppb.New(t0)}
		if err := probe.stream.Send(&bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Signal{Signal: sig}}); err != nil {
			return res, err
		}
		var want uint64
		select {
		case want = <-published:
		case <-wctx.Done():
			return res, errors.New("no directive published for a signal")
		}
		for got := uint64(0); got < want; {
			select {
			case got = <-probe.got:
			case <-wctx.Done():
				return res, errors.New("reacting directive did not reach the sidecar")
			}
		}
		res.Critical = append(res.Critical, time.Since(t0))
		// Let the fan-out to everyone else settle before the next round.
		if err := srv.WaitAcked(wctx, service, want, n); err != nil {
			return res, err
		}
	}
	select {
	case err := <-errc:
		return res, fmt.Errorf("simulated sidecar: %w", err)
	default:
	}
	return res, nil
}

func benchDirective(service, reason string) *bridgev1.Directive {
	return &bridgev1.Directive{
		Id: "bench-" + reason, Scope: &bridgev1.Scope{Service: service}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
		Provenance: &bridgev1.Provenance{Author: "engine", Reason: reason},
		ExpiresAt:  timestamppb.New(time.Now().Add(time.Hour)),
		Spec:       &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(time.Second)}},
	}
}

// NewH2CServer returns an http.Server that serves h on HTTP/1.1 and
// cleartext HTTP/2 (what the directive stream needs without TLS), with room
// for thousands of streams per connection.
func NewH2CServer(h http.Handler) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: 10 * time.Second,
		// Pings close connections that went silent without a reset (a
		// partitioned sidecar), so their streams stop counting as open.
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 10000, SendPingTimeout: 20 * time.Second, PingTimeout: 10 * time.Second}}
}

func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}
