package redact

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

const canary = "canary-7f3a9c1e5b2d4068"

func newRedactor(t testing.TB, cfg Config) *Redactor {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", DefaultConfig(), ""},
		{"zero means default", Config{}, ""},
		{"value cap too small", Config{MaxValueBytes: 3}, "MaxValueBytes"},
		{"url cap too big", Config{MaxURLBytes: 1 << 20}, "MaxURLBytes"},
		{"depth negative", Config{MaxDepth: -1}, "MaxDepth"},
		{"empty deny header", Config{DenyHeaders: []string{" "}}, "DenyHeaders[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want error naming %s", err, tc.want)
			}
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, Config{DenyHeaders: []string{"X-Internal-Pin"}})
	h := http.Header{}
	h.Set("Authorization", "Bearer "+canary)
	h.Set("Cookie", "sid="+canary)
	h.Set("X-Api-Key", canary)
	h.Set("X-Auth-Token", canary)
	h.Set("X-Internal-Pin", canary)
	h.Set("Content-Type", "application/json")
	h.Add("Accept", "a/b")
	h.Add("Accept", "c/d")
	h.Set("User-Agent", "evil\r\nInjected: 1")
	h.Set("X-Not-Allowed", "x")
	h.Set("X-Request-Id", strings.Repeat("é", 2000))

	got := r.Headers(h, nil)
	if _, ok := got["x-not-allowed"]; ok {
		t.Error("header outside the allow list was kept")
	}
	if _, ok := got["authorization"]; ok {
		t.Error("authorization kept though not allow-listed")
	}
	if got["content-type"] != "application/json" || got["accept"] != "a/b, c/d" {
		t.Errorf("allow-listed values wrong: %q", got)
	}
	if got["user-agent"] != `evil\r\nInjected: 1` {
		t.Errorf("user-agent not escaped: %q", got["user-agent"])
	}
	if n := len(got["x-request-id"]); n > DefaultMaxValueBytes || !utf8.ValidString(got["x-request-id"]) {
		t.Errorf("x-request-id not capped on a rune boundary: %d bytes", n)
	}

	// Sensitive headers are redacted even when allow-listed.
	all := r.Headers(h, []string{"Authorization", "cookie", "x-api-key", "x-auth-token", "x-internal-pin", "content-type"})
	for _, k := range []string{"authorization", "cookie", "x-api-key", "x-auth-token", "x-internal-pin"} {
		if all[k] != Redacted {
			t.Errorf("%s = %q, want REDACTED", k, all[k])
		}
	}
	for k, v := range all {
		if strings.Contains(k+v, canary) {
			t.Errorf("canary leaked in %s", k)
		}
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, Config{DenyQueryParams: []string{"tenant_pin"}})
	for _, tc := range []struct {
		in, want string
	}{
		{"http://user:pw@host/a/b?x=1&access_token=" + canary + "&y=2", "/a/b?x=1&access_token=REDACTED&y=2"},
		{"/s3/obj?X-Amz-Signature=" + canary + "&X-Amz-Credential=" + canary + "&X-Amz-Date=20260101", "/s3/obj?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Date=20260101"},
		{"/gcs?X-Goog-Signature=" + canary, "/gcs?X-Goog-Signature=REDACTED"},
		{"/cb?code=" + canary + "&state=ok", "/cb?code=REDACTED&state=ok"},
		{"/q?api%5Fkey=" + canary, "/q?api%5Fkey=REDACTED"},
		{"/q?my_refresh_token=" + canary + "&sig=" + canary, "/q?my_refresh_token=REDACTED&sig=REDACTED"},
		{"/q?tenant_pin=" + canary, "/q?tenant_pin=REDACTED"},
		{"/q?sk9f8e7d6c5b4a3f2e1d0c9b8a7", "/q?REDACTED"},
		{"/plain", "/plain"},
		{"/with%20space?", "/with%20space?"},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.URL(u); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := &url.URL{Path: "/" + strings.Repeat("a", 5000), RawQuery: "token=" + canary}
	if got := r.URL(long); len(got) != DefaultMaxURLBytes || strings.Contains(got, canary) {
		t.Errorf("long URL: %d bytes", len(got))
	}
	if r.URL(nil) != "" {
		t.Error("nil URL")
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, Config{MaxValueBytes: 16})
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{"nul\x00bell\x07", `nul\u0000bell`}, // an escape is never cut in half
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"bidi\u202eevil", `bidi\u202eevil`},
		{"ééééééééé", "éééééééé"}, // 18 bytes -> cut at 16 on a rune boundary
		{strings.Repeat("x", 40), strings.Repeat("x", 16)},
	} {
		got := r.String(tc.in)
		if got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if len(got) > 16 || !utf8.ValidString(got) {
			t.Errorf("String(%q) = %q breaks the cap or UTF-8", tc.in, got)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, Config{DenyJSONFields: []string{"pin"}})
	for _, in := range []string{
		"upstream said 401 for Authorization: Bearer " + canary,
		"dial http://admin:" + canary + "@db:5432/x failed",
		`{"error":"bad","password":"` + canary + `"}`,
		"login failed password=" + canary + " user=bob",
		"token: '" + canary + "'",
		"api_key=" + canary + "&x=1",
		"client_secret = " + canary,
		"pin=" + canary,
		"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0." + canary,
		"Basic " + "YWRtaW46" + canary,
	} {
		got := r.Error(in)
		if strings.Contains(got, canary) {
			t.Errorf("Error(%q) = %q leaks the secret", in, got)
		}
		if !strings.Contains(got, Redacted) {
			t.Errorf("Error(%q) = %q has no REDACTED marker", in, got)
		}
	}
	if got := r.Error("connection refused\nretrying"); got != `connection refused\nretrying` {
		t.Errorf("plain error changed: %q", got)
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, Config{DenyJSONFields: []string{"tenantPin"}, MaxValueBytes: 32})
	in := `{"user":"bob","Password":"` + canary + `","nested":{"apiKey":{"deep":"` + canary + `"},
	  "list":[{"access_token":"` + canary + `"},{"max_tokens":100,"n":12345678901234567890}],
	  "tenant_pin":"` + canary + `","session_token":"` + canary + `","CREDIT-CARD":4111111111111111},
	  "long":"` + strings.Repeat("z", 100) + `","ctl":"a\nb"}`
	out, err := r.JSON([]byte(in))
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if strings.Contains(string(out), canary) || strings.Contains(string(out), "4111") {
		t.Fatalf("secret survived: %s", out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output not JSON: %v", err)
	}
	nested := got["nested"].(map[string]any)
	if got["Password"] != Redacted || nested["apiKey"] != Redacted || nested["tenant_pin"] != Redacted ||
		nested["session_token"] != Redacted || nested["CREDIT-CARD"] != Redacted {
		t.Errorf("deny-listed fields not redacted: %s", out)
	}
	list := nested["list"].([]any)
	if list[0].(map[string]any)["access_token"] != Redacted {
		t.Errorf("field in array not redacted: %s", out)
	}
	if list[1].(map[string]any)["max_tokens"] != float64(100) {
		t.Errorf("max_tokens should be kept: %s", out)
	}
	if !strings.Contains(string(out), "12345678901234567890") {
		t.Errorf("number text not preserved: %s", out)
	}
	if got["user"] != "bob" || len(got["long"].(string)) != 32 || got["ctl"] != `a\nb` {
		t.Errorf("strings not capped/escaped: %s", out)
	}
	for _, bad := range []string{``, `{`, `{"a":1} x`, `{"a":1}{"b":2}`, "\xff"} {
		if _, err := r.JSON([]byte(bad)); err == nil {
			t.Errorf("JSON(%q) accepted invalid input", bad)
		}
	}
}

func TestJSONDepthLimit(t *testing.T) {
	t.Parallel()
	// The document is depth 0; "d"'s value is at depth 4.
	r := newRedactor(t, Config{MaxDepth: 3})
	out, err := r.JSON([]byte(`{"a":{"b":{"c":{"d":"secretish"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"a":{"b":{"c":{"d":"[depth limit]"}}}}` {
		t.Errorf("depth limit: %s", out)
	}
}

func TestStruct(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, DefaultConfig())
	in, err := structpb.NewStruct(map[string]any{
		"query":  "select 1\n",
		"secret": canary,
		"inner":  map[string]any{"client_secret": canary, "keep": []any{1.5, true, nil, "x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := proto.Clone(in)
	out := r.Struct(in)
	if !proto.Equal(in, before) {
		t.Error("Struct changed its input")
	}
	b, _ := proto.Marshal(out)
	if strings.Contains(string(b), canary) {
		t.Fatal("secret survived Struct")
	}
	m := out.AsMap()
	if m["secret"] != Redacted || m["query"] != `select 1\n` {
		t.Errorf("Struct: %v", m)
	}
	inner := m["inner"].(map[string]any)
	if inner["client_secret"] != Redacted || len(inner["keep"].([]any)) != 4 {
		t.Errorf("Struct inner: %v", inner)
	}
	if r.Struct(nil) != nil {
		t.Error("Struct(nil) != nil")
	}
}

func TestJSONStruct(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, DefaultConfig())
	s, err := r.JSONStruct([]byte(`{"path":"/tmp","token":"` + canary + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Fields["token"].GetStringValue() != Redacted || s.Fields["path"].GetStringValue() != "/tmp" {
		t.Errorf("JSONStruct: %v", s)
	}
	s, err = r.JSONStruct([]byte(`[1,2]`))
	if err != nil || len(s.Fields["value"].GetListValue().GetValues()) != 2 {
		t.Errorf("non-object JSONStruct: %v %v", s, err)
	}
}

func TestErrorKeepsPlainWords(t *testing.T) {
	t.Parallel()
	r := newRedactor(t, DefaultConfig())
	for in, want := range map[string]string{
		"basic authentication failed":       "basic authentication failed",
		"invalid token provided":            "invalid token provided",
		"Bearer abcdefgh":                   "Bearer REDACTED",
		"token sk_live_51H8":                "token REDACTED",
		"Authorization: Basic dXNlcjpwYXNz": "Authorization: Basic REDACTED",
	} {
		if got := r.Error(in); got != want {
			t.Errorf("Error(%q) = %q, want %q", in, got, want)
		}
	}
}
