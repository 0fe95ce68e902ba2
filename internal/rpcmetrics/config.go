package rpcmetrics

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MetricName is the counter of refused calls, labelled entry, procedure and
// code.
const MetricName = "omnibridge_controlplane_rpc_rejected_total"

// Unknown is the procedure label of a call to a procedure its service does
// not have.
const Unknown = "unknown"

// Service is one observed Connect service: an entry point of the control
// plane.
type Service struct {
	// Entry is its entry label ("api", "admin", "directive").
	Entry string
	// Desc is the service; its methods are the procedure label values,
	// anything else under its path is counted as Unknown.
	Desc protoreflect.ServiceDescriptor
}

// Config configures Rejections.
type Config struct {
	// Registry receives MetricName. Required.
	Registry prometheus.Registerer
	// Logger gets one line per entry point and code per LogEvery, with the
	// peer address; nil discards.
	Logger *slog.Logger
	// LogEvery is the least time between two log lines for the same entry
	// point and code; the lines in between are counted in the next one's
	// "suppressed". Default 1s.
	LogEvery time.Duration
	// Services are the observed services; at least one, distinct entries
	// and services.
	Services []Service
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{LogEvery: time.Second} }

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Registry == nil {
		return errors.New("config: Registry is required")
	}
	if c.LogEvery <= 0 || c.LogEvery > time.Hour {
		return fmt.Errorf("config: LogEvery %v out of range (0, 1h]", c.LogEvery)
	}
	if len(c.Services) == 0 {
		return errors.New("config: Services: at least one is required")
	}
	entries, names := map[string]bool{}, map[protoreflect.FullName]bool{}
	for i, s := range c.Services {
		switch {
		case s.Entry == "":
			return fmt.Errorf("config: Services[%d].Entry is required", i)
		case s.Desc == nil:
			return fmt.Errorf("config: Services[%d] (%s): Desc is required", i, s.Entry)
		case entries[s.Entry]:
			return fmt.Errorf("config: Services[%d]: entry %q repeats", i, s.Entry)
		case names[s.Desc.FullName()]:
			return fmt.Errorf("config: Services[%d]: service %s repeats", i, s.Desc.FullName())
		}
		entries[s.Entry], names[s.Desc.FullName()] = true, true
	}
	return nil
}
