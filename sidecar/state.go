package sidecar

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/omninode/bridge/internal/bus"
)

// The sequence number is kept in two places.
//
// The live counter is a small file mapped into memory: the source takes its
// numbers straight from it, so the last number handed out is in the kernel's
// page cache the moment it is taken, and survives a SIGKILL or OOM kill of
// the process. A restart on the same boot (the kernel's boot id is stored
// next to the counter) continues exactly after it, so every number a killed
// process handed out, and whose event it did not deliver, is a gap the
// control plane counts.
//
// The reservation file is written with fsync before the source may hand out
// numbers past it. After a machine crash (another boot id: the page cache
// may not have reached the disk) the sidecar continues past the reservation,
// a jump of up to seqBlock numbers, so that no number is ever reused. After
// a clean stop both hold the exact last number.
const (
	seqFile      = "sequence"
	liveFile     = "sequence.live"
	instanceFile = "instance"
	seqBlock     = 100_000
	seqCheck     = 100 * time.Millisecond
)

// The live file's layout: a magic, the boot id it was written under, and
// the counter, 8-byte aligned (the mapping is page-aligned).
const (
	liveSize   = 4096
	liveMagic  = "OBSEQ\x00\x00\x01"
	liveBootAt = 8  // 16 bytes
	liveCtrAt  = 64 // 8 bytes, used atomically
)

type seqState struct {
	path     string
	reserved uint64
	counter  *atomic.Uint64 // the live counter: the last number handed out
	resumed  bool           // this run continued exactly from the live counter
}

// loadSequence reads the persisted sequence from dir and returns the state
// and the last number already used, which the source continues after.
func loadSequence(dir string) (*seqState, uint64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, fmt.Errorf("create state dir: %w", err)
	}
	s := &seqState{path: filepath.Join(dir, seqFile)}
	var start uint64
	if b, err := os.ReadFile(s.path); err == nil {
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("read sequence state %s: %w", s.path, err)
		}
		start = v
	} else if !os.IsNotExist(err) {
		return nil, 0, fmt.Errorf("read sequence state: %w", err)
	}

	mem, err := mapLive(filepath.Join(dir, liveFile), liveSize)
	if err != nil {
		return nil, 0, fmt.Errorf("map live sequence counter: %w", err)
	}
	s.counter = (*atomic.Uint64)(unsafe.Pointer(&mem[liveCtrAt]))
	boot := bootID()
	if string(mem[:len(liveMagic)]) == liveMagic {
		last := s.counter.Load()
		if boot != ([16]byte{}) && [16]byte(mem[liveBootAt:liveBootAt+16]) == boot {
			// Same boot: the counter is exact, whatever killed the process.
			start, s.resumed = last, true
		} else {
			start = max(start, last)
		}
	}
	copy(mem[liveBootAt:], boot[:])
	s.counter.Store(start)
	copy(mem, liveMagic)

	if err := s.write(start + seqBlock); err != nil {
		return nil, 0, err
	}
	return s, start, nil
}

func (s *seqState) write(v uint64) error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write sequence state: %w", err)
	}
	_, err = f.WriteString(strconv.FormatUint(v, 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		return fmt.Errorf("write sequence state: %w", err)
	}
	s.reserved = v
	return nil
}

// run keeps the reservation ahead of the source until ctx ends.
func (s *seqState) run(ctx context.Context, src *bus.Source) error {
	t := time.NewTicker(seqCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if cur := src.Sequence(); cur+seqBlock/2 > s.reserved {
				if err := s.write(cur + seqBlock); err != nil {
					return err
				}
			}
		}
	}
}

// instanceID returns the instance id kept in dir, creating it once.
func instanceID(dir, service string) (string, error) {
	path := filepath.Join(dir, instanceFile)
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" && len(id) <= 253 {
			return id, nil
		}
	}
	host, _ := os.Hostname()
	if host == "" {
		host = service
	}
	id := host + "-" + uuid.NewString()[:8]
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}
