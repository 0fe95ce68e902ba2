package emit

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func rec(i int) *kgo.Record {
	return &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte(fmt.Sprintf("v%06d", i)),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
}

func TestSpoolAppendPeekAckInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s, err := openSpool(dir, 1<<20, 1<<10, log) // small segments: several files
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i += 10 {
		batch := make([]*kgo.Record, 10)
		for j := range batch {
			batch[j] = rec(i + j)
		}
		if n, err := s.Append(batch); err != nil || n != 10 {
			t.Fatalf("append: %d %v", n, err)
		}
	}
	if s.Segments() < 2 {
		t.Fatalf("segments = %d, want several", s.Segments())
	}
	next := 0
	// Consume half, reopen, consume the rest: order kept, nothing repeated.
	for next < 50 {
		recs, err := s.Peek(7)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if want := fmt.Sprintf("v%06d", next); string(r.Value) != want {
				t.Fatalf("got %s, want %s", r.Value, want)
			}
			next++
		}
		s.Ack(len(recs))
	}
	s.Close()
	s, err = openSpool(dir, 1<<20, 1<<10, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Pending(); got != int64(100-next) {
		t.Fatalf("pending after reopen = %d, want %d", got, 100-next)
	}
	for {
		recs, err := s.Peek(7)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if want := fmt.Sprintf("v%06d", next); string(r.Value) != want {
				t.Fatalf("got %s, want %s", r.Value, want)
			}
			next++
		}
		s.Ack(len(recs))
	}
	if next != 100 || s.Pending() != 0 || s.Bytes() != 0 {
		t.Fatalf("next=%d pending=%d bytes=%d", next, s.Pending(), s.Bytes())
	}
}

func TestSpoolTornTailTruncated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s, _ := openSpool(dir, 1<<20, 1<<20, log)
	if _, err := s.Append([]*kgo.Record{rec(1), rec(2), rec(3)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	seg := filepath.Join(dir, segName(0))
	b, _ := os.ReadFile(seg)
	// A crash mid-write: the last frame only half there.
	if err := os.WriteFile(seg, b[:len(b)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openSpool(dir, 1<<20, 1<<20, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 2 {
		t.Fatalf("pending = %d, want 2 after torn tail", s.Pending())
	}
	if _, err := s.Append([]*kgo.Record{rec(4)}); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.Peek(10)
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Value))
	}
	if fmt.Sprint(got) != "[v000001 v000002 v000004]" {
		t.Fatalf("records = %v", got)
	}
}

func TestSpoolCap(t *testing.T) {
	t.Parallel()
	s, _ := openSpool(t.TempDir(), 1024, 1024, slog.New(slog.DiscardHandler))
	batch := make([]*kgo.Record, 100)
	for i := range batch {
		batch[i] = rec(i)
	}
	n, err := s.Append(batch)
	if err != nil || n == 0 || n == 100 {
		t.Fatalf("append under cap = %d, %v; want some but not all", n, err)
	}
	if s.Bytes() > 1024 {
		t.Fatalf("bytes %d over cap", s.Bytes())
	}
}

func FuzzDecodeFrame(f *testing.F) {
	ents, _ := os.ReadDir("testdata")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("testdata", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Add(appendFrame(nil, rec(1)))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		off := 0
		for off < len(b) {
			r, n, err := decodeFrame(b[off:])
			if err != nil {
				return
			}
			if n <= frameHeader || off+n > len(b) {
				t.Fatalf("bad frame size %d at %d of %d", n, off, len(b))
			}
			// A decoded record re-encodes to the same frame.
			if again := appendFrame(nil, r); !bytes.Equal(again, b[off:off+n]) {
				t.Fatalf("re-encoding differs")
			}
			off += n
		}
	})
}
