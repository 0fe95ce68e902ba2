package sidecar

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestSequenceLiveCounter: the live counter makes a restart on the same
// boot continue exactly after the last number handed out, clean stop or
// not; under another boot id (a machine crash: the page cache may be lost)
// or with a damaged live file the sidecar continues past the fsynced
// reservation, so a number is never reused.
func TestSequenceLiveCounter(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the live counter is mapped from a file on Linux only")
	}
	if bootID() == ([16]byte{}) {
		t.Skip("no boot id on this machine")
	}
	dir := t.TempDir()
	s1, start, err := loadSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if start != 0 || s1.resumed {
		t.Fatalf("fresh dir: start %d resumed %v", start, s1.resumed)
	}
	for range 1234 {
		s1.counter.Add(1)
	}
	// No clean stop (no final write): as after a SIGKILL.
	s2, start, err := loadSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if start != 1234 || !s2.resumed {
		t.Fatalf("same boot: continued after %d (resumed %v), want exactly after 1234", start, s2.resumed)
	}
	if got := s2.counter.Load(); got != 1234 {
		t.Fatalf("counter %d after load, want 1234", got)
	}
	s2.counter.Add(6) // 1240 handed out; reservation is 1234+seqBlock

	live := filepath.Join(dir, liveFile)
	b, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	b[liveBootAt] ^= 0xff // another boot
	if err := os.WriteFile(live, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s3, start, err := loadSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if start != 1234+seqBlock || s3.resumed {
		t.Fatalf("another boot: continued after %d (resumed %v), want after the reservation %d", start, s3.resumed, 1234+seqBlock)
	}

	b, _ = os.ReadFile(live)
	copy(b, "garbage!")
	if err := os.WriteFile(live, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s4, start, err := loadSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1234 + 2*seqBlock; start != uint64(want) || s4.resumed {
		t.Fatalf("damaged live file: continued after %d (resumed %v), want after the reservation %d", start, s4.resumed, want)
	}

	// A clean stop writes the exact number to both.
	s4.counter.Add(1)
	if err := s4.write(s4.counter.Load()); err != nil {
		t.Fatal(err)
	}
	_, start, err = loadSequence(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1234 + 2*seqBlock + 1); start != want {
		t.Fatalf("after a clean stop: continued after %d, want %d", start, want)
	}
}
