package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/gen/omninode/bridge/v1/bridgev1connect"
	"github.com/omninode/bridge/internal/bus"
	"github.com/omninode/bridge/internal/mtls"
	"github.com/omninode/bridge/internal/mtls/mtlstest"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const spiffe = "spiffe://omninode.local/ns/shop/svc/"

// bearer adds a bearer token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// startMTLSControlPlane runs the assembled control plane over mutual TLS
// with an admin (alice) and a viewer (bob) token, and issues a certificate
// for the orders sidecar from the same test CA.
func startMTLSControlPlane(t *testing.T) (ca *mtlstest.CA, m *ControlPlane, ordersCert, ordersKey, caFile string) {
	t.Helper()
	ca = mtlstest.NewCA(t, "mesh-test")
	dir := t.TempDir()
	cpCert, cpKey, caFile := ca.Files(t, dir, "controlplane", mtlstest.Leaf{SPIFFE: spiffe + "omnibridge-controlplane"})
	ordersCert, ordersKey, _ = ca.Files(t, dir, "orders", mtlstest.Leaf{SPIFFE: spiffe + "orders"})
	cfg := DefaultControlPlaneConfig()
	cfg.Base.Bus = bus.Config{Brokers: startBroker(t)}
	cfg.Base.Listen, cfg.Base.Logger = "127.0.0.1:0", quietLog()
	cfg.APITokensFile = writeFile(t, "tokens", "admin alice s3cret-admin-token-0001\nviewer bob s3cret-viewer-token-0001\n")
	cfg.TLS = mtls.Config{CertFile: cpCert, KeyFile: cpKey, CAFile: caFile}
	m, err := NewControlPlane(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "control plane", m.Run)
	return ca, m, ordersCert, ordersKey, caFile
}

// TestControlPlaneMutualTLS runs the assembled control plane over mutual TLS
// with bearer tokens: a sidecar syncs its own service's directives, a
// certificate for one service cannot open another's stream, a caller without
// a client certificate is refused at the handshake, and the API enforces
// roles and records the admin's name in the audit log.
func TestControlPlaneMutualTLS(t *testing.T) {
	t.Parallel()
	ca, m, ordersCert, ordersKey, caFile := startMTLSControlPlane(t)
	if !strings.HasPrefix(m.URL(), "https://") {
		t.Fatalf("URL %s, want https", m.URL())
	}
	d := &bridgev1.Directive{Id: "t1", Scope: &bridgev1.Scope{Service: "orders"}, Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE,
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		Spec:      &bridgev1.Directive_Timeout{Timeout: &bridgev1.TimeoutPolicy{RequestTimeout: durationpb.New(2 * time.Second)}}}
	version, err := m.Directives.Publish(t.Context(), "orders", []*bridgev1.Directive{d}, 0)
	if err != nil {
		t.Fatal(err)
	}

	// A real sidecar for orders with the orders certificate syncs and acks.
	sc := DefaultSidecarConfig()
	sc.Base.Service, sc.Base.Upstream, sc.Base.ControlPlane = "orders", upstream(t), m.URL()
	sc.Base.Listen, sc.Base.Admin, sc.Base.Hooks = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	sc.Base.SpoolDir, sc.Base.Logger = t.TempDir(), quietLog()
	sc.TLS = mtls.Config{CertFile: ordersCert, KeyFile: ordersKey, CAFile: caFile}
	sc.DirectiveBackoffMax = 200 * time.Millisecond
	s, err := NewSidecar(sc)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "sidecar", s.Run)
	eventually(t, "the orders sidecar to acknowledge", 15*time.Second, func() bool { return s.Policy.Version() >= version })

	src, err := mtls.NewSource(mtls.Config{CertFile: ordersCert, KeyFile: ordersKey, CAFile: caFile})
	if err != nil {
		t.Fatal(err)
	}
	ordersClient := mtlsClient(src.ClientConfig(""))

	// The orders certificate may not sync payments.
	dc := bridgev1connect.NewDirectiveServiceClient(ordersClient, m.URL())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream := dc.Sync(ctx)
	if err := stream.Send(&bridgev1.SyncRequest{Message: &bridgev1.SyncRequest_Hello{Hello: &bridgev1.SidecarHello{Service: "payments", Instance: "intruder"}}}); err != nil {
		t.Fatalf("send hello: %v", err)
	}
	_, err = stream.Receive()
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("payments hello with the orders certificate: %v, want permission_denied", err)
	}
	_ = stream.CloseRequest()
	_ = stream.CloseResponse()

	// Without a client certificate the handshake fails.
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := noCert.Get(m.URL() + "/livez"); err == nil {
		t.Fatal("a client without a certificate was served")
	}

	// Roles: viewer reads, may not apply; admin applies and is audited by name.
	intel := func(token string) bridgev1connect.IntelligenceServiceClient {
		return bridgev1connect.NewIntelligenceServiceClient(&http.Client{Transport: bearer{token, ordersClient.Transport}}, m.URL())
	}
	admin := func(token string) bridgev1connect.AdminServiceClient {
		return bridgev1connect.NewAdminServiceClient(&http.Client{Transport: bearer{token, ordersClient.Transport}}, m.URL())
	}
	if _, err := intel("s3cret-viewer-token-0001").GetStatus(t.Context(), connect.NewRequest(&bridgev1.GetStatusRequest{Service: "orders"})); err != nil {
		t.Errorf("viewer GetStatus: %v", err)
	}
	if _, err := intel("wrong").ListServices(t.Context(), connect.NewRequest(&bridgev1.ListServicesRequest{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("bad token: %v, want unauthenticated", err)
	}
	setMode := connect.NewRequest(&bridgev1.SetModeRequest{Service: "orders", Kind: bridgev1.DirectiveKind_DIRECTIVE_KIND_RETRY,
		Mode: bridgev1.DirectiveMode_DIRECTIVE_MODE_ENFORCE, Reason: "test"})
	if _, err := admin("s3cret-viewer-token-0001").SetMode(t.Context(), setMode); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("viewer SetMode: %v, want permission_denied", err)
	}
	if _, err := admin("s3cret-admin-token-0001").SetMode(t.Context(), setMode); err != nil {
		t.Fatalf("admin SetMode: %v", err)
	}
	audit, err := admin("s3cret-admin-token-0001").ListAudit(t.Context(), connect.NewRequest(&bridgev1.ListAuditRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(audit.Msg.GetEntries()) == 0 || audit.Msg.GetEntries()[0].GetActor() != "alice" {
		t.Errorf("audit log = %v, want the latest entry by alice", audit.Msg.GetEntries())
	}
	// The status shows the orders sidecar in sync.
	st, err := intel("s3cret-viewer-token-0001").GetStatus(t.Context(), connect.NewRequest(&bridgev1.GetStatusRequest{Service: "orders"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Msg.GetSidecars()) != 1 || st.Msg.GetSidecars()[0].GetAckedVersion() < version {
		t.Errorf("status = %v, want the orders sidecar at v%d", st.Msg.GetSidecars(), version)
	}
	if m.authz.denied.Load() == 0 {
		t.Error("the refused stream was not counted")
	}
}

// TestOpenAPIOnlyOnLoopback: without tokens the API is open only on a
// loopback listener (or when asked for), and plaintext only on loopback.
func TestOpenAPIOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	if _, err := newAuthenticator("", "127.0.0.1:8090", false, quietLog()); err != nil {
		t.Errorf("loopback open API refused: %v", err)
	}
	if _, err := newAuthenticator("", "0.0.0.0:8090", false, quietLog()); err == nil || !strings.Contains(err.Error(), "--api-tokens-file") {
		t.Errorf("open API on 0.0.0.0: %v, want a refusal naming --api-tokens-file", err)
	}
	if _, err := newAuthenticator("", ":8090", true, quietLog()); err != nil {
		t.Errorf("--insecure-open-api refused: %v", err)
	}
	cfg := DefaultControlPlaneConfig()
	cfg.Base.Bus = bus.Config{Brokers: []string{"127.0.0.1:9092"}}
	cfg.Base.Listen = "0.0.0.0:8090"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("plaintext on 0.0.0.0: %v, want a refusal naming --tls-cert", err)
	}
	cfg.InsecurePlaintext = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("--insecure-plaintext: %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, ":1": false, "10.0.0.1:1": false} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) = %v", addr, !want)
		}
	}
}

