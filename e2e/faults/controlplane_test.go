package faults

import (
	"syscall"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/testenv"
)

// cpRig is two sidecars emitting to a broker, a control plane consuming it
// into PostgreSQL, and steady load on both sidecars.
type cpRig struct {
	kafka *faultyKafka
	pg    *testenv.Postgres
	scs   []*sidecarProc
	cps   []*cpProc
	load  *load
	w     *watcher
}

func newCPRig(t *testing.T, replicas int, d cpDeps) *cpRig {
	t.Helper()
	return newCPRigWith(t, replicas, d, nil, false)
}

// newCPRigWith is newCPRig with extra control-plane flags and, with
// streams, sidecars holding a directive stream to the first replica.
func newCPRigWith(t *testing.T, replicas int, d cpDeps, cpFlags []string, streams bool) *cpRig {
	t.Helper()
	r := &cpRig{kafka: startKafka(t), pg: testenv.PostgreSQL(t), w: watch(t)}
	d.brokers, d.postgres = r.kafka.Brokers(), r.pg.DSN()
	for i := range replicas {
		cp := startControlPlane(t, "controlplane-"+itoa(int64(i)), d, cpFlags...)
		r.w.add("controlplane-"+itoa(int64(i)), cp.proc, maxControlPlaneRSS)
		r.cps = append(r.cps, cp)
	}
	up := startUpstream(t, nil)
	var urls []string
	for _, svc := range []string{"web", "api"} {
		var extra []string
		if streams {
			extra = []string{"--control-plane", r.cps[0].url()}
		}
		sc := startSidecar(t, svc, up, r.kafka.Brokers(), extra...)
		r.w.add("sidecar-"+svc, sc.proc, maxSidecarRSS)
		r.scs = append(r.scs, sc)
		urls = append(urls, sc.url())
	}
	r.load = startLoad(t, 300, "/orders/", urls...)
	return r
}

// finish stops the load and checks the accounting against PostgreSQL.
func (r *cpRig) finish(t *testing.T, scenario string) *ledger {
	t.Helper()
	led := pgAccount(t, scenario, r.load.stopped(), r.pg.DSN(), r.w, r.scs...)
	if n := r.load.failed.Load() + r.load.non2xx.Load(); n != 0 {
		t.Errorf("%s: %d proxied requests failed; the control plane is not on the request path", scenario, n)
	}
	for i, cp := range r.cps {
		if cp.cmd != nil {
			m := metrics(t, cp.url()+"/metrics")
			if n := sum(m, "omnibridge_ingest_dead_letters_total"); n > 0 {
				led.dropped["cp"+itoa(int64(i))+"_dead_letter"] += int64(n)
			}
		}
	}
	led.check(t)
	return led
}

// TestControlPlaneKilledAndRestarted: a control plane SIGKILLed mid-stream
// loses nothing: it commits offsets only after a durable write, so the
// restarted process re-reads what was not committed and the idempotent
// write (by event id) stores each event once.
func TestControlPlaneKilledAndRestarted(t *testing.T) {
	noLeaks(t)
	r := newCPRig(t, 1, cpDeps{})
	time.Sleep(2 * time.Second)
	if !r.cps[0].kill(syscall.SIGKILL) {
		t.Fatal("control plane did not die")
	}
	time.Sleep(2 * time.Second)
	r.cps[0].restart(t)
	time.Sleep(time.Second)
	r.finish(t, "control plane SIGKILL + restart")
}

// TestControlPlaneReplicaKilled: two replicas share the consumer group;
// one is SIGKILLed mid-stream; after the group's session timeout the other
// takes over its partitions from the last committed offsets: nothing lost,
// nothing stored twice.
func TestControlPlaneReplicaKilled(t *testing.T) {
	noLeaks(t)
	r := newCPRig(t, 2, cpDeps{})
	time.Sleep(2 * time.Second)
	// Kill the replica that is consuming the traffic (the group may give
	// the other only partitions of quiet topics), so the survivor must take
	// its partitions over.
	var ingested [2]float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		for i := range 2 {
			ingested[i] = sum(metrics(t, r.cps[i].url()+"/metrics"), "omnibridge_ingest_events_total")
		}
		if ingested[0]+ingested[1] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("neither replica ingested anything")
		}
		time.Sleep(200 * time.Millisecond)
	}
	victim := 0
	if ingested[1] > ingested[0] {
		victim = 1
	}
	t.Logf("before the kill: replica 0 ingested %v events, replica 1 %v; killing replica %d", ingested[0], ingested[1], victim)
	if !r.cps[victim].kill(syscall.SIGKILL) {
		t.Fatal("replica did not die")
	}
	time.Sleep(2 * time.Second)
	r.finish(t, "2 replicas, one SIGKILLed")
}

// TestPostgresDownAndBack: while PostgreSQL is down the control plane
// keeps consuming into its bounded queue, does not commit what it could not
// write, pauses, and when PostgreSQL is back writes everything; the
// sidecars never notice.
func TestPostgresDownAndBack(t *testing.T) {
	noLeaks(t)
	r := newCPRig(t, 1, cpDeps{})
	time.Sleep(1500 * time.Millisecond)
	r.pg.Stop(t)
	time.Sleep(4 * time.Second)
	r.pg.Start(t)
	time.Sleep(2 * time.Second)
	r.finish(t, "PostgreSQL down 4s")
}

// TestRedisDownAndBack: the cache going away changes nothing for ingest
// (events are stored), and the query API keeps answering from the store.
func TestRedisDownAndBack(t *testing.T) {
	noLeaks(t)
	redis := testenv.Redis(t)
	r := newCPRig(t, 1, cpDeps{redis: redis.Addr()})
	api := startAPIProbe(t, r.cps[0].url())
	time.Sleep(1500 * time.Millisecond)
	redis.Stop(t)
	time.Sleep(3 * time.Second)
	redis.Start(t)
	time.Sleep(1500 * time.Millisecond)
	ok, failed := api.stop()
	led := r.finish(t, "Redis down 3s")
	_ = led
	if failed > 0 || ok == 0 {
		t.Errorf("query API during the Redis outage: %d answered, %d failed", ok, failed)
	}
}

// TestConsulDownAndBack: Consul (desired state KV, catalog) going away and
// coming back empty changes nothing for ingest or the request path.
func TestConsulDownAndBack(t *testing.T) {
	noLeaks(t)
	consul := testenv.Consul(t)
	r := newCPRig(t, 1, cpDeps{cons: consul.Addr()})
	api := startAPIProbe(t, r.cps[0].url())
	time.Sleep(1500 * time.Millisecond)
	consul.Stop(t)
	time.Sleep(3 * time.Second)
	consul.Start(t)
	time.Sleep(1500 * time.Millisecond)
	ok, failed := api.stop()
	r.finish(t, "Consul down 3s")
	if failed > 0 || ok == 0 {
		t.Errorf("query API during the Consul outage: %d answered, %d failed", ok, failed)
	}
	waitHTTP(t, r.cps[0].url()+"/readyz", 10*time.Second)
}
