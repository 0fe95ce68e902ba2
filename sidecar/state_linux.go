package sidecar

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/google/uuid"
)

// mapLive maps the first size bytes of the file at path into memory
// (shared, so stores reach the page cache), creating it when absent. The
// mapping lives as long as the process: the source's counter points into it.
func mapLive(path string, size int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() != int64(size) {
		if err := f.Truncate(int64(size)); err != nil {
			return nil, err
		}
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return mem, nil
}

// bootID returns the running kernel's boot id (the same inside every
// container on the node), or zero when it cannot be read.
func bootID() [16]byte {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return [16]byte{}
	}
	id, err := uuid.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return [16]byte{}
	}
	return id
}
