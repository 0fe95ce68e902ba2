package sidecar

import (
	"context"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

type probeComponent struct{ started, stopped chan struct{} }

func (p probeComponent) Run(ctx context.Context) error {
	close(p.started)
	<-ctx.Done()
	close(p.stopped)
	return nil
}

func TestComponentsRunAndEmissionOff(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, upstreamMux(make(chan struct{})))
	comp := probeComponent{make(chan struct{}), make(chan struct{})}
	spool := t.TempDir()
	sc := startSidecar(t, up, nil, func(c *Config) {
		c.Emit = false
		c.SpoolDir = spool
		c.ControlPlane = "http://127.0.0.1:1"
		c.Components = []Component{comp}
	})
	select {
	case <-comp.started:
	case <-time.After(5 * time.Second):
		t.Fatal("component not started")
	}
	resp, err := http.Get("http://" + sc.ProxyAddr() + "/orders/5")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if st := sc.EmitStats(); st.Emitted != 0 {
		t.Errorf("emission off but %+v", st)
	}
	sc.stop(t)
	select {
	case <-comp.stopped:
	default:
		t.Fatal("component still running after the sidecar stopped")
	}
	ents, _ := os.ReadDir(spool)
	for _, e := range ents {
		if e.Name() != "sequence" && e.Name() != "sequence.live" && e.Name() != "instance" {
			t.Errorf("emission off wrote %s", e.Name())
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	base := DefaultConfig()
	base.Service, base.Upstream, base.SpoolDir = "orders", "http://127.0.0.1:8080", "/tmp/x"
	if err := base.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no service":       func(c *Config) { c.Service = "" },
		"bad upstream":     func(c *Config) { c.Upstream = "ftp://x" },
		"no spool":         func(c *Config) { c.SpoolDir = "" },
		"half tls":         func(c *Config) { c.TLSCert = "a" },
		"tiny headers":     func(c *Config) { c.MaxHeaderBytes = 10 },
		"fast health":      func(c *Config) { c.HealthInterval = time.Millisecond },
		"bad controlplane": func(c *Config) { c.ControlPlane = "::" },
	} {
		c := base
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
