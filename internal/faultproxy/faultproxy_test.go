package faultproxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/faultproxy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves a line echo on loopback until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func start(t *testing.T, target string) *faultproxy.Proxy {
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
			t.Errorf("run: %v", err)
		}
	})
	return p
}

func roundTrip(addr, msg string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func TestForwardLatencyBandwidth(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	if got, err := roundTrip(p.Addr(), "hello", time.Second); err != nil || got != "hello" {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	p.SetLatency(100 * time.Millisecond)
	begin := time.Now()
	if _, err := roundTrip(p.Addr(), "slow", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("with 100ms latency each way the round trip took %v", d)
	}
	p.SetLatency(0)
	p.SetBandwidth(20 << 10) // 20 KiB/s: 10 KiB takes 0.5 s (the two directions overlap)
	begin = time.Now()
	if got, err := roundTrip(p.Addr(), strings.Repeat("x", 10<<10), 5*time.Second); err != nil || len(got) != 10<<10 {
		t.Fatalf("bandwidth-limited round trip: %d bytes, %v", len(got), err)
	}
	if d := time.Since(begin); d < 400*time.Millisecond {
		t.Errorf("10 KiB each way at 20 KiB/s took %v", d)
	}
	if st := p.Stats(); st.BytesUp < 10<<10 || st.BytesDown < 10<<10 {
		t.Errorf("stats %+v", st)
	}
}

func TestDownResetsAndUpRecovers(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "a\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.SetMode(faultproxy.Down)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatalf("open connection survived Down: %v", err)
	}
	if _, err := roundTrip(p.Addr(), "x", time.Second); err == nil {
		t.Fatal("new connection worked while Down")
	}
	p.SetMode(faultproxy.Up)
	if got, err := roundTrip(p.Addr(), "back", time.Second); err != nil || got != "back" {
		t.Fatalf("after Up: %q, %v", got, err)
	}
	if p.Stats().Resets < 2 {
		t.Errorf("resets %d, want at least 2", p.Stats().Resets)
	}
}

func TestBlackholeStallsWithoutReset(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	// An open connection stalls: no reset, no answer.
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := io.WriteString(c, "a\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.SetMode(faultproxy.Blackhole)
	if _, err := io.WriteString(c, "b\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if _, err := r.ReadString('\n'); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("open connection under Blackhole: %v, want a timeout", err)
	}
	_, err = roundTrip(p.Addr(), "lost", 300*time.Millisecond)
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("blackholed round trip: %v, want a timeout", err)
	}
	p.SetMode(faultproxy.Up)
	if got, err := roundTrip(p.Addr(), "ok", time.Second); err != nil || got != "ok" {
		t.Fatalf("after Up: %q, %v", got, err)
	}
}

func TestResetAllAndTargetDown(t *testing.T) {
	t.Parallel()
	p := start(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(time.Second)
	for p.Open() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.ResetAll()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after ResetAll succeeded")
	}
	// A target that refuses: the client connection is reset, not hung.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	p.SetTarget(dead)
	if _, err := roundTrip(p.Addr(), "x", time.Second); err == nil {
		t.Fatal("round trip to a dead target succeeded")
	}
}
