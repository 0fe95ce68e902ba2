package route

import "testing"

func TestTemplate(t *testing.T) {
	t.Parallel()
	tm := New([]string{"/users/{user}/posts/{post}", "/static/{rest...}"})
	cases := []struct{ path, want string }{
		{"/", "/"},
		{"", "/"},
		{"/healthz", "/healthz"},
		{"/orders/12345", "/orders/{id}"},
		{"/orders/12345/items/7", "/orders/{id}/items/{id}"},
		{"/orders/0190f1a2-7b3c-7def-8123-456789abcdef", "/orders/{id}"},
		{"/blobs/9f86d081884c7d659a2feaa0c55ad015", "/blobs/{id}"},
		{"/tokens/abcDEF123ghiJKL456", "/tokens/{id}"},
		{"/api/v1/orders", "/api/v1/orders"},
		{"/omninode.bridge.v1.IntelligenceService/Tap", "/omninode.bridge.v1.IntelligenceService/Tap"},
		{"/users/alice/posts/hello-world", "/users/{user}/posts/{post}"},
		{"/static/css/site.css", "/static/{rest...}"},
		{"/a/b/c/d/e/f/g/h/i/j", "/a/b/c/d/e/f/g/h/{rest}"},
		{"/names/caf%C3%A9", "/names/{id}"},
		{"/mcp", "/mcp"},
	}
	for _, c := range cases {
		if got := tm.Template(c.path); got != c.want {
			t.Errorf("Template(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}

func TestTemplateNoAllocWhenUnchanged(t *testing.T) {
	var tm *Templater
	if n := testing.AllocsPerRun(100, func() { _ = tm.Template("/api/v1/orders") }); n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}
