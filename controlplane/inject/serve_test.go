package inject_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/omninode/bridge/controlplane/inject"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
}

// serveTLS runs inject.ServeListener with cfg until the test ends.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inject.ServeListener(ctx, ln, cfg, okHandler()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// peerCN dials addr and returns the server certificate's common name.
func peerCN(t *testing.T, addr string, cfg *tls.Config) (string, error) {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	// TLS 1.3 reports a rejected client certificate on the first read.
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err != nil {
		return "", err
	}
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// TestServeReloadsCertificate: a certificate rotated in place is served to
// the next connection without a restart.
func TestServeReloadsCertificate(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	dir := t.TempDir()
	c1, k1 := ca.issue(t, "first", 10)
	certFile, keyFile := writeKeyPair(t, dir, c1, k1)
	cfg, err := inject.ServerTLSConfig(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg)
	client := &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1"}
	if cn, err := peerCN(t, addr, client); err != nil || cn != "first" {
		t.Fatalf("cn %q err %v, want first", cn, err)
	}
	c2, k2 := ca.issue(t, "second", 11)
	writeKeyPair(t, dir, c2, k2)
	later := time.Now().Add(2 * time.Second) // mtime granularity may be coarse
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	if cn, err := peerCN(t, addr, client); err != nil || cn != "second" {
		t.Fatalf("after rotation: cn %q err %v, want second", cn, err)
	}
	// A half-written rotation keeps the last good certificate.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cn, err := peerCN(t, addr, client); err != nil || cn != "second" {
		t.Fatalf("after a bad rotation: cn %q err %v, want second still", cn, err)
	}
}

// TestServeRequiresClientCert: with a client CA, only clients with a
// certificate it signed get through.
func TestServeRequiresClientCert(t *testing.T) {
	t.Parallel()
	ca, other := newCA(t), newCA(t)
	c, k := ca.issue(t, "webhook", 20)
	dir := t.TempDir()
	certFile, keyFile := writeKeyPair(t, dir, c, k)
	caFile := filepath.Join(dir, "client-ca.crt")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := inject.ServerTLSConfig(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, cfg)
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"no client certificate", nil, false},
		{"certificate from another CA", []tls.Certificate{clientCert(t, other)}, false},
		{"certificate from the cluster CA", []tls.Certificate{clientCert(t, ca)}, true},
	} {
		_, err := peerCN(t, addr, &tls.Config{RootCAs: ca.pool, Certificates: tc.certs})
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestServe runs the whole Serve on an address, and stops it with the context.
func TestServe(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	c, k := ca.issue(t, "webhook", 30)
	certFile, keyFile := writeKeyPair(t, t.TempDir(), c, k)
	if err := inject.Serve(t.Context(), "127.0.0.1:0", certFile, "missing.key", "", okHandler()); err == nil {
		t.Fatal("Serve started without a key")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- inject.Serve(ctx, addr, certFile, keyFile, "", okHandler()) }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := client.Get("https://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Serve never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v on a clean stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}
