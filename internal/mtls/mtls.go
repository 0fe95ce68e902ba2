// Package mtls owns mutual TLS between sidecars and the control plane:
// certificates read from files and reloaded when the files change (rotation
// without a restart), SPIFFE-style identities in the certificate's URI SAN
// (spiffe://TRUST_DOMAIN/ns/NAMESPACE/svc/SERVICE), and reading the peer's
// identity from a request. It does not issue certificates (cert-manager or
// any CA does); mtlstest makes throwaway ones for tests.
package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Config names the PEM files of one side.
type Config struct {
	// CertFile and KeyFile are this side's certificate chain and key. Required.
	CertFile string
	KeyFile  string
	// CAFile is the bundle of CAs that sign the peer's certificates. Required.
	CAFile string
	// ReloadInterval bounds how often the files are checked for changes;
	// default 1s. A handshake never waits longer than one stat per file.
	ReloadInterval time.Duration
}

// Validate names the missing field.
func (c Config) Validate() error {
	switch {
	case c.CertFile == "":
		return errors.New("mtls: cert file is required")
	case c.KeyFile == "":
		return errors.New("mtls: key file is required")
	case c.CAFile == "":
		return errors.New("mtls: ca file is required")
	case c.ReloadInterval < 0:
		return errors.New("mtls: reload interval must not be negative")
	}
	return nil
}

// Enabled reports whether any file is configured.
func (c Config) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" }

// Source serves the current certificate and CA pool, reloading them when
// their files' modification times change.
type Source struct {
	cfg      Config
	mu       sync.Mutex
	checked  time.Time
	stamp    string
	cert     *tls.Certificate
	pool     *x509.CertPool
	lastErr  error
	reloaded int
}

// NewSource loads the files once and returns a Source; it fails when they
// cannot be loaded now.
func NewSource(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = time.Second
	}
	s := &Source{cfg: cfg}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Source) stampNow() string {
	var b strings.Builder
	for _, f := range []string{s.cfg.CertFile, s.cfg.KeyFile, s.cfg.CAFile} {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d:%d;", fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return b.String()
}

func (s *Source) load() error {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("mtls: load key pair: %w", err)
	}
	pem, err := os.ReadFile(s.cfg.CAFile)
	if err != nil {
		return fmt.Errorf("mtls: read ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("mtls: ca file %s holds no PEM certificate", s.cfg.CAFile)
	}
	s.cert, s.pool, s.stamp = &cert, pool, s.stampNow()
	s.reloaded++
	return nil
}

// current returns the certificate and pool, reloading when the files changed.
// A failed reload (say, a half-written file) keeps the previous pair.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); now.Sub(s.checked) >= s.cfg.ReloadInterval {
		s.checked = now
		if st := s.stampNow(); st != s.stamp {
			s.lastErr = s.load()
		}
	}
	return s.cert, s.pool
}

// Reloads returns how many times the files were loaded (1 after NewSource).
func (s *Source) Reloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloaded
}

// ServerConfig returns a server TLS config that requires a client
// certificate signed by the CA bundle, both reloaded on rotation.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := s.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   []string{"h2", "http/1.1"},
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
			}, nil
		},
	}
}

// ClientConfig returns a client TLS config that presents this side's
// certificate and verifies the server against the CA bundle, both reloaded
// on rotation. serverName is checked against the server certificate's DNS
// names (empty: the dialled host).
func (s *Source) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
		// Verification against the current pool is done by hand so the
		// pool can rotate; the standard checks (chain, expiry, name) stay.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := s.current()
			if len(cs.PeerCertificates) == 0 {
				return errors.New("mtls: server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			name := serverName
			if name == "" {
				name = cs.ServerName
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots: pool, Intermediates: inter, DNSName: name,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("mtls: verify server certificate: %w", err)
			}
			return nil
		},
	}
}

// Identity is a SPIFFE-style workload identity.
type Identity struct {
	TrustDomain string
	Namespace   string
	Service     string
}

// URI renders spiffe://TRUST_DOMAIN/ns/NAMESPACE/svc/SERVICE.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/ns/" + id.Namespace + "/svc/" + id.Service}
}

func (id Identity) String() string { return id.URI().String() }

// ErrNoIdentity means the peer presented no certificate with a SPIFFE URI.
var ErrNoIdentity = errors.New("mtls: no SPIFFE identity in the peer certificate")

// ParseIdentity parses spiffe://TRUST_DOMAIN/ns/NAMESPACE/svc/SERVICE.
func ParseIdentity(u *url.URL) (Identity, error) {
	if u == nil || u.Scheme != "spiffe" || u.Host == "" {
		return Identity{}, fmt.Errorf("%w: %v", ErrNoIdentity, u)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "svc" || parts[1] == "" || parts[3] == "" {
		return Identity{}, fmt.Errorf("mtls: identity %q is not spiffe://DOMAIN/ns/NAMESPACE/svc/SERVICE", u)
	}
	return Identity{TrustDomain: u.Host, Namespace: parts[1], Service: parts[3]}, nil
}

// PeerIdentity returns the verified client identity of a request served over
// mutual TLS.
func PeerIdentity(r *http.Request) (Identity, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		return Identity{}, ErrNoIdentity
	}
	for _, u := range r.TLS.PeerCertificates[0].URIs {
		if u.Scheme == "spiffe" {
			return ParseIdentity(u)
		}
	}
	return Identity{}, ErrNoIdentity
}
