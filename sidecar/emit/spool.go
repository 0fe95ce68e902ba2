package emit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// spool is the on-disk overflow of the emitter: append-only segment files
// (seg-NNNNNNNNNNNNNNNNNNNN.spool) of CRC-framed records, read from the head
// in order, deleted a whole segment at a time once every record in it was
// acknowledged by the broker. The acknowledged prefix of the head segment is
// checkpointed in the file "head" so that a restart does not replay it.
//
// It is safe for concurrent use: the writer appends while the replayer reads.
type spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	log      *slog.Logger

	mu       sync.Mutex
	segs     []*segment // oldest first; the last is the one appended to
	active   *os.File   // open for append on segs[len-1], or nil
	headOff  int64      // acknowledged bytes of segs[0]
	peekEnds []int64    // end offsets of the frames the last peek returned
	bytes    int64      // total bytes on disk
	pending  int64      // records not yet acknowledged
	buf      []byte
	rbuf     []byte
}

type segment struct {
	id   uint64
	size int64
}

const (
	segPrefix = "seg-"
	segSuffix = ".spool"
	headFile  = "head"
	// peekBytes bounds how much of a segment one peek reads.
	peekBytes = 1 << 20
)

func segName(id uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, id, segSuffix) }

// openSpool opens (creating if needed) the spool in dir, truncating a torn
// tail of any segment and skipping the checkpointed acknowledged prefix.
func openSpool(dir string, maxBytes, segBytes int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool dir: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, log: log}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool dir: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, segPrefix) || !strings.HasSuffix(n, segSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ckSeg, ckOff := s.readHead()
	for _, id := range ids {
		path := filepath.Join(dir, segName(id))
		if id < ckSeg {
			// Fully acknowledged before the last stop; its deletion was cut short.
			_ = os.Remove(path)
			continue
		}
		seg, records, ends, err := s.scan(path, id)
		if err != nil {
			return nil, err
		}
		if id == ckSeg && ckOff > 0 {
			// Skip the acknowledged prefix, when the checkpoint is on a frame boundary.
			if i := slices.Index(ends, ckOff); i >= 0 {
				records -= int64(i + 1)
				if len(s.segs) == 0 {
					s.headOff = ckOff
				}
			}
		}
		s.segs = append(s.segs, seg)
		s.bytes += seg.size
		s.pending += records
	}
	if len(s.segs) > 0 && s.pending == 0 {
		// Everything was acknowledged: start clean.
		for _, seg := range s.segs {
			_ = os.Remove(filepath.Join(dir, segName(seg.id)))
		}
		next := s.segs[len(s.segs)-1].id + 1
		s.segs, s.bytes, s.headOff = nil, 0, 0
		s.writeHead(next, 0)
	}
	return s, nil
}

// scan reads a segment, truncates it after its last valid frame, and returns
// its record count and the end offset of each frame.
func (s *spool) scan(path string, id uint64) (*segment, int64, []int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read spool segment: %w", err)
	}
	var off int64
	var ends []int64
	for off < int64(len(b)) {
		_, n, err := decodeFrame(b[off:])
		if err != nil {
			s.log.Warn("spool: truncating torn or corrupt segment tail",
				"segment", filepath.Base(path), "offset", off, "dropped_bytes", int64(len(b))-off, "err", err)
			if err := os.Truncate(path, off); err != nil {
				return nil, 0, nil, fmt.Errorf("truncate spool segment: %w", err)
			}
			break
		}
		off += int64(n)
		ends = append(ends, off)
	}
	return &segment{id: id, size: off}, int64(len(ends)), ends, nil
}

func (s *spool) readHead() (uint64, int64) {
	b, err := os.ReadFile(filepath.Join(s.dir, headFile))
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	seg, err1 := strconv.ParseUint(f[0], 10, 64)
	off, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || off < 0 {
		return 0, 0
	}
	return seg, off
}

// writeHead checkpoints the acknowledged position.
func (s *spool) writeHead(seg uint64, off int64) {
	if err := writeHeadFile(s.dir, seg, off); err != nil {
		s.log.Warn("spool: write checkpoint", "err", err)
	}
}

// writeHeadFile writes the checkpoint "seg off" of the directory dir (the
// journal uses the spool's format, so that openSpool reads it): to a
// temporary file, then renamed, so a crash leaves the old or the new one.
func writeHeadFile(dir string, seg uint64, off int64) error {
	tmp := filepath.Join(dir, headFile+".tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", seg, off)), 0o600); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, headFile)); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// Append writes as many records as fit under the size cap, in order, and
