package harness

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loadSpec is one open-loop run against one URL.
type loadSpec struct {
	URL         string
	GRPC        bool // send unary gRPC frames over h2c instead of HTTP/1.1 POSTs
	Rate        int  // requests per second
	Duration    time.Duration
	Warmup      time.Duration // at the same rate, not measured; opens the connections
	Body        int           // request (and echoed response) body bytes
	Timeout     time.Duration // per request; a timeout is an error
	MaxInflight int           // sends beyond this are dropped and counted as errors
	// OnMeasure, if set, is called between the warm-up and the measured
	// phase (on the same connections), e.g. to read CPU counters.
	OnMeasure func()
}

// loadResult is what one run measured. Latency runs from each request's
// scheduled send time to the end of its response, so a stall delays every
// request scheduled behind it (no coordinated omission).
type loadResult struct {
	Scheduled int
	OK        int
	Errors    int // failed, timed out or dropped
	FirstErr  string
	P50       time.Duration
	P99       time.Duration
	P999      time.Duration
	Max       time.Duration
	// LateP99 and LateMax are the generator's own lateness: actual send
	// minus scheduled send. LateFrac is the share of sends later than 1 ms.
	LateP99  time.Duration
	LateMax  time.Duration
	LateFrac float64
	Elapsed  time.Duration
}

// Behind reports whether the generator fell behind its schedule (more than
// 1% of sends later than 1 ms), which makes the run unfit for comparison.
func (r loadResult) Behind() bool { return r.LateFrac > 0.01 }

// ErrorRate is errors over scheduled sends.
func (r loadResult) ErrorRate() float64 {
	if r.Scheduled == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Scheduled)
}

// requester sends one request and checks its answer.
type requester struct {
	client  *http.Client
	url     string
	grpc    bool
	payload []byte
}

func newRequester(spec loadSpec) *requester {
	var p http.Protocols
	if spec.GRPC {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
		Protocols:           &p,
	}
	body := bytes.Repeat([]byte("x"), spec.Body)
	if spec.GRPC {
		frame := make([]byte, 5+len(body))
		binary.BigEndian.PutUint32(frame[1:5], uint32(len(body)))
		copy(frame[5:], body)
		body = frame
	}
	return &requester{client: &http.Client{Transport: tr, Timeout: spec.Timeout}, url: spec.URL, grpc: spec.GRPC, payload: body}
}

func (q *requester) close() { q.client.CloseIdleConnections() }

func (q *requester) do(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, bytes.NewReader(q.payload))
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(q.payload))
	if q.grpc {
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("TE", "trailers")
	} else {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := q.client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if q.grpc {
		if s := resp.Trailer.Get("Grpc-Status"); s != "0" {
			if s == "" {
				s = resp.Header.Get("Grpc-Status")
			}
			if s != "0" {
				return fmt.Errorf("grpc-status %q", s)
			}
		}
	}
	if n != int64(len(q.payload)) {
		return fmt.Errorf("response body %d bytes, want %d", n, len(q.payload))
	}
	return nil
}

// runLoad warms up, then runs the measured open-loop phase.
func runLoad(ctx context.Context, spec loadSpec) loadResult {
	if spec.Timeout == 0 {
		spec.Timeout = 2 * time.Second
	}
	if spec.MaxInflight == 0 {
		spec.MaxInflight = 2000
	}
	q := newRequester(spec)
	defer q.close()
	if spec.Warmup > 0 {
		paced(ctx, q.do, spec.Rate, spec.Warmup, spec.MaxInflight)
	}
	if spec.OnMeasure != nil {
		spec.OnMeasure()
	}
	return paced(ctx, q.do, spec.Rate, spec.Duration, spec.MaxInflight)
}

const (
	statusPending int32 = iota
	statusOK
	statusErr
	statusDropped
)

