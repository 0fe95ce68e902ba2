package redact

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkClean fails when s is not valid UTF-8 or carries a control character.
func checkClean(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s not valid UTF-8: %q", what, s)
	}
	for _, c := range s {
		if isControl(c) {
			t.Fatalf("%s has control character %U: %q", what, c, s)
		}
	}
}

// FuzzRedactJSON checks that for any input JSON either fails cleanly or
// returns valid JSON in which every deny-listed field is "REDACTED", every
// string is capped and clean, and redacting again changes nothing.
func FuzzRedactJSON(f *testing.F) {
	f.Add([]byte(`{"password":"hunter2","user":"bob"}`))
	f.Add([]byte(`[{"a":{"Api-Key":1}},"x\n"]`))
	r, err := New(Config{MaxValueBytes: 64, MaxDepth: 8})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := r.JSON(raw)
		if err != nil {
			if out != nil {
				t.Fatal("output returned with an error")
			}
			return
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("output is not JSON: %v: %s", err, out)
		}
		var walk func(v any, depth int)
		walk = func(v any, depth int) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					checkClean(t, "key", k)
					if r.SensitiveField(k) && e != Redacted {
						t.Fatalf("field %q kept value %v", k, e)
					}
					walk(e, depth+1)
				}
			case []any:
				for _, e := range x {
					walk(e, depth+1)
				}
			case string:
				if len(x) > 64 {
					t.Fatalf("string of %d bytes over the cap", len(x))
				}
				checkClean(t, "string", x)
			}
			if depth > 8+1 {
				t.Fatalf("depth %d over the limit", depth)
			}
		}
		walk(v, 0)
		again, err := r.JSON(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %s -> %s (%v)", out, again, err)
		}
	})
}

// FuzzRedactURL checks that a redacted URL is capped, clean, keeps no
// userinfo or host, and that every sensitive parameter left in it is REDACTED.
func FuzzRedactURL(f *testing.F) {
	f.Add("https://u:p@h/x?token=abc&ok=1")
	f.Add("/a?X-Amz-Signature=zz&X-Amz-Date=1#frag")
	r, err := New(Config{MaxURLBytes: 256})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		got := r.URL(u)
		if len(got) > 256 {
			t.Fatalf("%d bytes over the cap", len(got))
		}
		checkClean(t, "url", got)
		if u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 && !strings.Contains(u.EscapedPath()+u.RawQuery, pw) && strings.Contains(got, pw) {
				t.Fatalf("password %q of the userinfo leaked: %q", pw, got)
			}
		}
		if len(got) == 256 {
			return // cut: the last parameter may be partial
		}
		_, q, _ := strings.Cut(got, "?")
		if u.Opaque != "" || q == "" {
			return
		}
		for _, p := range strings.Split(q, "&") {
			k, v, ok := strings.Cut(p, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if ok && r.SensitiveParam(name) && v != Redacted {
				t.Fatalf("parameter %q kept value %q in %q", name, v, got)
			}
		}
	})
}
