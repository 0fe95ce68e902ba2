package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tlsListener terminates TLS before http.Server sees a connection, so that
// the plaintext an HTTP/1 connection carries can be watched (http.Server
// writes its refusals to whatever Accept returned; given a *tls.Conn they
// would be encrypted below it) and a failed handshake can be counted.
//
// Each handshake runs in its own goroutine, as it would in http.Server, so
// a slow client does not hold up Accept. A connection that negotiated h2 is
// handed over as the *tls.Conn itself, so that http.Server serves HTTP/2
// through TLSNextProto as before; any other is wrapped in a tlsWatchConn,
// which gives http.Server the TLS state for Request.TLS, over a framingConn,
// so that HTTP/1 over TLS gets the same Content-Length + Transfer-Encoding
// refusal as plain TCP.
type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	r       *refusals

	ctx     context.Context // ends with Close: aborts handshakes, stops the accept loop
	cancel  context.CancelFunc
	mu      sync.Mutex
	started bool           // the accept loop runs (it starts with the first Accept)
	closed  bool           // Close was called
	wg      sync.WaitGroup // the accept loop and the handshakes
	ready   chan net.Conn  // handshaken connections
	errs    chan error     // Accept errors of the listener beneath
	dead    chan struct{}  // closed when the accept loop ended; err says why
	err     error
}

// TLSListener wraps l, a plain TCP listener, with TLS (cfg, which is
// cloned) for the proxy's http.Server, in place of tls.NewListener: it
// counts the requests Go's HTTP parser refuses on HTTP/1 connections, as
// Listener does, and failed TLS handshakes (reason tls_handshake), logging
// them at most once per second. A handshake gets handshakeTimeout (0: no
// limit), as http.Server gives it ReadHeaderTimeout; a client that speaks
// plain HTTP gets the 400 answer http.Server would give. Serve it with
// http.Server.Serve (the server's TLSConfig still enables HTTP/2).
func (p *Proxy) TLSListener(l net.Listener, cfg *tls.Config, handshakeTimeout time.Duration) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &tlsListener{
		Listener: l, cfg: cfg.Clone(), timeout: handshakeTimeout, r: p.refusals(),
		ctx: ctx, cancel: cancel,
		ready: make(chan net.Conn), errs: make(chan error), dead: make(chan struct{}),
	}
}

func (l *tlsListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if !l.started && !l.closed {
		l.started = true
		l.wg.Add(1)
		go l.acceptLoop()
	}
	started := l.started
	l.mu.Unlock()
	if !started {
		return nil, net.ErrClosed
	}
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.dead:
		return nil, l.err
	}
}

// Close stops accepting, aborts the handshakes in progress and waits for
// their goroutines.
func (l *tlsListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				l.err = err
				close(l.dead)
				return
			}
			// Passed on for http.Server to decide: it backs off and calls
			// Accept again on a temporary error, else it stops serving.
			select {
			case l.errs <- err:
				continue
			case <-l.ctx.Done():
				l.err = err
				close(l.dead)
				return
			}
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.cfg)
	if l.timeout > 0 {
		_ = raw.SetDeadline(time.Now().Add(l.timeout))
	}
	if err := tc.HandshakeContext(l.ctx); err != nil {
		if l.ctx.Err() == nil {
			l.failed(raw, err)
		}
		_ = raw.Close()
		return
	}
	if l.timeout > 0 {
		_ = raw.SetDeadline(time.Time{})
	}
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		// HTTP/1: the framing scan (Content-Length with Transfer-Encoding)
		// reads the plaintext, as FramingListener does on plain TCP.
		c = &tlsWatchConn{watchConn: watchConn{Conn: &framingConn{Conn: tc, lineStart: true}, r: l.r}, tc: tc}
	}
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		_ = tc.Close()
	}
}

// failed counts and logs a failed handshake; a client that sent plain HTTP
// gets http.Server's answer to that.
func (l *tlsListener) failed(raw net.Conn, err error) {
	l.r.handshake.Inc()
	var re tls.RecordHeaderError
	plain := errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader)
	if plain {
		_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		err = errors.New("client sent an HTTP request to an HTTPS server")
	}
	l.r.log.Log(slog.LevelInfo, "proxy: TLS handshake failed", "remote", addrString(raw.RemoteAddr()), "error", err.Error())
}

// looksLikeHTTP is net/http's test of a TLS record header for the start of
// a plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}
