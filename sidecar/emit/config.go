package emit

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Emitter.
type Config struct {
	// Bus is how to reach the brokers; nil means no bus: every event goes to
	// the spool (and is replayed by a later run that has a bus).
	Bus *bus.Config
	// SpoolDir holds the on-disk spool. Required.
	SpoolDir string
	// SpoolMaxBytes caps the spool's size on disk; default 256 MiB. When full,
	// the newest events are dropped (counted as reason spool_full). The
	// journal of the records handed to the producer (SpoolDir/journal, in
	// segments of 256 KiB or SegmentBytes if smaller) has the same cap;
	// when it is reached, events go to the spool instead of the producer.
	SpoolMaxBytes int64
	// SegmentBytes is the size at which a spool segment is closed and a new
	// one started; default 8 MiB, at most SpoolMaxBytes.
	SegmentBytes int64
	// QueueSize bounds the in-memory queue between the request path and the
	// writer, in events; default 16,384.
	QueueSize int
	// BatchSize is the most events the writer takes from the queue at once
	// (one spool fsync per batch); default 512.
	BatchSize int
	// DeliveryTimeout is how long the producer may go without an
	// acknowledgement while it has records in flight before the bus counts
	// as down and new events go to the spool; default 5s. Records already
	// in flight stay with the producer (so they are not sent twice) until
	// the broker takes them or they fail (the spool then takes them) or
	// shutdown spools them; the journal keeps a copy of them on disk
	// meanwhile, so that a process kill does not lose them.
	DeliveryTimeout time.Duration
	// MaxInFlight bounds the events handed to the producer and not yet
	// acknowledged; over it, events go to the spool. Default 4,096.
	MaxInFlight int
	// Linger is how long the producer waits to fill a batch, unless
	// Bus.Linger says otherwise; default 20ms. Events are not urgent
	// (critical signals also travel on the directive stream), and fewer,
	// larger produce requests cost the sidecar far less CPU per event.
	Linger time.Duration
	// RetryInterval is how often the spool tries the bus again while it is
	// down; default 1s.
	RetryInterval time.Duration
	// FlushTimeout bounds the final flush at shutdown; what the bus did not
	// take by then is spooled; default 5s.
	FlushTimeout time.Duration
	// Registry receives the emitter's metrics; nil means none are registered.
	Registry *prometheus.Registry
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults (SpoolDir still to be set).
func DefaultConfig() Config {
	return Config{
		SpoolMaxBytes:   256 << 20,
		SegmentBytes:    8 << 20,
		QueueSize:       16_384,
		BatchSize:       512,
		DeliveryTimeout: 5 * time.Second,
		MaxInFlight:     4096,
		Linger:          20 * time.Millisecond,
		RetryInterval:   time.Second,
		FlushTimeout:    5 * time.Second,
	}
}

// Validate checks the configuration and names the bad field.
func (c Config) Validate() error {
	if c.SpoolDir == "" {
		return errors.New("emit: spool dir is required")
	}
	if c.SpoolMaxBytes < 1<<10 {
		return fmt.Errorf("emit: spool max bytes %d must be at least 1024", c.SpoolMaxBytes)
	}
	if c.SegmentBytes < 1<<10 || c.SegmentBytes > c.SpoolMaxBytes {
		return fmt.Errorf("emit: segment bytes %d must be within 1024..spool max bytes (%d)", c.SegmentBytes, c.SpoolMaxBytes)
	}
	if c.QueueSize < 1 || c.QueueSize > 10_000_000 {
		return fmt.Errorf("emit: queue size %d out of range 1..10000000", c.QueueSize)
	}
	if c.BatchSize < 1 || c.BatchSize > 100_000 {
		return fmt.Errorf("emit: batch size %d out of range 1..100000", c.BatchSize)
	}
	if c.DeliveryTimeout < time.Second {
		// franz-go refuses a record timeout under 1s.
		return fmt.Errorf("emit: delivery timeout %v must be at least 1s", c.DeliveryTimeout)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 1_000_000 {
		return fmt.Errorf("emit: max in flight %d out of range 1..1000000", c.MaxInFlight)
	}
	if c.Linger < 0 || c.Linger > time.Second {
		return fmt.Errorf("emit: linger %v out of range 0..1s", c.Linger)
	}
	if c.RetryInterval <= 0 || c.FlushTimeout <= 0 {
		return errors.New("emit: retry interval and flush timeout must be positive")
	}
	if c.Bus != nil {
		if err := c.Bus.Validate(); err != nil {
			return fmt.Errorf("emit: %w", err)
		}
	}
	return nil
}
