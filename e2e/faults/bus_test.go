package faults

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/faultproxy"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// faultyKafka is a kfake broker reached only through a fault proxy: the
// broker advertises the proxy's address, so every client (bootstrap and
// partition leader connections alike) goes through the proxy.
type faultyKafka struct {
	*testenv.KafkaCluster
	proxy *faultproxy.Proxy
}

func startKafka(t *testing.T) *faultyKafka {
	t.Helper()
	px := startProxy(t, "127.0.0.1:1") // target set when the broker listens
	listen := func(network, _ string) (net.Listener, error) {
		// Each (re)start binds a fresh port behind the fixed proxy address.
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		px.SetTarget(ln.Addr().String())
		return advertised{ln, px.ln()}, nil
	}
	k := testenv.Kafka(t, kfake.ListenFn(listen))
	return &faultyKafka{KafkaCluster: k, proxy: px.Proxy}
}

// advertised is a listener that reports another address (the proxy's), which
// kfake puts in its metadata.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }

// startProxy runs a fault proxy in front of target until t ends.
func startProxy(t *testing.T, target string) *proxyHandle {
	t.Helper()
	p, err := faultproxy.New("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("fault proxy: %v", err)
		}
	})
	return &proxyHandle{p}
}

type proxyHandle struct{ *faultproxy.Proxy }

func (p *proxyHandle) ln() net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", p.Addr())
	return a
}

// collector consumes every bus topic from the start and keeps, per event id,
// the event's type, source instance and sequence.
type collector struct {
	mu     sync.Mutex
	seen   map[string]eventKey
	dups   int64
	bad    int64
	cancel context.CancelFunc
	done   chan struct{}
	cl     *kgo.Client
}

type eventKey struct {
	kind     string
	instance string
	seq      uint64
	corr     string
	path     string // communication events: the request path's first segment, "/orders"
	status   int32
}

func collect(t *testing.T, brokers []string) *collector {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(bus.Topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{seen: map[string]eventKey{}, cancel: cancel, done: make(chan struct{}), cl: cl}
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				ev, err := bus.Decode(r)
				c.mu.Lock()
				defer c.mu.Unlock()
				if err != nil {
					c.bad++
					return
				}
				env := ev.GetEnvelope()
				if _, ok := c.seen[env.GetEventId()]; ok {
					c.dups++
					return
				}
				k := eventKey{kind: bus.TypeName(ev), instance: env.GetSource().GetInstance(), seq: env.GetSequence()}
				if ce, ok := ev.(*bridgev1.CommunicationIntelligenceEvent); ok {
					k.kind, k.corr = kindComm, ce.GetCorrelationId()
					k.path, k.status = firstSegment(ce.GetRequestContext().GetPath()), ce.GetPerformanceMetrics().GetStatusCode()
				}
				c.seen[env.GetEventId()] = k
			})
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *collector) stop() {
	c.cancel()
	<-c.done
	c.cl.Close()
}

// events returns a copy of what was collected.
func (c *collector) events() []eventKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]eventKey, 0, len(c.seen))
	for _, k := range c.seen {
		out = append(out, k)
	}
	return out
}

const kindComm = "communication"

// firstSegment returns "/orders" for "/orders/123".
func firstSegment(p string) string {
	if i := strings.IndexByte(p[min(1, len(p)):], '/'); i >= 0 {
		return p[:i+1]
	}
	return p
}

// byPath counts the collected communication events of instance by path and status.
func (c *collector) byPath() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, k := range c.seen {
		if k.kind == kindComm {
			out[fmt.Sprintf("%s %d", k.path, k.status)]++
		}
	}
	return out
}
