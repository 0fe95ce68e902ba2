package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSummaryPlain(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := NewSummary(&buf) // a buffer is not a terminal
	snap := Snapshot{Elapsed: 65 * time.Second, Requests: 100, Failures: 5, Events: 300, Recommendations: map[string]int{"proposed": 2, "enforced": 1}}
	for range 3 {
		if err := s.Render(snap); err != nil {
			t.Fatal(err)
		}
	}
	snap.Patterns = 1
	_ = s.Render(snap)
	out := buf.String()
	if strings.Contains(out, "\x1b[") {
		t.Errorf("plain output has ANSI escapes: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (one per change): %q", len(lines), out)
	}
	if !strings.HasPrefix(lines[0], "[01:05] requests=100 failed=5 events=300 patterns=0 recommendations=[enforced 1, proposed 2]") {
		t.Errorf("line = %q", lines[0])
	}
}

func TestSummaryTTYRedraws(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := NewSummaryTTY(&buf, 80)
	_ = s.Render(Snapshot{Elapsed: time.Second})
	first := buf.Len()
	if strings.Contains(buf.String(), "\x1b[8A") {
		t.Fatalf("first draw moved the cursor up: %q", buf.String())
	}
	_ = s.Render(Snapshot{Elapsed: 2 * time.Second, Recent: []string{"payments turns flaky"}})
	second := buf.String()[first:]
	if !strings.HasPrefix(second, "\x1b[8A") {
		t.Errorf("second draw does not move up 8 lines: %q", second[:min(20, len(second))])
	}
	if !strings.Contains(second, "· payments turns flaky") {
		t.Errorf("recent line missing: %q", second)
	}
	_ = s.Note(3*time.Second, "directive applied")
	if !strings.Contains(buf.String(), "\x1b[9A\r\x1b[J[00:03] directive applied\n") {
		t.Errorf("note does not clear the block: %q", buf.String())
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	r := Report(Snapshot{Elapsed: 2 * time.Minute, Requests: 10, Detected: []string{"card processor unavailable (attempt <NUM>) on payments"}, Changes: []string{"retry on payments: kept (+0.62)"}})
	for _, want := range []string{"(02:00)", "- card processor unavailable", "- retry on payments: kept", "recommendations:  none"} {
		if !strings.Contains(r, want) {
			t.Errorf("report lacks %q:\n%s", want, r)
		}
	}
}
