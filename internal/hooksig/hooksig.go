// Package hooksig authenticates requests to an exposed hook receiver in the
// Standard Webhooks style: the sender signs "ID.TIMESTAMP.BODY" with
// HMAC-SHA256 under a shared secret and sends webhook-id, webhook-timestamp
// and webhook-signature ("v1,BASE64" entries separated by spaces, so a
// secret can be rotated by signing with both). The verifier bounds the clock
// skew and answers a replayed id idempotently with the first answer, without
// passing it on again. It owns nothing else: the hook handler behind it
// validates the payload.
package hooksig

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Header names of Standard Webhooks.
const (
	HeaderID        = "Webhook-Id"
	HeaderTimestamp = "Webhook-Timestamp"
	HeaderSignature = "Webhook-Signature"
)

// Config configures a Verifier.
type Config struct {
	// Secrets accepted, each "whsec_BASE64" or raw bytes as text; at least one.
	// During rotation list the new and the old secret.
	Secrets []string
	// Tolerance is the largest accepted clock skew; default 5 minutes.
	Tolerance time.Duration
	// MaxBodyBytes bounds the signed body read; default 1 MiB.
	MaxBodyBytes int64
	// MaxRemembered bounds the replay cache; default 100,000 ids.
	MaxRemembered int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnReject is called with a reason label for each refused request (metrics).
	OnReject func(reason string)
}

// Verifier checks signatures and remembers answers for replay idempotence.
type Verifier struct {
	cfg     Config
	keys    [][]byte
	mu      sync.Mutex
	answers map[string]answer
	order   []string
}

type answer struct {
	status int
	header http.Header
	body   []byte
	at     time.Time
}

// New validates the configuration and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("hooksig: at least one secret is required")
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 5 * time.Minute
	}
	if cfg.Tolerance < 0 {
		return nil, errors.New("hooksig: tolerance must be positive")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxRemembered == 0 {
		cfg.MaxRemembered = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, answers: map[string]answer{}}
	for i, s := range cfg.Secrets {
		k, err := DecodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("hooksig: secret %d: %w", i+1, err)
		}
		v.keys = append(v.keys, k)
	}
	return v, nil
}

// DecodeSecret turns "whsec_BASE64" into its key bytes; other text is used as is.
func DecodeSecret(s string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(s, "whsec_"); ok {
		k, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("decode whsec_ secret: %w", err)
		}
		return k, nil
	}
	if len(s) < 16 {
		return nil, errors.New("secret shorter than 16 bytes")
	}
	return []byte(s), nil
}

// Sign returns the webhook-signature value for a message (for senders and tests).
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts.Unix())
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Wrap returns next behind signature verification.
func (v *Verifier) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderID)
		tsText := r.Header.Get(HeaderTimestamp)
		sigs := r.Header.Get(HeaderSignature)
		if id == "" || tsText == "" || sigs == "" || len(id) > 256 {
			v.reject(w, http.StatusUnauthorized, "missing_headers", "webhook-id, webhook-timestamp and webhook-signature are required")
			return
		}
		secs, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil {
			v.reject(w, http.StatusUnauthorized, "bad_timestamp", "webhook-timestamp is not unix seconds")
			return
		}
		ts := time.Unix(secs, 0)
		if skew := v.cfg.Now().Sub(ts); skew > v.cfg.Tolerance || skew < -v.cfg.Tolerance {
			v.reject(w, http.StatusUnauthorized, "timestamp_skew", fmt.Sprintf("webhook-timestamp is %s away from now (tolerance %s)", skew.Round(time.Second), v.cfg.Tolerance))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, v.cfg.MaxBodyBytes+1))
		if err != nil {
			v.reject(w, http.StatusBadRequest, "read_body", "read body: "+err.Error())
			return
		}
		if int64(len(body)) > v.cfg.MaxBodyBytes {
			v.reject(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body over %d bytes", v.cfg.MaxBodyBytes))
			return
		}
		if !v.valid(id, ts, body, sigs) {
			v.reject(w, http.StatusUnauthorized, "bad_signature", "no webhook-signature entry matches")
			return
		}
		if a, ok := v.remembered(id); ok {
			copyHeader(w.Header(), a.header)
			w.Header().Set("Webhook-Replayed", "true")
			w.WriteHeader(a.status)
			w.Write(a.body)
			return
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(rec, r)
		if rec.status < 500 {
			v.remember(id, answer{status: rec.status, header: w.Header().Clone(), body: rec.buf.Bytes(), at: v.cfg.Now()})
		}
	})
}

func (v *Verifier) valid(id string, ts time.Time, body []byte, sigs string) bool {
	for _, k := range v.keys {
		want := Sign(k, id, ts, body)
		for _, s := range strings.Fields(sigs) {
			if hmac.Equal([]byte(s), []byte(want)) {
				return true
			}
		}
	}
	return false
}

func (v *Verifier) remembered(id string) (answer, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	a, ok := v.answers[id]
	if ok && v.cfg.Now().Sub(a.at) > 2*v.cfg.Tolerance {
		return answer{}, false
	}
	return a, ok
}

func (v *Verifier) remember(id string, a answer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.answers[id]; !ok {
		v.order = append(v.order, id)
	}
	v.answers[id] = a
	for len(v.order) > v.cfg.MaxRemembered {
		delete(v.answers, v.order[0])
		v.order = v.order[1:]
	}
}

func (v *Verifier) reject(w http.ResponseWriter, status int, reason, msg string) {
	if v.cfg.OnReject != nil {
		v.cfg.OnReject(reason)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\":%q}\n", msg)
}

type recorder struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }
func (r *recorder) Write(b []byte) (int, error) {
	if r.buf.Len() < 64<<10 {
		r.buf.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}
