package sidecar

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
)

// prober checks the upstream's health: GET HealthPath (2xx/3xx healthy) or,
// without a path, a TCP connect.
type prober struct {
	upstream *url.URL
	path     string
	timeout  time.Duration
	client   *http.Client
}

func newProber(u *url.URL, path string, timeout time.Duration) *prober {
	return &prober{upstream: u, path: path, timeout: timeout, client: &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (p *prober) probe(ctx context.Context) (bridgev1.HealthStatus, string) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	if p.path == "" {
		host := p.upstream.Host
		if p.upstream.Port() == "" {
			port := "80"
			if p.upstream.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(p.upstream.Hostname(), port)
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
		if err != nil {
			return bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY, "probe: tcp connect failed: " + err.Error()
		}
		_ = c.Close()
		return bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY, "probe: tcp connect ok"
	}
	u := *p.upstream
	u.Path, u.RawQuery = p.path, ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY, "probe: bad request: " + err.Error()
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY, "probe: " + err.Error()
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return bridgev1.HealthStatus_HEALTH_STATUS_HEALTHY, fmt.Sprintf("probe: %s answered %d", p.path, resp.StatusCode)
	}
	return bridgev1.HealthStatus_HEALTH_STATUS_UNHEALTHY, fmt.Sprintf("probe: %s answered %d", p.path, resp.StatusCode)
}

// runHealth probes every interval and emits a health change event when the
// status changes.
func (s *Sidecar) runHealth(ctx context.Context) error {
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st, reason := s.prober.probe(ctx)
		if ctx.Err() != nil {
			return nil
		}
		prev := bridgev1.HealthStatus(s.health.Swap(int32(st)))
		if prev != st {
			s.log.Info("upstream health changed", "from", prev.String(), "to", st.String(), "reason", s.red.String(reason))
			s.lifecycle(bridgev1.LifecycleEventType_LIFECYCLE_EVENT_TYPE_SERVICE_HEALTH_CHANGE, st, prev, reason)
		}
	}
}
