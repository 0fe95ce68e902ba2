// Package directives is the sidecar's end of the directive stream: one
// long-lived bidirectional Sync stream to the control plane, over which it
// receives versioned snapshots, applies each through the policy engine and
// acknowledges it (or rejects it with the reason, keeping the previous
// version), and sends critical signals upward on the fast path.
//
// It persists every acknowledged snapshot to the state directory and
// applies the persisted one at start, before the control plane answers, so
// a sidecar that starts while the control plane is down still enforces its
// last directives until they expire. It reconnects with jittered
// exponential backoff and is resynchronized fully on every reconnect. A
// stream counts as connected only once the control plane answered its
// hello, so a stalled path is never reported connected. It never touches
// the request path.
package directives

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/sidecar/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Client.
type Config struct {
	// ControlPlane is the control plane's base URL ("http://cp:9090"). Required.
	ControlPlane string
	// Service, Instance, Pod, Namespace, ServiceVersion identify the sidecar
	// in its hello. Service and Instance are required.
	Service, Instance, Pod, Namespace, ServiceVersion string
	// SidecarVersion is the version of the sidecar binary.
	SidecarVersion string
	// StateDir is where the last acknowledged snapshot is persisted; empty
	// disables persistence.
	StateDir string
	// HTTPClient carries the stream; it must speak HTTP/2. Nil uses an h2c
	// (cleartext HTTP/2) client; set one with TLS for mTLS.
	HTTPClient connect.HTTPClient
	// GRPC uses the gRPC protocol instead of Connect.
	GRPC bool
	// BackoffMin and BackoffMax bound the jittered exponential reconnect
	// backoff; defaults 100ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// IdleTimeout drops a stream on which nothing (not even the control
	// plane's heartbeat, every 15 s by default) arrived for this long, so a
	// silent partition (a stalled path that never resets) is noticed and the
	// client reconnects; default 40s, 0 disables.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the wait for the control plane's first
	// message after hello (it answers every accepted hello at once). The
	// stream counts as connected only once that message arrived; an attempt
	// unanswered for this long (a path still stalled) is closed and retried
	// with backoff like any other failure. Default 10s.
	HandshakeTimeout time.Duration
	// SignalBuffer is how many critical signals may wait for the stream;
	// beyond it SendSignal drops them (counted). Default 256.
	SignalBuffer int
	// Registry receives the metrics; nil disables them.
	Registry prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{BackoffMin: 100 * time.Millisecond, BackoffMax: 30 * time.Second, SignalBuffer: 256, IdleTimeout: 40 * time.Second, HandshakeTimeout: 10 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ControlPlane == "" {
		errs = append(errs, errors.New("control_plane: required"))
	}
	if c.Service == "" {
		errs = append(errs, errors.New("service: required"))
	}
	if c.Instance == "" {
		errs = append(errs, errors.New("instance: required"))
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff: min %v and max %v must be positive with min <= max", c.BackoffMin, c.BackoffMax))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle_timeout: %v must not be negative", c.IdleTimeout))
	}
	if c.HandshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("handshake_timeout: %v must be positive", c.HandshakeTimeout))
	}
	if c.SignalBuffer < 1 {
		errs = append(errs, fmt.Errorf("signal_buffer: %d must be at least 1", c.SignalBuffer))
	}
	return errors.Join(errs...)
}

// Applier is what the client applies snapshots to (*policy.Engine).
type Applier interface {
	Apply(*bridgev1.DirectiveSnapshot) error
	Version() uint64
}

// Client keeps the sidecar's directive stream.
type Client struct {
	cfg     Config
	eng     Applier
	log     *slog.Logger
	rpc     bridgev1connect.DirectiveServiceClient
	signals chan *bridgev1.CriticalSignal
	metrics *metrics
	// closeIdle drops the HTTP client's idle connections (nil when it has
	// no such method); see Run.
	closeIdle func()
	connected atomic.Bool
}

