package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bridgev1 "github.com/omninode/bridge/gen/omninode/bridge/v1"
	"google.golang.org/protobuf/proto"
)

// stateFile is the name of the persisted snapshot in a state directory.
const stateFile = "directives.pb"

// SaveState persists the last acknowledged snapshot to dir atomically
// (write to a temporary file, fsync, rename), so that a restarted sidecar
// that cannot reach the control plane starts with it.
func SaveState(dir string, snap *bridgev1.DirectiveSnapshot) error {
	b, err := proto.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	f, err := os.CreateTemp(dir, stateFile+".tmp*")
	if err != nil {
		return fmt.Errorf("create state file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync state file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close state file: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("rename state file: %w", err)
	}
	return nil
}

// LoadState reads the snapshot persisted in dir, with the directives that
// have already expired dropped. It returns nil and no error when there is none.
func LoadState(dir string) (*bridgev1.DirectiveSnapshot, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	snap := &bridgev1.DirectiveSnapshot{}
	if err := proto.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("decode state file: %w", err)
	}
	now := time.Now()
	live := snap.Directives[:0]
	for _, d := range snap.GetDirectives() {
		if d.GetExpiresAt().AsTime().After(now) {
			live = append(live, d)
		}
	}
	snap.Directives = live
	return snap, nil
}
