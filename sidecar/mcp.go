package sidecar

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/omninode/bridge/sidecar/mcp"
)

// mcpMiddleware builds MCP capture for the proxied traffic.
func (s *Sidecar) mcpMiddleware() (func(http.Handler) http.Handler, error) {
	c, err := mcp.NewCapture(mcp.Config{Service: s.cfg.Service, Registry: s.reg, Logger: s.log}, s.src, s.sink, s.red)
	if err != nil {
		return nil, fmt.Errorf("create mcp capture: %w", err)
	}
	s.mcpCapture = c
	return c.Wrap, nil
}

func parseURL(raw string) (*url.URL, error) { return url.Parse(raw) }