// New returns a Client that applies snapshots to eng.
func New(cfg Config, eng Applier) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate directives client config: %w", err)
	}
	c := &Client{cfg: cfg, eng: eng, log: cfg.Logger, signals: make(chan *bridgev1.CriticalSignal, cfg.SignalBuffer)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = H2CClient()
	}
	var opts []connect.ClientOption
	if cfg.GRPC {
		opts = append(opts, connect.WithGRPC())
	}
	c.rpc = bridgev1connect.NewDirectiveServiceClient(hc, cfg.ControlPlane, opts...)
	if ci, ok := hc.(interface{ CloseIdleConnections() }); ok {
		c.closeIdle = ci.CloseIdleConnections
	}
	var err error
	if c.metrics, err = newMetrics(cfg.Registry); err != nil {
		return nil, fmt.Errorf("register directives client metrics: %w", err)
	}
	return c, nil
}

// H2CClient returns an HTTP client that speaks HTTP/2 without TLS, as the
// directive stream needs when the control plane is reached in cleartext.
func H2CClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{
		Protocols:   &p,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// HTTP/2 pings find a connection that went silent without a reset.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 20 * time.Second, PingTimeout: 10 * time.Second},
	}}
}

// Connected reports whether the directive stream is up: the control plane
// answered this stream's hello and the stream has not ended since. While a
// stream waits for that answer it is connecting, not connected.
func (c *Client) Connected() bool { return c.connected.Load() }

// SendSignal queues a critical signal for the stream without blocking; when
// the queue is full or the stream is down long enough to fill it, the
// signal is dropped (the bus copy remains the durable record).
func (c *Client) SendSignal(sig *bridgev1.CriticalSignal) {
	select {
	case c.signals <- sig:
	default:
		c.metrics.signalsDropped.Inc()
	}
}

// LoadPersisted applies the snapshot persisted in StateDir, if any (its
// expired directives dropped). Run calls it first; call it yourself to have
// the directives in force before Run starts.
func (c *Client) LoadPersisted() error {
	if c.cfg.StateDir == "" {
		return nil
	}
	snap, err := policy.LoadState(c.cfg.StateDir)
	if err != nil || snap == nil {
		return err
	}
	if snap.GetVersion() <= c.eng.Version() {
		return nil
	}
	if err := c.eng.Apply(snap); err != nil {
		return fmt.Errorf("apply persisted snapshot: %w", err)
	}
	c.log.Info("applied persisted directive snapshot", "version", snap.GetVersion(), "directives", len(snap.GetDirectives()))
	return nil
}

// Run keeps the stream open until ctx ends, reconnecting with jittered
// exponential backoff. It returns nil when ctx ends.
func (c *Client) Run(ctx context.Context) error {
	if err := c.LoadPersisted(); err != nil {
		c.log.Warn("load persisted directives", "err", err)
	}
	wait := c.cfg.BackoffMin
	for {
		start := time.Now()
		answered, err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		silent := errors.Is(err, errSilent)
		c.metrics.reconnects.Inc()
		if answered && (time.Since(start) > 10*c.cfg.BackoffMax || time.Since(start) > time.Minute) {
			wait = c.cfg.BackoffMin // the stream was healthy for a while
		}
		d := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		c.log.Info("directive stream ended; reconnecting", "err", err, "in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if silent && c.closeIdle != nil {
			// The control plane went silent on that stream, so its
			// connection is probably stalled too; without this the next
			// stream could be opened on it again until HTTP/2 pings give up
			// on it (about 30 s). By now the cancelled stream has left it,
			// so it counts as idle.
			c.closeIdle()
		}
		wait = min(wait*2, c.cfg.BackoffMax)
	}
}

// errSilent marks a stream ended because the control plane went silent:
// no answer to hello in time, or nothing at all for IdleTimeout.
var errSilent = errors.New("control plane silent")

