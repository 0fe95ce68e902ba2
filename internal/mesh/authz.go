package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"

	"connectrpc.com/connect"
	"github.com/omninode/bridge/controlplane/adminapi"
	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"github.com/omninode/bridge/internal/apiauth"
	"github.com/omninode/bridge/internal/mtls"
)

// IsLoopback reports whether a listen address (host:port) only accepts
// connections from this machine. An empty host (":8090") listens everywhere.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newAuthenticator builds the API authenticator: the tokens file when given;
// otherwise an open API, but only on a loopback listener or when the operator
// explicitly asked for it.
func newAuthenticator(tokensFile, listen string, insecureOpen bool, log *slog.Logger) (*apiauth.Authenticator, error) {
	if tokensFile != "" {
		lines, err := apiauth.LoadFile(tokensFile)
		if err != nil {
			return nil, fmt.Errorf("load api tokens: %w", err)
		}
		a, err := apiauth.New(lines, nil)
		if err != nil {
			return nil, fmt.Errorf("load api tokens: %w", err)
		}
		log.Info("API authentication: bearer tokens", "file", tokensFile, "tokens", len(lines))
		return a, nil
	}
	switch {
	case IsLoopback(listen):
		log.Warn("API is OPEN: no --api-tokens-file, every local caller is an admin (loopback listener only)", "listen", listen)
	case insecureOpen:
		log.Warn("API is OPEN on a non-loopback listener (--insecure-open-api): anyone who reaches it is an admin", "listen", listen)
	default:
		return nil, fmt.Errorf("refuse to serve an open API on non-loopback %s: give --api-tokens-file (lines \"ROLE NAME TOKEN\") or --insecure-open-api", listen)
	}
	return apiauth.Open(), nil
}

// withActor passes the authenticated principal's name to the admin API's
// audit log.
func withActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := apiauth.FromContext(r.Context()); ok {
			r = r.WithContext(adminapi.WithActor(r.Context(), p.Name))
		}
		next.ServeHTTP(w, r)
	})
}

type peerKey struct{}

// withPeerIdentity puts the verified SPIFFE identity of an mTLS client in the
// request context, for the directive stream's authorization.
func withPeerIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			if id, err := mtls.PeerIdentity(r); err == nil {
				r = r.WithContext(context.WithValue(r.Context(), peerKey{}, id))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serviceAuthz authorizes each directive stream for the sidecar's own service
// only: with mTLS required, the hello's service must equal the service of the
// client certificate's SPIFFE identity, else the stream ends with
// PermissionDenied before the directive server sees the hello. Without mTLS
// (plaintext on loopback) every hello passes.
type serviceAuthz struct {
	requireIdentity bool
	denied          atomic.Uint64
	log             *slog.Logger
}

var errNoHello = errors.New("the first message of a directive stream must be hello")

func (a *serviceAuthz) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (a *serviceAuthz) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *serviceAuthz) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if !a.requireIdentity {
			return next(ctx, conn)
		}
		id, ok := ctx.Value(peerKey{}).(mtls.Identity)
		if !ok {
			a.denied.Add(1)
			return connect.NewError(connect.CodePermissionDenied, mtls.ErrNoIdentity)
		}
		return next(ctx, &authzConn{StreamingHandlerConn: conn, id: id, a: a})
	}
}

type authzConn struct {
	connect.StreamingHandlerConn
	id      mtls.Identity
	a       *serviceAuthz
	checked bool
}

func (c *authzConn) Receive(msg any) error {
	if err := c.StreamingHandlerConn.Receive(msg); err != nil {
		return err
	}
	if c.checked {
		return nil
	}
	c.checked = true
	req, ok := msg.(*bridgev1.SyncRequest)
	if !ok || req.GetHello() == nil {
		c.a.denied.Add(1)
		return connect.NewError(connect.CodePermissionDenied, errNoHello)
	}
	if svc := req.GetHello().GetService(); svc != c.id.Service {
		c.a.denied.Add(1)
		c.a.log.Warn("directive stream refused: service does not match the certificate", "hello_service", svc, "identity", c.id.String())
		return connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("identity %s may only sync service %q, not %q", c.id, c.id.Service, svc))
	}
	return nil
}

func connectInterceptors(a *serviceAuthz) connect.HandlerOption { return connect.WithInterceptors(a) }

type bridgev1CriticalSignal = bridgev1.CriticalSignal
