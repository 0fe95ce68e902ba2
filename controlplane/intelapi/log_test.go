package intelapi

import (
	"io"
	"log/slog"

	"github.com/omninode/bridge/controlplane/ingest"
)

func analyzeLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The tap is an ingest observer.
var _ ingest.Observer = (*Server)(nil)
