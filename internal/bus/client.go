package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config says how to reach the bus. The zero value is not valid: Brokers is required.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// ClientID names this client to the brokers; default "omnibridge".
	ClientID string
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	SASLMechanism string
	// SASLUser and SASLPassword are the SASL credentials.
	SASLUser     string
	SASLPassword string
	// TLS enables TLS to the brokers.
	TLS bool
	// TLSCAFile is a PEM bundle of CAs that sign the brokers' certificates;
	// empty means the system roots.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a client certificate for mutual TLS; optional.
	TLSCertFile string
	TLSKeyFile  string
	// MaxBufferedRecords bounds the producer's in-memory buffer; default 10,000.
	// When full, produce calls fail fast (callers spool) instead of blocking.
	MaxBufferedRecords int
	// Linger is how long the producer waits to fill a batch; default 5ms.
	Linger time.Duration
}

// Validate checks the configuration and names the bad field.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("bus: brokers: at least one broker address is required")
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			return fmt.Errorf("bus: brokers: %q is not host:port", b)
		}
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASLUser == "" {
			return fmt.Errorf("bus: sasl user is required with mechanism %s", c.SASLMechanism)
		}
	default:
		return fmt.Errorf("bus: sasl mechanism %q: allowed are PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASLMechanism)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("bus: tls cert and key files must be given together")
	}
	if c.MaxBufferedRecords < 0 {
		return fmt.Errorf("bus: max buffered records %d must not be negative", c.MaxBufferedRecords)
	}
	return nil
}

// baseOpts are the options every client shares: brokers, identity, SASL, TLS.
func (c Config) baseOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	id := c.ClientID
	if id == "" {
		id = "omnibridge"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(id),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			d := 100 * time.Millisecond << min(tries, 5)
			return min(d, 2*time.Second)
		}),
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	if c.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("bus: read tls ca file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("bus: tls ca file %s holds no PEM certificate", c.TLSCAFile)
			}
			tc.RootCAs = pool
		}
		if c.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("bus: load tls client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}

// ProducerOpts returns production-safe producer options: idempotent writes
// with acks=all (franz-go's default, kept explicit), bounded buffering that
// fails fast instead of blocking the caller, small lingering for batching,
// and records that time out rather than retry forever.
func (c Config) ProducerOpts(extra ...kgo.Opt) ([]kgo.Opt, error) {
	opts, err := c.baseOpts()
	if err != nil {
		return nil, err
	}
	maxBuf := c.MaxBufferedRecords
	if maxBuf == 0 {
		maxBuf = 10_000
	}
	linger := c.Linger
	if linger == 0 {
		linger = 5 * time.Millisecond
	}
	opts = append(opts,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(maxBuf),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	return append(opts, extra...), nil
}

// ConsumerOpts returns consumer-group options over the given topics with
// manual commits (callers commit only after their effects are durable), reads
// from the start of a new group, and cooperative-sticky balancing so
// rebalances move as few partitions as possible.
func (c Config) ConsumerOpts(group string, topics []string, extra ...kgo.Opt) ([]kgo.Opt, error) {
	if group == "" {
		return nil, errors.New("bus: consumer group name is required")
	}
	opts, err := c.baseOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(1*time.Second),
	)
	return append(opts, extra...), nil
}

// ClientOpts returns plain client options (admin, producers of the
// dead-letter topic, tests).
func (c Config) ClientOpts(extra ...kgo.Opt) ([]kgo.Opt, error) {
	opts, err := c.baseOpts()
	if err != nil {
		return nil, err
	}
	return append(opts, extra...), nil
}
