package rpcmetrics

import (
	"strings"
	"testing"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/prometheus/client_golang/prometheus"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	intel := bridgev1.File_omninode_bridge_v1_intelligence_proto.Services().ByName("IntelligenceService")
	admin := bridgev1.File_omninode_bridge_v1_intelligence_proto.Services().ByName("AdminService")
	ok := func() Config {
		c := DefaultConfig()
		c.Registry = prometheus.NewRegistry()
		c.Services = []Service{{Entry: "api", Desc: intel}, {Entry: "admin", Desc: admin}}
		return c
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"no registry", func(c *Config) { c.Registry = nil }, "Registry"},
		{"negative interval", func(c *Config) { c.LogEvery = -1 }, "LogEvery"},
		{"no services", func(c *Config) { c.Services = nil }, "Services"},
		{"no entry", func(c *Config) { c.Services[0].Entry = "" }, "Entry"},
		{"no descriptor", func(c *Config) { c.Services[0].Desc = nil }, "Desc"},
		{"entry repeats", func(c *Config) { c.Services[1].Entry = "api" }, `entry "api" repeats`},
		{"service repeats", func(c *Config) { c.Services[1].Desc = intel }, "repeats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.mutate(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	// New registers the counter once: a second New on the same registry fails.
	c := ok()
	if _, err := New(c); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c); err == nil {
		t.Fatal("second New on one registry: want a registration error")
	}
}
