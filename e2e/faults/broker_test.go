package faults

import (
	"net/http"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/faultproxy"
)

// brokerRig is one sidecar in front of an upstream, emitting to a broker
// behind a fault proxy, under steady load, with a consumer on the bus.
type brokerRig struct {
	kafka *faultyKafka
	sc    *sidecarProc
	col   *collector
	load  *load
	w     *watcher
}

func newBrokerRig(t *testing.T, service string) *brokerRig {
	t.Helper()
	return newRig(t, service, nil, 300)
}

// newRig is newBrokerRig with an upstream handler (nil: a small JSON API)
// and a load rate.
func newRig(t *testing.T, service string, upstream http.Handler, rate int) *brokerRig {
	t.Helper()
	r := &brokerRig{kafka: startKafka(t), w: watch(t)}
	r.sc = startSidecar(t, service, startUpstream(t, upstream), r.kafka.Brokers())
	r.w.add("sidecar", r.sc.proc, maxSidecarRSS)
	r.col = collect(t, r.kafka.Brokers())
	r.load = startLoad(t, rate, "/orders/", r.sc.url())
	return r
}

// finish stops the load, checks the proxied traffic never failed, and
// checks and prints the accounting.
func (r *brokerRig) finish(t *testing.T, scenario string) *ledger {
	t.Helper()
	led := busAccount(t, scenario, r.load.stopped(), r.col, r.w, r.sc)
	if n := r.load.failed.Load() + r.load.non2xx.Load(); n != 0 {
		t.Errorf("%s: %d proxied requests failed while only the bus was faulty", scenario, n)
	}
	led.check(t)
	return led
}

// TestBrokerDownSpoolsAndReplays: while the broker is down, the sidecar
// keeps proxying without errors, spools its events to disk and, when the
// broker is back, replays them; every event arrives once by id, none is
// lost, and the sequence numbers have no gap.
func TestBrokerDownSpoolsAndReplays(t *testing.T) {
	noLeaks(t)
	r := newBrokerRig(t, "orders")
	time.Sleep(time.Second)
	r.kafka.Stop(t)
	// Longer than the emitter's delivery timeout (5 s by default), so the
	// producer gives up on buffered records and they go to the spool.
	time.Sleep(7 * time.Second)
	during := r.sc.emitter(t)
	r.kafka.Start(t)
	time.Sleep(2 * time.Second)
	r.finish(t, "broker down 7s")
	st := r.sc.emitter(t)
	if during.Spooled == 0 || st.Replayed == 0 {
		t.Errorf("spooled %d during the outage and replayed %d after; want both > 0", during.Spooled, st.Replayed)
	}
	t.Logf("spooled during the outage %d, replayed %d", during.Spooled, st.Replayed)
}

// TestBrokerSlow: with 150 ms added to every chunk and the bandwidth cut to
// 32 KiB/s between sidecar and broker, proxying is unaffected; events are
// delivered late or spooled and replayed, none lost.
func TestBrokerSlow(t *testing.T) {
	noLeaks(t)
	r := newBrokerRig(t, "catalog")
	time.Sleep(time.Second)
	r.kafka.proxy.SetLatency(150 * time.Millisecond)
	r.kafka.proxy.SetBandwidth(32 << 10)
	time.Sleep(4 * time.Second)
	r.kafka.proxy.SetLatency(0)
	r.kafka.proxy.SetBandwidth(0)
	time.Sleep(time.Second)
	r.finish(t, "broker slow (150ms, 32KiB/s) 4s")
}

// TestBrokerConnectionResets: the broker's connections are reset every
// 250 ms for 4 s; produce requests fail mid-flight and are retried or
// spooled; each event arrives (duplicates on the bus are possible and are
// deduplicated by event id), none lost.
func TestBrokerConnectionResets(t *testing.T) {
	noLeaks(t)
	r := newBrokerRig(t, "payments")
	time.Sleep(time.Second)
	for range 16 {
		time.Sleep(250 * time.Millisecond)
		r.kafka.proxy.ResetAll()
	}
	time.Sleep(time.Second)
	r.finish(t, "broker resets every 250ms for 4s")
	if r.kafka.proxy.Stats().Resets == 0 {
		t.Error("no connection was reset")
	}
}

// TestBrokerPartitioned: the broker is blackholed (connections hang, no
// resets) for 4 s: requests keep flowing, events wait out the delivery
// timeout into the spool and are replayed.
func TestBrokerPartitioned(t *testing.T) {
	noLeaks(t)
	r := newBrokerRig(t, "search")
	time.Sleep(time.Second)
	r.kafka.proxy.SetMode(faultproxy.Blackhole)
	time.Sleep(4 * time.Second)
	r.kafka.proxy.SetMode(faultproxy.Up)
	time.Sleep(2 * time.Second)
	r.finish(t, "broker blackholed 4s")
}