// session runs one stream from hello to its end. The stream is connecting
// until the control plane's first message arrives (within
// HandshakeTimeout), connected after that; answered says whether it got
// that far.
func (c *Client) session(ctx context.Context) (answered bool, _ error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.metrics.connecting.Set(1)
	defer c.metrics.connecting.Set(0)
	// The watchdog ends a stream that went silent: first no answer to the
	// hello, later no heartbeat, although nothing reset the connection.
	// It is armed before the hello is sent, since even that may block on
	// a stalled path.
	var silent atomic.Pointer[string]
	watchdog := time.AfterFunc(c.cfg.HandshakeTimeout, func() {
		msg := fmt.Sprintf("no answer to hello within %v (stalled path?)", c.cfg.HandshakeTimeout)
		silent.Store(&msg)
		c.metrics.handshakeTimeouts.Inc()
		cancel()
	})
	defer watchdog.Stop()
	// failed names why the stream ended: the silence, when it was that.
	failed := func(verb string, err error) error {
		if msg := silent.Load(); msg != nil {
			return fmt.Errorf("%s: %w: %s", verb, errSilent, *msg)
		}
		return fmt.Errorf("%s: %w", verb, err)
	}
	stream := c.rpc.Sync(ctx)
	defer stream.CloseRequest()
	// A cancelled context does not always interrupt a blocked read of the
	// response body; closing the response does.
	stop := context.AfterFunc(ctx, func() { _ = stream.CloseResponse() })
	defer stop()
	hello := &bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Hello{Hello: &bridgev1.SidecarHello{
		Service: c.cfg.Service, Instance: c.cfg.Instance, Pod: c.cfg.Pod, Namespace: c.cfg.Namespace,
		ServiceVersion: c.cfg.ServiceVersion, AppliedVersion: c.eng.Version(), SidecarVersion: c.cfg.SidecarVersion,
	}}}
	if err := stream.Send(hello); err != nil {
		return false, failed("send hello", err)
	}
	// The control plane answers an accepted hello at once with a heartbeat
	// (an older one answered with the snapshot, when it had one).
	resp, err := stream.Receive()
	if err != nil {
		return false, failed("receive", err)
	}
	if !watchdog.Stop() {
		return false, failed("receive", ctx.Err()) // the answer came as the watchdog fired
	}
	c.metrics.connecting.Set(0)
	c.connected.Store(true)
	c.metrics.connected.Set(1)
	defer func() { c.connected.Store(false); c.metrics.connected.Set(0) }()
	// From here on the watchdog waits for heartbeats.
	resetIdle := func() {}
	if c.cfg.IdleTimeout > 0 {
		idle := time.AfterFunc(c.cfg.IdleTimeout, func() {
			msg := fmt.Sprintf("nothing from the control plane for %v (silent partition?)", c.cfg.IdleTimeout)
			silent.Store(&msg)
			cancel()
		})
		defer idle.Stop()
		resetIdle = func() { idle.Reset(c.cfg.IdleTimeout) }
	}
	// The sender (acks and rejects from the receiver, and signals) starts
	// only now, so that queued signals wait for a stream the control plane
	// has.
	out := make(chan *bridgev1.SyncRequest, 16)
	errc := make(chan error, 1)
	go func() {
		for {
			var msg *bridgev1.SyncRequest
			select {
			case <-ctx.Done():
				return
			case msg = <-out:
			case sig := <-c.signals:
				msg = &bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Signal{Signal: sig}}
			}
			if err := stream.Send(msg); err != nil {
				errc <- fmt.Errorf("send: %w", err)
				return
			}
		}
	}()
	for {
		if snap := resp.GetSnapshot(); snap != nil { // else a heartbeat
			reply := c.apply(snap)
			select {
			case out <- reply:
			case err := <-errc:
				return true, err
			case <-ctx.Done():
				return true, failed("send", ctx.Err())
			}
		}
		if resp, err = stream.Receive(); err != nil {
			if silent.Load() == nil {
				select {
				case serr := <-errc:
					return true, serr
				default:
				}
			}
			return true, failed("receive", err)
		}
		resetIdle()
	}
}

// apply applies one snapshot and returns the ack or reject to send.
func (c *Client) apply(snap *bridgev1.DirectiveSnapshot) *bridgev1.SyncRequest {
	if err := c.eng.Apply(snap); err != nil {
		c.metrics.rejected.Inc()
		rej := &bridgev1.SnapshotReject{Version: snap.GetVersion(), Reason: err.Error()}
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			rej.DirectiveId = ve.DirectiveID
		}
		c.log.Warn("rejected directive snapshot", "version", snap.GetVersion(), "reason", err)
		return &bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Reject{Reject: rej}}
	}
	if c.cfg.StateDir != "" {
		if err := policy.SaveState(c.cfg.StateDir, snap); err != nil {
			// Applied but not persisted: still in force; a restart without
			// the control plane would fall back to the older persisted one.
			c.metrics.persistErrors.Inc()
			c.log.Warn("persist directive snapshot", "err", err)
		}
	}
	c.metrics.applied.Inc()
	return &bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Ack{Ack: &bridgev1.SnapshotAck{Version: snap.GetVersion()}}}
}
