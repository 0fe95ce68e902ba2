package sidecar

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"testing"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/mtls/mtlstest"
	"github.com/omninode/bridge/internal/testenv"
)

// selfSigned writes a certificate for 127.0.0.1, issued by a test CA, and
// returns the file paths and a pool trusting the CA.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca := mtlstest.NewCA(t, "sidecar-test-ca")
	certFile, keyFile, _ = ca.Files(t, t.TempDir(), "sidecar", mtlstest.Leaf{})
	pool = x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return certFile, keyFile, pool
}

func TestTLSListener(t *testing.T) {
	t.Parallel()
	kafka := testenv.Kafka(t)
	events := collect(t, kafka.Brokers())
	certFile, keyFile, pool := selfSigned(t)
	up := startUpstream(t, upstreamMux(make(chan struct{})))
	sc := startSidecar(t, up, kafka.Brokers(), func(c *Config) { c.TLSCert, c.TLSKey = certFile, keyFile })
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+sc.ProxyAddr()+"/orders/9", nil)
	req.Header.Set("X-Correlation-Id", "tls-1")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != `{"id":"9","got":0}` {
		t.Fatalf("%s %d %s", resp.Proto, resp.StatusCode, b)
	}
	ev := events.comm(t, "tls-1")
	check(t, "protocol", ev.GetRequestContext().GetProtocol(), bridgev1.Protocol_PROTOCOL_HTTP2)
	check(t, "status", ev.GetPerformanceMetrics().GetStatusCode(), int32(200))
}
