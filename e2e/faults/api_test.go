package faults

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
)

// apiProbe calls the query API (ListServices) every 100 ms and counts
// answers and failures.
type apiProbe struct {
	ok, failed atomic.Int64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	lastErr    atomic.Value
}

func startAPIProbe(t *testing.T, base string) *apiProbe {
	t.Helper()
	hc := &http.Client{Timeout: 3 * time.Second}
	cl := bridgev1connect.NewIntelligenceServiceClient(hc, base)
	ctx, cancel := context.WithCancel(context.Background())
	p := &apiProbe{cancel: cancel}
	p.wg.Go(func() {
		defer hc.CloseIdleConnections()
		for ctx.Err() == nil {
			_, err := cl.ListServices(ctx, connect.NewRequest(&bridgev1.ListServicesRequest{}))
			switch {
			case err == nil:
				p.ok.Add(1)
			case ctx.Err() == nil:
				p.failed.Add(1)
				p.lastErr.Store(err.Error())
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { p.stop() })
	return p
}

// stop ends the probe and returns its counts.
func (p *apiProbe) stop() (ok, failed int64) {
	p.cancel()
	p.wg.Wait()
	return p.ok.Load(), p.failed.Load()
}
