package directives

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// flushStatus writes the status of the sidecars that changed to the KV
// store, so that every replica's GetStatus shows every sidecar.
func (s *Server) flushStatus(ctx context.Context) {
	s.mu.Lock()
	var dirty []sidecar
	for _, sc := range s.sidecars {
		if sc.dirty {
			dirty = append(dirty, *sc)
			sc.dirty = false
		}
	}
	s.mu.Unlock()
	for _, sc := range dirty {
		b, _ := json.Marshal(sc)
		if err := s.cfg.KV.Put(ctx, PrefixStatus+key(sc.Service, sc.Instance), b); err != nil {
			s.metrics.kvErrors.Inc()
			s.log.Warn("write sidecar status", "err", err)
			s.mu.Lock()
			if cur := s.sidecars[key(sc.Service, sc.Instance)]; cur != nil {
				cur.dirty = true
			}
			s.mu.Unlock()
			return
		}
	}
}

// Status returns the sync state of every sidecar (of service, or all when
// empty), sorted by service then instance, and the current version per
// service. Sidecars served by other replicas come from the KV store; a
// sidecar unseen for longer than StaleAfter and disconnected is left out.
func (s *Server) Status(ctx context.Context, service string) ([]*bridgev1.SidecarStatus, map[string]uint64, error) {
	all := map[string]sidecar{}
	stored, err := s.cfg.KV.List(ctx, PrefixStatus)
	if err != nil {
		s.metrics.kvErrors.Inc()
		s.log.Warn("read sidecar status", "err", err)
	}
	for k, v := range stored {
		var sc sidecar
		if json.Unmarshal(v, &sc) == nil {
			all[k[len(PrefixStatus):]] = sc
		}
	}
	s.mu.Lock()
	for k, sc := range s.sidecars {
		all[k] = *sc
	}
	versions := map[string]uint64{}
	for name, v := range s.versions {
		if service == "" || name == service {
			versions[name] = v
		}
	}
	s.mu.Unlock()
	var out []*bridgev1.SidecarStatus
	now := time.Now()
	for _, sc := range all {
		if service != "" && sc.Service != service {
			continue
		}
		if !sc.Connected && now.Sub(sc.LastSeen) > s.cfg.StaleAfter {
			continue
		}
		st := &bridgev1.SidecarStatus{
			Service: sc.Service, Instance: sc.Instance, Pod: sc.Pod, SentVersion: sc.Sent, AckedVersion: sc.Acked,
			RejectedVersion: sc.Rejected, RejectReason: sc.Reason, LastSeen: timestamppb.New(sc.LastSeen), Connected: sc.Connected,
		}
		switch {
		case sc.Rejected != 0 && sc.Rejected >= sc.Sent && sc.Rejected > sc.Acked:
			st.SyncState = "REJECTED"
		case sc.Sent > sc.Acked:
			st.SyncState = "STALE"
		default:
			st.SyncState = "SYNCED"
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GetService() != out[j].GetService() {
			return out[i].GetService() < out[j].GetService()
		}
		return out[i].GetInstance() < out[j].GetInstance()
	})
	return out, versions, nil
}
