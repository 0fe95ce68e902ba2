package sidecar

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/testenv"
)

// buildBinary builds omnibridge into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "omnibridge")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/omnibridge")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type proc struct {
	cmd          *exec.Cmd
	proxy, admin string
}

// startBinary runs "omnibridge sidecar" and waits for its "sidecar started" log line.
func startBinary(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"sidecar", "--service", "orders",
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--hooks", "127.0.0.1:0", "--log-level", "info"}, args...)...)
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &proc{cmd: cmd}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Proxy, Admin string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "sidecar started" {
				p.proxy, p.admin = line.Proxy, line.Admin
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("sidecar binary did not start")
	}
	return p
}

func (p *proc) state(t *testing.T) debugState {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/debug/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st debugState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSIGKILLThenRestartReplaysSpool(t *testing.T) {
	bin := buildBinary(t)
	up := startUpstream(t, upstreamMux(make(chan struct{})))
	dir := t.TempDir()

	// Run 1: no brokers, events spool only; killed in the middle of its load.
	p1 := startBinary(t, bin, "--upstream", up, "--spool-dir", dir)
	cl := &http.Client{Timeout: 5 * time.Second}
	send := func(p *proc, n int, mustWork bool) {
		for i := range n {
			resp, err := cl.Get("http://" + p.proxy + "/orders/" + itoa(1000+i))
			if err != nil {
				if mustWork {
					t.Error(err)
				}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	send(p1, 300, true)
	deadline := time.Now().Add(10 * time.Second)
	var spooled int64
	for time.Now().Before(deadline) {
		if spooled = p1.state(t).Emitter.Spooled; spooled >= 301 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if spooled < 301 {
		t.Fatalf("spooled %d before the kill, want 301", spooled)
	}
	seq1 := p1.state(t).Sequence
	go send(p1, 50, false) // in flight while it dies
	time.Sleep(5 * time.Millisecond)
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p1.cmd.Wait()

	// Run 2: the broker is there; the spool replays.
	kafka := testenv.Kafka(t)
	events := collect(t, kafka.Brokers())
	p2 := startBinary(t, bin, "--upstream", up, "--spool-dir", dir, "--brokers", strings.Join(kafka.Brokers(), ","))
	// On the same boot the live counter survived the kill: run 2 continues
	// exactly after the last number run 1 handed out, which is at least the
	// one it reported and at most that plus the 50 requests sent while it died.
	if st := p2.state(t); !st.SequenceResumed || st.RunStart < seq1 || st.RunStart > seq1+50 {
		t.Errorf("run 2: resumed %v after sequence %d; run 1 had reached %d (+ at most 50 in flight)", st.SequenceResumed, st.RunStart, seq1)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		st := p2.state(t)
		if st.Emitter.Replayed >= spooled && st.Emitter.SpoolPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replay did not finish: %+v", st.Emitter)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		n, dups, _ := events.snapshot()
		if int64(n) >= spooled+1 && events.count(bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED) == 2 {
			if dups != 0 {
				t.Fatalf("%d duplicated event ids", dups)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker has %d events, want at least %d", n, spooled+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Run 1's events came back in order; run 2 continued the sequence
	// without reusing a number.
	events.mu.Lock()
	defer events.mu.Unlock()
	var run1Comm int
	var lastSeq uint64
	var run2Start uint64
	for _, ev := range events.events {
		env := ev.GetEnvelope()
		if le, ok := ev.(*bridgev1.ServiceLifecycleEvent); ok &&
			le.GetEventType() == bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_STARTED {
			run2Start = max(run2Start, env.GetSequence()) // run 1's started event is replayed too
		}
		if _, ok := ev.(*bridgev1.CommunicationIntelligenceEvent); ok && env.GetSequence() <= seq1 {
			run1Comm++
			if env.GetSequence() <= lastSeq {
				t.Errorf("replayed out of order: %d after %d", env.GetSequence(), lastSeq)
			}
			lastSeq = env.GetSequence()
		}
	}
	if run1Comm < 300 {
		t.Errorf("run 1 communication events on the broker: %d, want 300", run1Comm)
	}
	if run2Start <= seq1 || run2Start > seq1+51 {
		t.Errorf("run 2's started event has sequence %d, run 1 had reached %d (+ at most 50 in flight)", run2Start, seq1)
	}
}