// paced sends rate requests per second for dur from a pacer goroutine locked
// to its OS thread: it sleeps with clock_nanosleep (1 µs timer slack) until
// shortly before each scheduled time and spins the rest, because Go timers
// round short sleeps up to about 1 ms.
func paced(ctx context.Context, do func(context.Context) error, rate int, dur time.Duration, maxInflight int) loadResult {
	// The pacer holds a P while it sleeps (raw syscall), so the requests need
	// at least one more. Pinned to one CPU, Go (1.25+) lowers GOMAXPROCS to
	// 1 by itself, which would starve them: keep two.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	n := int(float64(rate) * dur.Seconds())
	if n < 1 {
		n = 1
	}
	interval := float64(time.Second) / float64(rate)
	lat := make([]time.Duration, n)
	late := make([]time.Duration, n)
	status := make([]atomic.Int32, n)
	var inflight atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value

	start := time.Now().Add(2 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread goes back to normal priority before it is unlocked. It
		// must not end with the goroutine: a child process started from it
		// would get its parent-death signal.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
		if realtimePacer(true) {
			defer realtimePacer(false)
		}
		for i := range n {
			if ctx.Err() != nil {
				for j := i; j < n; j++ {
					status[j].Store(statusDropped)
				}
				return
			}
			due := start.Add(time.Duration(float64(i) * interval))
			sleepUntil(due)
			late[i] = time.Since(due)
			if inflight.Load() >= int64(maxInflight) {
				status[i].Store(statusDropped)
				continue
			}
			inflight.Add(1)
			wg.Add(1)
			go func(i int, due time.Time) {
				defer wg.Done()
				err := do(ctx)
				lat[i] = time.Since(due)
				if err != nil {
					status[i].Store(statusErr)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					status[i].Store(statusOK)
				}
				inflight.Add(-1)
			}(i, due)
		}
	}()
	<-done
	wg.Wait()
	res := loadResult{Scheduled: n, Elapsed: time.Since(start)}
	ok := make([]time.Duration, 0, n)
	lateOver := 0
	for i := range n {
		switch status[i].Load() {
		case statusOK:
			ok = append(ok, lat[i])
		default:
			res.Errors++
		}
		if late[i] > time.Millisecond {
			lateOver++
		}
	}
	if v, _ := firstErr.Load().(string); v != "" {
		res.FirstErr = v
	} else if res.Errors > 0 {
		res.FirstErr = "dropped: too many requests in flight"
	}
	res.OK = len(ok)
	slices.Sort(ok)
	res.P50, res.P99, res.P999 = percentile(ok, 0.50), percentile(ok, 0.99), percentile(ok, 0.999)
	if len(ok) > 0 {
		res.Max = ok[len(ok)-1]
	}
	slices.Sort(late)
	res.LateP99, res.LateMax = percentile(late, 0.99), late[len(late)-1]
	res.LateFrac = float64(lateOver) / float64(n)
	return res
}

// realtimePacer gives the calling thread SCHED_FIFO priority when allowed
// (root), so other work on a shared machine does not delay its wake-ups (it
// sleeps between sends and spins at most spinMargin, so it takes little
// CPU); with on false it restores SCHED_OTHER.
func realtimePacer(on bool) bool {
	policy, param := uintptr(0), struct{ prio int32 }{} // SCHED_OTHER
	if on {
		policy, param.prio = 1, 10 // SCHED_FIFO
	}
	_, _, e := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, 0, policy, uintptr(unsafe.Pointer(&param)))
	return e == 0
}

// spinMargin is how long before a due time the pacer stops sleeping and spins.
const spinMargin = 40 * time.Microsecond

func sleepUntil(due time.Time) {
	for {
		rem := time.Until(due)
		if rem <= 0 {
			return
		}
		if rem > 2*spinMargin {
			// A raw syscall keeps this thread's P: with a plain syscall the
			// runtime may hand the P away during the sleep, and getting one
			// back on wake-up can take longer than the gap between sends.
			// Sleep at most 1 ms at a time so a stop-the-world is not held up.
			ts := unix.NsecToTimespec(int64(min(rem-spinMargin, time.Millisecond)))
			_, _, e := unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
			if e != 0 && e != unix.EINTR {
				time.Sleep(rem - spinMargin)
			}
			continue
		}
		// spin the last stretch
	}
}
