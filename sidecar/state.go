package sidecar

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/omninode/bridge/internal/bus"
)

// The sequence high-water mark is persisted as a reservation: before the
// source may hand out numbers past it, a higher one is written. After a
// crash the sidecar continues past the reservation (a gap the control plane
// sees as at most seqBlock missing numbers, never a reused one); after a
// clean stop it continues exactly where it stopped.
const (
	seqFile      = "sequence"
	instanceFile = "instance"
	seqBlock     = 100_000
	seqCheck     = 100 * time.Millisecond
)

type seqState struct {
	path     string
	reserved uint64
}

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