// TestControlPlaneWebhook: with --webhook-* the injector's admission webhook
// is served over TLS and only to a client with a certificate of the given CA.
func TestControlPlaneWebhook(t *testing.T) {
	t.Parallel()
	ca := mtlstest.NewCA(t, "cluster")
	dir := t.TempDir()
	cert, key, caFile := ca.Files(t, dir, "webhook", mtlstest.Leaf{SPIFFE: spiffe + "webhook"})
	apiCert, apiKey, _ := ca.Files(t, dir, "apiserver", mtlstest.Leaf{SPIFFE: spiffe + "apiserver"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := DefaultControlPlaneConfig()
	cfg.Base.Bus = bus.Config{Brokers: startBroker(t)}
	cfg.Base.Listen, cfg.Base.Logger = "127.0.0.1:0", quietLog()
	cfg.Webhook.Listen, cfg.Webhook.CertFile, cfg.Webhook.KeyFile, cfg.Webhook.ClientCAFile = addr, cert, key, caFile
	m, err := NewControlPlane(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "control plane", m.Run)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	pair, err := tls.LoadX509KeyPair(apiCert, apiKey)
	if err != nil {
		t.Fatal(err)
	}
	apiServer := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"shop","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"shop"},"spec":{"containers":[{"name":"app","image":"app"}]}}}}`
	var resp *http.Response
	eventually(t, "the webhook to serve", 10*time.Second, func() bool {
		resp, err = apiServer.Post("https://"+addr+"/", "application/json", strings.NewReader(review))
		return err == nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"uid":"u1"`) || !strings.Contains(string(body), `"allowed":true`) {
		t.Errorf("admission review: %d %s", resp.StatusCode, body)
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if r, err := anon.Post("https://"+addr+"/", "application/json", strings.NewReader(review)); err == nil {
		r.Body.Close()
		t.Error("the webhook served a client without the API server's certificate")
	}
}
