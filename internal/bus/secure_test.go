package bus_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/mtls/mtlstest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceOne sends one valid event with the given bus configuration and
// reports the produce error.
func produceOne(t *testing.T, cfg bus.Config) error {
	t.Helper()
	opts, err := cfg.ProducerOpts(kgo.RequestTimeoutOverhead(2*time.Second), kgo.RecordDeliveryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rec, err := bus.Encode(sampleEvents(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, rec).FirstErr()
}

// TestSASL proves the bus options authenticate with each supported SASL
// mechanism against a broker that requires it, and that a wrong password is
// refused.
func TestSASL(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			b, err := bus.StartBroker(bus.BrokerConfig{Listen: "127.0.0.1:0", Partitions: 1,
				Extra: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(mech, "omnibridge", "s3cret-pass")}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			good := bus.Config{Brokers: b.Addrs(), SASLMechanism: mech, SASLUser: "omnibridge", SASLPassword: "s3cret-pass"}
			if err := produceOne(t, good); err != nil {
				t.Fatalf("produce with %s: %v", mech, err)
			}
			bad := good
			bad.SASLPassword = "wrong"
			if err := produceOne(t, bad); err == nil {
				t.Fatalf("produce with a wrong %s password succeeded", mech)
			}
		})
	}
}

// TestTLS proves the bus options speak TLS to a broker, verifying it against
// the configured CA, and refuse a broker signed by another CA.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := mtlstest.NewCA(t, "bus")
	certFile, keyFile, caFile := ca.Files(t, dir, "broker", mtlstest.Leaf{DNS: []string{"localhost"}})
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.StartBroker(bus.BrokerConfig{Listen: "127.0.0.1:0", Partitions: 1,
		Extra: []kfake.Opt{kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := produceOne(t, bus.Config{Brokers: b.Addrs(), TLS: true, TLSCAFile: caFile}); err != nil {
		t.Fatalf("produce over TLS: %v", err)
	}
	other := mtlstest.NewCA(t, "other")
	otherCA := filepath.Join(dir, "other-ca.crt")
	if err := os.WriteFile(otherCA, other.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := produceOne(t, bus.Config{Brokers: b.Addrs(), TLS: true, TLSCAFile: otherCA}); err == nil {
		t.Fatal("produce succeeded against a broker signed by an untrusted CA")
	}
	if err := (bus.Config{Brokers: []string{"x:1"}, SASLMechanism: "GSSAPI", SASLUser: "u"}).Validate(); err == nil {
		t.Fatal("an unsupported SASL mechanism validated")
	}
}
