package patterns

import (
	"fmt"
	"testing"
)

func ids() func([]string) string {
	n := 0
	return func([]string) string { n++; return fmt.Sprintf("g%d", n) }
}

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"dial tcp 10.0.0.5:5432: connection refused", "dial tcp <IP>: connection refused"},
		{"order 12345 not found", "order <NUM> not found"},
		{"user 1b4e28ba-2fa1-11d2-883f-0016d3cca427 denied", "user <UUID> denied"},
		{`invalid value "abc" for field 'qty'`, "invalid value <QUOTED> for field <QUOTED>"},
		{"GET https://api.example.com/v1/x?y=1 failed", "GET <URL> failed"},
		{"mail bob@example.com bounced", "mail <EMAIL> bounced"},
		{"upstream payments.prod.svc:8443 timed out after 3000ms", "upstream <HOST> timed out after <NUM>"},
		{"span deadbeef0011 lost", "span <HEX> lost"},
	}
	for _, tc := range tests {
		if got := Mask(tc.in); got != tc.want {
			t.Errorf("Mask(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMinerMergesVariablesAndSplitsFailures(t *testing.T) {
	t.Parallel()
	m := NewMiner(ids())
	same := []string{
		"connect to db-1.internal:5432 refused after 120 ms",
		"connect to db-7.internal:5432 refused after 3 ms",
		"connect to 10.1.2.3:5432 refused after 99 ms",
	}
	var first *Group
	for _, s := range same {
		g, _ := m.Match(s, 1)
		if first == nil {
			first = g
		}
		if g != first {
			t.Fatalf("%q landed in %s (%s), want %s (%s)", s, g.ID, g.Template(), first.ID, first.Template())
		}
	}
	if first.Size != 3 {
		t.Fatalf("size %d", first.Size)
	}
	other, _ := m.Match("insufficient stock for sku 42", 1)
	if other == first {
		t.Fatalf("different failure merged into %s", first.Template())
	}
	other2, _ := m.Match("payment declined by issuer", 1)
	if other2 == first || other2 == other {
		t.Fatal("different failures merged")
	}
	// Word-level variation merges into a wildcard.
	a, _ := m.Match("user alice not permitted to write", 1)
	b, changed := m.Match("user bob not permitted to write", 1)
	if a != b || !changed || b.Template() != "user <*> not permitted to write" {
		t.Fatalf("template %q changed=%v", b.Template(), changed)
	}
	if c := b.Confidence(); c <= 0 || c >= 1 {
		t.Fatalf("confidence %v", c)
	}
}
