// Package faultproxy is an in-process TCP proxy for fault-injection tests:
// it sits on a loopback port in front of a broker, a database, a cache or
// the control plane and, on command, adds latency, limits bandwidth, resets
// connections, refuses new ones (down) or swallows traffic (blackhole).
//
// It is a test tool: it owns only its listener and the connections it
// accepted, keeps no state beyond the current fault settings, and never
// touches the servers behind it. (toxiproxy's Go library does the same with
// a larger dependency graph; this covers what the fault suite needs.)
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what the proxy does with connections.
type Mode int32

const (
	// Up forwards traffic (with the configured latency and bandwidth).
	Up Mode = iota
	// Down resets every open connection and resets new ones at once (a
	// client sees "connection reset"); the port stays bound, so a later Up
	// is reachable at the same address.
	Down
	// Blackhole swallows traffic: open connections stay open but forward
	// nothing more in either direction, and new ones are accepted and read
	// but never answered (a partition without resets, which only timeouts
	// and keepalives detect).
	Blackhole
)

func (m Mode) String() string {
	switch m {
	case Up:
		return "up"
	case Down:
		return "down"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Mode(%d)", int32(m))
}

// Stats counts what the proxy did.
type Stats struct {
	// Accepted counts accepted client connections.
	Accepted int64
	// Resets counts connections the proxy reset (Down, ResetAll).
	Resets int64
	// BytesUp and BytesDown count bytes forwarded client→target and back.
	BytesUp, BytesDown int64
}

// Proxy forwards TCP connections from its listener to a target address.
// Build it with New, serve with Run; every setter is safe while it runs.
type Proxy struct {
	ln     net.Listener
	target atomic.Value // string

	mode      atomic.Int32
	latency   atomic.Int64 // nanoseconds added before each forwarded chunk
	bandwidth atomic.Int64 // bytes per second per direction; 0 unlimited

	mu    sync.Mutex
	conns map[*pair]struct{}
	wg    sync.WaitGroup

	accepted, resets, up, down atomic.Int64
}

// pair is one client connection and its target connection (nil until dialed).
type pair struct {
	client, target net.Conn
	mu             sync.Mutex
}

// New listens on listen (such as "127.0.0.1:0") and forwards to target.
func New(listen, target string) (*Proxy, error) {
	if target == "" {
		return nil, errors.New("faultproxy: target is required")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	p := &Proxy{ln: ln, conns: map[*pair]struct{}{}}
	p.target.Store(target)
	return p, nil
}

// Addr is the proxy's listen address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address connections are forwarded to.
func (p *Proxy) Target() string { return p.target.Load().(string) }

// SetTarget changes where new connections go; open ones keep theirs.
func (p *Proxy) SetTarget(addr string) { p.target.Store(addr) }

// SetLatency delays every forwarded chunk, in both directions, by d
// (0 removes it).
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetBandwidth limits each direction of each connection to bytesPerSec
// (0 removes the limit).
func (p *Proxy) SetBandwidth(bytesPerSec int64) { p.bandwidth.Store(bytesPerSec) }

// SetMode switches the mode. Down resets the open connections at once;
// Blackhole stalls them.
func (p *Proxy) SetMode(m Mode) {
	p.mode.Store(int32(m))
	if m == Down {
		p.ResetAll()
	}
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode { return Mode(p.mode.Load()) }

// ResetAll resets every open connection (both sides get an RST).
func (p *Proxy) ResetAll() {
	p.mu.Lock()
	all := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		all = append(all, c)
	}
	p.mu.Unlock()
	for _, c := range all {
		p.reset(c)
	}
}

// Open returns the number of open client connections.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	return Stats{Accepted: p.accepted.Load(), Resets: p.resets.Load(), BytesUp: p.up.Load(), BytesDown: p.down.Load()}
}

// Run accepts connections until ctx ends, then closes the listener, resets
// every open connection, waits for their goroutines and returns nil.
func (p *Proxy) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = p.ln.Close() })
	defer stop()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				p.ResetAll()
				p.wg.Wait()
				return nil
			}
			// Transient accept errors (EMFILE): back off briefly.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.accepted.Add(1)
		pr := &pair{client: c}
		switch Mode(p.mode.Load()) {
		case Down:
			p.resets.Add(1)
			rst(c)
			continue
		case Blackhole:
			p.track(pr)
			p.wg.Go(func() { defer p.untrack(pr); _, _ = io.Copy(io.Discard, c) })
			continue
		}
		p.track(pr)
		p.wg.Go(func() { p.serve(ctx, pr) })
	}
}

func (p *Proxy) track(pr *pair) {
	p.mu.Lock()
	p.conns[pr] = struct{}{}
	p.mu.Unlock()
}

func (p *Proxy) untrack(pr *pair) {
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
	pr.mu.Lock()
	_ = pr.client.Close()
	if pr.target != nil {
		_ = pr.target.Close()
	}
	pr.mu.Unlock()
}

func (p *Proxy) reset(pr *pair) {
	p.resets.Add(1)
	pr.mu.Lock()
	defer pr.mu.Unlock()
	rst(pr.client)
	if pr.target != nil {
		rst(pr.target)
	}
}

// rst closes c with SO_LINGER 0, which sends an RST instead of a FIN.
func rst(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) serve(ctx context.Context, pr *pair) {
	defer p.untrack(pr)
	d := net.Dialer{Timeout: 5 * time.Second}
	t, err := d.DialContext(ctx, "tcp", p.Target())
	if err != nil {
		p.resets.Add(1)
		rst(pr.client)
		return
	}
	pr.mu.Lock()
	pr.target = t
	pr.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(t, pr.client, &p.up) })
	wg.Go(func() { p.pipe(pr.client, t, &p.down) })
	wg.Wait()
}

// pipe copies src to dst chunk by chunk, applying latency and bandwidth;
// when either side fails, it closes both so the other direction ends too.
func (p *Proxy) pipe(dst, src net.Conn, count *atomic.Int64) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		chunk := buf
		if bw := p.bandwidth.Load(); bw > 0 {
			// Small chunks under a limit, so the rate is smooth (20 per second).
			chunk = buf[:min(int64(len(buf)), max(bw/20, 256))]
		}
		n, err := src.Read(chunk)
		if n > 0 {
			switch Mode(p.mode.Load()) {
			case Down:
				return
			case Blackhole:
				continue // swallowed
			}
			if d := time.Duration(p.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			if bw := p.bandwidth.Load(); bw > 0 {
				time.Sleep(time.Duration(float64(n) / float64(bw) * float64(time.Second)))
			}
			if _, werr := dst.Write(chunk[:n]); werr != nil {
				return
			}
			count.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}