// fsyncs them. It returns how many it wrote; the rest did not fit.
func (s *spool) Append(recs []*kgo.Record) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = s.buf[:0]
	n := 0
	for _, r := range recs {
		before := len(s.buf)
		s.buf = appendFrame(s.buf, r)
		if s.bytes+int64(len(s.buf)) > s.maxBytes {
			s.buf = s.buf[:before]
			break
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := s.ensureActive(); err != nil {
		return 0, err
	}
	if _, err := s.active.Write(s.buf); err != nil {
		return 0, s.failActive(fmt.Errorf("write spool: %w", err))
	}
	if err := s.active.Sync(); err != nil {
		return 0, s.failActive(fmt.Errorf("sync spool: %w", err))
	}
	last := s.segs[len(s.segs)-1]
	last.size += int64(len(s.buf))
	s.bytes += int64(len(s.buf))
	s.pending += int64(n)
	if last.size >= s.segBytes {
		_ = s.active.Close()
		s.active = nil
		s.segs = append(s.segs, &segment{id: last.id + 1})
	}
	return n, nil
}

// failActive truncates a partial write away (best effort) so the next append
// starts on a frame boundary.
func (s *spool) failActive(err error) error {
	last := s.segs[len(s.segs)-1]
	_ = s.active.Truncate(last.size)
	_ = s.active.Close()
	s.active = nil
	return err
}

func (s *spool) ensureActive() error {
	if s.active != nil {
		return nil
	}
	if len(s.segs) == 0 {
		id, _ := s.readHead()
		s.segs = append(s.segs, &segment{id: id})
		s.headOff = 0
	}
	last := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(filepath.Join(s.dir, segName(last.id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open spool segment: %w", err)
	}
	if last.size == 0 {
		syncDir(s.dir)
	}
	s.active = f
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Peek returns up to max records from the head, in order, without
// consuming them; Ack(n) consumes the first n of them.
func (s *spool) Peek(max int) ([]*kgo.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peekEnds = s.peekEnds[:0]
	for len(s.segs) > 0 {
		head := s.segs[0]
		if s.headOff < head.size {
			break
		}
		if len(s.segs) == 1 {
			return nil, nil
		}
		s.dropHead()
	}
	if len(s.segs) == 0 {
		return nil, nil
	}
	head := s.segs[0]
	n := min(head.size-s.headOff, peekBytes)
	if int64(cap(s.rbuf)) < n {
		s.rbuf = make([]byte, n)
	}
	buf := s.rbuf[:n]
	f, err := os.Open(filepath.Join(s.dir, segName(head.id)))
	if err != nil {
		return nil, fmt.Errorf("open spool segment: %w", err)
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, s.headOff); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read spool segment: %w", err)
	}
	var recs []*kgo.Record
	off := 0
	for len(recs) < max && off < len(buf) {
		r, m, err := decodeFrame(buf[off:])
		if err != nil {
			if off == 0 && int64(len(buf)) == head.size-s.headOff {
				// A frame that was valid when appended no longer decodes: the
				// disk changed under us. Skip the rest of the segment.
				s.log.Error("spool: corrupt frame in segment, skipping its rest", "segment", head.id, "err", err)
				s.headOff = head.size
				return nil, fmt.Errorf("read spool: %w", err)
			}
			break // frame continues past peekBytes: next peek
		}
		r.Value = slices.Clone(r.Value) // buf is reused
		r.Key = slices.Clone(r.Key)
		for i := range r.Headers {
			r.Headers[i].Value = slices.Clone(r.Headers[i].Value)
		}
		off += m
		recs = append(recs, r)
		s.peekEnds = append(s.peekEnds, s.headOff+int64(off))
	}
	return recs, nil
}

// Ack consumes the first n records of the last peek and checkpoints the new
// head; segments wholly acknowledged are deleted.
func (s *spool) Ack(n int) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > len(s.peekEnds) || len(s.segs) == 0 {
		return
	}
	s.headOff = s.peekEnds[n-1]
	s.peekEnds = s.peekEnds[n:]
	s.pending -= int64(n)
	head := s.segs[0]
	if s.headOff >= head.size && (len(s.segs) > 1 || s.pending == 0) {
		s.dropHead()
		return
	}
	s.writeHead(head.id, s.headOff)
}

// dropHead deletes the head segment (all of it acknowledged).
func (s *spool) dropHead() {
	head := s.segs[0]
	if len(s.segs) == 1 && s.active != nil {
		_ = s.active.Close()
		s.active = nil
	}
	next := head.id + 1
	s.writeHead(next, 0)
	_ = os.Remove(filepath.Join(s.dir, segName(head.id)))
	s.bytes -= head.size
	s.segs = s.segs[1:]
	s.headOff = 0
	s.peekEnds = s.peekEnds[:0]
}

// Pending returns the number of records not yet acknowledged.
func (s *spool) Pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// Bytes returns the spool's size on disk.
func (s *spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Segments returns the number of segment files.
func (s *spool) Segments() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.segs)
}

// Close closes the active segment (its data is already synced).
func (s *spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != nil {
		err := s.active.Close()
		s.active = nil
		return err
	}
	return nil
}
