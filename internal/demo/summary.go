package demo

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Snapshot is what the loop has done so far, as the terminal summary shows it.
type Snapshot struct {
	// Elapsed is the time since the demo started.
	Elapsed time.Duration
	// Requests and Failures are what the traffic generator sent and saw fail.
	Requests, Failures uint64
	// Events is the number of events the control plane has seen.
	Events uint64
	// Patterns is the number of failure patterns detected.
	Patterns int
	// Recommendations counts recommendations by state name ("proposed", "enforced", ...).
	Recommendations map[string]int
	// DirectivesAcked is the number of directive snapshots acknowledged by sidecars.
	DirectivesAcked int
	// OutcomesMeasured is the number of recommendations whose effect was measured.
	OutcomesMeasured int
	// ActiveFaults lists the faults that are on, in words.
	ActiveFaults []string
	// Detected lists what was detected, one line each (pattern templates, anomalies).
	Detected []string
	// Changes lists what the loop changed, one line each ("retry on payments: kept, +0.62").
	Changes []string
	// Recent lists the latest happenings, newest last; the live view shows the last few.
	Recent []string
}

// Summary renders snapshots to a terminal: redrawn in place on a TTY (ANSI
// cursor-up), one plain line per change otherwise.
type Summary struct {
	w     io.Writer
	tty   bool
	width int

	mu        sync.Mutex
	lines     int    // lines drawn last time (TTY)
	lastPlain string // last plain line, to print only changes
	lastAt    time.Time
}

// NewSummary returns a summary writing to w; it redraws in place when w is a
// terminal.
func NewSummary(w io.Writer) *Summary {
	s := &Summary{w: w, width: 100}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		s.tty = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			s.width = cols
		}
	}
	return s
}

// NewSummaryTTY returns a summary that draws as on a terminal of the given
// width, whatever w is (for tests and forced colors).
func NewSummaryTTY(w io.Writer, width int) *Summary {
	return &Summary{w: w, tty: true, width: max(width, 20)}
}

// plainEvery is how often a plain line is printed even when nothing changed.
const plainEvery = 15 * time.Second

// Render draws the snapshot.
func (s *Summary) Render(snap Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tty {
		line := plainLine(snap)
		if line == s.lastPlain && time.Since(s.lastAt) < plainEvery {
			return nil
		}
		s.lastPlain, s.lastAt = line, time.Now()
		_, err := fmt.Fprintf(s.w, "[%s] %s\n", fmtElapsed(snap.Elapsed), line)
		return err
	}
	var b strings.Builder
	if s.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", s.lines)
	}
	lines := s.block(snap)
	for _, l := range lines {
		b.WriteString("\r\x1b[2K")
		b.WriteString(truncate(l, s.width-1))
		b.WriteByte('\n')
	}
	// Clear lines left over from a taller previous block.
	for i := len(lines); i < s.lines; i++ {
		b.WriteString("\r\x1b[2K\n")
	}
	if extra := s.lines - len(lines); extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	s.lines = len(lines)
	_, err := io.WriteString(s.w, b.String())
	return err
}

func (s *Summary) block(snap Snapshot) []string {
	faults := "none"
	if len(snap.ActiveFaults) > 0 {
		faults = strings.Join(snap.ActiveFaults, ", ")
	}
	lines := []string{
		fmt.Sprintf("omnibridge demo · %s elapsed", fmtElapsed(snap.Elapsed)),
		fmt.Sprintf("  traffic      %d requests, %d failed (%s)", snap.Requests, snap.Failures, pct(snap.Failures, snap.Requests)),
		fmt.Sprintf("  faults       %s", faults),
		fmt.Sprintf("  events       %d seen by the control plane", snap.Events),
		fmt.Sprintf("  patterns     %d detected", snap.Patterns),
		fmt.Sprintf("  recommend.   %s", fmtStates(snap.Recommendations)),
		fmt.Sprintf("  directives   %d acknowledged by sidecars", snap.DirectivesAcked),
		fmt.Sprintf("  outcomes     %d measured", snap.OutcomesMeasured),
	}
	recent := snap.Recent
	if len(recent) > 5 {
		recent = recent[len(recent)-5:]
	}
	for _, r := range recent {
		lines = append(lines, "  · "+r)
	}
	return lines
}

func plainLine(snap Snapshot) string {
	return fmt.Sprintf("requests=%d failed=%d events=%d patterns=%d recommendations=[%s] acked=%d measured=%d faults=%d",
		snap.Requests, snap.Failures, snap.Events, snap.Patterns, fmtStates(snap.Recommendations), snap.DirectivesAcked, snap.OutcomesMeasured, len(snap.ActiveFaults))
}

// Note prints a one-off line (a fault turned on, a directive applied) above
// the live block on a TTY, or as a plain line otherwise.
func (s *Summary) Note(elapsed time.Duration, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	if s.tty && s.lines > 0 {
		// Move up, clear the block; it is redrawn on the next Render.
		fmt.Fprintf(&b, "\x1b[%dA\r\x1b[J", s.lines)
		s.lines = 0
	}
	fmt.Fprintf(&b, "[%s] %s\n", fmtElapsed(elapsed), msg)
	_, err := io.WriteString(s.w, b.String())
	return err
}

// Report returns the final report: what was detected and what changed.
func Report(snap Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "omnibridge demo report (%s)\n", fmtElapsed(snap.Elapsed))
	fmt.Fprintf(&b, "  traffic:          %d requests, %d failed (%s)\n", snap.Requests, snap.Failures, pct(snap.Failures, snap.Requests))
	fmt.Fprintf(&b, "  events seen:      %d\n", snap.Events)
	fmt.Fprintf(&b, "  patterns:         %d\n", snap.Patterns)
	fmt.Fprintf(&b, "  recommendations:  %s\n", fmtStates(snap.Recommendations))
	fmt.Fprintf(&b, "  directives acked: %d\n", snap.DirectivesAcked)
	fmt.Fprintf(&b, "  outcomes measured: %d\n", snap.OutcomesMeasured)
	section := func(title string, items []string) {
		fmt.Fprintf(&b, "%s:\n", title)
		if len(items) == 0 {
			b.WriteString("  (none)\n")
		}
		for _, it := range items {
			fmt.Fprintf(&b, "  - %s\n", it)
		}
	}
	section("detected", snap.Detected)
	section("changed", snap.Changes)
	return b.String()
}

func fmtStates(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%02d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func pct(a, b uint64) string {
	if b == 0 {
		return "0.0%"
	}
	return fmt.Sprintf("%.1f%%", float64(a)*100/float64(b))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:max(n-1, 0)]) + "…"
}
