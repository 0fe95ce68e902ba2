// Package apiauth authenticates callers of the control plane's query and
// admin APIs and enforces roles: a viewer may call the IntelligenceService;
// applying, rejecting and rolling back directives (AdminService) needs admin.
// Callers authenticate with a bearer token, or with a client certificate
// whose SPIFFE identity is listed as an admin or viewer. The DirectiveService
// is not covered here: sidecars are authorized per service by mTLS identity
// (see controlplane wiring).
package apiauth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/omninode/bridge/internal/mtls"
)

// Role is what a caller may do.
type Role int

// Roles, in increasing power.
const (
	RoleNone Role = iota
	RoleViewer
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleAdmin:
		return "admin"
	default:
		return "none"
	}
}

// ParseRole parses "viewer" or "admin".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "viewer":
		return RoleViewer, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("apiauth: role %q: allowed are viewer, admin", s)
}

// Principal is an authenticated caller.
type Principal struct {
	Name string
	Role Role
}

type token struct {
	hash [32]byte
	p    Principal
}

// Authenticator checks requests against tokens and identities.
// The zero value (and a nil *Authenticator) authenticates nobody: use Open
// for a deliberately open API (embedded dev mode on loopback).
type Authenticator struct {
	tokens     []token
	identities map[string]Principal
	open       bool
}

// Open returns an Authenticator that treats every caller as an admin named
// "local". Only for dev mode on loopback.
func Open() *Authenticator { return &Authenticator{open: true} }

// New returns an Authenticator from "ROLE NAME TOKEN" token lines and
// SPIFFE identities mapped to principals.
func New(tokens []string, identities map[string]Principal) (*Authenticator, error) {
	a := &Authenticator{identities: identities}
	for i, line := range tokens {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("apiauth: token %d: want \"ROLE NAME TOKEN\", got %d fields", i+1, len(f))
		}
		role, err := ParseRole(f[0])
		if err != nil {
			return nil, fmt.Errorf("apiauth: token %d: %w", i+1, err)
		}
		if len(f[2]) < 16 {
			return nil, fmt.Errorf("apiauth: token %d (%s): tokens must be at least 16 characters", i+1, f[1])
		}
		h := sha256.Sum256([]byte(f[2]))
		for j, t := range a.tokens {
			if t.hash == h {
				return nil, fmt.Errorf("apiauth: token %d (%s) repeats the token of line %d (%s): each caller needs its own", i+1, f[1], j+1, t.p.Name)
			}
		}
		a.tokens = append(a.tokens, token{hash: h, p: Principal{Name: f[1], Role: role}})
	}
	return a, nil
}

// LoadFile reads token lines ("ROLE NAME TOKEN", # comments) from a file.
func LoadFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("apiauth: open token file: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

// Errors of Authenticate.
var (
	ErrUnauthenticated = errors.New("unauthenticated: a valid bearer token or client certificate is required")
	ErrForbidden       = errors.New("permission denied: this call needs the admin role")
)

// Authenticate identifies the caller of r.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if a == nil {
		return Principal{}, ErrUnauthenticated
	}
	if a.open {
		return Principal{Name: "local", Role: RoleAdmin}, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Principal{}, ErrUnauthenticated
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		for _, t := range a.tokens {
			if subtle.ConstantTimeCompare(sum[:], t.hash[:]) == 1 {
				return t.p, nil
			}
		}
		return Principal{}, ErrUnauthenticated
	}
	if id, err := mtls.PeerIdentity(r); err == nil {
		if p, ok := a.identities[id.String()]; ok {
			return p, nil
		}
	}
	return Principal{}, ErrUnauthenticated
}

type principalKey struct{}

// FromContext returns the principal the middleware authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Middleware authenticates every request and requires need(path) as the
// minimum role; refusals are answered in the Connect protocol's JSON error
// form (which gRPC clients also understand as an HTTP error) and passed to
// onRefuse (for metrics) when it is not nil.
func (a *Authenticator) Middleware(need func(path string) Role, onRefuse func(reason string), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := need(r.URL.Path)
		if want == RoleNone {
			next.ServeHTTP(w, r)
			return
		}
		p, err := a.Authenticate(r)
		switch {
		case err != nil:
			refuse(w, http.StatusUnauthorized, "unauthenticated", err)
			if onRefuse != nil {
				onRefuse("unauthenticated")
			}
			return
		case p.Role < want:
			refuse(w, http.StatusForbidden, "permission_denied", ErrForbidden)
			if onRefuse != nil {
				onRefuse("forbidden")
			}
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func refuse(w http.ResponseWriter, status int, code string, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Grpc-Status", map[int]string{401: "16", 403: "7"}[status])
	w.Header().Set("Grpc-Message", err.Error())
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%q,"message":%q}`, code, err.Error())
}

// ConnectRoles is the role map of the control plane's Connect services:
// AdminService needs admin, IntelligenceService needs viewer, anything else
// (health, metrics, the dashboard's static files, the directive stream which
// has its own authorization) needs nothing here.
func ConnectRoles(path string) Role {
	switch {
	case strings.HasPrefix(path, "/omninode.bridge.v1.AdminService/"):
		return RoleAdmin
	case strings.HasPrefix(path, "/omninode.bridge.v1.IntelligenceService/"):
		return RoleViewer
	}
	return RoleNone
}
