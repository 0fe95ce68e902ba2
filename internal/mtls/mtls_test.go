package mtls_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omninode/bridge/internal/mtls"
	"github.com/omninode/bridge/internal/mtls/mtlstest"
)

const td = "omninode.test"

func spiffe(ns, svc string) string { return "spiffe://" + td + "/ns/" + ns + "/svc/" + svc }

// server starts an HTTPS server that requires client certificates and echoes
// the caller's identity and certificate serial.
func server(t *testing.T, dir string, ca *mtlstest.CA) (*httptest.Server, *mtls.Source) {
	t.Helper()
	c, k, caf := ca.Files(t, dir, "server", mtlstest.Leaf{SPIFFE: spiffe("omnibridge", "controlplane")})
	src, err := mtls.NewSource(mtls.Config{CertFile: c, KeyFile: k, CAFile: caf, ReloadInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := mtls.PeerIdentity(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, id.String()+" "+r.TLS.PeerCertificates[0].SerialNumber.String())
	}))
	srv.TLS = src.ServerConfig()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, src
}

func client(t *testing.T, dir, name string, ca *mtlstest.CA, leaf mtlstest.Leaf, trust *mtlstest.CA) *http.Client {
	t.Helper()
	dir = filepath.Join(dir, name) // own folder: Files also writes ca.crt
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, k, _ := ca.Files(t, dir, name, leaf)
	caf := filepath.Join(dir, name+"-trust.crt")
	if err := os.WriteFile(caf, trust.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := mtls.NewSource(mtls.Config{CertFile: c, KeyFile: k, CAFile: caf, ReloadInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: src.ClientConfig("localhost"), DisableKeepAlives: true}, Timeout: 5 * time.Second}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(strings.Replace(url, "127.0.0.1", "localhost", 1))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

func TestIdentityFromClientCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := mtlstest.NewCA(t, "mesh")
	srv, _ := server(t, dir, ca)
	body, err := get(client(t, dir, "orders", ca, mtlstest.Leaf{SPIFFE: spiffe("shop", "orders")}, ca), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body, spiffe("shop", "orders")+" ") {
		t.Fatalf("server saw %q, want identity %s", body, spiffe("shop", "orders"))
	}
}

func TestHandshakeRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := mtlstest.NewCA(t, "mesh")
	foreign := mtlstest.NewCA(t, "foreign")
	srv, _ := server(t, dir, ca)
	cases := map[string]*http.Client{
		"expired certificate": client(t, dir, "expired", ca, mtlstest.Leaf{SPIFFE: spiffe("shop", "orders"), NotAfter: time.Now().Add(-time.Minute)}, ca),
		"foreign CA":          client(t, dir, "foreign", foreign, mtlstest.Leaf{SPIFFE: spiffe("shop", "orders")}, ca),
		"no certificate": {Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // the point of the test
			Timeout: 5 * time.Second},
	}
	for name, c := range cases {
		if body, err := get(c, srv.URL); err == nil {
			t.Errorf("%s: request succeeded (%q), want the handshake refused", name, body)
		}
	}
	// A client that does not trust the server's CA refuses it too.
	if _, err := get(client(t, dir, "distrust", ca, mtlstest.Leaf{SPIFFE: spiffe("shop", "orders")}, foreign), srv.URL); err == nil {
		t.Error("client accepted a server signed by a CA it does not trust")
	}
}

func TestRotationWithoutRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := mtlstest.NewCA(t, "mesh")
	srv, ssrc := server(t, dir, ca)
	c := client(t, dir, "orders", ca, mtlstest.Leaf{SPIFFE: spiffe("shop", "orders")}, ca)
	first, err := get(c, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Rotate the client's certificate files in place: the next handshake uses the new serial.
	time.Sleep(5 * time.Millisecond)
	ca.Files(t, filepath.Join(dir, "orders"), "orders", mtlstest.Leaf{SPIFFE: spiffe("shop", "orders")})
	var second string
	for i := 0; i < 50; i++ {
		if second, err = get(c, srv.URL); err != nil {
			t.Fatal(err)
		}
		if second != first {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if second == first {
		t.Fatalf("client certificate not reloaded: serial unchanged (%s)", first)
	}
	// Rotate the server to a new CA: clients trusting only the new CA connect after reload.
	ca2 := mtlstest.NewCA(t, "mesh-2026")
	before := ssrc.Reloads()
	ca2.Files(t, dir, "server", mtlstest.Leaf{SPIFFE: spiffe("omnibridge", "controlplane")})
	c2 := client(t, dir, "orders2", ca2, mtlstest.Leaf{SPIFFE: spiffe("shop", "orders")}, ca2)
	var ok bool
	for i := 0; i < 50 && !ok; i++ {
		_, err := get(c2, srv.URL)
		ok = err == nil
		time.Sleep(10 * time.Millisecond)
	}
	if !ok || ssrc.Reloads() <= before {
		t.Fatalf("server did not pick up the rotated CA and certificate (reloads %d -> %d)", before, ssrc.Reloads())
	}
	if _, err := get(c, srv.URL); err == nil {
		t.Error("a client of the retired CA still connects after rotation")
	}
}

func TestParseIdentity(t *testing.T) {
	t.Parallel()
	id := mtls.Identity{TrustDomain: td, Namespace: "shop", Service: "orders"}
	got, err := mtls.ParseIdentity(id.URI())
	if err != nil || got != id {
		t.Fatalf("ParseIdentity(%s) = %+v, %v", id, got, err)
	}
	for _, bad := range []string{"https://x/ns/a/svc/b", "spiffe://x/ns/a", "spiffe:///ns/a/svc/b", "spiffe://x/ns//svc/b"} {
		u, _ := (&mtls.Identity{}).URI().Parse(bad)
		if _, err := mtls.ParseIdentity(u); err == nil {
			t.Errorf("ParseIdentity(%q) accepted", bad)
		}
	}
}
