package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sidecarProc is a sidecar process with fixed addresses and directories, so
// a restart comes back with the same ports, spool and identity.
type sidecarProc struct {
	*proc
	proxy, admin, hooks string
	instance            string
	// runStarts holds, per start, the last sequence number used before it
	// (a restart on the same boot continues exactly after it); crashStarts
	// those of the starts after a SIGKILL.
	runStarts, crashStarts []uint64
	killed                 bool // the last stop was a SIGKILL
}

// kill signals the process and waits for it to exit, noting a SIGKILL.
func (s *sidecarProc) kill(sig syscall.Signal) bool {
	s.killed = sig == syscall.SIGKILL
	return s.proc.kill(sig)
}

// startSidecar runs `omnibridge sidecar` for service in front of upstream,
// emitting to brokers (none: spool only); extra flags are appended.
func startSidecar(t *testing.T, service, upstream string, brokers []string, extra ...string) *sidecarProc {
	t.Helper()
	dir := t.TempDir()
	s := &sidecarProc{proxy: freePort(t), admin: freePort(t), hooks: freePort(t)}
	args := []string{"sidecar", "--service", service, "--upstream", upstream,
		"--listen", s.proxy, "--admin", s.admin, "--hooks", s.hooks,
		"--spool-dir", filepath.Join(dir, "spool"), "--state-dir", filepath.Join(dir, "state"),
		"--health-interval", "200ms", "--drain-timeout", "5s", "--log-level", "warn"}
	if len(brokers) > 0 {
		args = append(args, "--brokers", strings.Join(brokers, ","))
	}
	s.proc = startProc(t, "sidecar-"+service, append(args, extra...)...)
	s.waitReady(t)
	return s
}

func (s *sidecarProc) waitReady(t *testing.T) {
	t.Helper()
	waitHTTP(t, "http://"+s.admin+"/livez", 20*time.Second)
	var st struct {
		Instance string `json:"instance"`
		RunStart uint64 `json:"run_start_sequence"`
		Resumed  bool   `json:"sequence_resumed"`
	}
	getJSON(t, "http://"+s.admin+"/debug/state", &st)
	if s.instance != "" && st.Instance != s.instance {
		t.Fatalf("sidecar restarted as instance %q, was %q", st.Instance, s.instance)
	}
	if len(s.runStarts) > 0 && !st.Resumed {
		t.Errorf("sidecar %s restarted without resuming its sequence (after %d)", s.instance, st.RunStart)
	}
	s.instance = st.Instance
	s.runStarts = append(s.runStarts, st.RunStart)
	if s.killed {
		s.crashStarts = append(s.crashStarts, st.RunStart)
		s.killed = false
	}
}

// crashGaps returns how many of the missing numbers in seqs (one instance's
// stored sequence numbers) lie in gaps that end at most window numbers
// before one of the sidecar's restarts after a SIGKILL: what the killed
// process held in memory
// (events not yet delivered, and requests in flight whose numbers were
// taken), and the ranges themselves.
func (s *sidecarProc) crashGaps(seqs []uint64, window uint64) (lost int64, ranges []string) {
	seqs = slices.Clone(seqs)
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	counted := map[uint64]bool{} // by gap start: restarts close together share gaps
	for _, r := range s.crashStarts {
		// The gap that ends at or below r and closest to it, and any
		// further gaps within the window below r.
		for i := len(seqs) - 1; i > 0; i-- {
			lo, hi := seqs[i-1]+1, seqs[i]-1 // a gap when lo <= hi
			if lo > hi || lo > r {
				continue
			}
			top := min(hi, r)
			if r-top >= window {
				break
			}
			if counted[lo] {
				continue
			}
			counted[lo] = true
			lost += int64(top - lo + 1)
			ranges = append(ranges, fmt.Sprintf("%s:%d-%d", short(s.instance), lo, top))
		}
	}
	return lost, ranges
}

// restart starts the process again with the same arguments and waits for it.
func (s *sidecarProc) restart(t *testing.T) {
	t.Helper()
	s.start(t)
	s.waitReady(t)
}

func (s *sidecarProc) url() string { return "http://" + s.proxy }

// emitterState is the emitter part of /debug/state.
type emitterState struct {
	Emitted      int64            `json:"emitted"`
	Delivered    int64            `json:"delivered"`
	Spooled      int64            `json:"spooled"`
	Replayed     int64            `json:"replayed"`
	Dropped      map[string]int64 `json:"dropped"`
	QueueDepth   int              `json:"queue_depth"`
	SpoolPending int64            `json:"spool_pending"`
	SpoolBytes   int64            `json:"spool_bytes"`
	BusLive      bool             `json:"bus_live"`
}

func (e emitterState) droppedTotal() int64 {
	var n int64
	for _, v := range e.Dropped {
		n += v
	}
	return n
}

// emitter reads the sidecar's emitter state from /debug/state.
func (s *sidecarProc) emitter(t *testing.T) emitterState {
	t.Helper()
	var st struct {
		Emitter emitterState `json:"emitter"`
	}
	getJSON(t, "http://"+s.admin+"/debug/state", &st)
	return st.Emitter
}

// settled waits until the sidecar's queue and spool are empty.
func (s *sidecarProc) settled(t *testing.T, timeout time.Duration) emitterState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.emitter(t)
		// ">=": after a restart, Delivered also counts what the previous run spooled.
		if st.QueueDepth == 0 && st.SpoolPending == 0 && st.Delivered+st.droppedTotal() >= st.Emitted {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("sidecar %s did not settle in %v: %+v", s.name, timeout, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metrics scrapes a Prometheus text endpoint into "name{labels}" → value.
func metrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sum adds every series of the metric name (all label sets).
func sum(m map[string]float64, name string) float64 {
	var n float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			n += v
		}
	}
	return n
}

// droppedByReason reads omnibridge_sidecar_events_dropped_total by reason.
func droppedByReason(m map[string]float64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		if r, ok := strings.CutPrefix(k, `omnibridge_sidecar_events_dropped_total{reason="`); ok && v > 0 {
			out[strings.TrimSuffix(r, `"}`)] += int64(v)
		}
	}
	return out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("get %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
}

// sequence reads the sidecar's last event sequence number from /debug/state.
func (s *sidecarProc) sequence(t *testing.T) uint64 {
	t.Helper()
	var st struct {
		Sequence uint64 `json:"sequence"`
	}
	getJSON(t, "http://"+s.admin+"/debug/state", &st)
	return st.Sequence
}

// tryMetrics is metrics without failing the test (the process may be down).
func tryMetrics(url string) (map[string]float64, error) {
	cl := &http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out, sc.Err()
}
