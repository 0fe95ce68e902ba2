package emit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/faultproxy"
	"github.com/omninode/bridge/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The child process of TestEmitterKilledWithRecordsInFlight reads its
// orders from these variables.
const (
	childDirEnv    = "EMIT_KILL_CHILD_SPOOL_DIR"
	childBrokerEnv = "EMIT_KILL_CHILD_BROKER"
	childEventsEnv = "EMIT_KILL_CHILD_EVENTS"
)

// childReport is what the child prints once every event is with the
// producer.
type childReport struct {
	IDs      []string `json:"ids"`
	InFlight int64    `json:"in_flight"`
	Spooled  int64    `json:"spooled"`
	Journal  int64    `json:"journal_bytes"`
}

// TestEmitterKilledWithRecordsInFlight: an emitter whose broker stalls (a
// blackholed TCP path: produce requests sent, never answered) holds the
// events it handed to the producer in memory, where a SIGKILL used to lose
// them. The emitter runs in a child process (this test binary), emits N
// events into the stall and is killed with SIGKILL once every one is in
// flight and none spooled. A new emitter on the same spool directory, with
// the broker reachable again, recovers them from the journal and the
// broker receives every one of the N event ids (exactly once here: the
// stalled requests never reached the broker).
func TestEmitterKilledWithRecordsInFlight(t *testing.T) {
	t.Parallel()
	const n = 500
	px := startFaultProxy(t)
	testenv.Kafka(t, kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		ln, err := net.Listen(network, "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		px.SetTarget(ln.Addr().String())
		return advertised{ln, proxyAddr(px)}, nil // clients reach the broker only through the proxy
	}))
	dir := t.TempDir()

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childBrokerEnv+"="+px.Addr(), childEventsEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("child exited before %q", prefix)
				}
				if rest, ok := strings.CutPrefix(l, prefix); ok {
					return rest
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("child did not say %q in 30s", prefix)
			}
		}
	}
	expect("connected")
	px.SetMode(faultproxy.Blackhole)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	var rep childReport
	if err := json.Unmarshal([]byte(expect("handed ")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.IDs) != n || rep.InFlight != n || rep.Spooled != 0 || rep.Journal == 0 {
		t.Fatalf("child before the kill: %d ids, %d in flight, %d spooled, journal %d bytes; want %d in flight only",
			len(rep.IDs), rep.InFlight, rep.Spooled, rep.Journal, n)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The restart: the broker is reachable again.
	px.SetMode(faultproxy.Up)
	e, stop := startEmitter(t, func(c *Config) {
		c.SpoolDir = dir
		c.Bus = &bus.Config{Brokers: []string{px.Addr()}, Linger: time.Millisecond}
	})
	// n, plus the warm-up event when the kill came before its release was
	// checkpointed.
	if st := e.Stats(); st.Recovered < n || st.Recovered > n+1 || st.Spooled != st.Recovered {
		t.Fatalf("after the restart: recovered %d, spooled %d; want %d (or %d) recovered into the spool", st.Recovered, st.Spooled, n, n+1)
	}
	seen := consumeIDs(t, px.Addr(), rep.IDs, 30*time.Second)
	dups := 0
	for _, id := range rep.IDs {
		switch c := seen[id]; {
		case c == 0:
			t.Errorf("event %s, in flight at the kill, never reached the broker", id)
		case c > 1:
			dups += c - 1
		}
	}
	if dups != 0 {
		t.Errorf("%d duplicates of the stalled events; the stall swallowed them, so each should arrive once", dups)
	}
	stop()
	if ents, err := os.ReadDir(filepath.Join(dir, journalDir)); err != nil || len(ents) != 0 {
		t.Errorf("journal after a clean stop: %v, %v; want it empty", ents, err)
	}
	t.Logf("recovered %d, delivered %d of the %d events in flight at the kill", e.Stats().Recovered, len(rep.IDs), n)
}

// TestKillChild is the emitter that TestEmitterKilledWithRecordsInFlight
// runs in a child process and kills; it skips unless run that way.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("the child process of TestEmitterKilledWithRecordsInFlight")
	}
	n, err := strconv.Atoi(os.Getenv(childEventsEnv))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.SpoolDir = dir
	cfg.Bus = &bus.Config{Brokers: []string{os.Getenv(childBrokerEnv)}, Linger: time.Millisecond}
	// Long, so that the bus does not count as down before the kill: every
	// event goes to the producer, none to the spool.
	cfg.DeliveryTimeout = time.Minute
	cfg.Registry = prometheus.NewRegistry()
	cfg.Logger = slog.New(slog.DiscardHandler)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.Run(context.Background()) }()
	src := bus.NewSource(&bridgev1.Source{Service: "orders", Instance: "i-killed"}, 0)
	wait := func(what string, cond func() bool) {
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("child: %s: %+v", what, e.Stats())
			}
		}
	}
	e.Emit(lifecycleEvent(src)) // connects and loads the metadata
	wait("warm-up delivered", func() bool { return e.Stats().Delivered == 1 })
	fmt.Println("connected")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	var rep childReport
	for range n {
		ev := lifecycleEvent(src)
		rep.IDs = append(rep.IDs, ev.GetEnvelope().GetEventId())
		e.Emit(ev)
	}
	wait("every event with the producer", func() bool { return len(e.queue) == 0 && e.nInflight.Load() == int64(n) })
	st := e.Stats()
	rep.InFlight, rep.Spooled, rep.Journal = e.nInflight.Load(), st.Spooled, st.JournalBytes
	b, _ := json.Marshal(rep)
	fmt.Println("handed " + string(b))
	time.Sleep(time.Minute)
	t.Fatal("child: not killed within a minute")
}

// consumeIDs reads the lifecycle topic from the start until every id in
// want was seen or timeout, and returns how often each id was seen.
func consumeIDs(t *testing.T, broker string, want []string, timeout time.Duration) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("hooks.service_lifecycle"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	wanted := make(map[string]bool, len(want))
	for _, id := range want {
		wanted[id] = true
	}
	seen := map[string]int{}
	missing := len(want)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for missing > 0 && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == bus.HeaderEventID {
					id := string(h.Value)
					if seen[id]++; seen[id] == 1 && wanted[id] {
						missing--
					}
				}
			}
		})
	}
	return seen
}

func startFaultProxy(t *testing.T) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New("127.0.0.1:0", "127.0.0.1:1") // the target is set when the broker listens
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
	return p
}

// advertised is a listener that reports another address (the proxy's),
// which kfake puts in its metadata, so that every connection goes through
// the proxy.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }

func proxyAddr(p *faultproxy.Proxy) net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", p.Addr())
	return a
}
