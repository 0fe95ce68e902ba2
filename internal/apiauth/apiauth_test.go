package apiauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/omninode/bridge/internal/apiauth"
)

func TestRoles(t *testing.T) {
	t.Parallel()
	a, err := apiauth.New([]string{
		"viewer ops-dashboard viewer-token-0123456789",
		"admin alice admin-token-0123456789abc",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	refused := map[string]int{}
	h := a.Middleware(apiauth.ConnectRoles, func(r string) { mu.Lock(); refused[r]++; mu.Unlock() },
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := apiauth.FromContext(r.Context())
			io.WriteString(w, p.Name)
		}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	const read = "/omninode.bridge.v1.IntelligenceService/ListServices"
	const write = "/omninode.bridge.v1.AdminService/Rollback"
	cases := []struct {
		name, path, auth string
		status           int
		who              string
	}{
		{"no token read", read, "", 401, ""},
		{"bad token read", read, "Bearer nope-nope-nope-nope", 401, ""},
		{"not bearer", read, "Basic YWxpY2U6eA==", 401, ""},
		{"viewer read", read, "Bearer viewer-token-0123456789", 200, "ops-dashboard"},
		{"viewer write", write, "Bearer viewer-token-0123456789", 403, ""},
		{"admin write", write, "Bearer admin-token-0123456789abc", 200, "alice"},
		{"admin read", read, "Bearer admin-token-0123456789abc", 200, "alice"},
		{"open path", "/livez", "", 200, ""},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader("{}"))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, resp.StatusCode, tc.status, body)
		}
		if tc.status == 200 && string(body) != tc.who {
			t.Errorf("%s: principal %q, want %q", tc.name, body, tc.who)
		}
	}
	if refused["unauthenticated"] != 3 || refused["forbidden"] != 1 {
		t.Errorf("refusals counted %v, want 3 unauthenticated and 1 forbidden", refused)
	}
}

func TestNewRejectsBadLines(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"admin alice", "root alice token-0123456789abcdef", "admin alice short"} {
		if _, err := apiauth.New([]string{line}, nil); err == nil {
			t.Errorf("New(%q) accepted", line)
		}
	}
	var nilAuth *apiauth.Authenticator
	if _, err := nilAuth.Authenticate(httptest.NewRequest("GET", "/", nil)); err == nil {
		t.Error("a nil authenticator authenticated a caller")
	}
}
