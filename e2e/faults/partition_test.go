package faults

import (
	"testing"
	"time"

	"github.com/omninode/bridge/internal/faultproxy"
	"github.com/omninode/bridge/internal/testenv"
)

// streamConnected reads the sidecar's directive-stream gauge.
func (s *sidecarProc) streamConnected(t *testing.T) bool {
	t.Helper()
	return sum(metrics(t, "http://"+s.admin+"/metrics"), "omnibridge_sidecar_directive_stream_connected") == 1
}

// waitStream waits until every sidecar's directive stream is (or is not) open.
func waitStream(t *testing.T, want bool, timeout time.Duration, scs ...*sidecarProc) time.Duration {
	t.Helper()
	begin := time.Now()
	for {
		all := true
		for _, sc := range scs {
			if sc.streamConnected(t) != want {
				all = false
			}
		}
		if all {
			return time.Since(begin)
		}
		if time.Since(begin) > timeout {
			t.Fatalf("directive streams connected != %v after %v", want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestControlPlanePartitioned: the sidecars reach the control plane's
// directive stream through a fault proxy, which resets every connection
// and refuses new ones for 4 s. The request path and the events (which
// travel over the bus) are unaffected, the sidecars report the stream down
// meanwhile, and when the partition heals every stream reconnects on its
// own (counted by the control plane, not only claimed by the sidecars).
func TestControlPlanePartitioned(t *testing.T) {
	noLeaks(t)
	kafka, pg, w := startKafka(t), testenv.PostgreSQL(t), watch(t)
	cp := startControlPlane(t, "controlplane", cpDeps{brokers: kafka.Brokers(), postgres: pg.DSN()})
	w.add("controlplane", cp.proc, maxControlPlaneRSS)
	px := startProxy(t, cp.listen)
	up := startUpstream(t, nil)
	var scs []*sidecarProc
	var urls []string
	for _, svc := range []string{"web", "api"} {
		sc := startSidecar(t, svc, up, kafka.Brokers(), "--control-plane", "http://"+px.Addr())
		w.add("sidecar-"+svc, sc.proc, maxSidecarRSS)
		scs, urls = append(scs, sc), append(urls, sc.url())
	}
	waitStream(t, true, 10*time.Second, scs...)
	l := startLoad(t, 300, "/orders/", urls...)
	time.Sleep(time.Second)

	waitServerStreams(t, cp, 2, 10*time.Second)
	px.SetMode(faultproxy.Down)
	noticed := waitStream(t, false, 5*time.Second, scs...)
	time.Sleep(4 * time.Second)
	px.SetMode(faultproxy.Up)
	healed := waitStream(t, true, 45*time.Second, scs...)
	waitServerStreams(t, cp, 2, 10*time.Second)
	time.Sleep(500 * time.Millisecond)

	led := pgAccount(t, "sidecars partitioned from control plane", l.stopped(), pg.DSN(), w, scs...)
	led.note = "partition noticed in " + noticed.Round(100*time.Millisecond).String() +
		", streams back " + healed.Round(100*time.Millisecond).String() + " after it healed"
	led.check(t)
	if n := l.failed.Load() + l.non2xx.Load(); n != 0 {
		t.Errorf("%d proxied requests failed during the partition", n)
	}
	for _, sc := range scs {
		if n := sum(metrics(t, "http://"+sc.admin+"/metrics"), "omnibridge_sidecar_directive_stream_reconnects_total"); n == 0 {
			t.Errorf("sidecar %s never reconnected its stream", sc.name)
		}
	}
}

// TestControlPlaneSilentPartition: open directive streams stall without any
// reset (a silent partition: a dropped NAT entry, a dead peer), then the
// path comes back. The control plane sends a heartbeat every 15 s; a
// sidecar must notice the silence (HTTP/2 pings, and a 40 s idle watchdog),
// stop reporting the stream as connected and reconnect with backoff. While
// the path is still stalled its reconnect attempts reach nothing: they stay
// "connecting" (the control plane answers every hello at once, and the
// sidecar reports connected only once answered) and are given up after the
// 10 s handshake timeout. Once the path is back the stream reconnects, and
// when the sidecar reports it connected the control plane already counts it.
func TestControlPlaneSilentPartition(t *testing.T) {
	noLeaks(t)
	kafka, w := startKafka(t), watch(t)
	cp := startControlPlane(t, "controlplane", cpDeps{brokers: kafka.Brokers()})
	w.add("controlplane", cp.proc, maxControlPlaneRSS)
	px := startProxy(t, cp.listen)
	sc := startSidecar(t, "web", startUpstream(t, nil), kafka.Brokers(), "--control-plane", "http://"+px.Addr())
	w.add("sidecar", sc.proc, maxSidecarRSS)
	waitStream(t, true, 20*time.Second, sc)
	waitServerStreams(t, cp, 1, 10*time.Second)
	px.SetMode(faultproxy.Blackhole)
	noticed := waitStream(t, false, 60*time.Second, sc) // 3 missed heartbeats and some slack

	// The path stays stalled: reconnect attempts go into the hole and must
	// not be reported connected.
	admin := "http://" + sc.admin + "/metrics"
	attempting := false
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		m := metrics(t, admin)
		if sum(m, "omnibridge_sidecar_directive_stream_connected") != 0 {
			t.Fatal("the sidecar reports its directive stream connected while the path to the control plane is stalled")
		}
		if sum(m, "omnibridge_sidecar_directive_stream_connecting") == 1 {
			attempting = true
		}
	}
	if !attempting {
		t.Error("no reconnect attempt was seen waiting for the control plane's answer during the stall")
	}

	px.SetMode(faultproxy.Up)
	// An attempt made in the stall is given up after the 10 s handshake
	// timeout; the next one, on a fresh connection, gets through.
	back := waitStream(t, true, 45*time.Second, sc)
	// Connected is not optimistic: the control plane counted the stream
	// before it answered the hello, so it counts it now.
	if got := sum(metrics(t, cp.url()+"/metrics"), "omnibridge_directives_streams"); got < 1 {
		t.Fatalf("the sidecar reports its stream connected, the control plane counts %v open streams", got)
	}
	waitServerStreams(t, cp, 1, 20*time.Second) // and the stalled ones are gone
	if n := sum(metrics(t, admin), "omnibridge_sidecar_directive_stream_handshake_timeouts_total"); n < 1 {
		t.Errorf("handshake timeouts %v: no attempt made in the stall was given up", n)
	}
	waitStream(t, true, time.Second, sc) // still connected
	t.Logf("silent partition noticed after %v; stream back %v after it healed", noticed, back)
}

// waitServerStreams waits until the control plane counts n open directive streams.
func waitServerStreams(t *testing.T, cp *cpProc, n float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := sum(metrics(t, cp.url()+"/metrics"), "omnibridge_directives_streams")
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("control plane counts %v open directive streams, want %v", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
