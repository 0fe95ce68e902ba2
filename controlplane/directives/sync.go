package directives

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// sidecar is the sync state of one sidecar served by this replica.
type sidecar struct {
	Service   string    `json:"service"`
	Instance  string    `json:"instance"`
	Pod       string    `json:"pod,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Version   string    `json:"service_version,omitempty"`
	Sent      uint64    `json:"sent_version"`
	Acked     uint64    `json:"acked_version"`
	Rejected  uint64    `json:"rejected_version,omitempty"`
	Reason    string    `json:"reject_reason,omitempty"`
	LastSeen  time.Time `json:"last_seen"`
	Connected bool      `json:"connected"`
	dirty     bool
	stream    int
	kick      chan struct{} // wakes the send loop ahead of the service's other streams // streams open for this instance (a reconnect may overlap the old one)
}

// Sync serves one sidecar's stream: hello, then at once a heartbeat (the
// answer that tells the sidecar this replica has the stream), then the
// current snapshot (a full resynchronization), every new version after
// that, and heartbeats; acks, rejects and signals flow the other way.
func (s *Server) Sync(ctx context.Context, stream *connect.BidiStream[bridgev1.SyncRequest, bridgev1.SyncResponse]) error {
	first, err := stream.Receive()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	hello := first.GetHello()
	if hello == nil || hello.GetService() == "" || hello.GetInstance() == "" {
		s.metrics.badMessages.Inc()
		return connect.NewError(connect.CodeInvalidArgument, errors.New("the first message must be a hello with service and instance"))
	}
	service, instance := hello.GetService(), hello.GetInstance()
	sc := s.connect(hello)
	defer s.disconnect(sc)
	// Answer the hello before anything that may wait (the KV read below):
	// a sidecar reports its stream connected only once the control plane
	// answered, and a service may have no snapshot to send. A heartbeat
	// changes nothing on the sidecar, unlike an empty snapshot would.
	if err := stream.Send(&bridgev1.SyncResponse{Message: &bridgev1.SyncResponse_Heartbeat{Heartbeat: timestamppb.Now()}}); err != nil {
		return err
	}
	s.ensureLoaded(ctx, service)

	errc := make(chan error, 1)
	go func() { errc <- s.receive(ctx, stream, sc) }()

	hb := time.NewTicker(s.cfg.Heartbeat)
	defer hb.Stop()
	var sent uint64
	first0 := true
	for {
		snap, changed := s.snapshotFor(service, instance)
		if snap != nil && (first0 || snap.GetVersion() != sent) {
			if err := stream.Send(&bridgev1.SyncResponse{Message: &bridgev1.SyncResponse_Snapshot{Snapshot: snap}}); err != nil {
				return err
			}
			sent = snap.GetVersion()
			first0 = false
			s.update(sc, func(c *sidecar) { c.Sent = sent })
			s.metrics.sent.Inc()
			hb.Reset(s.cfg.Heartbeat)
		}
		select {
		case <-changed:
		case <-sc.kick:
		case <-hb.C:
			if err := stream.Send(&bridgev1.SyncResponse{Message: &bridgev1.SyncResponse_Heartbeat{Heartbeat: timestamppb.Now()}}); err != nil {
				return err
			}
		case err := <-errc:
			if err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

// receive handles the sidecar's messages after hello until the stream ends.
func (s *Server) receive(ctx context.Context, stream *connect.BidiStream[bridgev1.SyncRequest, bridgev1.SyncResponse], sc *sidecar) error {
	for {
		msg, err := stream.Receive()
		if err != nil {
			return err
		}
		now := time.Now()
		switch m := msg.GetMessage().(type) {
		case *bridgev1.SyncRequest_Ack:
			s.mu.Lock()
			s.setAckedLocked(sc, m.Ack.GetVersion())
			sc.LastSeen, sc.dirty = now, true
			s.mu.Unlock()
			s.metrics.acks.Inc()
			s.notifyAck()
		case *bridgev1.SyncRequest_Reject:
			s.update(sc, func(c *sidecar) {
				c.Rejected, c.Reason, c.LastSeen = m.Reject.GetVersion(), m.Reject.GetReason(), now
			})
			s.metrics.rejects.Inc()
			s.log.Warn("sidecar rejected directive snapshot", "service", sc.Service, "instance", sc.Instance,
				"version", m.Reject.GetVersion(), "reason", m.Reject.GetReason())
			s.notifyAck()
		case *bridgev1.SyncRequest_Signal:
			s.update(sc, func(c *sidecar) { c.LastSeen = now })
			if s.SeenEvent(m.Signal.GetEventId()) {
				s.metrics.signals.WithLabelValues("duplicate").Inc()
				continue
			}
			s.metrics.signals.WithLabelValues("new").Inc()
			if s.cfg.OnSignal != nil {
				s.cfg.OnSignal(withOrigin(ctx, sc.Instance), sc.Service, m.Signal)
			}
		case *bridgev1.SyncRequest_Hello:
			s.metrics.badMessages.Inc()
			return connect.NewError(connect.CodeInvalidArgument, errors.New("hello sent twice"))
		default:
			s.metrics.badMessages.Inc()
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("empty sync message"))
		}
	}
}

func key(service, instance string) string { return service + "/" + instance }

func (s *Server) connect(h *bridgev1.SidecarHello) *sidecar {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(h.GetService(), h.GetInstance())
	sc := s.sidecars[k]
	if sc == nil {
		sc = &sidecar{Service: h.GetService(), Instance: h.GetInstance(), kick: make(chan struct{}, 1)}
		s.sidecars[k] = sc
	}
	sc.Pod, sc.Namespace, sc.Version = h.GetPod(), h.GetNamespace(), h.GetServiceVersion()
	if !sc.Connected {
		sc.Connected = true
		s.countLocked(sc, 1)
	}
	s.setAckedLocked(sc, max(sc.Acked, h.GetAppliedVersion()))
	sc.LastSeen, sc.dirty = time.Now(), true
	sc.stream++
	s.metrics.connected.Inc()
	return sc
}

func (s *Server) disconnect(sc *sidecar) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc.stream--
	if sc.stream == 0 {
		s.countLocked(sc, -1)
		sc.Connected, sc.dirty = false, true
	}
	s.metrics.connected.Dec()
}

func (s *Server) update(sc *sidecar, f func(*sidecar)) {
	s.mu.Lock()
	f(sc)
	sc.dirty = true
	s.mu.Unlock()
}

func (s *Server) notifyAck() {
	s.mu.Lock()
	close(s.acked)
	s.acked = make(chan struct{})
	s.mu.Unlock()
}

// countLocked adds (delta 1) or removes (-1) a connected sidecar's acked
// version from its service's tally.
func (s *Server) countLocked(sc *sidecar, delta int) {
	t := s.ackTally[sc.Service]
	if t == nil {
		t = map[uint64]int{}
		s.ackTally[sc.Service] = t
	}
	if t[sc.Acked] += delta; t[sc.Acked] == 0 {
		delete(t, sc.Acked)
	}
}

// setAckedLocked records a sidecar's acked version, keeping the tally.
func (s *Server) setAckedLocked(sc *sidecar, v uint64) {
	if sc.Connected {
		s.countLocked(sc, -1)
	}
	sc.Acked = v
	if sc.Connected {
		s.countLocked(sc, 1)
	}
}

// WaitAcked waits until at least n connected sidecars of service served by
// this replica have acknowledged version (or a later one), or ctx ends.
func (s *Server) WaitAcked(ctx context.Context, service string, version uint64, n int) error {
	for {
		s.mu.Lock()
		got := 0
		for v, c := range s.ackTally[service] {
			if v >= version {
				got += c
			}
		}
		ch := s.acked
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d acks of %s v%d (have %d): %w", n, service, version, got, ctx.Err())
		}
	}
}
