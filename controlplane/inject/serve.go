package inject

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// shutdownTimeout bounds the drain of in-flight admission requests.
const shutdownTimeout = 5 * time.Second

// Serve serves h over TLS on addr until ctx ends, then drains for at most
// five seconds and returns nil. The certificate and key are re-read when
// either file changes (cert-manager and kubelet secret updates rotate them
// in place), so a rotation needs no restart. When clientCAFile is not
// empty, clients must present a certificate signed by it (the API server's
// client certificate for webhooks).
func Serve(ctx context.Context, addr, certFile, keyFile, clientCAFile string, h http.Handler) error {
	cfg, err := ServerTLSConfig(certFile, keyFile, clientCAFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, cfg, h)
}

// ServeListener is [Serve] on an open listener (closed on return) with a
// TLS configuration from [ServerTLSConfig].
func ServeListener(ctx context.Context, ln net.Listener, cfg *tls.Config, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// Not ctx itself: in-flight reviews must finish during the drain.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve webhook: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shut down webhook: %w", err)
	}
	return nil
}

// ServerTLSConfig returns a TLS 1.2+ server configuration whose certificate
// is reloaded when its files change, requiring client certificates signed
// by clientCAFile when it is not empty.
func ServerTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read client CA %s: no PEM certificate", clientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// keyPair caches a certificate and reloads it when a file's modification
// time or size changes. A failed reload (say, a half-written file) keeps
// serving the previous certificate and retries on the next handshake.
type keyPair struct {
	certFile, keyFile string

	mu    sync.Mutex
	stamp [2]fileStamp
	cert  *tls.Certificate
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cs, err1 := stampOf(k.certFile)
	ks, err2 := stampOf(k.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if k.cert != nil {
			return k.cert, nil
		}
		return nil, fmt.Errorf("load webhook certificate: %w", err)
	}
	if k.cert != nil && k.stamp == [2]fileStamp{cs, ks} {
		return k.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		if k.cert != nil {
			return k.cert, nil
		}
		return nil, fmt.Errorf("load webhook certificate: %w", err)
	}
	k.cert, k.stamp = &cert, [2]fileStamp{cs, ks}
	return k.cert, nil
}
